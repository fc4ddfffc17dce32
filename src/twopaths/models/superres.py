"""Image restoration with diffusion models: the ``sr3`` model, and the ``inpaint`` / ``upscale`` commands.

- ``sr3``: super-resolution by iterative refinement (Saharia et al. 2022), a Gaussian diffusion model
  of the high-resolution image whose denoiser also sees the bicubic-upsampled low-resolution image
  (:mod:`twopaths.paradigms.superres`). Its backbone is built by
  :func:`~twopaths.models.diffusion.image_denoiser` with 2C input channels, so any image backbone
  of ``ddpm`` serves. Trains on any image dataset: pairs are made by average pooling by ``arch.factor``.
- ``twopaths inpaint RUN``: RePaint (Lugmayr et al. 2022, :mod:`twopaths.paradigms.inpaint`) with any
  trained Gaussian diffusion image run.
- ``twopaths upscale RUN``: an ``sr3`` run applied to a small image.

Image files are read with Pillow. Masks follow image editors: **white = the region to fill**, black =
keep; internally that becomes the keep-mask of :func:`~twopaths.paradigms.inpaint.inpaint` (1 = keep).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import DDPMArch, class_labels, image_denoiser
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianDiffusion
from twopaths.paradigms.inpaint import inpaint, network_evaluations
from twopaths.paradigms.superres import (SuperResolution, downsample, psnr, upsample_nearest, upsample_smooth)
from twopaths.viz import check_image_size, read_image, read_mask, save_grid, save_image


@dataclass
class SR3Arch(DDPMArch):
    # diffusion, unet, sampler, sample_steps: as ddpm (DDPMArch); the U-Net takes 2x the image's channels
    conditioning: Literal["auto", "class", "none"] = "none"  # SR3 is conditioned on the image, not the class
    factor: int = 4  # upsampling factor: the low-res input is (H / factor, W / factor); 28 -> 7, 32 -> 8
    upsample: Literal["bicubic", "bilinear"] = "bicubic"  # how the low-res input is upsampled for the network
    consistency: Literal["none", "final", "every"] = "final"  # project so downsample(out) == input (see upscale)
    # SR3 samples ancestrally; deterministic DDIM strays on short-trained models (Fashion-MNIST x4, 800 steps:
    # 15.7 dB PSNR with ddim 50 vs 17.9 dB with ddpm 100)
    sampler: Literal["ddpm", "ddim", "dpmpp", "euler", "heun"] = "ddpm"  # used by upscale and the sample hook
    sample_steps: int = 100  # steps of that sampler


def _build_sr3(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    C, R = meta["channels"], meta["resolution"]
    if a.factor < 2 or R % a.factor:
        raise ConfigError(f"config key 'arch.factor' must be >= 2 and divide the image size {R}, got {a.factor}")
    classes = meta.get("class_names") or []
    if a.conditioning == "class" and len(classes) < 2:
        raise ConfigError(f"config key 'arch.conditioning' is 'class' but dataset '{cfg.data.name}' has no classes")
    n_classes = len(classes) if a.conditioning == "class" or (a.conditioning == "auto" and len(classes) > 1) else 0
    out_mult = 2 if a.diffusion.learn_sigma else 1
    net = image_denoiser(a, 2 * C, R, C * out_mult, n_classes)  # input: x_t and the upsampled low-res image
    return SuperResolution(net, a.diffusion, (C, R, R), a.factor, n_classes, a.upsample)


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


def _sample_sr3(run: Any, args: argparse.Namespace) -> int:
    raise TwopathsError(f"model 'sr3' upscales a given image: use 'twopaths upscale {run.run_dir} --image small.png "
                        "--out big.png'")


SUPERRES_MODELS = [
    ModelSpec(
        name="sr3",
        summary="super-resolution by iterative refinement (Saharia et al. 2022): Gaussian diffusion "
                "conditioned on the upsampled low-res image ('twopaths upscale')",
        data_kinds=("image",),
        arch_cls=SR3Arch,
        build=_build_sr3,
        preset={"data": {"name": "fashion-mnist"},
                "optim": {"lr": 2e-4, "warmup_steps": 500, "weight_decay": 0.0, "betas": [0.9, 0.999],
                          "min_lr_ratio": 1.0},
                "train": {"batch_size": 128, "max_steps": 20000, "eval_every": 1000, "eval_batches": 10,
                          "ckpt_every": 1000, "sample_every": 2000, "ema_decay": 0.9995}},
        sample_hook=sr3_sample_hook,
        sample_command=_sample_sr3,
    ),
]


# ----------------------------------------------------------------------------- image files


def box_mask(box: str, size: int) -> torch.Tensor:
    """``"x0,y0,x1,y1"`` (pixels, x = column, the end exclusive) -> keep-mask (1, H, W), 0 inside the box."""
    try:
        x0, y0, x1, y1 = (int(v) for v in box.split(","))
    except ValueError:
        raise TwopathsError(f"--box must be four integers x0,y0,x1,y1, got '{box}'") from None
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise TwopathsError(f"--box {box} must satisfy 0 <= x0 < x1 <= {size} and 0 <= y0 < y1 <= {size}")
    keep = torch.ones(1, size, size)
    keep[:, y0:y1, x0:x1] = 0
    return keep


def _result_paths(out: Path, tag: str, n: int) -> list[Path]:
    stem = f"{out.stem}_{tag}" if tag else out.stem
    return [out.with_name(f"{stem}.png")] if n == 1 else [out.with_name(f"{stem}_{k}.png") for k in range(n)]


# ----------------------------------------------------------------------------- twopaths inpaint


def inpaint_command(run: Any, args: argparse.Namespace) -> int:
    """``twopaths inpaint``: fill a masked region of one image, ``--n`` different ways."""
    model = run.model
    if not isinstance(model, GaussianDiffusion) or isinstance(model, SuperResolution) \
            or len(model.sample_shape) != 3:
        raise TwopathsError(f"inpaint needs a Gaussian diffusion image model (ddpm, dit); {run.run_dir} is model "
                            f"'{run.cfg.model}' on {run.cfg.data.name}")
    if (args.mask is None) == (args.box is None):
        raise TwopathsError("give the region to fill with --mask MASK.png (white = fill) or --box x0,y0,x1,y1")
    if min(args.n, args.resample, args.jump) < 1 or (args.steps is not None and args.steps < 1):
        raise TwopathsError("--n, --steps, --resample and --jump must be >= 1")
    C, R, _ = model.sample_shape
    image = read_image(args.image, C)
    check_image_size(image, args.image, R, f"this run ({run.cfg.model} on {run.cfg.data.name})")
    keep = read_mask(args.mask, R) if args.mask is not None else box_mask(args.box, R)
    if keep.min() > 0:
        raise TwopathsError("the mask leaves nothing to fill: white pixels (or the --box) mark the region to fill")
    steps = args.steps or min(model.schedule.T, 100)
    if steps > model.schedule.T:
        raise TwopathsError(f"--steps must be at most the model's {model.schedule.T} training timesteps")
    y = None
    if args.class_ is not None:  # without --class a conditional model fills unconditionally (the null label)
        y = class_labels(model, args.n, args.class_, run.meta.get("class_names") or [])
    nfe = network_evaluations(steps, args.jump, args.resample)
    bar = tqdm(total=nfe, desc=f"RePaint {steps} steps x{args.resample}", unit="eval", leave=False)
    try:
        results = inpaint(model, image[None].expand(args.n, -1, -1, -1), keep, steps, args.resample, args.jump,
                          args.sampler, y=y, guidance=args.guidance,
                          generator=torch.Generator().manual_seed(args.seed),
                          callback=lambda *_: bar.update(1))
    finally:
        bar.close()
    out = Path(args.out) if args.out else Path(run.run_dir) / "samples" / "inpaint.png"
    holes = int((keep == 0).sum())
    summary = (f"{args.n} result{'s' if args.n > 1 else ''}, {holes} of {R * R} pixels filled, {args.sampler} "
               f"{steps} steps, resample {args.resample}, jump {args.jump}: {nfe} network evaluations")
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, results=results.cpu().numpy(), image=image.numpy(), keep=keep.numpy())
        print(f"wrote {out} ({summary}; arrays results, image, keep with keep 1 = known pixel)")
        return 0
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png (pictures) or .npz (arrays), got {out}")
    greyed = image * keep  # the hole shown as mid grey (0 in [-1, 1])
    shown_mask = (1 - 2 * keep).expand(C, -1, -1)  # white = filled, as the mask file
    save_grid(torch.cat([greyed[None], shown_mask[None], results.cpu()]), out, nrow=args.n + 2, scale=4)
    paths = [save_image(r, p) for r, p in zip(results.cpu(), _result_paths(out, "result", args.n))]
    print(f"wrote {out} (input with the hole greyed | mask, white = filled | {args.n} result"
          f"{'s' if args.n > 1 else ''}) and {', '.join(str(p) for p in paths)}\n  {summary}")
    return 0


# ----------------------------------------------------------------------------- twopaths upscale


def upscale_command(run: Any, args: argparse.Namespace) -> int:
    """``twopaths upscale``: an sr3 run applied to one small image, ``--n`` times."""
    model = run.model
    if not isinstance(model, SuperResolution):
        raise TwopathsError(f"upscale needs a super-resolution run (model sr3); {run.run_dir} is model "
                            f"'{run.cfg.model}' (train one with: twopaths train sr3 --data {run.cfg.data.name} "
                            "--out runs/sr3)")
    if args.n < 1 or (args.steps is not None and args.steps < 1):
        raise TwopathsError("--n and --steps must be >= 1")
    C, h, _ = model.low_shape
    low = read_image(args.image, C)
    check_image_size(low, args.image, h, f"this sr3 run (x{model.factor} to {model.sample_shape[-1]}x"
                                    f"{model.sample_shape[-1]})")
    out = Path(args.out) if args.out else Path(run.run_dir) / "samples" / "upscale.png"
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png, got {out}")
    sampler = args.sampler or run.cfg.arch.sampler
    steps = args.steps or run.cfg.arch.sample_steps
    consistency = args.consistency or run.cfg.arch.consistency
    bar = tqdm(total=steps, desc=f"sr3 {sampler} {steps} steps", unit="step", leave=False)
    try:
        results = model.upscale(low[None].expand(args.n, -1, -1, -1), sampler, steps,
                                generator=torch.Generator().manual_seed(args.seed), consistency=consistency,
                                callback=lambda *_: bar.update(1)).cpu()
    finally:
        bar.close()
    paths = [save_image(r, p) for r, p in zip(results, _result_paths(out, "", args.n))]
    bilinear = upsample_smooth(low[None], model.factor, "bilinear")
    strip = out.with_name(f"{out.stem}_compare.png")
    save_grid(torch.cat([upsample_nearest(low[None], model.factor), bilinear, results]), strip,
              nrow=args.n + 2, scale=4)
    gap = float((downsample(results, model.factor) - low).abs().max())
    print(f"wrote {', '.join(str(p) for p in paths)} ({model.sample_shape[-1]}x{model.sample_shape[-1]}) and {strip} "
          f"(input (nearest) | bilinear | sr3 x{args.n})\n  {sampler} {steps} steps, consistency {consistency}: "
          f"max |downsample(result) - input| = {gap:.1e}")
    return 0
