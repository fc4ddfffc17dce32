"""Super-resolution with a diffusion model: the ``sr3`` model.

- ``sr3``: super-resolution by iterative refinement (Saharia et al. 2022), a Gaussian diffusion model
  of the high-resolution image whose denoiser also sees the bicubic-upsampled low-resolution image
  (:mod:`twopaths.restore.superres`). Its backbone is built by
  :func:`~twopaths.models.diffusion.image_denoiser` with 2C input channels, so any image backbone
  of ``ddpm`` serves. Trains on any image dataset: pairs are made by average pooling by ``arch.factor``.

``twopaths upscale RUN`` applies an ``sr3`` run to a small image, and ``twopaths inpaint RUN`` fills a
region of an image with any Gaussian diffusion image run: both in :mod:`twopaths.cli.restore`
(the sampling itself: :mod:`twopaths.restore`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import (CPU_UNET, GaussianArch, conditioning_classes, image_denoiser,
                                       image_diffusion_cpu_preset, image_diffusion_preset)
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.nn.functional import psnr
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.samplers import SamplerName
from twopaths.restore.superres import SuperResolution, downsample, upsample_nearest
from twopaths.viz import save_grid


@dataclass
class SR3Arch(GaussianArch):
    # diffusion, unet, sampler, sample_steps: as ddpm (GaussianArch); the U-Net takes 2x the image's channels
    conditioning: Literal["auto", "class", "none"] = "none"  # SR3 is conditioned on the image, not the class
    factor: int = 4  # upsampling factor: the low-res input is (H / factor, W / factor); 28 -> 7, 32 -> 8
    upsample: Literal["bicubic", "bilinear"] = "bicubic"  # how the low-res input is upsampled for the network
    consistency: Literal["none", "final", "every"] = "final"  # project so downsample(out) == input (see upscale)
    # SR3 samples ancestrally; deterministic DDIM strays on short-trained models (Fashion-MNIST x4, 800 steps:
    # 15.7 dB PSNR with ddim 50 vs 17.9 dB with ddpm 100)
    sampler: SamplerName = "ddpm"  # used by upscale and the sample hook
    sample_steps: int = 100  # steps of that sampler


def _build_sr3(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    C, R = meta["channels"], meta["resolution"]
    if a.factor < 2 or R % a.factor:
        raise ConfigError(f"config key 'arch.factor' must be >= 2 and divide the image size {R}, got {a.factor}")
    n_classes = conditioning_classes(cfg, meta)
    out_mult = 2 if a.diffusion.learn_sigma else 1
    net = image_denoiser(a, 2 * C, R, C * out_mult, n_classes)  # input: x_t and the upsampled low-res image
    return SuperResolution(net, a.diffusion, (C, R, R), a.factor, n_classes,
                           a.upsample).set_sampling_defaults(a.sampler, a.sample_steps)


def sr3_sample_hook(meta: dict[str, Any]) -> HookFn:
    """During training: 8 validation images as rows of low-res (nearest), bicubic, SR3, original, and PSNRs."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model: SuperResolution = trainer.model
        arch = trainer.cfg.arch
        items = [trainer.val_set[i] for i in range(min(8, len(trainer.val_set)))]
        x = torch.stack([it["image"] for it in items]).to(trainer.device)  # (8, C, H, W)
        y = torch.stack([it["label"] for it in items]) if model.num_classes else None
        low = downsample(x, model.factor)
        out = model.upscale(low, arch.sampler, arch.sample_steps, y, generator=torch.Generator().manual_seed(0),
                            consistency=arch.consistency)
        smooth = model.condition(low)
        rows = torch.cat([upsample_nearest(low, model.factor), smooth, out, x])
        save_grid(rows, Path(trainer.run_dir) / "samples" / f"step_{step:08d}.png", nrow=len(x))
        return {"sr_psnr": float(psnr(out, x).mean()), f"{model.upsample}_psnr": float(psnr(smooth, x).mean())}

    return hook


def _sample_sr3(run: Any, **_: Any) -> int:
    raise TwopathsError(f"model 'sr3' upscales a given image: use 'twopaths upscale {run.run_dir} --image small.png "
                        "--out big.png'")


SUPERRES_MODELS = [
    ModelSpec(name="sr3", paradigm="gaussian", backbones=("unet",),
              summary="super-resolution by iterative refinement (Saharia et al. 2022): Gaussian diffusion "
                      "conditioned on the upsampled low-res image ('twopaths upscale')",
              data_kinds=("image",), arch_cls=SR3Arch, build=_build_sr3, preset=image_diffusion_preset(),
              # on CPU: the CPU U-Net and schedule of ddpm, still sampled ancestrally (see SR3Arch.sampler)
              cpu_presets={"image": image_diffusion_cpu_preset(unet=CPU_UNET, sampler="ddpm", sample_steps=100)},
              sample_hook=sr3_sample_hook, sample=_sample_sr3, evaluation="diffusion"),
]

