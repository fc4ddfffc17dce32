"""Autoregressive transformers over quantised pixels and coordinates: ``pixel-gpt``.

ImageGPT (Chen et al. 2020, "Generative Pretraining from Pixels") at CPU scale: a GPT over the
raster-order sequence of quantised pixel values, optionally prefixed by a class token. The same
model name trains on 2-D mixtures, each point a sequence of two quantised coordinates, so it can
be compared with ``ddpm`` on both kinds of data. See :mod:`twopaths.paradigms.quantized`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.config import RunConfig
from twopaths.data.registry import dataset_kind
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import class_labels, conditioning_classes  # --class and arch.conditioning as ddpm
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.quantized import QuantizedAutoregressive, dequantization_bits
from twopaths.viz import write_samples  # PNG grid / scatter plot / NPZ, as ddpm writes them


@dataclass
class PixelGPTArch:
    # CPU size (~0.15M params; Fashion-MNIST in ~90 s); ImageGPT-like runs want e.g. n_layer=8, d_model=256.
    # context 0: exactly the sequence length, 1 + tokens per item (785 for 28x28 grey images)
    transformer: TransformerConfig = field(default_factory=lambda: TransformerConfig(
        n_layer=2, n_head=4, d_model=64, context=0, dropout=0.0))
    levels: int = 16  # images: grey levels per channel, a power of two <= 256 (256 = the data's 8 bits)
    bins: int = 128  # points: equal bins per coordinate
    low: float | None = None  # points: quantisation range; None = the mixture's modes +- 5 std, padded 25%
    high: float | None = None
    conditioning: Literal["auto", "class", "none"] = "auto"  # auto: class token for image data with classes
    cond_drop: float = 0.1  # probability of training a labelled item with the unconditional token
    temperature: float = 1.0  # softmax temperature of the training sample hook


def _point_range(a: PixelGPTArch, meta: dict[str, Any]) -> tuple[float, float]:
    if a.low is not None and a.high is not None:
        return a.low, a.high
    if "modes" not in meta:
        raise ConfigError("config keys 'arch.low' and 'arch.high' are needed for points without known modes")
    # the same bound ddpm clips its x0 estimate to: every mode with 5 std, and a 25% margin
    bound = 1.25 * (float(meta["modes"].abs().max()) + 5 * float(meta["std"]))
    return (a.low if a.low is not None else -bound), (a.high if a.high is not None else bound)


def _build_pixel_gpt(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    kind = dataset_kind(cfg.data.name)
    n_classes = conditioning_classes(cfg, meta, kind)
    if kind == "image" and (a.levels < 2 or a.levels > 256 or a.levels & (a.levels - 1)):
        raise ConfigError(f"config key 'arch.levels' must be a power of two from 2 to 256, got {a.levels}")
    if kind == "image":
        shape: tuple[int, ...] = (meta["channels"], meta["resolution"], meta["resolution"])
        low, high = -1.0, 1.0
    else:
        shape = (2,)
        low, high = _point_range(a, meta)
        if not high > low:
            raise ConfigError(f"config key 'arch.high' ({high}) must be greater than 'arch.low' ({low})")
    length = 1 + math.prod(shape)  # first token + values
    context = a.transformer.context or length
    if context < length:
        raise ConfigError(f"config key 'arch.transformer.context' ({context}) is shorter than a sequence "
                          f"({length} tokens: 1 + {math.prod(shape)}); set it to 0 (automatic) or >= {length}")
    net = Transformer(QuantizedAutoregressive.vocab_for(kind, a.levels, a.bins, n_classes),
                      dataclasses.replace(a.transformer, context=context))
    # What ``report`` needs to turn nats per token into bits per dimension; report sees only meta.
    meta["dequantization_bits"] = dequantization_bits(kind, a.levels, a.bins, low, high)
    return QuantizedAutoregressive(net, kind, shape, a.levels, a.bins, low, high, n_classes, a.cond_drop)


def pixel_report(loss: float, meta: dict[str, Any]) -> dict[str, float]:
    """Mean validation loss (nats per value token, full-vocabulary softmax) -> bits per token, and bits
    per dimension comparable with the diffusion VLB (+ log2(256/levels) for images, + log2(bin width)
    for points; see :mod:`twopaths.paradigms.quantized`). Both are upper bounds of ``eval --metrics nll``,
    which renormalises over the value tokens."""
    bits = loss / math.log(2)
    out = {"loss": loss, "bits_per_token": bits}
    if "dequantization_bits" in meta:
        out["bits_per_dim"] = bits + meta["dequantization_bits"]
    return out


def pixel_sample_hook(meta: dict[str, Any]) -> HookFn:
    """During training: 16 images (a grid, every class in turn) or 1,000 points (a scatter plot), EMA weights."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model: QuantizedAutoregressive = trainer.model
        n = 16 if model.kind == "image" else 1000
        labels = class_labels(model, n, None, [])  # every class in turn
        started = time.perf_counter()
        samples = model.sample(n, cond=labels, temperature=trainer.cfg.arch.temperature,
                               generator=torch.Generator(device=next(model.parameters()).device).manual_seed(0))
        seconds = time.perf_counter() - started
        write_samples(samples, labels, Path(trainer.run_dir) / "samples" / f"step_{step:08d}.png", meta, nrow=8)
        return {"sample_std": float(samples.std()), "samples_per_s": n / max(seconds, 1e-9)}

    return hook


