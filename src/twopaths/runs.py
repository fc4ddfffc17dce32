"""Runs on disk: load a trained run to sample or evaluate it, or set up a new one for training.

A run directory holds ``config.yaml`` (the resolved config), ``checkpoints/`` and ``metrics.jsonl``;
:func:`load_run` rebuilds its model from the config with the newest checkpoint's (EMA) weights, and
:func:`build_trainer` starts one. The named models themselves are in :mod:`twopaths.models`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from twopaths.config import RunConfig
from twopaths.data.base import Splits
from twopaths.data.registry import load_splits, run_meta
from twopaths.models import get_spec, load_run_config
from twopaths.models.spec import ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.train.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint


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
    from twopaths.train.trainer import Hook, Trainer

    spec = get_spec(cfg.model)
    splits = splits if splits is not None else load_splits(cfg.data, run_dir)
    torch.manual_seed(cfg.train.seed)  # model initialisation is reproducible
    model = spec.build(cfg, splits.meta)
    hooks = [Hook("samples", cfg.train.sample_every, spec.sample_hook(splits.meta))] \
        if cfg.train.sample_every and spec.sample_hook else []
    return Trainer(model, splits.train, cfg, run_dir, val_set=splits.val, hooks=[*hooks, *extra_hooks])


__all__ = ["LoadedRun", "build_trainer", "load_run"]
