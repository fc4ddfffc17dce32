"""The Vision Transformer classifier: ``vit``.

A ViT (Dosovitskiy et al. 2021, :mod:`twopaths.backbones.vit`) under the classification paradigm
(:mod:`twopaths.paradigms.classifier`: label-smoothed cross-entropy, random crop and flip). It is
here to show the transformer stack of the GPT reading images as patch tokens, and what it attends
to: ``twopaths eval RUN --metrics accuracy`` scores it beside the evaluation CNN
(:mod:`twopaths.eval.classifier`), and ``twopaths attention RUN`` draws attention-rollout heat maps
(:mod:`twopaths.eval.attention_rollout`, :mod:`twopaths.cli.attention`).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from twopaths.backbones.vit import ViT, ViTConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.classifier import Classifier, ClassifierConfig, accuracy_from_confusion, confusion_matrix


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


VIT_MODELS = [
    ModelSpec(name="vit", paradigm="classifier", backbones=("vit",),
              summary="Vision Transformer classifier (Dosovitskiy et al. 2021) on patch tokens, the GPT's blocks "
                      "unmasked; eval --metrics accuracy, attention rollout maps",
              data_kinds=("image",), arch_cls=ViTArch, build=_build_vit,
              # The CPU recipe for Fashion-MNIST (aiming at >= 91% test accuracy, the evaluation CNN has 92.9%):
              # the ViTConfig defaults (patch 4, d 128, 6 layers, 4 heads, MLP x2; 0.8M parameters), AdamW with
              # 500 warmup steps then cosine to 1%, weight decay 0.05, label smoothing 0.1, random crop (pad 2) and
              # flip, 10,000 steps of 128 images (23 epochs): about 45 min on 2 idle CPU cores (benchmarks/vit.py).
              # 600 steps of the same recipe (1.4 epochs) gave 81.7% test accuracy.
              preset=image_preset({"lr": 1e-3, "warmup_steps": 500, "weight_decay": 0.05, "min_lr_ratio": 0.01},
                                  {"batch_size": 128, "max_steps": 10000, "eval_every": 1000, "eval_batches": 20,
                                   "ckpt_every": 1000, "sample_every": 1000, "ema_decay": 0.0}),
              # on CPU: the same recipe for 2,500 steps (6 epochs)
              cpu_presets={"image": {"optim": {"warmup_steps": 200},
                                     "train": {"max_steps": 2500, "eval_every": 500, "ckpt_every": 500,
                                               "sample_every": 500}}},
              sample_hook=accuracy_hook, evaluation="classifier"),
]
