"""Kill a real training process with SIGKILL, resume it, and get the same losses bit for bit."""

import os
import signal
import subprocess
import sys
import time

from conftest import TINY_LM, run_cli
from twopaths.train.checkpoint import list_checkpoints
from twopaths.train.metrics import read_metrics

STEPS = "train.max_steps=1500"


def _train_args(corpus, out):
    return ["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(out), *TINY_LM,
            "--set", STEPS, "--set", "train.ckpt_every=25", "--set", "train.log_every=1",
            "--set", "arch.dropout=0.1"]  # dropout: the RNG state must be restored too


def _trace(run_dir):
    return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in read_metrics(run_dir) if "split" not in r]


def test_sigkill_then_resume_equals_uninterrupted(corpus, tmp_path):
    reference = tmp_path / "reference"
    run_cli(*_train_args(corpus, reference))

    victim = tmp_path / "victim"
    proc = subprocess.Popen([sys.executable, "-m", "twopaths", *_train_args(corpus, victim)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            done = list_checkpoints(victim / "checkpoints")
            if done and int(done[-1].name.split("_")[1]) >= 100:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = _trace(victim)[-1][0]
    assert 100 <= killed_at < 1500

    out = run_cli("train", "--resume", str(victim))
    assert "resuming" in out.stderr
    resumed, expected = _trace(victim), _trace(reference)
    assert [s for s, *_ in resumed] == list(range(1, 1501))  # lines past the checkpoint were replaced
    assert resumed == expected  # bit for bit: losses, learning rates, gradient norms

    # the final weights are identical too
    a = (reference / "checkpoints" / "step_00001500" / "model.safetensors").read_bytes()
    b = (victim / "checkpoints" / "step_00001500" / "model.safetensors").read_bytes()
    assert a == b
