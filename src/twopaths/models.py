"""Named models: a paradigm on a backbone, with the defaults that make it train well.

``twopaths train NAME`` looks the name up here. A :class:`ModelSpec` says which dataset kinds
the model accepts, its ``arch`` dataclass (overridable as ``--set arch.KEY=VALUE``), preset
overrides for data/optim/train, how to build the paradigm from a config and the loaded data,
and how to turn a mean loss into the metrics people read (perplexity, bits per character).

Later issues register ``gpt-*``, ``ddpm``, ``dit``, ``mdlm``, ``vae``, ``gan``... here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.backbones.window_mlp import WindowMLP, WindowMLPConfig
from twopaths.config import RunConfig, build_config, read_yaml
from twopaths.data.base import Splits
from twopaths.data.registry import dataset_kind, load_splits, run_meta
from twopaths.errors import ConfigError
from twopaths.paradigms.autoregressive import Autoregressive, generate_text
from twopaths.paradigms.base import Paradigm
from twopaths.train.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint


@dataclass
class ModelSpec:
    name: str
    summary: str
    data_kinds: tuple[str, ...]
    arch_cls: type
    build: Callable[[RunConfig, dict[str, Any]], Paradigm]  # (config, data meta) -> paradigm
    preset: dict[str, Any] = field(default_factory=dict)
    #: mean loss (nats per item) -> the metrics people quote for this family
    report: Callable[[float, Splits], dict[str, float]] = lambda loss, splits: {"loss": loss}
    #: given the data, a function (trainer, step) -> metrics that writes samples into the run dir
    sample_hook: Callable[[Splits], Callable[[Any, int], dict[str, float] | None]] | None = None


def language_model_report(loss: float, splits: Splits) -> dict[str, float]:
    """Perplexity exp(loss) and bits per token loss / ln 2 (nats -> bits)."""
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2)}


def text_sample_hook(splits: Splits) -> Callable[[Any, int], dict[str, float]]:
    """Write 3 samples (EMA weights, fixed seed) to ``RUN/samples/step_XXXXXXXX.txt`` during training."""
    tokenizer = splits.meta["tokenizer"]

    def hook(trainer: Any, step: int) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        texts = [generate_text(trainer.model, tokenizer, max_new_tokens=200, temperature=0.8, generator=generator)
                 for _ in range(3)]
        out = Path(trainer.run_dir) / "samples" / f"step_{step:08d}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n\n----\n\n".join(texts) + "\n", encoding="utf-8")
        return {"mean_chars": sum(map(len, texts)) / len(texts)}

    return hook


def _build_mlp_lm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    return Autoregressive(WindowMLP(meta["tokenizer"].vocab_size, cfg.arch), context=cfg.arch.window)


def _build_gpt(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    if cfg.data.context > cfg.arch.context:
        raise ConfigError(f"config key 'data.context' ({cfg.data.context}) must not exceed 'arch.context' "
                          f"({cfg.arch.context}): the model has no positions beyond its context")
    return Autoregressive(Transformer(meta["tokenizer"].vocab_size, cfg.arch), context=cfg.arch.context)


def _gpt(name: str, summary: str, arch: dict[str, Any], data: dict[str, Any], optim: dict[str, Any],
         train: dict[str, Any]) -> ModelSpec:
    return ModelSpec(name=name, summary=summary, data_kinds=("text",), arch_cls=TransformerConfig,
                     build=_build_gpt, report=language_model_report, sample_hook=text_sample_hook,
                     preset={"arch": arch, "data": {"name": "fortunes", "context": arch["context"], **data},
                             "optim": optim, "train": train})


_NANO = dict(n_layer=4, n_head=4, d_model=128, context=128, dropout=0.0)
_NANO_TRAIN = dict(optim={"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1},
                   train={"batch_size": 32, "max_steps": 2000, "eval_every": 250, "ckpt_every": 500,
                          "sample_every": 1000})


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        _gpt("gpt", "decoder-only transformer (GPT); same as gpt-nano, choose sizes with --set arch.*",
             _NANO, {}, **_NANO_TRAIN),
        _gpt("gpt-nano", "GPT with 4 layers, 4 heads, 128 wide, context 128 (~0.8M params): trains on a CPU",
             _NANO, {}, **_NANO_TRAIN),
        _gpt("gpt-char", "character-level GPT: 6 layers, 6 heads, 384 wide, context 256 (~10.7M params)",
             dict(n_layer=6, n_head=6, d_model=384, context=256, dropout=0.2), {"tokenizer": "char"},
             optim={"lr": 1e-3, "warmup_steps": 100, "betas": [0.9, 0.99], "weight_decay": 0.1, "min_lr_ratio": 0.1},
             train={"batch_size": 64, "max_steps": 5000, "eval_every": 250, "ckpt_every": 500,
                    "sample_every": 1000}),
        _gpt("gpt2-124m", "GPT-2 small: 12 layers, 12 heads, 768 wide, context 1024, BPE (124M params)",
             dict(n_layer=12, n_head=12, d_model=768, context=1024, dropout=0.0),
             {"tokenizer": "bpe", "vocab_size": 50257},
             optim={"lr": 6e-4, "warmup_steps": 700, "betas": [0.9, 0.95], "weight_decay": 0.1, "min_lr_ratio": 0.1},
             train={"batch_size": 16, "max_steps": 20000, "eval_every": 500, "ckpt_every": 1000,
                    "sample_every": 2000}),
        ModelSpec(
            name="mlp-lm",
            summary="fixed-window MLP language model (Bengio et al. 2003): the smallest honest text model",
            data_kinds=("text",),
            arch_cls=WindowMLPConfig,
            build=_build_mlp_lm,
            preset={"data": {"name": "fortunes", "context": 64},
                    "optim": {"lr": 3e-3, "warmup_steps": 20, "weight_decay": 0.01},
                    "train": {"batch_size": 64, "max_steps": 1000, "eval_every": 250, "ckpt_every": 250,
                              "sample_every": 500}},
            report=language_model_report,
            sample_hook=text_sample_hook,
        ),
    ]
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; available models: {', '.join(MODELS)}")
    return MODELS[name]


def resolve_config(model: str, config_file: str | None = None, overrides: list[str] | None = None,
                   data: str | None = None) -> RunConfig:
    """Defaults < model preset < YAML file < ``--data`` < ``--set`` overrides, all type-checked."""
    spec = get_spec(model)
    file_data = read_yaml(config_file) if config_file else None
    overrides = ([f"data.name={data}"] if data else []) + list(overrides or [])
    cfg = build_config(model, spec.arch_cls, spec.preset, file_data, overrides)
    kind = dataset_kind(cfg.data.name)
    if kind not in spec.data_kinds:
        raise ConfigError(f"model '{model}' trains on {' or '.join(spec.data_kinds)} data; "
                          f"dataset '{cfg.data.name}' is {kind} data")
    return cfg


def load_run_config(run_dir: Path, overrides: list[str] | None = None) -> RunConfig:
    """The config a run was trained with (``RUN/config.yaml``), with optional overrides."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise ConfigError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a twopaths run: {path.name} is missing")
    data = read_yaml(path)
    model = data.get("model")
    if not isinstance(model, str):
        raise ConfigError(f"{path} does not name a model")
    spec = get_spec(model)
    return build_config(model, spec.arch_cls, None, data, overrides)


@dataclass
class LoadedRun:
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
    return LoadedRun(cfg, spec, meta, model, ckpt, splits)
