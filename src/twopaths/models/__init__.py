"""Named models: a paradigm on a backbone, with the defaults that make it train well.

``twopaths train NAME`` looks the name up in :data:`MODELS`. Each family has its own file:
:mod:`twopaths.models.text` (``gpt*``, ``mlp-lm``, ``mdlm``) and :mod:`twopaths.models.diffusion` (``ddpm``);
:class:`~twopaths.models.spec.ModelSpec` says what a model needs. This module resolves configs;
:mod:`twopaths.runs` loads trained runs and starts new ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twopaths.config import PRESETS, RunConfig, TrainConfig, build_config, read_yaml
from twopaths.data.registry import DATASET_PRESETS, dataset_kind
from twopaths.errors import ConfigError
from twopaths.models.audio import AUDIO_MODELS
from twopaths.models.baselines import BASELINE_MODELS
from twopaths.models.bert import BERT_MODELS
from twopaths.models.conv_lm import CONV_MODELS
from twopaths.models.diffusion import DIFFUSION_MODELS
from twopaths.models.latent import LATENT_MODELS
from twopaths.models.pixel import PIXEL_MODELS
from twopaths.models.seq2seq import SEQ2SEQ_MODELS
from twopaths.models.sequence_vae import SEQUENCE_VAE_MODELS
from twopaths.models.spec import ModelSpec
from twopaths.models.superres import SUPERRES_MODELS
from twopaths.models.text import MASKED_TEXT_MODELS, TEXT_MODELS
from twopaths.models.video import VIDEO_MODELS
from twopaths.models.vit import VIT_MODELS

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [*TEXT_MODELS, *MASKED_TEXT_MODELS, *CONV_MODELS, *DIFFUSION_MODELS, *LATENT_MODELS, *BASELINE_MODELS, *PIXEL_MODELS, *BERT_MODELS, *VIT_MODELS, *SUPERRES_MODELS, *SEQ2SEQ_MODELS, *SEQUENCE_VAE_MODELS, *AUDIO_MODELS, *VIDEO_MODELS]}


def matrix() -> dict[str, dict[str, list[str]]]:
    """The paradigm x backbone matrix: ``{backbone: {paradigm: [model names]}}`` for every backbone of
    :data:`~twopaths.backbones.BACKBONES` (in its order); a pair no model uses is absent."""
    from twopaths.backbones import BACKBONES

    cells: dict[str, dict[str, list[str]]] = {name: {} for name in BACKBONES}
    for spec in MODELS.values():
        for backbone in spec.backbones:
            cells[backbone].setdefault(spec.paradigm, []).append(spec.name)
    return cells


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; available models: {', '.join(MODELS)}")
    return MODELS[name]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def device_preset(cfg: RunConfig, preset: str = "auto") -> str:
    """``cpu`` or ``gpu``: ``preset``, or for ``auto`` the device ``cfg.train.device`` resolves to."""
    import torch

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; choose from {', '.join(PRESETS)}")
    if preset != "auto":
        return preset
    on_gpu = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    return "gpu" if on_gpu else "cpu"


def resolve_config(model: str, config_file: str | None = None, overrides: list[str] | None = None,
                   data: str | None = None, preset: str = "gpu") -> RunConfig:
    """Defaults < model preset < the preset for the data's kind < the dataset's own (moses: SMILES tokens) <
    the CPU preset (``preset`` cpu, or auto on a machine without CUDA) < YAML file < ``--data`` < ``--set``.
    ``gpu``: the model's full preset."""
    spec = get_spec(model)
    file_data = read_yaml(config_file) if config_file else None
    overrides = ([f"data.name={data}"] if data else []) + list(overrides or [])
    cfg = build_config(model, spec.arch_cls, spec.preset, file_data, overrides)
    kind = dataset_kind(cfg.data.name)
    if kind not in spec.data_kinds:
        raise ConfigError(f"model '{model}' trains on {' or '.join(spec.data_kinds)} data; "
                          f"dataset '{cfg.data.name}' is {kind} data")
    layers = [spec.kind_presets.get(kind, {}), DATASET_PRESETS.get(cfg.data.name, {})]
    if device_preset(cfg, preset) == "cpu":
        layers.append(spec.cpu_presets.get(kind, {}))
    if any(layers):  # the data (and device) are known only now: build again with their presets layered in
        merged = spec.preset
        for layer in layers:
            merged = _merge(merged, layer)
        cfg = build_config(model, spec.arch_cls, merged, file_data, overrides)
    return cfg


def preset_note(cfg: RunConfig, preset: str = "auto") -> str:
    """What ``twopaths train`` says about the preset it used, e.g. that a CPU preset is a smaller run."""
    spec = get_spec(cfg.model)
    chosen = device_preset(cfg, preset)
    if dataset_kind(cfg.data.name) not in spec.cpu_presets:
        return f"preset: {cfg.model} has one preset, sized for a CPU"
    if chosen == "cpu":
        why = "chosen because no CUDA device is in use" if preset == "auto" else "as asked"
        return (f"preset: cpu ({why}): {cfg.model} sized for 2 CPU cores; '--preset gpu' trains the full model "
                f"({spec.preset.get('train', {}).get('max_steps', TrainConfig.max_steps):,} steps)")
    return f"preset: gpu (the full {cfg.model}); '--preset cpu' trains a smaller model that finishes on a CPU"


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


__all__ = ["MODELS", "PRESETS", "ModelSpec", "device_preset", "get_spec", "matrix", "load_run_config",
           "preset_note", "resolve_config"]
