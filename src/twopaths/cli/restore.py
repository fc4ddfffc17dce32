"""``twopaths inpaint`` and ``twopaths upscale``: image restoration with trained diffusion runs.

- ``twopaths inpaint RUN``: RePaint (Lugmayr et al. 2022, :mod:`twopaths.restore.inpaint`) with any
  trained Gaussian diffusion image run.
- ``twopaths upscale RUN``: an ``sr3`` run (:mod:`twopaths.models.superres`) applied to a small image.

Image files are read and written by :mod:`twopaths.viz`. Masks follow image editors: **white = the
region to fill**, black = keep; internally that becomes the keep-mask of
:func:`~twopaths.restore.inpaint.inpaint` (1 = keep).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from twopaths.cli.options import GAUSSIAN_SAMPLERS, check_steps, command, count, finite, load, natural
from twopaths.errors import TwopathsError
from twopaths.paradigms import REPAINT_SAMPLERS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "inpaint", cmd_inpaint, run="run directory of a Gaussian diffusion image model")
    p.add_argument("--image", type=Path, required=True, help="the image to complete (PNG/JPEG, the run's size)")
    p.add_argument("--mask", type=Path, help="mask image of the same size: white = fill, black = keep")
    p.add_argument("--box", metavar="x0,y0,x1,y1",
                   help="fill this rectangle instead of a mask file (pixels; x = column; x1, y1 exclusive)")
    p.add_argument("--out", help="output: .png (side by side + raw results) or .npz; default RUN/samples/inpaint.png")
    p.add_argument("--n", type=count, default=1, help="number of different completions (default 1)")
    p.add_argument("--steps", type=count, default=None,
                   help="reverse-process timesteps, strided over the T of training (default min(T, 100))")
    p.add_argument("--resample", type=count, default=5,
                   help="RePaint r: passes through each block of steps (1 = no resampling; default 5; "
                        "costs about r times the network evaluations)")
    p.add_argument("--jump", type=count, default=5, help="RePaint j: steps per block before jumping back (default 5)")
    p.add_argument("--sampler", choices=REPAINT_SAMPLERS, default="ddpm",
                   help="reverse step for the hole: DDPM ancestral (RePaint's choice, default) or DDIM")
    p.add_argument("--seed", type=natural, default=0, help="random seed (same seed, same result)")
    p.add_argument("--class", dest="class_", metavar="C",
                   help="class name or number for class-conditional models (default: unconditional)")
    p.add_argument("--guidance", type=finite, default=1.0, help="classifier-free guidance scale with --class")

    p = command(sub, "upscale", cmd_upscale, run="run directory of an sr3 model")
    p.add_argument("--image", type=Path, required=True, help="the low-resolution image (PNG/JPEG)")
    p.add_argument("--out", help="the upscaled image, .png (default RUN/samples/upscale.png)")
    p.add_argument("--n", type=count, default=1, help="number of different upscalings (default 1)")
    p.add_argument("--sampler", choices=GAUSSIAN_SAMPLERS, default=None,
                   help="diffusion sampler (default: the run's arch.sampler, ddpm for sr3 runs)")
    p.add_argument("--steps", type=count, default=None,
                   help="sampling steps (default: the run's arch.sample_steps, 100 for sr3 runs)")
    p.add_argument("--consistency", choices=["final", "every", "none"], default=None,
                   help="project the result so downsample(result) == input: final (default), every step too "
                        "(ILVR; ddpm, ddim, dpmpp), or none")
    p.add_argument("--seed", type=natural, default=0, help="random seed (same seed, same result)")


def cmd_inpaint(args: argparse.Namespace) -> int:
    """fill a region of an image with a diffusion model (RePaint)

    Fill the masked region of an image with a trained Gaussian diffusion image run (ddpm, dit), RePaint
    style (Lugmayr et al. 2022): at every reverse step the known pixels come from the noised input and the
    hole from the model, and each block of JUMP steps is re-noised and denoised again RESAMPLE times so the
    two agree. The known pixels of the result equal the input exactly. The image must be the run's size
    (28x28 for Fashion-MNIST); colour is converted to the run's channels. MASK: a PNG of the same size where
    WHITE marks the region to FILL and black the pixels to keep (as in image editors). With a .png --out,
    writes a side-by-side picture (input with the hole grey | mask | results) and each raw result beside it
    (OUT_result.png, or OUT_result_K.png with --n > 1); with .npz, the arrays.

    examples:
      twopaths inpaint runs/ddpm --image shirt.png --box 8,8,20,20 --out filled.png
      twopaths inpaint runs/ddpm --image shirt.png --mask hole.png --n 4 --out filled.png
      twopaths inpaint runs/ddpm --image shirt.png --box 0,14,28,28 --steps 250 --resample 10 --jump 10 --out f.png
      twopaths inpaint runs/ddpm --image shoe.png --box 0,0,14,28 --class Sneaker --guidance 3 --out f.png
    """
    run = load(args)
    check_steps(run, args.steps)
    return inpaint_image(run, image=args.image, mask=args.mask, box=args.box, out=args.out, n=args.n,
                         steps=args.steps, resample=args.resample, jump=args.jump, sampler=args.sampler,
                         seed=args.seed, class_=args.class_, guidance=args.guidance)


def cmd_upscale(args: argparse.Namespace) -> int:
    """upscale a small image with a super-resolution run (sr3)

    Upscale an image by an sr3 run's factor (Saharia et al. 2022): the model denoises the large image
    conditioned on the bicubic-upsampled input. The image must be the run's resolution / factor (7x7 for x4
    on Fashion-MNIST). The result is projected so that average-pooling it gives back the input exactly (and
    it stays in range). Writes the upscaled image (OUT, or OUT_K.png with --n > 1) and a comparison strip
    OUT_compare.png: input (nearest) | bilinear | sr3.

    examples:
      twopaths train sr3 --data fashion-mnist --out runs/sr3 --set arch.factor=4
      twopaths upscale runs/sr3 --image small.png --out big.png
      twopaths upscale runs/sr3 --image small.png --n 4 --steps 250 --out big.png
      twopaths upscale runs/sr3 --image small.png --sampler dpmpp --steps 20 --consistency every --out big.png
    """
    run = load(args)
    check_steps(run, args.steps)
    return upscale_image(run, image=args.image, out=args.out, n=args.n, sampler=args.sampler,
                         steps=args.steps, consistency=args.consistency, seed=args.seed)


# ----------------------------------------------------------------------------- the regions and files


def box_mask(box: str, size: int) -> torch.Tensor:
    """``"x0,y0,x1,y1"`` (pixels, x = column, the end exclusive) -> keep-mask (1, H, W), 0 inside the box."""
    try:
        x0, y0, x1, y1 = (int(v) for v in box.split(","))
    except ValueError:
        raise TwopathsError(f"--box must be four integers x0,y0,x1,y1, got '{box}'") from None
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise TwopathsError(f"--box {box} must satisfy 0 <= x0 < x1 <= {size} and 0 <= y0 < y1 <= {size}")
    import torch

    keep = torch.ones(1, size, size)
    keep[:, y0:y1, x0:x1] = 0
    return keep


def _result_paths(out: Path, tag: str, n: int) -> list[Path]:
    stem = f"{out.stem}_{tag}" if tag else out.stem
    return [out.with_name(f"{stem}.png")] if n == 1 else [out.with_name(f"{stem}_{k}.png") for k in range(n)]


# ----------------------------------------------------------------------------- twopaths inpaint


def inpaint_image(run: Any, *, image: Path, mask: Path | None, box: str | None, out: str | None, n: int,
                  steps: int | None, resample: int, jump: int, sampler: str, seed: int, class_: str | None,
                  guidance: float) -> int:
    """``twopaths inpaint``: fill a masked region of one image (``mask`` file or ``box``), ``n`` different ways."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from twopaths.models.diffusion import class_labels
    from twopaths.paradigms.gaussian import GaussianDiffusion
    from twopaths.restore.inpaint import inpaint, network_evaluations, repaint_steps
    from twopaths.restore.superres import SuperResolution
    from twopaths.viz import check_image_size, read_image, read_mask, save_grid, save_image

    model = run.model
    if not isinstance(model, GaussianDiffusion) or isinstance(model, SuperResolution) \
            or len(model.sample_shape) != 3:
        raise TwopathsError(f"inpaint needs a Gaussian diffusion image model (ddpm, dit); {run.run_dir} is model "
                            f"'{run.cfg.model}' on {run.cfg.data.name}")
    if (mask is None) == (box is None):
        raise TwopathsError("give the region to fill with --mask MASK.png (white = fill) or --box x0,y0,x1,y1")
    if min(n, resample, jump) < 1 or (steps is not None and steps < 1):
        raise TwopathsError("--n, --steps, --resample and --jump must be >= 1")
    C, R, _ = model.sample_shape
    picture = read_image(image, C)
    check_image_size(picture, image, R, f"this run ({run.cfg.model} on {run.cfg.data.name})")
    keep = read_mask(mask, R) if mask is not None else box_mask(box, R)
    if keep.min() > 0:
        raise TwopathsError("the mask leaves nothing to fill: white pixels (or the --box) mark the region to fill")
    steps = repaint_steps(model, steps)
    if steps > model.schedule.T:
        raise TwopathsError(f"--steps must be at most the model's {model.schedule.T} training timesteps")
    y = None
    if class_ is not None:  # without --class a conditional model fills unconditionally (the null label)
        y = class_labels(model, n, class_, run.meta.get("class_names") or [])
    nfe = network_evaluations(steps, jump, resample)
    bar = tqdm(total=nfe, desc=f"RePaint {steps} steps x{resample}", unit="eval", leave=False)
    try:
        results = inpaint(model, picture[None].expand(n, -1, -1, -1), keep, steps, resample, jump,
                          sampler, y=y, guidance=guidance,
                          generator=torch.Generator().manual_seed(seed),
                          callback=lambda *_: bar.update(1))
    finally:
        bar.close()
    out = Path(out) if out else Path(run.run_dir) / "samples" / "inpaint.png"
    holes = int((keep == 0).sum())
    summary = (f"{n} result{'s' if n > 1 else ''}, {holes} of {R * R} pixels filled, {sampler} "
               f"{steps} steps, resample {resample}, jump {jump}: {nfe} network evaluations")
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, results=results.cpu().numpy(), image=picture.numpy(), keep=keep.numpy())
        print(f"wrote {out} ({summary}; arrays results, image, keep with keep 1 = known pixel)")
        return 0
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png (pictures) or .npz (arrays), got {out}")
    greyed = picture * keep  # the hole shown as mid grey (0 in [-1, 1])
    shown_mask = (1 - 2 * keep).expand(C, -1, -1)  # white = filled, as the mask file
    save_grid(torch.cat([greyed[None], shown_mask[None], results.cpu()]), out, nrow=n + 2, scale=4)
    paths = [save_image(r, p) for r, p in zip(results.cpu(), _result_paths(out, "result", n))]
    print(f"wrote {out} (input with the hole greyed | mask, white = filled | {n} result"
          f"{'s' if n > 1 else ''}) and {', '.join(str(p) for p in paths)}\n  {summary}")
    return 0


