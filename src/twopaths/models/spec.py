"""What a named model is: a paradigm on a backbone, with defaults and the commands around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from twopaths.config import RunConfig
from twopaths.paradigms.base import Paradigm

#: (trainer, step) -> metrics to log, or None
HookFn = Callable[[Any, int], "dict[str, float] | None"]

#: (loaded run, keyword options of ``twopaths sample``: n, seed, out, prompt, max_new_tokens,
#: temperature, top_k, top_p, stop, sampler, steps, block_size, infill, spacing, class_, guidance,
#: trajectory, context_frames) -> exit status; a family takes the options it uses and ignores the rest (``**_``)
SampleFn = Callable[..., int]


def image_preset(optim: dict[str, Any], train: dict[str, Any], data: str = "fashion-mnist",
                 **sections: dict[str, Any]) -> dict[str, Any]:
    """A :attr:`ModelSpec.preset` for an image model: trains on ``data`` with Adam, no weight decay and betas
    (0.9, 0.999) unless ``optim`` says otherwise, and ``train``; ``sections`` (``arch=...``) are added as given."""
    return {"data": {"name": data}, "optim": {"weight_decay": 0.0, "betas": [0.9, 0.999], **optim}, "train": train,
            **sections}


@dataclass
class ModelSpec:
    name: str
    summary: str
    data_kinds: tuple[str, ...]  # dataset kinds it trains on: image, points, text, pairs
    arch_cls: type  # the dataclass behind --set arch.*
    build: Callable[[RunConfig, dict[str, Any]], Paradigm]  # (config, data meta) -> paradigm
    #: its cell of the paradigm x backbone matrix: a key of twopaths.paradigms.PARADIGMS and the keys of
    #: twopaths.backbones.BACKBONES it can be built on (``twopaths models`` prints the matrix)
    paradigm: str = ""
    backbones: tuple[str, ...] = ()
    preset: dict[str, Any] = field(default_factory=dict)  # overrides of data/optim/train/arch defaults
    #: extra overrides by dataset kind (e.g. a diffusion model on 2-D points wants other batch sizes)
    kind_presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the CPU preset, by dataset kind: overrides of ``preset`` (the GPU-sized one) that make a run finish
    #: in well under an hour on 2 CPU cores; a kind without one is already sized for a CPU
    cpu_presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: mean validation loss (nats per item) -> the metrics people quote for this family
    report: Callable[[float, dict[str, Any]], dict[str, float]] = lambda loss, meta: {"loss": loss}
    #: data meta -> a training hook that writes samples into the run dir
    sample_hook: Callable[[dict[str, Any]], HookFn] | None = None
    #: ``twopaths sample`` for this family: ``sample(run, *, n, seed, out, ...)`` -> exit status. It is
    #: called with every option of ``twopaths sample`` as a keyword argument (see :data:`SampleFn`)
    #: and takes those it needs; None: the model does not sample (say so)
    sample: SampleFn | None = None
    #: the ``twopaths sample --sampler`` values this family takes, the first the default; empty:
    #: the Gaussian diffusion samplers (ddpm, ddim, ...), which families without samplers ignore
    samplers: tuple[str, ...] = ()
    #: how ``twopaths eval`` scores its samples and likelihood: "diffusion" (a Gaussian diffusion with a
    #: noise schedule: --sampler/--steps apply, nll is the T-step bound), "classifier" (predictions:
    #: loss and accuracy, no samples), or "samples" (anything else: drawn in one go)
    evaluation: Literal["samples", "diffusion", "classifier"] = "samples"
