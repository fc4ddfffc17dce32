"""One writer per directory: the advisory lock of twopaths.training.lock."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from twopaths.errors import TwopathsError
from twopaths.training.lock import DirectoryBusy, hold

HOLDER = textwrap.dedent("""
    import sys, time
    from twopaths.training.lock import hold
    with hold(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_second_process_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryBusy, match=rf"{run} is in use by another twopaths process \(pid {proc.pid} on "):
            with hold(run):
                pass
    finally:
        proc.kill()  # SIGKILL: the kernel releases the lock with the process
        proc.wait()
    with hold(run):  # no stale lock after a kill
        assert (run / ".lock").is_file()
    assert not (run / ".lock").exists()  # a holder that ends normally leaves the folder as it found it


def test_reentrant_within_one_process(tmp_path):
    with hold(tmp_path / "a"):
        with hold(tmp_path / "a"):  # the CLI and the trainer it calls both hold it
            pass
        with hold(tmp_path / "a"):
            pass


def test_unwritable_or_file_paths_are_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TwopathsError, match="exists and is not a directory"):
        with hold(tmp_path / "file"):
            pass
    if os.geteuid() == 0:
        return  # root writes into read-only directories; the rest was checked
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(TwopathsError, match="cannot write into"):
            with hold(ro):
                pass
    finally:
        ro.chmod(0o700)


def test_two_trainings_into_one_run_directory(tmp_path):
    """The second writer is refused with one line; the first finishes and its run samples."""
    from conftest import TINY_LM, run_cli, write_corpus

    corpus = write_corpus(tmp_path / "corpus.txt")
    run = tmp_path / "run"
    args = ["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(run), *TINY_LM,
            "--set", "train.max_steps=400"]
    first = subprocess.Popen([sys.executable, "-m", "twopaths", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / ".lock").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # hold the first writer (and its lock) while the second starts:
        try:  # a fast machine otherwise finishes its 400 steps before the second has imported torch
            second = run_cli(*args, check=False)
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "in use by another twopaths process" in lines[0]
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert not (run / ".lock").exists()
    assert run_cli("sample", str(run), "--max-new-tokens", "5").returncode == 0
