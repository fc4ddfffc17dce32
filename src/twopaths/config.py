"""Typed run configuration: dataclasses, YAML files and ``--set a.b=c`` overrides.

A run is described by one :class:`RunConfig`. It is built from (in order, later wins):

1. the defaults of the dataclasses below and of the model's own ``arch`` dataclass,
2. the model's preset (a named size such as ``gpt-nano`` may change ``arch`` and ``train``),
3. a YAML file (``--config file.yaml``),
4. ``--set key=value`` overrides, where ``value`` is parsed as YAML (``--set train.lr=3e-4``,
   ``--set optim.betas=[0.9,0.95]``).

Every value is checked against the field's type annotation. An unknown key or a wrong type is a
one-line :class:`~twopaths.errors.ConfigError` naming the key and what is allowed, so a typo never
silently trains the wrong model. The resolved config is saved as ``config.yaml`` in the run dir
and reloaded by ``--resume``, ``sample`` and ``eval``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from twopaths.errors import ConfigError


#: ``twopaths train --preset`` values: a model's CPU-sized or GPU-sized preset; ``auto`` picks ``cpu``
#: unless the run will train on a CUDA device (:func:`twopaths.models.device_preset`)
PRESETS = ("auto", "cpu", "gpu")


@dataclass
class DataConfig:
    name: str = "fortunes"  # a dataset from `twopaths data list`
    path: str | None = None  # explicit file/folder; wins over TWOPATHS_DATA and Debian paths
    seed: int = 0  # document/number split and procedural generation
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    # text
    tokenizer: Literal["char", "bpe", "smiles"] = "char"  # smiles: chemical tokens (moses)
    vocab_size: int = 2048  # BPE only; char vocab is the corpus' character set
    context: int = 64  # tokens per training window (model sees context, predicts the next)
    rows: Literal["windows", "documents"] = "windows"  # windows of the joined documents, or one document per row
    # images
    resolution: int = 32  # shapes, image folders and moving-fashion clips (Fashion-MNIST is always 28)
    channels: int = 3  # image folders: 1 (grey) or 3 (RGB)
    size: int = 10_000  # items generated for procedural datasets (shapes, mixture2d; moving-fashion: train clips)
    # audio folders (data.name=audio; spoken-digits clips are always 1 s, the digit classifier's input)
    seconds: float = 1.0  # clip length: each WAV is resampled to 8 kHz and cut or padded to this, centred
    # video (moving-fashion; the canvas side is data.resolution)
    frames: int = 8  # frames per clip, 2..64
    objects: int = 1  # Fashion-MNIST items per clip, 1 or 2
    # pairs
    max_number: int = 99_999  # numbers-LANG: pairs for 0..max_number
    reverse: bool = False  # pairs: swap source and target (numbers-LANG: words -> digits)


@dataclass
class OptimConfig:
    lr: float = 3e-4  # peak learning rate, reached after warmup
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio at train.max_steps
    warmup_steps: int = 100  # linear warmup from 0
    weight_decay: float = 0.1  # AdamW decoupled decay; never applied to norms, biases, embeddings
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping


@dataclass
class TrainConfig:
    max_steps: int = 1000  # optimizer steps
    # wall-clock limit of one invocation: 0 (none), seconds, or '90s', '10m', '1.5h'; the run then ends
    # with a checkpoint at the step the time allows, the learning-rate schedule fitted to that step
    max_time: float | str = 0
    batch_size: int = 32  # global batch per optimizer step, over all processes and accumulation
    grad_accum: int = 1  # micro-batches per step; batch_size must divide by grad_accum * world
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False  # torch.compile the model (opt-in; slow start, faster steps on GPU)
    ema_decay: float = 0.999  # 0 disables the EMA copy of the weights
    ema_warmup: bool = True  # decay ramps as (1+t)/(10+t) so early EMA follows the weights
    log_every: int = 10  # steps between metric lines
    eval_every: int = 200  # steps between validation passes; 0 disables
    eval_batches: int = 20  # validation batches per pass
    sample_every: int = 0  # steps between sample hooks; 0 disables
    ckpt_every: int = 200  # steps between checkpoints (one is always written at the end)
    ckpt_minutes: float = 5.0  # also one when this many minutes passed since the last; 0: by steps only
    keep_last: int = 3  # checkpoints kept on disk
    num_workers: int = 0  # DataLoader workers (0 keeps resume bit-exact)
    progress: bool = True  # tqdm progress bar on rank 0


@dataclass
class RunConfig:
    model: str = ""  # a name from `twopaths train --help`
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    arch: Any = None  # the model's own dataclass (see twopaths.models)


# ----------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``3e-4`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot (``3.0e-4``); everyone types ``3e-4``.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


# ----------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (tuple, list):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)}]"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``key``.

    Accepts exactly what YAML can produce for the type: ints for floats (``lr=1``), lists for
    tuples, nothing else. A string "3" is not an int: YAML would have parsed a real 3.
    """
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"config key '{key}': {value!r} is not allowed; allowed values: "
                          + ", ".join(repr(a) for a in typing.get_args(tp)))
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise bad
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if origin is tuple and Ellipsis not in typing.get_args(tp):
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # YAML's .nan / .inf: no setting of ours means "infinite"
                raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, prefix=key + ".")
    raise ConfigError(f"config key '{key}': unsupported type {tp!r}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (possibly partial) dict, checking every key and type."""
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}'; allowed keys: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Dataclass -> plain dict/list/scalars that YAML can write (tuples become lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def _set_path(cfg: Any, dotted: str, raw_value: Any) -> None:
    """Set ``cfg.a.b = value`` after checking ``a.b`` exists and the value has its type."""
    parts = dotted.split(".")
    target = cfg
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(target):
            raise ConfigError(f"unknown config key '{dotted}': '{'.'.join(parts[:depth])}' has no sub-keys")
        names = [f.name for f in dataclasses.fields(target)]
        if part not in names:
            where = ".".join(parts[:depth])
            raise ConfigError(f"unknown config key '{dotted}'; allowed keys{' under ' + repr(where) if where else ''}: "
                              + ", ".join(names))
        if depth == len(parts) - 1:
            setattr(target, part, _coerce(raw_value, _hints(type(target))[part], dotted))
        else:
            target = getattr(target, part)


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=3e-4"`` -> ``("train.lr", 0.0003)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.max_steps=500")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg: Any, overrides: list[str] | dict[str, Any]) -> Any:
    """Apply ``--set`` overrides (a list of ``key=value`` strings, or a flat dict) in place."""
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        _set_path(cfg, key, value)
    return cfg


