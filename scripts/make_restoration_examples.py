"""Write the inpainting and super-resolution example figures of ``docs/`` from two trained runs.

    python scripts/make_restoration_examples.py --ddpm runs/ddpm --sr3 runs/sr3 [--out-dir docs]

- ``docs/inpainting.png``: for a few test images, rows original | masked input | RePaint result, for a
  centre box and for the right half removed (Lugmayr et al. 2022, :mod:`twopaths.restore.inpaint`).
- ``docs/superres.png``: rows low-res input (nearest) | bilinear | SR3 | original (Saharia et al. 2022,
  :mod:`twopaths.restore.superres`).

Prints PSNR (dB, range [-1, 1]) of the filled hole and of the upscaled images against the originals,
beside simple baselines (the hole filled with the mean of the known pixels; bilinear and bicubic
upsampling). A diffusion model *samples* a plausible completion rather than the mean one, so its PSNR
can be below a blurry baseline's while looking sharper: read both the numbers and the pictures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from twopaths.data.registry import real_images
from twopaths.nn.functional import psnr
from twopaths.paradigms.gaussian import GaussianDiffusion
from twopaths.restore.inpaint import inpaint, network_evaluations
from twopaths.restore.superres import SuperResolution, downsample, upsample_nearest, upsample_smooth
from twopaths.runs import load_run
from twopaths.viz import save_figure
from twopaths.viz import image_grid


def masks(size: int) -> dict[str, torch.Tensor]:
    """Keep-masks (1, 1, size, size), 1 = keep: a centre box of half the side, and the right half removed."""
    centre = torch.ones(1, 1, size, size)
    a, b = size // 4, size - size // 4
    centre[..., a:b, a:b] = 0
    half = torch.ones(1, 1, size, size)
    half[..., size // 2:] = 0
    return {"centre box": centre, "right half": half}


def hole_psnr(x: torch.Tensor, ref: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) over the filled pixels only, per image."""
    hole = (1 - keep).expand_as(x)
    mse = (((x - ref) ** 2) * hole).flatten(1).sum(1) / hole.flatten(1).sum(1)
    return 10 * torch.log10(4 / mse.clamp(min=1e-12))


