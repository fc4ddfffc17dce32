"""Next-token prediction over quantised data: pixels (ImageGPT) and 2-D coordinates.

Chen et al. 2020 ("Generative Pretraining from Pixels", sec. 2.1) model an image as a sequence of
discrete pixel values in raster order with the chain rule ``p(x) = prod_i p(x_i | x_<i)`` and a
GPT-2 transformer. Here the same :class:`~twopaths.paradigms.autoregressive.Autoregressive`
paradigm that trains the text models trains on these sequences, so the autoregressive and the
diffusion paradigm meet on the same images and the same 2-D mixtures.

Sequences. One item becomes ``[c, v_1, ..., v_D]``: a first token ``c`` (the class, or the
"unconditional" token that also starts unlabelled data) followed by its ``D`` value tokens.

- Images (N, C, H, W) in [-1, 1] (as the datasets yield them) are read as 8-bit values
  ``k = round((x + 1) * 127.5)`` and quantised to ``levels`` grey levels per channel, ``k // (256 /
  levels)`` (``levels`` a power of two, so every level covers the same number of 8-bit values).
  RGB images are flattened in (H, W, C) raster order -- each pixel's channels are consecutive,
  as ImageGPT does -- so ``D = H * W * C`` (784 for Fashion-MNIST). ImageGPT reduces colour to a
  512-entry palette instead; per-channel values keep one token per dimension, which makes
  bits/dim exact.
- Points (N, 2) are quantised to ``bins`` equal bins per coordinate over ``[low, high]``
  (values outside are clipped into the end bins): ``D = 2``.

Dequantisation returns bin centres. Vocabulary: value ids ``0 .. levels-1``, then one id per
class, then the unconditional id; sampling draws only value ids.

Likelihood. The model's distribution over an item is the product of its per-token softmaxes
restricted to the value ids. ``bits_per_dim`` is made comparable with the diffusion variational
bound (Ho et al. 2020, eq. 5, computed on 8-bit data):

- images with ``levels < 256`` are a coarser discretisation; spreading each level's probability
  uniformly over the ``256 / levels`` 8-bit values it covers gives a model of the 8-bit data
  whose NLL is ``bits_per_token + log2(256 / levels)`` per dimension (for 256 levels the two agree);
- points: a bin's probability spread uniformly over the bin is a density, ``-log2 p(x) =
  bits_per_token + log2(bin width)`` per dimension, comparable with continuous models' NLL.

``bits_per_token`` is the discrete NLL at the model's own quantisation.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from twopaths.paradigms.autoregressive import Autoregressive
from twopaths.paradigms.base import Paradigm

Kind = Literal["image", "points"]


# ----------------------------------------------------------------------------- quantisation


def check_levels(levels: int) -> None:
    if levels < 2 or levels > 256 or levels & (levels - 1):
        raise ValueError(f"levels must be a power of two from 2 to 256, got {levels}")


def quantize_images(x: torch.Tensor, levels: int) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, H*W*C) int64 ids in [0, levels), (H, W, C) raster order."""
    check_levels(levels)
    k = ((x.float() + 1) * 127.5).round().clamp(0, 255).long()  # (N, C, H, W) 8-bit values
    ids = torch.div(k, 256 // levels, rounding_mode="floor")  # (N, C, H, W) levels
    return ids.permute(0, 2, 3, 1).flatten(1)  # (N, H*W*C): pixel by pixel, channels inside


def dequantize_images(ids: torch.Tensor, levels: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, H*W*C) ids -> (N, C, H, W) in [-1, 1] at the centre of each level's 8-bit range."""
    C, H, W = shape
    width = 256 // levels  # 8-bit values per level
    k = ids.float() * width + (width - 1) / 2  # (N, H*W*C) centre, in 8-bit units
    return (k / 127.5 - 1).reshape(-1, H, W, C).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def quantize_points(x: torch.Tensor, bins: int, low: float, high: float) -> torch.Tensor:
    """(N, 2) -> (N, 2) int64 bin ids in [0, bins); values outside [low, high] go to the end bins."""
    u = (x.float() - low) / (high - low)  # (N, 2) in [0, 1] inside the range
    return (u * bins).floor().clamp(0, bins - 1).long()


def dequantize_points(ids: torch.Tensor, bins: int, low: float, high: float) -> torch.Tensor:
    """(N, 2) bin ids -> (N, 2) bin centres."""
    return low + (ids.float() + 0.5) * (high - low) / bins


# ----------------------------------------------------------------------------- the paradigm


class QuantizedAutoregressive(Paradigm):
    """Autoregressive next-token prediction over quantised images or 2-D points.

    ``net`` maps ids (B, T) -> logits (B, T, vocab_size) causally (a
    :class:`~twopaths.backbones.transformer.Transformer` with ``vocab_size`` = :meth:`vocab_for`
    and context >= ``1 + tokens_per_item``); training and decoding are delegated to
    :class:`Autoregressive` on the token sequences.
    """

    def __init__(self, net: nn.Module, kind: Kind, shape: tuple[int, ...], levels: int = 16, bins: int = 128,
                 low: float = -1.0, high: float = 1.0, num_classes: int = 0, cond_drop: float = 0.0):
        """``shape``: one item's shape, (C, H, W) or (2,). ``levels``: grey levels per image channel.
        ``bins``, ``low``, ``high``: quantisation of each point coordinate. ``num_classes``: > 0 for
        class-conditional generation. ``cond_drop``: probability of replacing the class token by the
        unconditional one in training, so the same model also samples without a label."""
        super().__init__()
        if kind == "image":
            check_levels(levels)
        elif kind == "points":
            if bins < 2 or not high > low:
                raise ValueError(f"points need bins >= 2 and high > low, got bins={bins}, [{low}, {high}]")
        else:
            raise ValueError(f"kind must be 'image' or 'points', got {kind!r}")
        self.kind, self.shape, self.num_classes, self.cond_drop = kind, tuple(shape), num_classes, cond_drop
        self.levels, self.bins, self.low, self.high = levels, bins, float(low), float(high)
        self.values = levels if kind == "image" else bins  # value ids come first in the vocabulary
        self.null_id = self.values + num_classes  # "no class": starts unconditional sequences
        self.tokens_per_item = math.prod(self.shape)  # D: value tokens per image / point
        self.data_key = "image" if kind == "image" else "x"
        self.item_name = "images" if kind == "image" else "samples"
        self.ar = Autoregressive(net, context=1 + self.tokens_per_item)

    @staticmethod
    def vocab_for(kind: Kind, levels: int, bins: int, num_classes: int) -> int:
        """Vocabulary size the backbone needs: values, one id per class, the unconditional id."""
        return (levels if kind == "image" else bins) + num_classes + 1

    # ------------------------------------------------------------------ data <-> tokens

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Data (N, *shape) -> value ids (N, D)."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"expected items of shape {self.shape}, got {tuple(x.shape[1:])}")
        if self.kind == "image":
            return quantize_images(x, self.levels)
        return quantize_points(x, self.bins, self.low, self.high)

    def dequantize(self, ids: torch.Tensor) -> torch.Tensor:
        """Value ids (N, D) -> data (N, *shape) at bin centres."""
        if self.kind == "image":
            return dequantize_images(ids, self.levels, self.shape)
        return dequantize_points(ids, self.bins, self.low, self.high)

    def first_tokens(self, n: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """(n, 1) first token per row: the class id, or the unconditional id."""
        if labels is None or not self.num_classes:
            return torch.full((n, 1), self.null_id, dtype=torch.long, device=device)
        labels = torch.as_tensor(labels, device=device).long().view(-1)
        if labels.shape[0] != n or bool((labels < 0).any() | (labels >= self.num_classes).any()):
            raise ValueError(f"labels must be {n} class ids in [0, {self.num_classes})")
        return (self.values + labels)[:, None]

    def tokens(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Data (N, *shape) [labels (N,)] -> sequences (N, 1 + D): first token, then the values."""
        return torch.cat([self.first_tokens(x.shape[0], labels, x.device), self.quantize(x)], dim=1)

    # ------------------------------------------------------------------ training

    def _train_labels(self, batch: dict[str, Any], n: int, device: torch.device) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        y = batch["label"].to(device)
        if self.training and self.cond_drop > 0:  # classifier-free-guidance style label dropout (Ho & Salimans 2022)
            drop = torch.rand(n, device=device) < self.cond_drop
            y = torch.where(drop, torch.full_like(y, -1), y)
        return y

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean next-token cross-entropy (nats per value token) of :class:`Autoregressive` on the sequences."""
        x = batch[self.data_key]
        y = self._train_labels(batch, x.shape[0], x.device)
        first = self.first_tokens(x.shape[0], None, x.device)  # (N, 1) unconditional
        if y is not None:
            first = torch.where(y[:, None] >= 0, self.values + y.clamp(min=0)[:, None], first)
        tokens = torch.cat([first, self.quantize(x)], dim=1)  # (N, 1 + D)
        return self.ar.loss({"tokens": tokens})

    def items_in(self, batch: dict[str, Any]) -> int:
        """Images (or points) per batch: the arena compares images/s; tokens = items * ``tokens_per_item``."""
        return int(batch[self.data_key].shape[0])

    # ------------------------------------------------------------------ likelihood

    def value_log_probs(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(v_i | v_<i, c) in nats, (N, D), under the softmax restricted to the value ids."""
        tokens = self.tokens(x, labels)  # (N, 1 + D)
        logits = self.ar.net(tokens[:, :-1])[..., :self.values].float()  # (N, D, values)
        return logits.log_softmax(-1).gather(-1, tokens[:, 1:, None]).squeeze(-1)  # (N, D)

    @torch.no_grad()
    def nll_bits_per_dim(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Exact negative log-likelihood per item, (N,) each (the chain rule needs no bound).

        ``bits_per_token``: discrete bits per value token at the model's quantisation.
        ``bits_per_dim``: comparable with the diffusion VLB -- images: + log2(256 / levels) (uniform
        within each level, a model of the 8-bit data; 0 for 256 levels); points: + log2(bin width)
        (uniform within each bin, a density). ``prior_bits_per_dim`` is 0 (no prior term), kept
        so the same evaluation code reads diffusion and autoregressive results.
        """
        bits = -self.value_log_probs(x, y if self.num_classes else None).mean(1) / math.log(2)  # (N,)
        return {"bits_per_dim": bits + self.dequantization_bits, "bits_per_token": bits,
                "prior_bits_per_dim": torch.zeros_like(bits)}

    @property
    def dequantization_bits(self) -> float:
        """What turns bits per token into bits per dimension of the data (see the module docstring)."""
        return dequantization_bits(self.kind, self.levels, self.bins, self.low, self.high)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0, top_k: int | None = None, chunk: int = 256,
               use_cache: bool = True) -> torch.Tensor:
        """``n`` samples in data space: images (n, C, H, W) in [-1, 1] or points (n, 2).

        All rows decode together, ``chunk`` at a time (a chunk's KV cache holds 2 * layers * (1 + D)
        * d_model floats per row), one token per step with the KV cache. ``cond`` (n,) class ids,
        or None for unconditional samples.
        """
        device = next(self.parameters()).device
        first = self.first_tokens(n, cond, device)  # (n, 1)
        out = []
        for start in range(0, n, chunk):
            ids = self.ar.generate_batch(first[start:start + chunk], self.tokens_per_item, temperature, top_k,
                                         generator=generator, use_cache=use_cache, vocab_limit=self.values)
            out.append(ids)  # (chunk, D)
        return self.dequantize(torch.cat(out))


def dequantization_bits(kind: Kind, levels: int, bins: int, low: float, high: float) -> float:
    """Bits per dimension added to the discrete NLL: log2(256 / levels) (images) or log2(bin width) (points)."""
    if kind == "image":
        return math.log2(256 / levels)
    return math.log2((high - low) / bins)


__all__ = ["QuantizedAutoregressive", "dequantization_bits", "dequantize_images", "dequantize_points",
           "quantize_images", "quantize_points"]
