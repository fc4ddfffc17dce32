"""The baselines the seeds compare diffusion against: a DCGAN-style GAN and a convolutional VAE.

Both train on images (a conv generator/decoder and its mirror, :mod:`twopaths.backbones.conv`) or
on 2-D points (MLPs). ``arch.width`` scales every net of a model at once, so the arena can match
parameter counts across contenders. ``twopaths sample RUN`` draws in one pass: the diffusion
sampler options (``--sampler``, ``--steps``, ``--spacing``, ``--guidance``) do not apply and are
ignored; ``--class`` and ``--trajectory`` are errors (both models are unconditional and have no
trajectory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from twopaths.backbones.conv import MLP, ConvDown, ConvUp
from twopaths.config import RunConfig
from twopaths.data.registry import dataset_kind
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gan import GAN, GANConfig
from twopaths.paradigms.vae import VAE, VAEConfig
from twopaths.viz import write_samples  # PNG grid / scatter plot / NPZ, as ddpm writes them


@dataclass
class GANArch:
    gan: GANConfig = field(default_factory=GANConfig)  # latent size, R1 penalty weight
    width: int = 32  # images: channels of G's last and D's first layer (2x, 4x deeper); points: MLP width
    d_width: int = 0  # the discriminator's width if it should differ; 0 = width
    depth: int = 3  # points: hidden layers of each MLP
    g_norm: Literal["batch", "none"] = "batch"  # images: BatchNorm in the generator (DCGAN)


@dataclass
class VAEArch:
    vae: VAEConfig = field(default_factory=VAEConfig)  # latent size, KL weight, importance samples
    width: int = 32  # images: channels of the encoder's first and decoder's last layer; points: MLP width
    depth: int = 3  # points: hidden layers of each MLP


def _image_shape(cfg: RunConfig, meta: dict[str, Any]) -> tuple[int, int]:
    C, R = meta["channels"], meta["resolution"]
    if R % 4:
        raise ConfigError(f"model '{cfg.model}' needs an image side divisible by 4, got {R}; "
                          f"set data.resolution to a multiple of 4")
    return C, R


def _build_gan(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a: GANArch = cfg.arch
    d_width = a.d_width or a.width
    L = a.gan.latent_dim
    if dataset_kind(cfg.data.name) == "image":
        C, R = _image_shape(cfg, meta)
        return GAN(ConvUp(L, C, R, a.width, a.g_norm), ConvDown(C, 1, R, d_width), a.gan, (C, R, R), "image")
    return GAN(MLP(L, 2, a.width, a.depth, "relu"), MLP(2, 1, d_width, a.depth, "leaky_relu"), a.gan, (2,), "x",
               squash=False)


def _build_vae(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a: VAEArch = cfg.arch
    L = a.vae.latent_dim
    if dataset_kind(cfg.data.name) == "image":
        C, R = _image_shape(cfg, meta)
        # decoder: a mean and a log-scale per pixel; no BatchNorm, so the bound of an image is its own
        return VAE(ConvDown(C, 2 * L, R, a.width), ConvUp(L, 2 * C, R, a.width, norm="none"), a.vae, (C, R, R),
                   "image", discrete=True)
    return VAE(MLP(2, 2 * L, a.width, a.depth, "leaky_relu"), MLP(L, 4, a.width, a.depth, "relu"), a.vae, (2,),
               "x", discrete=False)


def sample_baseline(run: Any, *, n: int, seed: int, out: str | None, class_: str | None, trajectory: str | None,
                    **_: Any) -> int:
    """``twopaths sample`` for the GAN and the VAE: one network pass, a PNG grid / scatter plot or NPZ."""
    if class_ is not None:
        raise TwopathsError("this model was trained without class labels; drop --class")
    if trajectory:
        raise TwopathsError(f"--trajectory draws a diffusion model's denoising steps; '{run.cfg.model}' "
                            f"samples in one pass")
    samples = run.model.sample(n, generator=torch.Generator().manual_seed(seed))
    path = write_samples(samples, None, Path(out) if out else Path(run.run_dir) / "samples" / "sample.png", run.meta)
    print(f"wrote {path} ({n} samples, {run.cfg.model}, one pass)")
    return 0


def baseline_sample_hook(meta: dict[str, Any]) -> HookFn:
    """During training: 64 images (a grid) or 1,000 points (a scatter plot), EMA weights; logs the
    sample spread and, for the GAN, both players' losses at the last training step."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model = trainer.model
        n = 1000 if len(model.sample_shape) == 1 else 64
        samples = model.sample(n, generator=torch.Generator().manual_seed(0))
        write_samples(samples, None, Path(trainer.run_dir) / "samples" / f"step_{step:08d}.png", meta, nrow=8)
        players = {k: float(v) for k, v in getattr(model, "last_metrics", {}).items()}
        return {"sample_std": float(samples.std()), **players}

    return hook