def figure(rows: list[tuple[str, torch.Tensor]], path: Path, title: str) -> Path:
    """Labelled rows of images (each row (n, C, H, W) in [-1, 1]) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.9 * n + 1.6, 0.95 * len(rows) + 0.4), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        ax.imshow(image_grid(images, nrow=n, pad=1, scale=1), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.suptitle(title, fontsize=8)
    return save_figure(fig, path, dpi=130)


def run_inpainting(args: argparse.Namespace) -> None:
    run = load_run(args.ddpm)
    model = run.model
    if not isinstance(model, GaussianDiffusion) or isinstance(model, SuperResolution):
        sys.exit(f"--ddpm must be a Gaussian diffusion image run; {args.ddpm} is '{run.cfg.model}'")
    x, _ = real_images(run.cfg.data, args.n, "test", seed=args.seed)
    size = x.shape[-1]
    nfe = network_evaluations(args.steps, args.jump, args.resample)
    rows = [("original", x)]
    print(f"inpainting: {run.cfg.model} run {args.ddpm} (step {run.checkpoint.step}), {args.n} test images, "
          f"ddpm {args.steps} steps, resample {args.resample}, jump {args.jump} ({nfe} evaluations)")
    for name, keep in masks(size).items():
        start = time.perf_counter()
        out = inpaint(model, x, keep, args.steps, args.resample, args.jump,
                      generator=torch.Generator().manual_seed(args.seed))
        seconds = time.perf_counter() - start
        # baseline: every hole pixel set to the mean of that image's known pixels
        known_mean = (x * keep).flatten(1).sum(1) / keep.flatten(1).sum(1)
        flat = x * keep + (1 - keep) * known_mean.view(-1, 1, 1, 1)
        gap = float(((out - x) * keep).abs().max())
        print(f"  {name:<11} hole PSNR {float(hole_psnr(out, x, keep).mean()):5.2f} dB  "
              f"(mean-of-known fill {float(hole_psnr(flat, x, keep).mean()):5.2f} dB); "
              f"max |known pixel change| {gap:.1e}; {seconds:.0f} s")
        rows += [(f"{name}:\nmasked input", x * keep), (f"{name}:\nresult", out)]
    path = figure(rows, args.out_dir / "inpainting.png",
                  f"RePaint with {run.cfg.model} on {run.cfg.data.name} ({run.checkpoint.step} training steps): "
                  f"{args.steps} steps, r={args.resample}, j={args.jump}; grey = the hole")
    print(f"wrote {path}")


def run_superres(args: argparse.Namespace) -> None:
    run = load_run(args.sr3)
    model = run.model
    if not isinstance(model, SuperResolution):
        sys.exit(f"--sr3 must be an sr3 run; {args.sr3} is '{run.cfg.model}'")
    x, _ = real_images(run.cfg.data, args.n, "test", seed=args.seed)
    f = model.factor
    low = downsample(x, f)
    sampler = args.sr_sampler or run.cfg.arch.sampler
    steps = args.sr_steps or run.cfg.arch.sample_steps
    start = time.perf_counter()
    out = model.upscale(low, sampler, steps, generator=torch.Generator().manual_seed(args.seed),
                        consistency=run.cfg.arch.consistency)
    seconds = time.perf_counter() - start
    bilinear, bicubic = upsample_smooth(low, f, "bilinear"), upsample_smooth(low, f, "bicubic")
    print(f"super-resolution: sr3 run {args.sr3} (step {run.checkpoint.step}), x{f} "
          f"({low.shape[-1]}x{low.shape[-1]} -> {x.shape[-1]}x{x.shape[-1]}), {args.n} test images, "
          f"{sampler} {steps} steps, consistency {run.cfg.arch.consistency}; {seconds:.0f} s")
    for name, y in (("nearest", upsample_nearest(low, f)), ("bilinear", bilinear), ("bicubic", bicubic), ("sr3", out)):
        print(f"  {name:<9} PSNR {float(psnr(y, x).mean()):5.2f} dB")
    print(f"  max |downsample(sr3) - input| = {float((downsample(out, f) - low).abs().max()):.1e}")
    path = figure([("input\n(nearest)", upsample_nearest(low, f)), ("bilinear", bilinear), ("SR3", out),
                   ("original", x)], args.out_dir / "superres.png",
                  f"SR3 x{f} on {run.cfg.data.name} test images ({run.checkpoint.step} training steps, "
                  f"{sampler} {steps} steps)")
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ddpm", type=Path, help="a trained ddpm (or other Gaussian diffusion image) run")
    p.add_argument("--sr3", type=Path, help="a trained sr3 run")
    p.add_argument("--out-dir", type=Path, default=Path("docs"), help="where the PNGs go (default docs)")
    p.add_argument("--n", type=int, default=8, help="test images per figure (default 8)")
    p.add_argument("--seed", type=int, default=0, help="which test images, and the sampling seed")
    p.add_argument("--steps", type=int, default=100, help="RePaint: timesteps (default 100)")
    p.add_argument("--resample", type=int, default=5, help="RePaint: r (default 5)")
    p.add_argument("--jump", type=int, default=5, help="RePaint: j (default 5)")
    p.add_argument("--sr-sampler", choices=["ddpm", "ddim", "dpmpp"], help="SR3 sampler (default: the run's)")
    p.add_argument("--sr-steps", type=int, help="SR3 steps (default: the run's arch.sample_steps)")
    args = p.parse_args()
    if args.ddpm is None and args.sr3 is None:
        p.error("give --ddpm RUN, --sr3 RUN, or both")
    torch.set_grad_enabled(False)
    if args.ddpm is not None:
        run_inpainting(args)
    if args.sr3 is not None:
        run_superres(args)


if __name__ == "__main__":
    main()
