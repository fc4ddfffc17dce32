"""Train the feature networks that FID, KID and precision/recall use (twopaths.eval.features).

    PYTHONPATH=src python scripts/train_feature_net.py fashion-mnist   # or: shapes, all
    PYTHONPATH=src python scripts/train_feature_net.py shapes --out /tmp/nets

A fixed recipe and seed, written into the JSON card beside the weights (RECIPES below):
AdamW (Loshchilov & Hutter 2019), linear warmup then cosine decay to zero, batch 128, light
augmentation (Fashion-MNIST: horizontal flips, a mirrored garment is still the same garment;
shapes: random translation by up to 2 pixels with background padding), two CPU threads. Sized to
train in a few minutes on two idle CPU cores. The
model is trained on the registry's train split only; the validation split is reported during
training and the test split, touched once at the end, gives the card's ``test_accuracy``.

Shapes: a class is the shape of the caption's first object, which a two-object picture does not
identify, so no classifier can be perfect there; the network is still a good feature extractor
(what FID needs is features that separate shapes, colours and sizes). It trains on a larger
procedural set drawn with another seed than the dataset's default, and is tested on the default
``shapes`` test split.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from twopaths.config import DataConfig
from twopaths.data.registry import load_splits
from twopaths.eval.features import WEIGHTS_DIR, FeatureNet, file_sha256

RECIPES: dict[str, dict] = {
    "fashion-mnist": {"data": {"name": "fashion-mnist"}, "test_data": {"name": "fashion-mnist"},
                      "arch": {"in_channels": 1, "num_classes": 10, "resolution": 28, "widths": [32, 64, 128],
                               "convs": 1, "dim": 256, "dropout": 0.3},
                      "epochs": 6, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "warmup_steps": 200,
                      "shift": 0, "hflip": True, "seed": 0, "threads": 2},
    "shapes": {"data": {"name": "shapes", "size": 12000, "seed": 1}, "test_data": {"name": "shapes"},
               "arch": {"in_channels": 3, "num_classes": 3, "resolution": 32, "widths": [32, 64, 128],
                        "convs": 1, "dim": 256, "dropout": 0.3},
               "epochs": 3, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "warmup_steps": 100,
               "shift": 2, "hflip": False, "seed": 0, "threads": 2},
}


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1], the datasets' convention."""
    return images_u8.float().div_(127.5).sub_(1.0)


def augment(x: torch.Tensor, shift: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``shift`` px (padding with the background, -1) and optional
    horizontal flips, independently per image. x: (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = x.shape
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5  # (B,)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift:
        padded = F.pad(x, (shift,) * 4, value=-1.0)  # (B, C, H + 2s, W + 2s)
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)  # (B,)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
        x = padded[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    return x.contiguous()


@torch.no_grad()
def accuracy(net: FeatureNet, images_u8: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images_u8), batch):
        correct += int((net.logits(to_float(images_u8[i:i + batch])).argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images_u8)


def train(name: str, out_dir: Path, epochs: int | None = None) -> dict:
    recipe = dict(RECIPES[name])
    if epochs is not None:
        recipe["epochs"] = epochs
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(recipe["seed"])
    splits = load_splits(DataConfig(**recipe["data"]))
    test = load_splits(DataConfig(**recipe["test_data"])).test
    train_x, train_y = splits.train.images, splits.train.labels  # (N, C, H, W) uint8, (N,)
    net = FeatureNet(**recipe["arch"])
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]  # no decay on norms and biases
    rest = [p for n, p in net.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], lr=recipe["lr"])
    steps_per_epoch = len(train_x) // recipe["batch_size"]
    total = steps_per_epoch * recipe["epochs"]
    warm = recipe["warmup_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm))))
    gen = torch.Generator().manual_seed(recipe["seed"])
    start = time.time()
    for epoch in range(recipe["epochs"]):
        net.train()
        perm = torch.randperm(len(train_x), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * recipe["batch_size"]:(i + 1) * recipe["batch_size"]]
            x = augment(to_float(train_x[idx]), recipe["shift"], recipe["hflip"], gen)  # (B, C, H, W)
            loss = F.cross_entropy(net(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        val = accuracy(net, splits.val.images, splits.val.labels)
        print(f"{name} epoch {epoch + 1}/{recipe['epochs']}: loss {running / steps_per_epoch:.4f}, "
              f"val acc {100 * val:.2f}%, {time.time() - start:.0f}s", flush=True)
    seconds = time.time() - start
    test_acc = accuracy(net, test.images, test.labels)
    print(f"{name}: test accuracy {100 * test_acc:.2f}% on {len(test):,} images", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    card = {
        "name": name,
        "arch": net.arch,
        "feature_dim": net.dim,
        "classes": list(test.class_names or []),
        "test_accuracy": round(test_acc, 5),
        "val_accuracy": round(val, 5),
        "test_images": len(test),
        "train_images": len(train_x),
        "parameters": sum(p.numel() for p in net.parameters()),
        "recipe": recipe,
        "train_seconds": round(seconds, 1),
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "sha256": file_sha256(weights),
        "script": "scripts/train_feature_net.py",
    }
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and its card", flush=True)
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*RECIPES, "all"], help="which feature network to train")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (for a quick try)")
    args = parser.parse_args(argv)
    for name in RECIPES if args.name == "all" else [args.name]:
        train(name, args.out, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
