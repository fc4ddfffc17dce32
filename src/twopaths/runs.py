"""Runs on disk: load a trained run to sample or evaluate it, or set up a new one for training.

A run directory holds ``config.yaml`` (the resolved config), ``checkpoints/`` and ``metrics.jsonl``;
:func:`load_run` rebuilds its model from the config with the newest checkpoint's (EMA) weights, and
:func:`build_trainer` starts one. The named models themselves are in :mod:`twopaths.models`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from twopaths.config import RunConfig
from twopaths.data.base import Splits
from twopaths.data.registry import load_splits, run_meta
from twopaths.models import get_spec, load_run_config, preset_note
from twopaths.models.spec import ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.training.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: RunConfig
    spec: ModelSpec
    meta: dict[str, Any]
    model: Paradigm
    checkpoint: Checkpoint
    splits: Splits | None = None  # loaded only when asked for (evaluation needs it, sampling does not)


def load_run(run_dir: Path, checkpoint: str | None = None, use_ema: bool = True,
             device: torch.device | None = None, with_data: bool = False) -> LoadedRun:
    """A trained run ready to sample or evaluate: config, model with (EMA) weights, and data if asked."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    spec = get_spec(cfg.model)
    ckpt = open_checkpoint(Path(checkpoint)) if checkpoint else latest_checkpoint(run_dir)
    splits = load_splits(cfg.data, run_dir) if with_data else None
    meta = splits.meta if splits is not None else run_meta(cfg.data, run_dir)
    model = spec.build(cfg, meta)
    ckpt.load_model(model)
    if use_ema and ckpt.has_ema:
        ckpt.load_ema_into_model(model)
    model.to(device or torch.device("cpu")).eval()
    return LoadedRun(run_dir, cfg, spec, meta, model, ckpt, splits)


def build_trainer(cfg: RunConfig, run_dir: Path, splits: Splits | None = None, extra_hooks: tuple = ()) -> Any:
    """The model of ``cfg`` on its data, seeded, with the family's sample hook: ready for ``fit``.

    ``twopaths train`` and the arena both start runs through here, so a run trained by either
    is the same run.
    """
    from twopaths.training.trainer import Hook, Trainer

    spec = get_spec(cfg.model)
    splits = splits if splits is not None else load_splits(cfg.data, run_dir)
    torch.manual_seed(cfg.train.seed)  # model initialisation is reproducible
    model = spec.build(cfg, splits.meta)
    hooks = [Hook("samples", cfg.train.sample_every, spec.sample_hook(splits.meta))] \
        if cfg.train.sample_every and spec.sample_hook else []
    return Trainer(model, splits.train, cfg, run_dir, val_set=splits.val, hooks=[*hooks, *extra_hooks])


def training_config(model: str | None = None, *, out: Path | None = None, data: str | None = None,
                    config: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                    resume: Path | None = None, preset: str = "auto") -> tuple[RunConfig, Path]:
    """The config and run directory of a new run (``model`` into ``out``, with the CPU or GPU ``preset``:
    see :func:`~twopaths.models.resolve_config`) or of one to continue (``resume``, with the config it
    was trained with), checked before anything is written: an occupied ``out`` or a run without a
    checkpoint to resume from is refused here."""
    from twopaths.errors import TwopathsError
    from twopaths.models import resolve_config
    from twopaths.training.checkpoint import list_checkpoints
    from twopaths.training.lock import refuse_if_busy

    if resume is not None:
        if model or data or config:
            raise TwopathsError("--resume takes the model, data and config from the run; change values with --set only")
        cfg = load_run_config(Path(resume), list(overrides))
        if not list_checkpoints(Path(resume) / "checkpoints"):
            raise TwopathsError(f"run {resume} has no checkpoint to resume from; "
                                f"start it again with 'twopaths train {cfg.model} --out {resume}'")
        return cfg, Path(resume)
    if not model:
        raise TwopathsError("name a model to train (see 'twopaths train --help'), or --resume RUN")
    cfg = resolve_config(model, config, list(overrides), data, preset)
    run_dir = Path(out) if out is not None else Path("runs") / model
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 holds the lock for all ranks (train_run)
        refuse_if_busy(run_dir)  # a run being trained says so, whether or not it has checkpoints yet
    if list_checkpoints(run_dir / "checkpoints"):
        raise TwopathsError(f"{run_dir} already holds a run with checkpoints; continue it with "
                            f"--resume {run_dir}, or choose another --out (nothing was changed)")
    return cfg, run_dir


def train_run(cfg: RunConfig, run_dir: Path, resume: bool = False, announce: bool = True,
              preset: str = "auto") -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (or continue it) holding the directory's lock from the first file
    written; returns :meth:`Trainer.fit`'s summary. ``announce``: say on stderr what is trained where
    (and, for a new run, which ``preset`` it was resolved with)."""
    import contextlib

    from twopaths.training.lock import hold
    from twopaths.training.optim import effective_warmup

    main_rank = os.environ.get("RANK", "0") == "0"
    with hold(run_dir) if main_rank else contextlib.nullcontext():
        before = set(Path(run_dir).iterdir()) if main_rank else set()
        try:
            splits = load_splits(cfg.data, run_dir)
            trainer = build_trainer(cfg, run_dir, splits)
        except BaseException:  # a model that cannot be built leaves no tokenizer behind: nothing changed
            for path in set(Path(run_dir).iterdir()) - before if main_rank else ():
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        line = f"training {cfg.model} on {cfg.data.name} ({splits.meta.get('source')}) -> {run_dir}" + (
            " (resuming)" if resume else "")
        if not resume:
            line = f"{preset_note(cfg, preset)}\n{line}"
        warmup = effective_warmup(cfg.optim, cfg.train.max_steps)
        if warmup < cfg.optim.warmup_steps and not resume:
            line = (f"note: optim.warmup_steps={cfg.optim.warmup_steps} is more than a tenth of "
                    f"train.max_steps={cfg.train.max_steps}; warming up over {warmup} steps\n{line}")
        result = trainer.fit(resume=resume, announce=line if announce else None)  # said once the checkpoint loaded
    return {**result, "main": trainer.is_main}


__all__ = ["LoadedRun", "build_trainer", "load_run", "train_run", "training_config"]
