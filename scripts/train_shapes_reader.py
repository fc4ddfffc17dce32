"""Train the shapes scene reader that prompt fidelity uses (twopaths.eval.shapes_reader).

    PYTHONPATH=src python scripts/train_shapes_reader.py                  # writes eval/weights/shapes-reader.*
    PYTHONPATH=src python scripts/train_shapes_reader.py --out /tmp/nets --steps 300   # a quick try

A fixed recipe and seed, written into the JSON card beside the weights (RECIPE below): AdamW
(Loshchilov & Hutter 2019), linear warmup then cosine decay to zero, batch 128, one CPU thread
(it trains in a few minutes). The data is never reused: every chunk of ``chunk`` images is a fresh
:func:`~twopaths.data.shapes.make_shapes` draw with its own seed (1, 2, ...), so the reader sees
new scenes throughout. Augmentation: Gaussian pixel noise of a random strength (0 to
``noise``, in [-1, 1] units) on half the images, so that a slightly noisy generated image reads
like a clean one.

Tested once at the end on ``test_images`` held-out images drawn with seed ``test_seed`` (never a
training seed). The card's ``test_accuracy`` holds per attribute: the reader against the
truth (:func:`~twopaths.eval.shapes_reader.compare_scenes`: presence, colours, shape, size,
centre error) and the prompt fidelity (:mod:`twopaths.eval.prompt_fidelity`) of the images scored
against their own captions (colour, shape, size, relation, all).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from twopaths.data.shapes import make_shapes
from twopaths.eval.features import WEIGHTS_DIR, write_card
from twopaths.eval.prompt_fidelity import score_scenes, summarise
from twopaths.eval.shapes_reader import (SHIPPED_READER, Scenes, ShapesReader, compare_scenes, read_scenes,
                                         scenes_from_data)

RECIPE: dict = {
    "arch": {"resolution": 32, "widths": [16, 32, 64], "convs": 1, "dim": 128},
    "steps": 3000,  # optimizer steps of `batch_size` images
    "batch_size": 128,
    "chunk": 8192,  # fresh images generated at a time (seeds 1, 2, ...)
    "lr": 3e-3,
    "weight_decay": 0.05,
    "warmup_steps": 100,
    "noise": 0.1,  # max std of the Gaussian pixel noise added to half the images
    "loss_weights": {"presence": 1.0, "shape": 2.0, "size": 1.0, "centre": 1.0},  # shape is the hardest
    "seed": 0,  # initialisation, batch order and noise
    "test_images": 10_000,
    "test_seed": 1_000_003,
    "threads": 1,
}


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1], the datasets' convention."""
    return images_u8.float().div_(127.5).sub_(1.0)


def add_noise(x: torch.Tensor, max_std: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of std uniform in [0, max_std] on a random half of x (B, C, H, W)."""
    b = len(x)
    std = max_std * torch.rand(b, generator=gen) * (torch.rand(b, generator=gen) < 0.5)  # (B,)
    return (x + std[:, None, None, None] * torch.randn(x.shape, generator=gen)).clamp_(-1.0, 1.0)


def test_metrics(reader: ShapesReader, data) -> dict[str, float]:
    """The reader against the truth and prompt fidelity of the images with their own captions."""
    scenes = read_scenes(to_float(data.images), reader)
    fidelity = summarise(score_scenes(scenes, data.captions))
    out = {k: round(v, 5) for k, v in compare_scenes(scenes, scenes_from_data(data)).items()}
    out.update({k: round(fidelity[k], 5) for k in ("colour", "shape", "size", "relation", "all")})
    return out


def train(out_dir: Path, steps: int | None = None) -> dict:
    recipe = dict(RECIPE)
    if steps is not None:
        recipe["steps"] = steps
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    reader = ShapesReader(**recipe["arch"])
    res, bs, total, warm = recipe["arch"]["resolution"], recipe["batch_size"], recipe["steps"], recipe["warmup_steps"]
    decay = [p for p in reader.parameters() if p.ndim > 1]  # no decay on norms and biases
    rest = [p for p in reader.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    start, cpu, step, chunk_seed, running = time.time(), time.process_time(), 0, 0, 0.0
    seen = 0
    while step < total:
        chunk_seed += 1
        data = make_shapes(recipe["chunk"], resolution=res, seed=chunk_seed)
        scenes = scenes_from_data(data)
        perm = torch.randperm(len(data), generator=gen)
        reader.train()
        for i in range(len(data) // bs):
            if step == total:
                break
            idx = perm[i * bs:(i + 1) * bs]
            x = add_noise(to_float(data.images[idx]), recipe["noise"], gen)  # (B, 3, R, R)
            target = Scenes(*(getattr(scenes, f)[idx] for f in ("present", "shape", "size", "x", "y")))
            loss = reader.loss(x, target, recipe["loss_weights"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            step += 1
            seen += bs
            if step % 250 == 0 or step == total:
                print(f"step {step}/{total}: loss {running / ((step - 1) % 250 + 1):.4f}, {seen:,} images, "
                      f"{time.time() - start:.0f}s ({time.process_time() - cpu:.0f}s CPU)", flush=True)
                running = 0.0
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu
    reader.eval()
    held_out = make_shapes(recipe["test_images"], resolution=res, seed=recipe["test_seed"])
    test = test_metrics(reader, held_out)
    print(f"test on {len(held_out):,} held-out images (seed {recipe['test_seed']}): {test}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{SHIPPED_READER}.safetensors"
    save_file({k: v.contiguous() for k, v in reader.state_dict().items()}, str(weights))
    card = {
        "name": SHIPPED_READER,
        "arch": reader.arch,
        "outputs": "per palette colour: presence logit, shape logits (3), size logits (2), centre x, y",
        "test_accuracy": test,
        "test_images": len(held_out),
        "train_images": seen,
        "parameters": sum(p.numel() for p in reader.parameters()),
        "recipe": recipe,
    }
    return write_card(weights, card, script="scripts/train_shapes_reader.py", seconds=seconds, cpu_seconds=cpu_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps (for a quick try)")
    args = parser.parse_args(argv)
    train(args.out, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
