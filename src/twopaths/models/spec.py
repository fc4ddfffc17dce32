"""What a named model is: a paradigm on a backbone, with defaults and the commands around it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twopaths.config import RunConfig
from twopaths.paradigms.base import Paradigm

#: (trainer, step) -> metrics to log, or None
HookFn = Callable[[Any, int], "dict[str, float] | None"]


@dataclass
class ModelSpec:
    name: str
    summary: str
    data_kinds: tuple[str, ...]  # dataset kinds it trains on: image, points, text, pairs
    arch_cls: type  # the dataclass behind --set arch.*
    build: Callable[[RunConfig, dict[str, Any]], Paradigm]  # (config, data meta) -> paradigm
    preset: dict[str, Any] = field(default_factory=dict)  # overrides of data/optim/train/arch defaults
    #: extra overrides by dataset kind (e.g. a diffusion model on 2-D points wants other batch sizes)
    kind_presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: mean validation loss (nats per item) -> the metrics people quote for this family
    report: Callable[[float, dict[str, Any]], dict[str, float]] = lambda loss, meta: {"loss": loss}
    #: data meta -> a training hook that writes samples into the run dir
    sample_hook: Callable[[dict[str, Any]], HookFn] | None = None
    #: ``twopaths sample`` for this family: (loaded run, parsed args) -> exit status
    sample_command: Callable[[Any, argparse.Namespace], int] | None = None
    #: the ``twopaths sample --sampler`` values this family takes, the first the default; empty:
    #: the Gaussian diffusion samplers (ddpm, ddim, ...), which families without samplers ignore
    samplers: tuple[str, ...] = ()
