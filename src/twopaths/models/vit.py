"""The Vision Transformer classifier: ``vit``.

A ViT (Dosovitskiy et al. 2021, :mod:`twopaths.backbones.vit`) under the classification paradigm
(:mod:`twopaths.paradigms.classifier`: label-smoothed cross-entropy, random crop and flip). It is
here to show the transformer stack of the GPT reading images as patch tokens, and what it attends
to: ``twopaths eval RUN --metrics accuracy`` scores it beside the evaluation CNN, and
``twopaths attention RUN`` draws attention-rollout heat maps (:mod:`twopaths.eval.attention_rollout`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from twopaths.backbones.vit import ViT, ViTConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.classifier import Classifier, ClassifierConfig, accuracy_from_confusion, confusion_matrix
from twopaths.viz import save_confusion


@dataclass
class ViTArch:
    # image_size, in_channels and num_classes of the backbone are set from the data
    vit: ViTConfig = field(default_factory=ViTConfig)  # backbone: patches, width, depth, heads
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)  # label smoothing, augmentation


def _build_vit(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    classes = meta.get("class_names") or []
    if len(classes) < 2:
        raise ConfigError(f"model '{cfg.model}' classifies images into classes; dataset '{cfg.data.name}' "
                          f"has {len(classes)} class(es)")
    c = cfg.arch.classifier
    if not 0 <= c.label_smoothing < 1:
        raise ConfigError(f"config key 'arch.classifier.label_smoothing' must be in [0, 1), got {c.label_smoothing}")
    if c.crop_padding < 0:
        raise ConfigError(f"config key 'arch.classifier.crop_padding' must be >= 0, got {c.crop_padding}")
    vit = dataclasses.replace(cfg.arch.vit, image_size=meta["resolution"], in_channels=meta["channels"],
                              num_classes=len(classes))
    return Classifier(ViT(vit), c, len(classes))


def _require_vit(run: Any, what: str) -> Classifier:
    if not isinstance(run.model, Classifier):
        raise TwopathsError(f"{what} is for classifier runs (model 'vit'); model '{run.cfg.model}' is not one")
    return run.model


def accuracy_hook(meta: dict[str, Any]) -> HookFn:
    """During training (every ``train.sample_every`` steps): accuracy on the first ``train.eval_batches``
    validation batches, with the weights evaluation uses (EMA if kept). A classifier's "samples" are its
    predictions, so this is its sample hook; the line in metrics.jsonl has split "samples"."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        if trainer.val_set is None or len(trainer.val_set) == 0:
            return {}
        items = trainer.tc.eval_batches * trainer.micro_batch
        counts = confusion_matrix(trainer.model, trainer.val_set, trainer.micro_batch, trainer.device, items)
        acc = accuracy_from_confusion(counts)
        tqdm.write(f"step {step}: val accuracy {acc['accuracy']:.4f} ({acc['items']:,} images)", file=sys.stderr)
        return {"accuracy": acc["accuracy"]}

    return hook


# ----------------------------------------------------------------------------- eval --metrics accuracy


def _feature_net_accuracy(run: Any, dataset: Any) -> tuple[float, str] | None:
    """The shipped evaluation CNN's accuracy on the same items, when one ships for the run's data."""
    from twopaths.eval.features import SHIPPED, extract, load_feature_net

    if run.cfg.data.name not in SHIPPED:
        return None
    net = load_feature_net(run.cfg.data.name)
    if net.arch["resolution"] != run.meta["resolution"] or net.arch["num_classes"] != run.model.num_classes:
        return None
    _, logits = extract(net, dataset, with_logits=True, progress=False)  # (N, K)
    labels = dataset.labels if hasattr(dataset, "labels") else \
        torch.as_tensor([int(dataset[i]["label"]) for i in range(len(dataset))])  # (N,)
    return float((logits.argmax(-1) == labels).float().mean()), net.identity