def _merge_nested(cfg: Any, data: dict[str, Any], prefix: str = "") -> None:
    """Overlay a nested dict (from YAML) onto an existing dataclass, checking every key."""
    for key, value in data.items():
        dotted = prefix + key
        names = [f.name for f in dataclasses.fields(cfg)]
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'; allowed keys: {', '.join(names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _merge_nested(current, value, dotted + ".")
        else:
            setattr(cfg, key, _coerce(value, _hints(type(cfg))[key], dotted))


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def build_config(model: str, arch_cls: type, preset: dict[str, Any] | None = None,
                 file_data: dict[str, Any] | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Resolve a full :class:`RunConfig` for ``model`` (see the module docstring for the order)."""
    cfg = RunConfig(model=model, arch=arch_cls())
    for layer in (preset or {}), (file_data or {}):
        layer = dict(layer)
        if "model" in layer and layer.pop("model") not in (model, None):
            raise ConfigError(f"config names a different model than '{model}'")
        _merge_nested(cfg, layer)
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Checks that need more than one field or a range; each names the key to change."""
    t, o, d = cfg.train, cfg.optim, cfg.data
    positive = {"train.max_steps": t.max_steps, "train.batch_size": t.batch_size,
                "train.grad_accum": t.grad_accum, "train.log_every": t.log_every,
                "train.ckpt_every": t.ckpt_every, "train.keep_last": t.keep_last,
                "train.eval_batches": t.eval_batches,
                "data.context": d.context, "data.resolution": d.resolution, "data.size": d.size}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"config key '{key}' must be >= 1, got {value}")
    for key, value in {"train.eval_every": t.eval_every, "train.sample_every": t.sample_every,
                       "train.num_workers": t.num_workers, "optim.warmup_steps": o.warmup_steps,
                       "optim.weight_decay": o.weight_decay, "optim.grad_clip": o.grad_clip,
                       "train.ckpt_minutes": t.ckpt_minutes}.items():
        if value < 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {value}")
    if not o.lr > 0:
        raise ConfigError(f"config key 'optim.lr' must be > 0, got {o.lr}")
    if not all(0 <= b < 1 for b in o.betas):
        raise ConfigError(f"config key 'optim.betas' must hold two values in [0, 1), got {list(o.betas)}")
    if not o.eps > 0:
        raise ConfigError(f"config key 'optim.eps' must be > 0, got {o.eps}")
    if not 0 <= o.min_lr_ratio <= 1:
        raise ConfigError(f"config key 'optim.min_lr_ratio' must be in [0, 1], got {o.min_lr_ratio}")
    if not 0 <= t.ema_decay < 1:
        raise ConfigError(f"config key 'train.ema_decay' must be in [0, 1), got {t.ema_decay}")
    duration_seconds(t.max_time, "train.max_time")
    if t.batch_size % t.grad_accum:
        raise ConfigError(f"config key 'train.batch_size' ({t.batch_size}) must be divisible by "
                          f"train.grad_accum ({t.grad_accum})")
    if not 2 <= d.frames <= 64:
        raise ConfigError(f"config key 'data.frames' must be in 2..64 (frames per clip), got {d.frames}")
    if not 0.05 <= d.seconds <= 30:
        raise ConfigError(f"config key 'data.seconds' must be in 0.05..30 (seconds per audio clip), got {d.seconds}")
    if d.objects not in (1, 2):
        raise ConfigError(f"config key 'data.objects' must be 1 or 2 (objects per clip), got {d.objects}")
    if d.channels not in (1, 3):
        raise ConfigError(f"config key 'data.channels': allowed values: 1, 3; got {d.channels}")
    if not (0 < d.val_fraction < 1 and 0 < d.test_fraction < 1 and d.val_fraction + d.test_fraction < 1):
        raise ConfigError("config keys 'data.val_fraction' and 'data.test_fraction' must each be in (0, 1) "
                          f"and sum to less than 1, got {d.val_fraction} and {d.test_fraction}")


_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: float | str, key: str = "train.max_time") -> float:
    """``600``, ``'600s'``, ``'10m'``, ``'1.5h'`` -> seconds (0: no limit); anything else is a
    :class:`ConfigError` naming ``key``."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", text)
    if not match or isinstance(value, bool):
        raise ConfigError(f"config key '{key}' must be a duration such as 600, 90s, 10m or 1.5h, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
