"""Train the position tracker that the video metrics use (twopaths.eval.video_tracker).

    PYTHONPATH=src python scripts/train_video_tracker.py                  # writes eval/weights/video-tracker.*
    PYTHONPATH=src python scripts/train_video_tracker.py --out /tmp/nets --steps 300   # a quick try

A fixed recipe and seed, written into the JSON card beside the weights (RECIPE below): AdamW
(Loshchilov & Hutter 2019), linear warmup then cosine decay to zero, batch 128, one CPU thread.
The data are single frames of the moving-fashion train split (``load_splits`` of
``moving-fashion`` with ``data.size = train_clips``, one object, 8 frames, 32x32: items of the
Fashion-MNIST train split), each frame with its recorded centre; batches are drawn at random
from all of them. Augmentation: Gaussian pixel noise of a random strength (0 to ``noise``, in
[-1, 1] units) on half the frames, so that a slightly noisy generated frame reads like a clean one.

Tested once at the end on every frame of the moving-fashion test split (items of the Fashion-MNIST
test split the tracker never saw): ``test_error_px`` is the mean Euclidean distance between the
read and the recorded centres, in pixels (the issue's bar: below 1); the card also holds its
90th and 99th percentiles and the error on clean frames near a wall.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from twopaths.config import DataConfig
from twopaths.data.registry import load_splits
from twopaths.data.video import ITEM_SIZE
from twopaths.eval.features import WEIGHTS_DIR, write_card
from twopaths.eval.video_tracker import SHIPPED_TRACKER, VideoTracker, track, tracking_error

RECIPE: dict = {
    "arch": {"stem": 16, "width": 32, "dilations": [2, 4]},
    "data": {"name": "moving-fashion", "size": 20_000, "frames": 8, "resolution": 32, "objects": 1, "seed": 0},
    "steps": 1500,  # optimizer steps of `batch_size` frames
    "batch_size": 128,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "warmup_steps": 100,
    "noise": 0.1,  # max std of the Gaussian pixel noise added to half the frames
    "seed": 0,  # initialisation, batch order and noise
    "threads": 1,
}


def add_noise(x: torch.Tensor, max_std: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of std uniform in [0, max_std] on a random half of x (B, 1, H, W)."""
    b = len(x)
    std = max_std * torch.rand(b, generator=gen) * (torch.rand(b, generator=gen) < 0.5)  # (B,)
    return (x + std[:, None, None, None] * torch.randn(x.shape, generator=gen)).clamp_(-1.0, 1.0)


def test_metrics(tracker: VideoTracker, clips) -> dict[str, float]:
    """The tracker against the recorded centres on every frame of ``clips`` (one object)."""
    read = track(clips.video, tracker)  # (N, T, 2)
    true = clips.positions[:, :, 0]  # (N, T, 2)
    error = (read - true).norm(dim=-1).flatten()  # (N T,)
    lo, hi = ITEM_SIZE / 2, clips.resolution - ITEM_SIZE / 2
    near_wall = ((true - lo).abs().amin(-1) < 1) | ((true - hi).abs().amin(-1) < 1)  # within 1 px of a wall
    return {"test_error_px": round(tracking_error(read, true), 4),
            "test_error_p90_px": round(float(error.quantile(0.9)), 4),
            "test_error_p99_px": round(float(error.quantile(0.99)), 4),
            "test_error_near_wall_px": round(float(error[near_wall.flatten()].mean()), 4)}


def train(out_dir: Path, steps: int | None = None) -> dict:
    recipe = dict(RECIPE)
    if steps is not None:
        recipe["steps"] = steps
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    splits = load_splits(DataConfig(**recipe["data"]))
    frames = splits.train.video.flatten(0, 1)  # (N T, 1, R, R)
    centres = splits.train.positions[:, :, 0].flatten(0, 1)  # (N T, 2)
    tracker = VideoTracker(**recipe["arch"])
    bs, total, warm = recipe["batch_size"], recipe["steps"], recipe["warmup_steps"]
    decay = [p for p in tracker.parameters() if p.ndim > 1]  # no decay on norms and biases
    rest = [p for p in tracker.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    start, cpu, running = time.time(), time.process_time(), 0.0
    tracker.train()
    for step in range(1, total + 1):
        idx = torch.randint(0, len(frames), (bs,), generator=gen)
        loss = tracker.loss(add_noise(frames[idx], recipe["noise"], gen), centres[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if step % 250 == 0 or step == total:
            print(f"step {step}/{total}: error {running / ((step - 1) % 250 + 1):.3f} px, "
                  f"{time.time() - start:.0f}s ({time.process_time() - cpu:.0f}s CPU)", flush=True)
            running = 0.0
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu
    tracker.eval()
    test = test_metrics(tracker, splits.test)
    print(f"test on the {len(splits.test):,} clips ({len(splits.test) * splits.test.frames:,} frames) of the "
          f"moving-fashion test split: {test}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{SHIPPED_TRACKER}.safetensors"
    save_file({k: v.contiguous() for k, v in tracker.state_dict().items()}, str(weights))
    card = {
        "name": SHIPPED_TRACKER,
        "arch": tracker.arch,
        "outputs": "the centre (x, y) of the item's 12x12 box in pixels, x right, y down, canvas [0, R]",
        **test,
        "test_frames": len(splits.test) * splits.test.frames,
        "train_frames": len(frames),
        "parameters": sum(p.numel() for p in tracker.parameters()),
        "recipe": recipe,
    }
    return write_card(weights, card, script="scripts/train_video_tracker.py", seconds=seconds, cpu_seconds=cpu_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps (for a quick try)")
    args = parser.parse_args(argv)
    train(args.out, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
