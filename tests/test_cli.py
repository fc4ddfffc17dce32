"""The command line as a user meets it: help texts, real runs, and one clear line for every bad input."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_LM, run_cli
from twopaths.cli import build_parser
from twopaths.data.images import write_idx


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from conftest import write_corpus

    tmp = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(tmp / "corpus.txt")
    run = tmp / "run"
    run_cli("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_LM,
            "--set", "train.max_steps=40", "--set", "train.ckpt_every=20", "--set", "train.sample_every=20")
    return run


def test_every_command_has_help(capsys):
    assert "train" in run_cli("--help", process=True).stdout  # the real entry point, once; the rest in-process
    parser = build_parser()
    for command in (["train"], ["sample"], ["eval"], ["data"], ["data", "list"], ["data", "fetch"]):
        with pytest.raises(SystemExit) as done:
            parser.parse_args([*command, "--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and "usage: twopaths " + " ".join(command) in out
        if command == ["train"]:
            assert "mlp-lm" in out and "--resume" in out and "train.max_steps" in out
            import dataclasses

            from twopaths.config import DataConfig, OptimConfig, TrainConfig
            listed = set(out.split("config keys", 1)[1].split("arch.*", 1)[0].split())  # data.* ... train.* lines
            fields = {f.name for cls in (DataConfig, OptimConfig, TrainConfig) for f in dataclasses.fields(cls)}
            assert fields <= listed, f"train --help does not list the config keys {sorted(fields - listed)}"
    # every option of every (sub)command carries a help string
    import argparse

    def walk(parser):
        for action in parser._actions:
            assert action.help, f"{parser.prog} {action.dest} has no help"
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())


def test_console_script_matches_module():
    import sys

    exe = shutil.which("twopaths", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("console script not installed (running from a source tree)")
    import subprocess

    assert "usage: twopaths" in subprocess.run([exe, "--help"], capture_output=True, text=True).stdout


def test_training_writes_samples(trained_run):
    for step in ("00000020", "00000040"):
        text = (trained_run / "samples" / f"step_{step}.txt").read_text()
        assert text.count("----") == 2 and len(text) > 30
    from twopaths.training.metrics import read_metrics

    assert [r["step"] for r in read_metrics(trained_run) if r.get("split") == "samples"] == [20, 40]


def test_sample_and_eval(trained_run):
    out = run_cli("sample", str(trained_run), "--prompt", "the quick", "--max-new-tokens", "30", "--seed", "3")
    assert out.stdout.startswith("the quick") and len(out.stdout) > len("the quick") + 5
    again = run_cli("sample", str(trained_run), "--prompt", "the quick", "--max-new-tokens", "30", "--seed", "3")
    assert again.stdout == out.stdout  # seeded
    ev = run_cli("eval", str(trained_run), "--split", "test", "--json", str(trained_run.parent / "m.json"))
    assert "perplexity" in ev.stdout and "checkpoint step 40 (EMA weights)" in ev.stdout
    import json

    metrics = json.loads((trained_run.parent / "m.json").read_text())
    assert metrics["perplexity"] == pytest.approx(np.exp(metrics["loss"]), rel=1e-6)


def _fails(*args, match: str, env=None):
    proc = run_cli(*args, check=False, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert match in lines[-1], lines[-1]
    return lines[-1]


def test_bad_config_key_and_type(corpus, tmp_path):
    _fails("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(tmp_path / "r"),
           "--set", "train.max_stepz=3", match="unknown config key 'train.max_stepz'; allowed keys under 'train'")
    _fails("train", "mlp-lm", "--out", str(tmp_path / "r"), "--set", "optim.lr=fast",
           match="config key 'optim.lr': expected float, got 'fast'")
    assert not (tmp_path / "r").exists()


def test_missing_data(tmp_path):
    _fails("train", "mlp-lm", "--data", "text", "--set", f"data.path={tmp_path / 'nope.txt'}", "--out",
           str(tmp_path / "r"), match=str(tmp_path / "nope.txt"))
    _fails("train", "mlp-lm", "--data", "fortunes", "--out", str(tmp_path / "r"), "--set",
           f"data.path={tmp_path / 'nowhere'}", match=str(tmp_path / "nowhere"))
    assert not (tmp_path / "r").exists()


def test_invalid_utf8_names_file_and_offset(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello world, all fine here\n%\nthen \xff broken\n")
    msg = _fails("train", "mlp-lm", "--data", "text", "--set", f"data.path={bad}", "--out", str(tmp_path / "r"),
                 match=str(bad))
    assert "byte offset 34" in msg  # 27 + 2 + len("then ")


def test_dataset_smaller_than_one_batch(tmp_path):
    from conftest import write_corpus

    small = write_corpus(tmp_path / "small.txt", n_docs=12)
    _fails("train", "mlp-lm", "--data", "text", "--set", f"data.path={small}", "--out", str(tmp_path / "r"),
           *TINY_LM, "--set", "train.batch_size=512", match="one batch needs 512")


def test_existing_run_is_never_overwritten(trained_run, corpus):
    before = _snapshot(trained_run)
    _fails("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(trained_run),
           match="already holds a run with checkpoints; continue it with --resume")
    assert _snapshot(trained_run) == before


def test_corrupt_checkpoint_is_named_and_kept(trained_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    weights = run / "checkpoints" / "step_00000040" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    before = _snapshot(run)
    for command in (["sample", str(run)], ["eval", str(run)], ["train", "--resume", str(run)]):
        msg = _fails(*command, match=f"checkpoint file {weights} is truncated or corrupt")
        assert "step_00000020 may be intact" in msg
    assert _snapshot(run) == before  # nothing deleted or rewritten


def test_not_a_run(tmp_path):
    _fails("sample", str(tmp_path), match="is not a twopaths run: config.yaml is missing")
    _fails("eval", str(tmp_path / "absent"), match="run directory not found")


def test_data_list_finds_user_data(tmp_path):
    root = tmp_path / "data" / "fashion-mnist"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 4)):
        write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    out = run_cli("data", "list", env={"TWOPATHS_DATA": str(tmp_path / "data")}).stdout
    line = next(l for l in out.splitlines() if l.startswith("fashion-mnist"))
    assert str(root) in line and "16 images" in line
    for name in ("shapes", "mixture2d", "fortunes", "numbers-", "images", "pairs"):
        assert name in out


def test_dry_run_estimates_the_time_and_names_the_preset(corpus, tmp_path):
    out = run_cli("train", "ddpm", "--data", "fashion-mnist", "--out", str(tmp_path / "r"), "--dry-run",
                  "--set", "train.batch_size=4").stdout
    assert "preset: cpu (chosen because no CUDA device is in use)" in out
    line = next(row for row in out.splitlines() if "estimated_time" in row)
    assert "3,000 steps at" in line and "6 validation passes" in line
    assert not (tmp_path / "r").exists()
    gpu = run_cli("train", "ddpm", "--data", "fashion-mnist", "--dry-run", "--preset", "gpu",
                  "--set", "train.batch_size=2").stdout
    assert "20,000 steps at" in gpu and "preset: gpu" in gpu


def test_max_time_stops_a_run_that_resumes(corpus, tmp_path):
    run = tmp_path / "r"
    proc = run_cli("train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_LM,
                   "--set", "train.max_steps=10000000", "--set", "train.max_time=2s")
    assert "train.max_time=2s reached at step" in proc.stderr and f"--resume {run}" in proc.stderr
    assert list((run / "checkpoints").iterdir())
    _fails("train", "mlp-lm", "--out", str(tmp_path / "bad"), "--set", "train.max_time=soon", match="train.max_time")
