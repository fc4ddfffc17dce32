"""Classification: a network maps an image to class logits, trained with (label-smoothed) cross-entropy.

Not a generative paradigm, but the same contract (``loss(batch)`` for the trainer), so a backbone
built here (the ViT) trains, checkpoints and evaluates through the same loop as every other model.

- Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture", sec. 7): the target
  is ``(1 - eps) * one_hot(y) + eps / K`` over the K classes, so the loss is
  ``(1 - eps) * (-log p_y) + eps * mean_k(-log p_k)``; it stops the logits growing without bound.
  Training uses it; in eval mode the loss is the plain cross-entropy (the test NLL in nats).
- Augmentation, in training mode only, on the batch tensors and drawn from the torch RNG (so the
  trainer's RNG checkpoints make a resumed run bit-exact): a random crop after padding by
  ``crop_padding`` pixels of the background value -1 (a shift of up to that many pixels; Krizhevsky et al. 2012,
  sec. 4.1; He et al. 2016, sec. 4.2) and a horizontal flip with probability 1/2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from twopaths.paradigms.base import Paradigm


@dataclass
class ClassifierConfig:
    label_smoothing: float = 0.1  # eps of the smoothed target (0: plain cross-entropy); training only
    crop_padding: int = 2  # random crop after padding by this many pixels (0: no crop); training only
    hflip: bool = True  # random horizontal flip (p = 1/2); training only. Off for data where left/right matters


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Mean over the batch of ``(1 - eps) * (-log p_y) + eps * mean_k(-log p_k)``; logits (B, K), labels (B,)."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, K)
    nll = -logp.gather(1, labels[:, None]).squeeze(1)  # (B,): -log p_y
    if eps == 0:
        return nll.mean()
    uniform = -logp.mean(dim=-1)  # (B,): cross-entropy against the uniform distribution over K classes
    return ((1 - eps) * nll + eps * uniform).mean()


def random_crop(x: torch.Tensor, padding: int, fill: float = -1.0, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Pad (B, C, H, W) by ``padding`` pixels of ``fill`` on every side, then cut a random H x W window per
    image: a shift of each image by up to ``padding`` pixels in x and y, the uncovered border filled."""
    if padding <= 0:
        return x
    B, C, H, W = x.shape
    padded = F.pad(x, (padding,) * 4, value=fill)  # (B, C, H + 2p, W + 2p)
    off = torch.randint(0, 2 * padding + 1, (2, B), generator=generator, device=x.device)  # (2, B): top, left
    rows = off[0][:, None] + torch.arange(H, device=x.device)  # (B, H): source row of each output row
    cols = off[1][:, None] + torch.arange(W, device=x.device)  # (B, W)
    batch = torch.arange(B, device=x.device)[:, None, None]  # (B, 1, 1)
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C): advanced indices first
    return out.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image of (B, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)  # (B, C, H, W)


class Classifier(Paradigm):
    """``net`` maps ``batch[data_key]`` (B, ...) to logits (B, num_classes); labels are ``batch["label"]``."""

    item_name = "images"

    def __init__(self, net: nn.Module, cfg: ClassifierConfig, num_classes: int, data_key: str = "image"):
        super().__init__()
        if not 0 <= cfg.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
        if cfg.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {cfg.crop_padding}")
        self.net, self.cfg, self.num_classes, self.data_key = net, cfg, num_classes, data_key

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The configured random crop and flip of a batch (B, C, H, W) (the caller decides when: training)."""
        x = random_crop(x, self.cfg.crop_padding)  # (B, C, H, W)
        return random_hflip(x) if self.cfg.hflip else x  # (B, C, H, W)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, num_classes)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        x, y = batch[self.data_key], batch["label"]  # (B, C, H, W), (B,)
        if self.training:
            x = self.augment(x)
        eps = self.cfg.label_smoothing if self.training else 0.0
        return smoothed_cross_entropy(self.logits(x), y, eps)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Most likely class of each item: (B, ...) -> (B,) int64. Call in eval mode (no augmentation there)."""
        return self.logits(x).argmax(dim=-1)

    @torch.no_grad()
    def accuracy(self, batch: dict[str, Any]) -> float:
        """Fraction of the batch predicted right."""
        return float((self.predict(batch[self.data_key]) == batch["label"]).float().mean())


@torch.no_grad()
def confusion_matrix(model: Classifier, dataset: Dataset, batch_size: int = 500,
                     device: torch.device | None = None, max_items: int | None = None) -> torch.Tensor:
    """(K, K) int64 counts over ``dataset`` in order: row = true class, column = predicted class.

    The model is put in eval mode (and left there). ``accuracy = trace / sum``.
    """
    device = device or next(model.parameters()).device
    model.eval()
    K = model.num_classes
    counts = torch.zeros(K * K, dtype=torch.int64)
    seen = 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x, y = batch[model.data_key].to(device), batch["label"]
        if max_items is not None:
            x, y = x[:max_items - seen], y[:max_items - seen]
        pred = model.predict(x).cpu()  # (B,)
        counts += torch.bincount(y * K + pred, minlength=K * K)
        seen += len(y)
        if max_items is not None and seen >= max_items:
            break
    return counts.view(K, K)


def accuracy_from_confusion(counts: torch.Tensor) -> dict[str, Any]:
    """Overall accuracy and each class's accuracy (recall) from a (K, K) confusion matrix."""
    per_class = (counts.diag().float() / counts.sum(1).clamp(min=1).float()).tolist()
    return {"accuracy": float(counts.diag().sum()) / max(1, int(counts.sum())), "per_class": per_class,
            "items": int(counts.sum())}
