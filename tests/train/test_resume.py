"""Kill a real training process with SIGKILL, resume it, and get the same losses bit for bit."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY_LM, run_cli, write_corpus
from twopaths.training.checkpoint import list_checkpoints
from twopaths.training.metrics import read_metrics

STEPS = "train.max_steps=600"


def _train_args(corpus, out):
    return ["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(out), *TINY_LM,
            "--set", STEPS, "--set", "train.ckpt_every=25", "--set", "train.log_every=1",
            "--set", "arch.dropout=0.1"]  # dropout: the RNG state must be restored too


def _trace(run_dir):
    return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in read_metrics(run_dir) if "split" not in r]


@pytest.fixture(scope="module")
def shared_corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("resume") / "corpus.txt")


@pytest.fixture(scope="module")
def reference(shared_corpus):
    """The same run, never interrupted."""
    out = shared_corpus.parent / "reference"
    run_cli(*_train_args(shared_corpus, out))
    return out


def _interrupt(corpus, victim, sig):
    """Start the run, send ``sig`` once checkpoint 100 exists, and wait for the process to end."""
    proc = subprocess.Popen([sys.executable, "-m", "twopaths", *_train_args(corpus, victim)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            done = list_checkpoints(victim / "checkpoints")
            if done and int(done[-1].name.split("_")[1]) >= 100:
                break
            time.sleep(0.002)
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stderr


def _resume_and_compare(victim, reference):
    out = run_cli("train", "--resume", str(victim))
    assert "resuming" in out.stderr
    resumed, expected = _trace(victim), _trace(reference)
    assert [s for s, *_ in resumed] == list(range(1, 601))  # lines past the checkpoint were replaced
    assert resumed == expected  # bit for bit: losses, learning rates, gradient norms

    # the final weights are identical too
    a = (reference / "checkpoints" / "step_00000600" / "model.safetensors").read_bytes()
    b = (victim / "checkpoints" / "step_00000600" / "model.safetensors").read_bytes()
    assert a == b


def test_sigkill_then_resume_equals_uninterrupted(shared_corpus, reference, tmp_path):
    victim = tmp_path / "victim"
    returncode, _ = _interrupt(shared_corpus, victim, signal.SIGKILL)
    assert returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = _trace(victim)[-1][0]
    assert 100 <= killed_at < 600
    _resume_and_compare(victim, reference)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_checkpoints_at_the_next_step_then_resumes_exactly(shared_corpus, reference, tmp_path, sig):
    """SIGINT (Ctrl-C) and SIGTERM share one handler; SIGTERM is checked up to the checkpoint only."""
    victim = tmp_path / "victim"
    returncode, stderr = _interrupt(shared_corpus, victim, sig)
    assert returncode == 130, stderr  # the shell's code for "stopped by a signal", not a crash
    assert "Traceback" not in stderr
    stopped_at = _trace(victim)[-1][0]
    assert 100 <= stopped_at < 600
    newest = list_checkpoints(victim / "checkpoints")[-1]
    assert int(newest.name.split("_")[1]) == stopped_at  # nothing trained after the signal is lost
    assert f"--resume {victim}" in stderr.strip().splitlines()[-1]
    if sig == signal.SIGINT:
        _resume_and_compare(victim, reference)
