#!/usr/bin/env python
"""Text-to-image prompt fidelity: does classifier-free guidance make samples show what the prompt says?

Trains the ``ddpm-text`` model on the procedural shapes (32x32; a U-Net cross-attending to a caption
encoder trained jointly with it, Rombach et al. 2022 sec. 3.3, with captions dropped to the null
caption 10% of the time), or takes a trained text-conditioned run with ``--run``. Then it draws
``--per-prompt`` samples for each of ``--prompts`` captions of the test split (captions the model
never saw with these pictures; some name one object, some two and their relation) at every
guidance scale of ``--guidance`` (1 = no guidance; Ho & Salimans 2022, eq. 6: uncond + w (cond -
uncond)), and scores every sample with :func:`twopaths.eval.prompt_fidelity.prompt_fidelity`: the
shipped shapes reader reads colours, shapes, sizes and positions back from the picture and each
attribute the prompt names is checked (GenEval's rules, Ghosh et al. 2023). The reader's own score
on the real test images with their true captions is printed as the ceiling.

The goal (the text-to-image issue): guidance raises accuracy, and with guidance colour and shape
accuracy reach 80%. Every scale uses the same seed, so the starting noise of each sample is the
same at every scale. A grid of a few prompts (rows) at guidance 1 and the largest scale is written
to ``--grid`` (default ``docs/text-to-image.png``), prompts printed beside their rows.

    python benchmarks/text_to_image.py                       # train the recipe (CPU), then score it
    python benchmarks/text_to_image.py --run runs/t2i        # score a trained text-conditioned run
    python benchmarks/text_to_image.py --train-steps 500 --prompts 8 --per-prompt 2   # a quick look
    python benchmarks/text_to_image.py --json t2i.json       # every number and setting as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

try:  # run from a checkout without installing: python benchmarks/text_to_image.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import _busy_cpus, _busy_warning, _load, device_name  # noqa: E402
from twopaths.data.registry import load_splits  # noqa: E402
from twopaths.errors import TwopathsError  # noqa: E402
from twopaths.models import resolve_config  # noqa: E402
from twopaths.runs import build_trainer, load_run  # noqa: E402
from twopaths.training.checkpoint import list_checkpoints  # noqa: E402

ATTRS = ("colour", "shape", "size", "relation", "all")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="score this trained text-conditioned run instead of training one")
    p.add_argument("--checkpoint", type=Path, help="with --run: this checkpoint directory instead of the newest")
    p.add_argument("--out-run", type=Path, default=Path("runs/t2i-bench"),
                   help="where to train the recipe (a finished run there is reused; default runs/t2i-bench)")
    p.add_argument("--train-steps", type=int, default=None, help="training steps (default: the ddpm-text recipe's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change the recipe (as 'twopaths train --set'); repeatable")
    p.add_argument("--prompts", type=int, default=32, help="distinct test captions to prompt with (default 32)")
    p.add_argument("--per-prompt", type=int, default=4, help="samples per prompt (default 4)")
    p.add_argument("--guidance", default="1,3,5", help="comma-separated guidance scales (default 1,3,5)")
    p.add_argument("--sampler", default="dpmpp", choices=["ddpm", "ddim", "dpmpp", "euler", "heun"])
    p.add_argument("--steps", type=int, default=25, help="sampling steps (default 25)")
    p.add_argument("--batch", type=int, default=128, help="samples drawn at a time (default 128)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (same at every guidance scale)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--grid", type=Path, default=Path("docs/text-to-image.png"), help="grid PNG ('' for none)")
    p.add_argument("--grid-prompts", type=int, default=6, help="prompts (rows) in the grid (default 6)")
    p.add_argument("--json", type=Path, help="also write every number and setting to this file")
    args = p.parse_args(argv)
    args.scales = [float(w) for w in args.guidance.split(",") if w.strip()]
    if not args.scales or min(args.scales) < 0 or args.prompts < 1 or args.per_prompt < 1:
        p.error("--guidance needs scales >= 0; --prompts and --per-prompt must be >= 1")
    return args


def train_recipe(args: argparse.Namespace) -> tuple[Path, float]:
    """Train ddpm-text into --out-run (or reuse a run there that is done); returns (run, seconds)."""
    overrides = ["train.progress=false", *args.overrides]
    if args.train_steps is not None:
        overrides.append(f"train.max_steps={args.train_steps}")
    cfg = resolve_config("ddpm-text", None, overrides)
    done = list_checkpoints(args.out_run / "checkpoints")
    if done and int(done[-1].name.split("_")[1]) >= cfg.train.max_steps:
        print(f"reusing {args.out_run} (trained to step {int(done[-1].name.split('_')[1])})")
        return args.out_run, float("nan")
    print(f"training ddpm-text for {cfg.train.max_steps} steps (batch {cfg.train.batch_size}) -> {args.out_run}")
    trainer = build_trainer(cfg, args.out_run)
    start = time.perf_counter()
    result = trainer.fit(resume=bool(done))
    seconds = time.perf_counter() - start
    print(f"trained: step {result['step']}, loss {result['loss']:.4f}, {seconds / 60:.1f} min")
    return args.out_run, seconds


def test_prompts(run, m: int) -> list[str]:
    """The first m distinct captions of the test split (a fixed, seeded split of the shapes data)."""
    captions = getattr(load_splits(run.cfg.data).test, "captions", None)
    if not captions:
        raise TwopathsError(f"dataset '{run.cfg.data.name}' has no captions")
    return list(dict.fromkeys(captions))[:m]


def draw(model, prompts: list[str], w: float, args: argparse.Namespace) -> torch.Tensor:
    """One sample per entry of ``prompts`` at guidance w, in batches, from one seeded generator."""
    gen = torch.Generator().manual_seed(args.seed)
    out = []
    for i in range(0, len(prompts), args.batch):
        part = prompts[i:i + args.batch]
        out.append(model.sample(len(part), sampler=args.sampler, steps=args.steps, guidance=w, generator=gen,
                                prompts=part))
    return torch.cat(out)


def save_grid_with_prompts(rows: list[str], images: dict[float, torch.Tensor], per_row: int, path: Path) -> Path:
    """Rows of samples, one prompt per row (written beside it), one block of columns per guidance scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twopaths.viz import to_uint8

    scales = list(images)
    fig, axes = plt.subplots(len(rows), len(scales), figsize=(2.2 * per_row * len(scales) / 2 + 3.2, 1.25 * len(rows)),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.15})
    for c, w in enumerate(scales):
        for r, prompt in enumerate(rows):
            strip = list(images[w][r * per_row:(r + 1) * per_row])  # per_row x (3, R, R)
            gap = torch.ones(3, strip[0].shape[-2], 2)  # a white line between samples
            row = torch.cat([part for img in strip for part in (img, gap)][:-1], dim=-1)  # (3, R, ~per_row R)
            ax = axes[r, c]
            ax.imshow(to_uint8(row[None])[0], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"guidance {w:g}" + (" (none)" if w == 1 else ""), fontsize=10)
            if c == 0:
                ax.set_ylabel(prompt.replace(" left of ", "\nleft of ").replace(" right of ", "\nright of ")
                              .replace(" above ", "\nabove ").replace(" below ", "\nbelow "),
                              rotation=0, ha="right", va="center", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from twopaths.eval.prompt_fidelity import prompt_fidelity
    from twopaths.eval.shapes_reader import load_shapes_reader

    print(f"text-to-image prompt fidelity on {device_name(torch.device('cpu'))}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    busy = _busy_cpus()
    print(f"load: 1-min load average {_load():.2f} ({os.cpu_count()} CPUs); CPUs kept busy by other processes: "
          + (f"{busy:.1f}" if busy is not None else "unknown"))
    warning = _busy_warning(busy, torch.get_num_threads(), os.cpu_count())
    if warning:
        print(warning)
    train_seconds = float("nan")
    run_dir = args.run
    if run_dir is None:
        run_dir, train_seconds = train_recipe(args)
    run = load_run(run_dir, str(args.checkpoint) if args.checkpoint else None)
    model = run.model
    if getattr(model, "text_encoder", None) is None:
        raise SystemExit(f"{run_dir} is not a text-conditioned run (train it with --set arch.conditioning=text)")
    reader = load_shapes_reader()
    prompts = test_prompts(run, args.prompts)
    repeated = [p for p in prompts for _ in range(args.per_prompt)]  # (M * N,) prompt of every sample
    print(f"run {run_dir} at step {run.checkpoint.step} (EMA weights); {len(prompts)} test prompts x "
          f"{args.per_prompt} samples, {args.sampler} {args.steps} steps; reader {reader.identity}")

    # the ceiling: the reader on real test images with their own captions
    test = load_splits(run.cfg.data).test
    k = min(len(test), len(repeated))
    real = test.images[:k].float() / 127.5 - 1
    results = {"real": prompt_fidelity(real, test.captions[:k], reader)}
    seconds = {}
    samples = {}
    for w in args.scales:
        start = time.perf_counter()
        samples[w] = draw(model, repeated, w, args)
        seconds[w] = time.perf_counter() - start
        results[w] = prompt_fidelity(samples[w], repeated, reader)
        print(f"  guidance {w:g}: " + "  ".join(f"{a} {100 * results[w][a]:.1f}%" for a in ATTRS)
              + f"  ({seconds[w]:.0f} s)")

    print(f"\n  {'':<14}" + "".join(f"{a:>10}" for a in ATTRS) + f"{'seconds':>10}")
    for key, res in results.items():
        label = "real images" if key == "real" else f"guidance {key:g}"
        print(f"  {label:<14}" + "".join(f"{100 * res[a]:>9.1f}%" for a in ATTRS)
              + (f"{seconds[key]:>10.0f}" if key in seconds else f"{'-':>10}"))
    counts = results[args.scales[0]]["counts"]
    print("  (samples scored per attribute: " + ", ".join(f"{a} {counts[a]['scored']}" for a in ATTRS)
          + f"; of {len(repeated)})")
    best = max(args.scales)
    guided = results[best]
    base = results[1.0] if 1.0 in results else None
    goal = guided["colour"] >= 0.8 and guided["shape"] >= 0.8 and (base is None or guided["all"] > base["all"])
    print(f"\n  goal (guidance {best:g}: colour and shape >= 80%"
          + (", all-attribute accuracy above guidance 1" if base else "") + f"): {'met' if goal else 'NOT met'}")
    if not (train_seconds != train_seconds):  # not NaN
        print(f"  training took {train_seconds / 60:.1f} min")

    if str(args.grid) not in ("", "."):
        rows = prompts[:args.grid_prompts]
        n = len(rows) * args.per_prompt
        shown = {w: samples[w][:n] for w in sorted({min(args.scales), best})}
        print(f"wrote {save_grid_with_prompts(rows, shown, args.per_prompt, args.grid)}")
    if args.json:
        report = {"run": str(run_dir), "step": run.checkpoint.step, "train_seconds": train_seconds,
                  "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
                  "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  "prompts": prompts, "sample_seconds": {str(w): s for w, s in seconds.items()},
                  "results": {str(k): v for k, v in results.items()}, "goal_met": goal}
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