def eval_accuracy(run: Any, args: argparse.Namespace) -> dict[str, Any]:
    """``twopaths eval RUN --metrics accuracy``: accuracy on ``--split`` (default test; ``--n`` items),
    per class, beside the evaluation CNN's; writes ``RUN/confusion-SPLIT.png``."""
    model = _require_vit(run, "--metrics accuracy")
    split = args.split or "test"
    dataset = getattr(run.splits, split)
    if args.n is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(args.n, len(dataset))))
    counts = confusion_matrix(model, dataset, batch_size=args.batch_size)
    result = accuracy_from_confusion(counts)
    names = run.meta.get("class_names") or [str(k) for k in range(model.num_classes)]
    weights = "raw" if args.no_ema or not run.checkpoint.has_ema else "EMA"
    print(f"{run.cfg.model} on {run.cfg.data.name}/{split}, checkpoint step {run.checkpoint.step} ({weights} "
          f"weights), {result['items']:,} images")
    print(f"  {'accuracy':<20} {result['accuracy']:.4f}")
    cnn = _feature_net_accuracy(run, dataset)
    out: dict[str, Any] = {"accuracy": result["accuracy"], "accuracy_split": split, "accuracy_items": result["items"],
                           "per_class_accuracy": dict(zip(names, result["per_class"]))}
    if cnn is not None:
        print(f"  {'evaluation CNN':<20} {cnn[0]:.4f}  ({cnn[1]}, same images)")
        out.update({"feature_net_accuracy": cnn[0], "feature_net": cnn[1]})
    print(f"  {'class':<20} {'accuracy':>8}")
    for name, acc in zip(names, result["per_class"]):
        print(f"  {name:<20} {acc:>8.4f}")
    png = save_confusion(counts, names, Path(run.run_dir) / f"confusion-{split}.png",
                         f"{run.cfg.model} on {run.cfg.data.name}/{split}: accuracy {result['accuracy']:.4f}")
    print(f"wrote {png}")
    out["confusion"] = counts.tolist()
    return out


# ----------------------------------------------------------------------------- twopaths attention


def attention_command(run: Any, args: argparse.Namespace) -> int:
    """``twopaths attention RUN``: ``--n`` images of ``--split`` (a seeded pick), each with its attention-
    rollout heat map overlaid and its predicted and true class, in one PNG (``--out``)."""
    from twopaths.eval.attention_rollout import class_token_heatmaps, save_rollout_figure

    model = _require_vit(run, "attention rollout")
    if args.n < 1:
        raise TwopathsError("--n must be >= 1")
    dataset = getattr(run.splits, args.split)
    if args.n > len(dataset):
        raise TwopathsError(f"--n {args.n} is more than the {len(dataset):,} images of the {args.split} split")
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[:args.n].tolist()
    items = [dataset[i] for i in pick]
    images = torch.stack([item[model.data_key] for item in items])  # (n, C, R, R)
    labels = [int(item["label"]) for item in items]
    maps, logits = class_token_heatmaps(model.net, images, residual=not args.no_residual)  # (n, g, g), (n, K)
    predicted = logits.argmax(-1).tolist()
    names = run.meta.get("class_names") or [str(k) for k in range(model.num_classes)]
    right = sum(p == t for p, t in zip(predicted, labels))
    out = Path(args.out) if args.out else Path(run.run_dir) / "attention.png"
    title = (f"{run.cfg.model} (patch {model.net.cfg.patch_size}, {model.net.cfg.n_layer} layers), step "
             f"{run.checkpoint.step}: attention rollout of the class token"
             + ("" if not args.no_residual else " (no residual term)") + f"; {right}/{args.n} right")
    path = save_rollout_figure(images, maps, predicted, labels, names, out, title=title)
    print(f"wrote {path} ({args.n} {args.split} images, {right} predicted right)")
    return 0


VIT_MODELS = [
    ModelSpec(
        name="vit",
        summary="Vision Transformer classifier (Dosovitskiy et al. 2021) on patch tokens, the GPT's blocks "
                "unmasked; eval --metrics accuracy, attention rollout maps",
        data_kinds=("image",),
        arch_cls=ViTArch,
        build=_build_vit,
        # The CPU recipe for Fashion-MNIST (aiming at >= 91% test accuracy, the evaluation CNN has 92.9%):
        # the ViTConfig defaults (patch 4, d 128, 6 layers, 4 heads, MLP x2; 0.8M parameters), AdamW with
        # 500 warmup steps then cosine to 1%, weight decay 0.05, label smoothing 0.1, random crop (pad 2) and
        # flip, 10,000 steps of 128 images (23 epochs): about 45 min on 2 idle CPU cores (benchmarks/vit.py).
        # 600 steps of the same recipe (1.4 epochs) gave 81.7% test accuracy.
        preset={"data": {"name": "fashion-mnist"},
                "optim": {"lr": 1e-3, "warmup_steps": 500, "weight_decay": 0.05, "betas": [0.9, 0.999],
                          "min_lr_ratio": 0.01},
                "train": {"batch_size": 128, "max_steps": 10000, "eval_every": 1000, "eval_batches": 20,
                          "ckpt_every": 1000, "sample_every": 1000, "ema_decay": 0.0}},
        sample_hook=accuracy_hook,
    ),
]
