"""pixel-gpt through the CLI on tiny real data: train on RGB shapes and on the 2-D mixture, sample a
grid / arrays / a class, evaluate bits per dimension, and the errors a user can meet."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

ENV = {"OMP_NUM_THREADS": "1"}  # tiny tensors: threads only add overhead on a shared machine
TINY = ["--set", "data.size=64", "--set", "data.resolution=8", "--set", "arch.levels=8",
        "--set", "arch.transformer.n_layer=1", "--set", "arch.transformer.d_model=32",
        "--set", "train.max_steps=6", "--set", "train.batch_size=8", "--set", "train.ckpt_every=6",
        "--set", "train.sample_every=6", "--set", "train.eval_every=6", "--set", "train.eval_batches=1",
        "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("pixel") / "run"
    run_cli("train", "pixel-gpt", "--data", "shapes", "--out", str(run), *TINY, env=ENV)
    return run


def test_train_writes_a_grid_and_sample_writes_grids_and_arrays(shapes_run, tmp_path):
    assert Image.open(shapes_run / "samples" / "step_00000006.png").size[0] > 8 * 4
    out = run_cli("sample", str(shapes_run), "--n", "6", "--temperature", "1", "--out", str(tmp_path / "g.png"),
                  env=ENV).stdout
    assert "6 samples of 192 tokens" in out and Image.open(tmp_path / "g.png").size[0] > 16
    run_cli("sample", str(shapes_run), "--n", "4", "--class", "square", "--out", str(tmp_path / "s.npz"), env=ENV)
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["samples"].shape == (4, 3, 8, 8) and set(arrays["labels"].tolist()) == {1}
    levels = (np.arange(8) * 32 + 15.5) / 127.5 - 1  # the 8 level centres
    assert np.abs(arrays["samples"][..., None] - levels).min(-1).max() < 1e-5
    run_cli("sample", str(shapes_run), "--n", "4", "--class", "1", "--out", str(tmp_path / "s2.npz"), env=ENV)
    assert np.array_equal(np.load(tmp_path / "s2.npz")["samples"], arrays["samples"])  # same seed, same samples


def test_eval_reports_bits_per_dim(shapes_run, tmp_path):
    run_cli("eval", str(shapes_run), "--split", "test", "--n", "8", "--json", str(tmp_path / "m.json"), env=ENV)
    m = json.loads((tmp_path / "m.json").read_text())
    assert math.isclose(m["bits_per_token"], m["loss"] / math.log(2), rel_tol=1e-6)
    assert math.isclose(m["bits_per_dim"], m["bits_per_token"] + math.log2(256 / 8), rel_tol=1e-6)


def test_errors(shapes_run, tmp_path):
    proc = run_cli("sample", str(shapes_run), "--n", "2", "--class", "hexagon", check=False, env=ENV)
    assert proc.returncode == 2 and "unknown class 'hexagon'" in proc.stderr
    proc = run_cli("train", "pixel-gpt", "--data", "shapes", "--out", str(tmp_path / "x"), *TINY,
                   "--set", "arch.levels=12", check=False, env=ENV)
    assert proc.returncode == 2 and "'arch.levels' must be a power of two" in proc.stderr
    proc = run_cli("train", "pixel-gpt", "--data", "shapes", "--out", str(tmp_path / "y"), *TINY,
                   "--set", "arch.transformer.context=100", check=False, env=ENV)
    assert proc.returncode == 2 and "is shorter than a sequence (193 tokens" in proc.stderr


def test_points_run_samples_a_scatter_plot(tmp_path):
    run = tmp_path / "mix"
    run_cli("train", "pixel-gpt", "--data", "mixture2d", "--out", str(run), "--set", "data.size=512",
            "--set", "train.max_steps=5", "--set", "train.batch_size=64", "--set", "train.progress=false",
            "--set", "train.eval_every=0", "--set", "train.sample_every=5", env=ENV)
    assert Image.open(run / "samples" / "step_00000005.png").size[0] > 200
    run_cli("sample", str(run), "--n", "50", "--out", str(tmp_path / "p.npz"), env=ENV)
    assert np.load(tmp_path / "p.npz")["samples"].shape == (50, 2)
    proc = run_cli("sample", str(run), "--n", "3", "--class", "2", check=False, env=ENV)
    assert proc.returncode == 2 and "trained without class labels" in proc.stderr
