"""Waveform autoregression: WaveNet's next-sample prediction over mu-law classes.

van den Oord et al. 2016 ("WaveNet", sec. 2.2) model each audio sample as a categorical over 256
values after mu-law companding,

    f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),   mu = 255,

which spends the 256 levels where speech has its energy (near 0) instead of evenly. Training is
next-sample cross-entropy on whole clips (teacher forcing, every position at once); the input is the
clip shifted right by one, starting from the class of silence. Generation is one network call per
sample, 8,000 per second of 8 kHz audio, which is what the incremental generator
(:meth:`~twopaths.backbones.wavenet.WaveNet.new_cache`: each layer keeps its last inputs) makes
affordable. A global class condition (the digit) enters every layer (WaveNet eq. 3); labels are
dropped to the null class with ``cond_drop`` so one model is conditional and unconditional.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from twopaths.backbones.wavenet import WaveNet
from twopaths.paradigms.autoregressive import Autoregressive
from twopaths.paradigms.base import Paradigm


def mu_law_encode(x: torch.Tensor, classes: int = 256) -> torch.Tensor:
    """Samples in [-1, 1] -> int64 classes 0..classes-1 (WaveNet sec. 2.2; mu = classes - 1)."""
    mu = classes - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1.0)) / math.log1p(mu)  # [-1, 1]
    return ((y + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def mu_law_decode(ids: torch.Tensor, classes: int = 256) -> torch.Tensor:
    """Classes -> samples in [-1, 1], the inverse companding at each class's centre."""
    mu = classes - 1
    y = ids.float() / mu * 2 - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


class SampleAutoregressive(Paradigm):
    """WaveNet over mu-law samples: batches ``{"audio": (B, 1, L), "label": (B,)}``."""

    item_name = "samples"

    def __init__(self, net: WaveNet, length: int, cond_drop: float = 0.1):
        super().__init__()
        self.net, self.length, self.cond_drop = net, length, cond_drop
        self.classes = net.vocab_size
        self.num_classes = net.cfg.num_classes
        self.silence = int(mu_law_encode(torch.zeros(())))

    def _labels(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        y = batch["label"]
        if self.training and self.cond_drop > 0:  # the null class, so the model is also unconditional
            drop = torch.rand(y.shape, device=y.device) < self.cond_drop
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        return y

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        ids = mu_law_encode(batch["audio"][:, 0], self.classes)  # (B, L)
        inputs = F.pad(ids[:, :-1], (1, 0), value=self.silence)  # (B, L): position t sees samples < t
        logits = self.net(inputs, y=self._labels(batch))  # (B, L, classes)
        return F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten())

    def items_in(self, batch: dict[str, Any]) -> int:
        return int(batch["audio"].shape[0] * batch["audio"].shape[-1])

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, length: int | None = None, use_cache: bool = True) -> torch.Tensor:
        """``n`` clips (n, 1, length) in [-1, 1], one sample at a time; ``cond`` (n,) classes (None: the null
        class of a conditional model). ``use_cache=False`` recomputes every step over the last receptive
        field of samples (exact, since nothing earlier reaches the output): the reference the incremental
        generator is tested and timed against."""
        length = length or self.length
        device = next(self.parameters()).device
        if self.num_classes:
            cond = cond.to(device) if cond is not None else torch.full((n,), self.num_classes, device=device)
        elif cond is not None:
            raise ValueError("this WaveNet is unconditional; sample it without cond")
        self.net.labels = cond
        try:
            start = torch.full((n, 1), self.silence, dtype=torch.long, device=device)
            context = length + 1 if use_cache else self.net.receptive_field
            ids = Autoregressive(self.net, context=context).generate_batch(
                start, length, temperature, generator=generator, use_cache=use_cache)  # (n, length)
        finally:
            self.net.labels = None
        return mu_law_decode(ids, self.classes)[:, None]  # (n, 1, length)

    @torch.no_grad()
    def nll_bits_per_sample(self, batch: dict[str, Any]) -> float:
        """Cross-entropy in bits per audio sample (discrete, over the mu-law classes)."""
        was = self.training
        self.eval()
        try:
            return float(self.loss(batch)) / math.log(2)
        finally:
            self.train(was)


__all__ = ["SampleAutoregressive", "mu_law_decode", "mu_law_encode"]