def _vae_report(loss: float, meta: dict[str, Any]) -> dict[str, float]:
    """The validation loss is -ELBO in nats per dimension; also in bits (an upper bound on the NLL)."""
    return {"loss": loss, "elbo_bits_per_dim": loss / math.log(2)}


# DCGAN's Adam beta1 = 0.5 (Radford et al. 2016, sec. 4) at 3x its lr of 2e-4, which reaches garment shapes
# in 300 steps on Fashion-MNIST; no joint gradient clipping, which would couple the two players' steps
_ADAM_GAN = {"lr": 6e-4, "betas": [0.5, 0.999], "weight_decay": 0.0, "warmup_steps": 0, "min_lr_ratio": 1.0,
             "grad_clip": 0.0}

BASELINE_MODELS: list[ModelSpec] = [
    ModelSpec(name="gan", paradigm="gan", backbones=("conv",),
              summary="DCGAN-style GAN (Goodfellow et al. 2014, Radford et al. 2016) with an R1 penalty, trained by "
                      "simultaneous gradient descent; conv nets for images, MLPs for 2-D points",
              data_kinds=("image", "points"), arch_cls=GANArch, build=_build_gan,
              preset=image_preset(_ADAM_GAN, {"batch_size": 64, "max_steps": 300, "eval_every": 0, "ckpt_every": 150,
                                              "sample_every": 150, "ema_decay": 0.999},
                                  arch={"gan": {"r1_gamma": 0.3}}),
              kind_presets={"points": {"arch": {"width": 64, "depth": 2, "gan": {"latent_dim": 8, "r1_gamma": 0.1}},
                                       "optim": {"lr": 2e-3},
                                       "train": {"batch_size": 128, "max_steps": 1500, "ckpt_every": 500,
                                                 "sample_every": 500}}},
              sample_hook=baseline_sample_hook, sample=sample_baseline),
    ModelSpec(name="vae", paradigm="vae", backbones=("conv",),
              summary="convolutional VAE (Kingma & Welling 2014) with a discretised Gaussian decoder, scored in "
                      "bits/dim like the diffusion bound; MLPs for 2-D points",
              data_kinds=("image", "points"), arch_cls=VAEArch, build=_build_vae,
              preset=image_preset({"lr": 1e-3, "warmup_steps": 50},
                                  {"batch_size": 64, "max_steps": 600, "eval_every": 300, "eval_batches": 10,
                                   "ckpt_every": 300, "sample_every": 300, "ema_decay": 0.999}),
              kind_presets={"points": {"arch": {"width": 64, "depth": 2, "vae": {"latent_dim": 2, "kl_warmup": 300}},
                                       "optim": {"lr": 2e-3},
                                       "train": {"batch_size": 128, "max_steps": 1500, "eval_every": 500,
                                                 "ckpt_every": 500, "sample_every": 500}}},
              report=_vae_report, sample_hook=baseline_sample_hook, sample=sample_baseline),
]