# ----------------------------------------------------------------------------- twopaths upscale


def upscale_image(run: Any, *, image: Path, out: str | None, n: int, sampler: str | None, steps: int | None,
                  consistency: str | None, seed: int) -> int:
    """``twopaths upscale``: an sr3 run applied to one small image, ``n`` times."""
    import torch
    from tqdm.auto import tqdm

    from twopaths.restore.superres import SuperResolution, downsample, upsample_nearest, upsample_smooth
    from twopaths.viz import check_image_size, read_image, save_grid, save_image

    model = run.model
    if not isinstance(model, SuperResolution):
        raise TwopathsError(f"upscale needs a super-resolution run (model sr3); {run.run_dir} is model "
                            f"'{run.cfg.model}' (train one with: twopaths train sr3 --data {run.cfg.data.name} "
                            "--out runs/sr3)")
    if n < 1 or (steps is not None and steps < 1):
        raise TwopathsError("--n and --steps must be >= 1")
    C, h, _ = model.low_shape
    low = read_image(image, C)
    check_image_size(low, image, h, f"this sr3 run (x{model.factor} to {model.sample_shape[-1]}x"
                                    f"{model.sample_shape[-1]})")
    out = Path(out) if out else Path(run.run_dir) / "samples" / "upscale.png"
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png, got {out}")
    sampler = sampler or run.cfg.arch.sampler
    steps = steps or model.default_steps(sampler)
    consistency = consistency or run.cfg.arch.consistency
    bar = tqdm(total=steps, desc=f"sr3 {sampler} {steps} steps", unit="step", leave=False)
    try:
        results = model.upscale(low[None].expand(n, -1, -1, -1), sampler, steps,
                                generator=torch.Generator().manual_seed(seed), consistency=consistency,
                                callback=lambda *_: bar.update(1)).cpu()
    finally:
        bar.close()
    paths = [save_image(r, p) for r, p in zip(results, _result_paths(out, "", n))]
    bilinear = upsample_smooth(low[None], model.factor, "bilinear")
    strip = out.with_name(f"{out.stem}_compare.png")
    save_grid(torch.cat([upsample_nearest(low[None], model.factor), bilinear, results]), strip,
              nrow=n + 2, scale=4)
    gap = float((downsample(results, model.factor) - low).abs().max())
    print(f"wrote {', '.join(str(p) for p in paths)} ({model.sample_shape[-1]}x{model.sample_shape[-1]}) and {strip} "
          f"(input (nearest) | bilinear | sr3 x{n})\n  {sampler} {steps} steps, consistency {consistency}: "
          f"max |downsample(result) - input| = {gap:.1e}")
    return 0
