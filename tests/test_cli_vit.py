"""vit through the CLI on real Fashion-MNIST: a tiny run of a few steps, ``eval`` with accuracy (its
default for classifiers), the ``attention`` figure, and the errors a user can meet."""

import json

import pytest
from PIL import Image

from conftest import TINY_LM, run_cli

ENV = {"OMP_NUM_THREADS": "1"}
TINY = ["--set", "arch.vit.patch_size=7", "--set", "arch.vit.d_model=32", "--set", "arch.vit.n_layer=1",
        "--set", "arch.vit.n_head=2", "--set", "train.max_steps=4", "--set", "train.batch_size=16",
        "--set", "train.ckpt_every=4", "--set", "train.eval_every=4", "--set", "train.eval_batches=1",
        "--set", "train.sample_every=4", "--set", "optim.warmup_steps=2", "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    from twopaths.data.images import find_fashion_mnist
    from twopaths.errors import DataError

    try:
        find_fashion_mnist(None)
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    run = tmp_path_factory.mktemp("vit") / "run"
    proc = run_cli("train", "vit", "--data", "fashion-mnist", "--out", str(run), *TINY, env=ENV)
    assert "val accuracy" in proc.stderr  # the accuracy hook reports during training
    return run


def test_train_logs_accuracy_and_eval_scores_it(vit_run, tmp_path):
    lines = [json.loads(line) for line in (vit_run / "metrics.jsonl").read_text().splitlines()]
    assert any(0 <= m.get("accuracy", -1) <= 1 for m in lines)
    out = run_cli("eval", str(vit_run), "--n", "300", "--json", str(tmp_path / "m.json"), env=ENV).stdout
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["split"] == "val" and m["items"] == 300 and m["loss"] > 0  # loss on val, as for every model
    assert m["accuracy_split"] == "test" and m["accuracy_items"] == 300 and 0 <= m["accuracy"] <= 1
    assert len(m["per_class_accuracy"]) == 10 and "Ankle boot" in m["per_class_accuracy"]
    assert m["feature_net_accuracy"] > 0.85  # the shipped CNN on the same 300 test images
    assert sum(map(sum, m["confusion"])) == 300
    assert "evaluation CNN" in out and "Sneaker" in out
    with Image.open(vit_run / "confusion-test.png") as im:
        assert im.size[0] > 200


def test_attention_figure(vit_run, tmp_path):
    out = run_cli("attention", str(vit_run), "--n", "8", "--out", str(tmp_path / "att.png"), env=ENV).stdout
    assert "8 test images" in out
    with Image.open(tmp_path / "att.png") as im:
        assert im.size[0] > 600 and im.size[1] > 200  # 8 columns, an image above each heat map


def test_errors(vit_run, tmp_path, corpus):
    proc = run_cli("eval", str(vit_run), "--metrics", "accuracy,fid", check=False, env=ENV)
    assert proc.returncode == 2 and "fid do not fit a classifier run" in proc.stderr
    lm = tmp_path / "lm"
    run_cli("train", "mlp-lm", "--out", str(lm), "--set", f"data.path={corpus}", *TINY_LM,
            "--set", "train.max_steps=2", env=ENV)
    proc = run_cli("eval", str(lm), "--metrics", "accuracy", check=False, env=ENV)
    assert proc.returncode == 2 and "accuracy is for classifier runs" in proc.stderr
    proc = run_cli("attention", str(lm), check=False, env=ENV)
    assert proc.returncode == 2 and "attention rollout is for classifier runs" in proc.stderr
