"""Diffusion models: Gaussian diffusion over a U-Net (images) or a residual MLP (2-D points)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from twopaths.backbones.mlp import MLPDenoiser, MLPDenoiserConfig
from twopaths.backbones.unet import UNet, UNetConfig, unet_preset
from twopaths.config import RunConfig
from twopaths.data.registry import dataset_kind
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.viz import save_grid, save_points, save_trajectory


@dataclass
class DDPMArch:
    diffusion: GaussianConfig = field(default_factory=GaussianConfig)  # schedule, objective, weighting, CFG dropout
    unet: UNetConfig = field(default_factory=lambda: unet_preset("unet-small"))  # image backbone
    mlp: MLPDenoiserConfig = field(default_factory=MLPDenoiserConfig)  # 2-D point backbone
    conditioning: Literal["auto", "class", "none"] = "auto"  # auto: class labels for image data that has classes
    sampler: Literal["ddpm", "ddim", "dpmpp", "euler", "heun"] = "ddim"  # used by the training sample hook
    sample_steps: int = 50  # steps of that sampler


def image_denoiser(a: DDPMArch, in_channels: int, resolution: int, out_channels: int,
                   num_classes: int = 0) -> nn.Module:
    """The image backbone of ``a`` for (in_channels, resolution, resolution) inputs: ``net(x, t, y)``."""
    # attention is configured by feature-map size for arch.unet.image_size; keep it at the same
    # levels when the data has another size (28 -> 14 is level 1, so 32 -> 16)
    levels = [i for i, r in enumerate(a.unet.resolutions) if r in a.unet.attention_resolutions]
    unet = dataclasses.replace(a.unet, in_channels=in_channels, out_channels=out_channels, image_size=resolution,
                               num_classes=num_classes,
                               attention_resolutions=tuple(resolution // 2**i for i in levels))
    return UNet(unet)


def _build_ddpm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    kind = dataset_kind(cfg.data.name)
    classes = meta.get("class_names") or []
    if a.conditioning == "class" and len(classes) < 2:
        raise ConfigError(f"config key 'arch.conditioning' is 'class' but dataset '{cfg.data.name}' has no classes")
    conditional = a.conditioning == "class" or (a.conditioning == "auto" and kind == "image" and len(classes) > 1)
    n_classes = len(classes) if conditional else 0
    out_mult = 2 if a.diffusion.learn_sigma else 1  # the learned variance doubles the output channels
    if kind == "image":
        C, R = meta["channels"], meta["resolution"]
        net = image_denoiser(a, C, R, C * out_mult, n_classes)
        return GaussianDiffusion(net, a.diffusion, (C, R, R), n_classes, "image", clip=1.0)
    mlp = dataclasses.replace(a.mlp, dim=2, out_dim=2 * out_mult, num_classes=n_classes)
    # Like images' [-1, 1], bound the x0 estimate by the data's range: at the noisiest steps an eps
    # model's x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) divides by a tiny number, and an unclipped
    # error there throws samples far off the data.
    bound = 1.25 * (float(meta["modes"].abs().max()) + 5 * float(meta["std"])) if "modes" in meta else None
    return GaussianDiffusion(MLPDenoiser(mlp), a.diffusion, (2,), n_classes, "x", clip=bound)


def class_labels(model: Any, n: int, class_arg: str | None, class_names: list[str]) -> torch.Tensor | None:
    """Class ids for n samples: the one asked for (by name or number), else every class in turn."""
    if not model.num_classes:
        if class_arg is not None:
            raise TwopathsError("this model was trained without class labels; drop --class")
        return None
    if class_arg is None:
        return torch.arange(n) % model.num_classes
    lowered = [c.lower() for c in class_names]
    if class_arg.lower() in lowered:
        return torch.full((n,), lowered.index(class_arg.lower()))
    if class_arg.isdigit() and int(class_arg) < model.num_classes:
        return torch.full((n,), int(class_arg))
    raise TwopathsError(f"unknown class '{class_arg}'; choose a number 0..{model.num_classes - 1} or one of: "
                        + ", ".join(class_names))


def write_samples(samples: torch.Tensor, labels: torch.Tensor | None, out: Path, meta: dict[str, Any],
           nrow: int | None = None) -> Path:
    """PNG (a grid for images, a scatter plot for points) or NPZ arrays, chosen by the suffix."""
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"samples": samples.cpu().numpy().astype(np.float32)}
        if labels is not None:
            arrays["labels"] = labels.cpu().numpy()
        np.savez_compressed(out, **arrays)
        return out
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png (a picture) or .npz (arrays), got {out}")
    if samples.ndim == 2:
        modes = meta.get("modes")
        return save_points(samples, out, modes=modes, title=f"{len(samples)} samples")
    return save_grid(samples, out, nrow=nrow)


def sample_diffusion(run: Any, args: argparse.Namespace) -> int:
    """``twopaths sample`` for diffusion models: a PNG grid / scatter plot or NPZ arrays, and optionally
    a picture of the denoising trajectory."""
    model: GaussianDiffusion = run.model
    if args.guidance < 0:
        raise TwopathsError("--guidance must be >= 0 (1 = plain conditional, 0 = unconditional)")
    labels = class_labels(model, args.n, args.class_, run.meta.get("class_names") or [])
    generator = torch.Generator().manual_seed(args.seed)
    steps = args.steps or (model.schedule.T if args.sampler == "ddpm" else run.cfg.arch.sample_steps)
    bar = tqdm(total=steps, desc=f"{args.sampler} {steps} steps", unit="step", leave=False)
    trajectory: tuple[list, list, list] = ([], [], [])
    keep = min(args.n, 4)

    def callback(i: int, t: float, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        bar.update(1)
        if args.trajectory:
            trajectory[0].append(x_t[:keep].cpu())
            trajectory[1].append(x0[:keep].cpu())
            trajectory[2].append(t)

    try:
        samples = model.sample(args.n, args.sampler, steps, labels, args.guidance, args.spacing, generator, callback)
    finally:
        bar.close()
    out = Path(args.out) if args.out else Path(run.run_dir) / "samples" / "sample.png"
    path = write_samples(samples, labels, out, run.meta)
    print(f"wrote {path} ({args.n} samples, {args.sampler}, {steps} steps"
          + (f", guidance {args.guidance}" if labels is not None else "") + ")")
    if args.trajectory:
        if samples.ndim == 2:
            raise TwopathsError("--trajectory draws images; for 2-D points use --out with .npz")
        print(f"wrote {save_trajectory(*trajectory, args.trajectory)}")
    return 0


def diffusion_sample_hook(meta: dict[str, Any]) -> HookFn:
    """During training: 16 images (a grid) or 1,000 points (a scatter plot) per sample step, EMA weights."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model: GaussianDiffusion = trainer.model
        arch = trainer.cfg.arch
        n = 1000 if len(model.sample_shape) == 1 else 16
        labels = class_labels(model, n, None, [])  # every class in turn
        samples = model.sample(n, arch.sampler, arch.sample_steps, labels, generator=torch.Generator().manual_seed(0))
        write_samples(samples, labels, Path(trainer.run_dir) / "samples" / f"step_{step:08d}.png", meta, nrow=8)
        return {"sample_std": float(samples.std())}

    return hook


DIFFUSION_MODELS = [
    ModelSpec(
        name="ddpm",
        summary="Gaussian diffusion (Ho et al. 2020) on a U-Net (images) or an MLP (2-D points), "
                "class-conditional with classifier-free guidance",
        data_kinds=("image", "points"),
        arch_cls=DDPMArch,
        build=_build_ddpm,
        preset={"data": {"name": "fashion-mnist"},
                "optim": {"lr": 2e-4, "warmup_steps": 500, "weight_decay": 0.0, "betas": [0.9, 0.999],
                          "min_lr_ratio": 1.0},
                "train": {"batch_size": 128, "max_steps": 20000, "eval_every": 1000, "eval_batches": 10,
                          "ckpt_every": 1000, "sample_every": 2000, "ema_decay": 0.9995}},
        kind_presets={"points": {"optim": {"lr": 1e-3, "warmup_steps": 100},
                                 "train": {"batch_size": 256, "max_steps": 4000, "eval_every": 1000,
                                           "ckpt_every": 1000, "sample_every": 2000, "ema_decay": 0.999}}},
        sample_hook=diffusion_sample_hook,
        sample_command=sample_diffusion,
    ),
]
