"""``twopaths attention``: attention-rollout heat maps of a ViT classifier run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from twopaths.cli.options import command, count, load, natural
from twopaths.errors import TwopathsError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "attention", cmd_attention, run="run directory of a vit model")
    p.add_argument("--n", type=count, default=8, help="number of images (default 8; 8 per row)")
    p.add_argument("--split", choices=["val", "test", "train"], default="test", help="where the images come from")
    p.add_argument("--seed", type=natural, default=0, help="which images: a random pick with this seed")
    p.add_argument("--out", type=Path, help="PNG to write (default RUN/attention.png)")
    p.add_argument("--no-residual", action="store_true",
                   help="multiply the head-averaged attention alone, without the identity for the residual")


def cmd_attention(args: argparse.Namespace) -> int:
    """draw a ViT's attention rollout over test images

    Attention rollout (Abnar & Zuidema 2020) of a vit run: --n images of a split, each shown plain and with
    the heat map of what its class token draws on through all layers (heads averaged, identity added for the
    residual, rows renormalised, layers multiplied), titled with the predicted and true class. Writes one
    PNG.

    examples:
      twopaths attention runs/vit --n 8 --out attention.png
      twopaths attention runs/vit --n 16 --split val --seed 3
      twopaths attention runs/vit --no-residual   # raw attention products, for comparison
    """
    return attention_maps(load(args, with_data=True), n=args.n, split=args.split, seed=args.seed, out=args.out,
                          residual=not args.no_residual)


def attention_maps(run: Any, *, n: int, split: str, seed: int, out: Path | None, residual: bool = True) -> int:
    """``twopaths attention RUN``: ``n`` images of ``split`` (a pick seeded by ``seed``), each with its attention-
    rollout heat map overlaid and its predicted and true class, in one PNG (``out``, default RUN/attention.png)."""
    import torch

    from twopaths.eval.attention_rollout import class_token_heatmaps, save_rollout_figure
    from twopaths.eval.classifier import require_classifier

    model = require_classifier(run, "attention rollout")
    if n < 1:
        raise TwopathsError("--n must be >= 1")
    dataset = getattr(run.splits, split)
    if n > len(dataset):
        raise TwopathsError(f"--n {n} is more than the {len(dataset):,} images of the {split} split")
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    items = [dataset[i] for i in pick]
    images = torch.stack([item[model.data_key] for item in items])  # (n, C, R, R)
    labels = [int(item["label"]) for item in items]
    maps, logits = class_token_heatmaps(model.net, images, residual=residual)  # (n, g, g), (n, K)
    predicted = logits.argmax(-1).tolist()
    names = run.meta.get("class_names") or [str(k) for k in range(model.num_classes)]
    right = sum(p == t for p, t in zip(predicted, labels))
    out = Path(out) if out else Path(run.run_dir) / "attention.png"
    title = (f"{run.cfg.model} (patch {model.net.cfg.patch_size}, {model.net.cfg.n_layer} layers), step "
             f"{run.checkpoint.step}: attention rollout of the class token"
             + ("" if residual else " (no residual term)") + f"; {right}/{n} right")
    path = save_rollout_figure(images, maps, predicted, labels, names, out, title=title)
    print(f"wrote {path} ({n} {split} images, {right} predicted right)")
    return 0