def sample_pixel_gpt(run: Any, *, n: int, seed: int, out: str | None, temperature: float, top_k: int | None,
                     class_: str | None, **_: Any) -> int:
    """``twopaths sample`` for pixel-gpt: a PNG grid / scatter plot or NPZ arrays (``--out``), drawn with
    ``temperature`` and ``top_k``; ``class_`` picks the class (default: every class in turn).
    The diffusion options (--sampler, --steps, --guidance, --trajectory) do not apply and are ignored."""
    model: QuantizedAutoregressive = run.model
    if temperature < 0:
        raise TwopathsError("--temperature must be >= 0 (0 = greedy)")
    if top_k is not None and top_k < 1:
        raise TwopathsError("--top-k must be >= 1")
    labels = class_labels(model, n, class_, run.meta.get("class_names") or [])
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    samples = model.sample(n, cond=labels, generator=generator, temperature=temperature, top_k=top_k)
    seconds = time.perf_counter() - started
    path = write_samples(samples, labels, Path(out) if out else Path(run.run_dir) / "samples" / "sample.png", run.meta)
    print(f"wrote {path} ({n} samples of {model.tokens_per_item} tokens, temperature {temperature}, "
          f"{seconds:.1f}s, {n / max(seconds, 1e-9):.1f} samples/s)")
    return 0


PIXEL_MODELS = [
    ModelSpec(name="pixel-gpt", paradigm="quantized", backbones=("transformer",),
              summary="autoregressive transformer over quantised pixels in raster order (ImageGPT, Chen et al. "
                      "2020), class-conditional; on 2-D points, over two quantised coordinates",
              data_kinds=("image", "points"), arch_cls=PixelGPTArch, build=_build_pixel_gpt,
              # ~90 s on 2 CPU cores: 400 steps of 8 images (3,200 images, 2.5M tokens) -> val ~0.96 nats/token
              preset=image_preset({"lr": 3e-3, "warmup_steps": 20, "betas": [0.9, 0.95], "min_lr_ratio": 0.1},
                                  {"batch_size": 8, "max_steps": 400, "eval_every": 200, "eval_batches": 8,
                                   "ckpt_every": 200, "sample_every": 400, "ema_decay": 0.0}),
              kind_presets={"points": {"optim": {"lr": 3e-3, "warmup_steps": 50},
                                       "train": {"batch_size": 256, "max_steps": 1000, "eval_every": 500,
                                                 "eval_batches": 10, "ckpt_every": 500, "sample_every": 1000}}},
              report=pixel_report, sample_hook=pixel_sample_hook, sample=sample_pixel_gpt),
]
