"""Atomic, verifiable, pickle-free checkpoints.

Layout of one checkpoint (a directory under ``RUN/checkpoints/``)::

    step_00001200/
      model.safetensors      the paradigm's weights (tied tensors stored once)
      ema.safetensors        EMA shadow weights, when EMA is on
      optimizer.pt           optimizer state; tensors and plain containers only,
                             loaded with torch.load(weights_only=True)
      state.json             step, data position, every rank's RNG states, and the size and
                             SHA-256 of each file above; written last

Atomicity: everything is written into a hidden ``.tmp-...`` directory, each file is fsynced,
then the directory is renamed into place. ``rename`` is atomic on POSIX, so a reader (or a
resumed run) sees either the whole checkpoint or none of it; a writer killed half way leaves
only a ``.tmp-`` directory, which the next save removes. The newest complete checkpoint is the
highest ``step_*`` directory, so there is no separate "latest" pointer that could go stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from twopaths.errors import CheckpointError

FORMAT = "twopaths-checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d{8})$")


# ----------------------------------------------------------------------------- RNG state


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as JSON-able data (python, numpy, torch CPU, each CUDA device)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# ----------------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def step_of(path: Path) -> int:
    """The step of a checkpoint directory from its name (``step_00000042`` -> 42): step_dir_name's inverse."""
    return int(_STEP_DIR.match(path.name).group(1))


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints under ``ckpt_root``, oldest first."""
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))


def clean_partial(ckpt_root: Path) -> list[Path]:
    """Remove ``.tmp-*`` directories left by a writer that was killed; returns what was removed."""
    removed = []
    if ckpt_root.is_dir():
        for p in ckpt_root.iterdir():
            if p.name.startswith(".tmp-") or p.name.startswith(".old-"):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def save_checkpoint(ckpt_root: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    ema_state: dict[str, torch.Tensor] | None, extra: dict[str, Any], keep_last: int,
                    every: int = 1) -> Path:
    """Write checkpoint ``step`` atomically and keep the newest ``keep_last`` of those on the schedule
    (steps that are multiples of ``every``). A checkpoint written off the schedule (for time, a stop
    signal or the run's last step) is removed once a newer one exists: it was there for a crash, and it
    must not push a scheduled one out (the arena reads its quality curve from those).

    ``extra`` must be JSON-able (data position, per-rank RNG states, anything a resume needs).
    """
    ckpt_root.mkdir(parents=True, exist_ok=True)
    clean_partial(ckpt_root)
    final = ckpt_root / step_dir_name(step)
    tmp = ckpt_root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()

    save_model(model, str(tmp / "model.safetensors"))
    if ema_state is not None:
        save_file(ema_state, str(tmp / "ema.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")

    files = {}
    for path in sorted(tmp.iterdir()):
        _fsync_file(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    state = {"format": FORMAT, "version": VERSION, "step": step, "files": files, **extra}
    state_path = tmp / "state.json"
    state_path.write_text(json.dumps(state), encoding="utf-8")
    _fsync_file(state_path)
    _fsync_dir(tmp)

    if final.exists():  # re-saving a step (a resumed run reaching it again): swap, never delete first
        old = ckpt_root / f".old-{final.name}-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    _fsync_dir(ckpt_root)

    *older, newest = list_checkpoints(ckpt_root)
    off_schedule = [p for p in older if step_of(p) % every]
    on_schedule = [p for p in [*older, newest] if p not in off_schedule]
    for stale in off_schedule + on_schedule[:-keep_last]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- reading


@dataclass
class Checkpoint:
    """A verified checkpoint on disk; weights are loaded on request."""

    path: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def has_ema(self) -> bool:
        return "ema.safetensors" in self.state["files"]

    def load_model(self, model: nn.Module) -> None:
        _load_weights_into(model, self.path / "model.safetensors")

    def load_ema_into_model(self, model: nn.Module) -> None:
        """Put the EMA weights into ``model`` (for sampling and evaluation)."""
        ema = self.read_ema()
        params_and_buffers = dict(model.named_parameters())
        params_and_buffers.update({n: b for n, b in model.named_buffers() if b.is_floating_point()})
        _check_keys(set(params_and_buffers), set(ema), self.path / "ema.safetensors")
        with torch.no_grad():
            for name, value in ema.items():
                params_and_buffers[name].copy_(value)

    def read_ema(self) -> dict[str, torch.Tensor]:
        path = self.path / "ema.safetensors"
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read EMA weights {path}: {exc}") from None

    def load_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        path = self.path / "optimizer.pt"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            optimizer.load_state_dict(state)
        except pickle.UnpicklingError:  # weights_only refused an object: say so, never suggest unpickling
            raise CheckpointError(f"optimizer state {path} holds Python objects beyond tensors and plain containers; "
                                  "twopaths never unpickles them (the file is not one we wrote)") from None
        except (RuntimeError, ValueError, KeyError, OSError, EOFError) as exc:
            raise CheckpointError(f"optimizer state {path} does not fit this model/optimizer: {exc}") from None


def _check_keys(expected: set[str], found: set[str], path: Path) -> None:
    _raise_on_mismatch(sorted(expected - found), sorted(found - expected), path)


def _raise_on_mismatch(missing: list[str], unexpected: list[str], path: Path) -> None:
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not match this model (a different model or size?): "
            f"missing {len(missing)} keys {missing[:4]}, unexpected {len(unexpected)} keys {unexpected[:4]}")


def _load_weights_into(model: nn.Module, path: Path) -> None:
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read weights {path}: {exc}") from None
    except RuntimeError as exc:  # shape mismatch
        raise CheckpointError(f"checkpoint {path} does not match this model: {str(exc).splitlines()[0]}") from None
    _raise_on_mismatch(sorted(missing), sorted(unexpected), path)


def _check_state(state: dict[str, Any], state_path: Path) -> None:
    """The schema of ``state.json``: what a resume reads must be there and of the right type."""
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{state_path} is corrupt: 'version' must be an integer, got {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{state_path} was written by a newer twopaths (format version {version})")
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{state_path} is corrupt: 'step' must be a whole number >= 0, got {step!r}")
    files = state.get("files")
    if not isinstance(files, dict) or "model.safetensors" not in files:
        raise CheckpointError(f"{state_path} is corrupt: 'files' must list model.safetensors with its size and SHA-256")
    for name, meta in files.items():
        if (not isinstance(name, str) or "/" in name or name.startswith(".") or not isinstance(meta, dict)
                or not isinstance(meta.get("bytes"), int) or not isinstance(meta.get("sha256"), str)):
            raise CheckpointError(f"{state_path} is corrupt: the entry for file {name!r} needs 'bytes' (an integer) "
                                  f"and 'sha256' (text)")
    data = state.get("data")
    if data is not None and not isinstance(data, dict):
        raise CheckpointError(f"{state_path} is corrupt: 'data' must be a mapping, got {type(data).__name__}")
    if not isinstance(state.get("rng", []), list):
        raise CheckpointError(f"{state_path} is corrupt: 'rng' must be a list")


def open_checkpoint(path: Path, verify: bool = True) -> Checkpoint:
    """Open one checkpoint directory, checking its format and (by default) every file's checksum."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    state_path = path / "state.json"
    if not state_path.is_file():
        raise CheckpointError(f"{path} is not a twopaths checkpoint: {state_path.name} is missing")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint file {state_path} is corrupt: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{state_path} is not a twopaths checkpoint (no '{FORMAT}' format marker)")
    _check_state(state, state_path)
    for name, meta in state["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint file {file} is missing")
        size = file.stat().st_size
        if size != meta["bytes"]:
            raise CheckpointError(f"checkpoint file {file} is truncated or corrupt: "
                                  f"{size} bytes, expected {meta['bytes']}")
        if verify and _sha256(file) != meta["sha256"]:
            raise CheckpointError(f"checkpoint file {file} is corrupt: its SHA-256 does not match state.json")
    return Checkpoint(path, state)


def latest_checkpoint(run_dir: Path) -> Checkpoint:
    """The newest checkpoint of a run, verified; a clear error when the run has none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise CheckpointError(f"run {run_dir} has no checkpoint yet (looked in {run_dir / 'checkpoints'})")
    try:
        return open_checkpoint(found[-1])
    except CheckpointError as exc:
        if len(found) > 1:  # say how to fall back, but never delete anything ourselves
            raise CheckpointError(f"{exc}. The previous checkpoint {found[-2].name} may be intact: move "
                                  f"{found[-1]} aside to use it") from None
        raise
