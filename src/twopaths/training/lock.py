"""One writer per directory: an advisory lock for run and arena folders.

Two processes writing into one run directory corrupt each other quietly (a checkpoint save of one
removes the other's temporary directory; both exit 0 with one model's config next to the other's
weights). So every command that writes into a run or arena folder first takes ``DIR/.lock`` with
``fcntl.flock`` (non-blocking, exclusive) and writes its pid, host and start time into it; a second
writer gets one clear error naming the holder.

``flock`` locks belong to the open file and are released by the kernel when the process ends, so a
run killed with SIGKILL leaves no stale lock behind (only the file, which the next holder reuses).
A holder that ends normally removes the file, so a refused or finished command leaves the folder as
it found it; a process that locked a file just unlinked by its holder notices (the path no longer
names its inode) and tries again. Within one process the lock is re-entrant: the CLI and the trainer
it calls may both hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from twopaths.errors import TwopathsError

LOCK_NAME = ".lock"


class DirectoryBusy(TwopathsError):
    """Another process holds the directory's lock."""


_held: dict[Path, list] = {}  # resolved directory -> [fd, depth] for locks this process holds


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["time"])))
        return f"pid {int(info['pid'])} on {info['host']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its name yet"


def _busy(directory: Path, path: Path) -> DirectoryBusy:
    return DirectoryBusy(f"{directory} is in use by another twopaths process ({_holder(path)}); wait for "
                         f"it to finish or choose another output directory (nothing was changed)")


def refuse_if_busy(directory: str | Path) -> None:
    """Raise :class:`DirectoryBusy` when another process holds ``directory``'s lock; takes nothing and
    creates nothing (so a command can say "in use" before any other check of the directory)."""
    directory = Path(directory)
    if not directory.is_dir() or directory.resolve() in _held:
        return
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # conflicts with a holder's exclusive lock
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise _busy(directory, path) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold(directory: str | Path, what: str = "run directory") -> Iterator[Path]:
    """Hold ``directory``'s lock for the ``with`` block (creating the directory); re-entrant.

    Raises :class:`DirectoryBusy` when another process holds it, and a :class:`TwopathsError` when
    the directory cannot be created or written (read-only), before anything else is written. A
    directory this call created is removed again if it is still empty at the end.
    """
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TwopathsError(f"{directory} exists and is not a directory; choose another output path") from None
    except OSError as exc:
        raise TwopathsError(f"cannot create {directory}: {exc.strerror}") from None
    key = directory.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield directory
        finally:
            _held[key][1] -= 1
        return
    path = directory / LOCK_NAME
    fd = _acquire(path, directory)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}).encode())
        _held[key] = [fd, 1]
        yield directory
    finally:
        _held.pop(key, None)
        with contextlib.suppress(OSError):
            path.unlink()  # before unlocking: a waiter that opened this inode will see it is gone
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if created:  # a refused command leaves no empty folder behind
            with contextlib.suppress(OSError):
                directory.rmdir()  # only succeeds when empty


def _acquire(path: Path, directory: Path) -> int:
    """An open, exclusively flock-ed descriptor of ``path``, which still names it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TwopathsError(f"cannot write into {directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(directory, path) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file between our open and our lock: take the new one
