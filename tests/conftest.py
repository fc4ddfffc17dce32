"""Shared test fixtures: small real data made in the test, and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # ``make test`` runs one pytest worker per core (pytest-xdist): each worker, and every CLI process
    # it starts, computes on one thread, so two workers share two cores instead of fighting for them.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

# A tiny but real text model, for tests that go through the CLI (kill/resume, DDP, sample, eval).
TINY_LM = [
    "--set", "arch.window=4", "--set", "arch.embed_dim=8", "--set", "arch.hidden=32", "--set", "arch.layers=1",
    "--set", "data.context=16", "--set", "train.batch_size=8", "--set", "train.eval_every=0",
    "--set", "train.progress=false", "--set", "optim.warmup_steps=5",
]

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hum "
         "old songs about rivers mountains and far away cities").split()


def write_corpus(path: Path, n_docs: int = 60, seed: int = 0) -> Path:
    """A fortune-format file of ``n_docs`` pseudo-sentences (deterministic)."""
    import random

    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))).capitalize() + "."
            for _ in range(n_docs)]
    path.write_text("\n%\n".join(docs) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus.txt")


#: ``TWOPATHS_TEST_SUBPROCESS=1`` runs every CLI call of the tests in its own process, as a user's shell does
SUBPROCESS = os.environ.get("TWOPATHS_TEST_SUBPROCESS") == "1"


def run_cli(*args: str, check: bool = True, env: dict | None = None, timeout: float = 300,
            process: bool = False) -> subprocess.CompletedProcess:
    """Run ``twopaths ARGS`` and capture its output and exit status.

    In this process by default (``twopaths.cli.main`` with stdout and stderr captured): a new Python
    process spends about 4 s importing torch, which ~100 calls made the largest part of ``make test``.
    A real ``python -m twopaths`` subprocess with ``process=True``, with ``env``, or for every call
    under ``TWOPATHS_TEST_SUBPROCESS=1``. The tests that need a process of their own (signals, a second
    writer, DDP) start one themselves."""
    if process or env is not None or SUBPROCESS:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "twopaths", *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout)
    else:
        proc = _in_process(args)
    if check and proc.returncode != 0:
        raise AssertionError(f"twopaths {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _in_process(args: tuple[str, ...]) -> subprocess.CompletedProcess:
    """``twopaths.cli.main(args)`` as a finished process: exit status (argparse's SystemExit included),
    stdout, stderr. An unexpected exception propagates, as a traceback would end a real process."""
    import contextlib
    import io

    from twopaths.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # --help, and argparse's usage errors (status 2)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["twopaths", *args], int(code or 0), out.getvalue(), err.getvalue())


# evaluation tests: real Fashion-MNIST images and the shipped feature network

@pytest.fixture(scope="session")
def fashion():
    """1,000 test images and 1,000 train images of Fashion-MNIST, (N, 1, 28, 28) in [-1, 1], with labels."""
    from twopaths.errors import DataError
    from twopaths.data.registry import real_images

    try:
        test = real_images("fashion-mnist", 1000, "test")
        train = real_images("fashion-mnist", 1000, "train")
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    return {"test": test, "train": train}


@pytest.fixture(scope="session")
def fm_net():
    from twopaths.eval.features import load_feature_net

    return load_feature_net("fashion-mnist")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: a second intra-op thread buys nothing and spin-waits on a busy 2-core machine.
    A test module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def perturb(model, scale: float = 0.1, only: str = ""):
    """Give parameters (the zero-initialised ones too, or only those whose name starts with ``only``)
    a random offset, as training would; returns the model."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(only):
                p.add_(scale * torch.randn_like(p))
    return model
