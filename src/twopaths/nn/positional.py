"""Positional encodings: attention is permutation-invariant, so order must be put in explicitly.

- :func:`sinusoidal` — fixed sines and cosines of geometrically spaced frequencies, added to the
  token embeddings (Vaswani et al. 2017, sec. 3.5): PE(pos, 2i) = sin(pos / 10000^(2i/d)),
  PE(pos, 2i+1) = cos(pos / 10000^(2i/d)). Also the diffusion timestep embedding.
- :class:`LearnedPositions` — one trained vector per position, added to the embeddings (GPT-2).
- :class:`RotaryEmbedding` — RoPE (Su et al. 2021, "RoFormer", sec. 3.4): rotate each pair of
  query/key channels by an angle proportional to the position, so q·k depends only on the
  *relative* offset. Applied inside attention, not added to the embeddings.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(positions: torch.Tensor, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """positions (...,) (int or float) -> (..., dim) encodings; first half sines, second half cosines."""
    half = dim // 2
    freqs = torch.exp(-math.log(base) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs  # (..., half)
    enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:  # odd widths get one zero channel
        enc = torch.nn.functional.pad(enc, (0, 1))
    return enc


class LearnedPositions(nn.Embedding):
    """A trained embedding per position 0..max_len-1 (GPT-2's ``wpe``)."""

    def __init__(self, max_len: int, dim: int):
        super().__init__(max_len, dim)


class RotaryEmbedding(nn.Module):
    """Rotates channel pairs (i, i + Dh/2) of q or k (B, H, T, Dh) by angle position * base^(-2i/Dh).

    The half-split pairing ("rotate_half", as in GPT-NeoX and LLaMA) is equivalent to the
    paper's interleaved pairs up to a fixed permutation of channels.
    """

    def __init__(self, head_dim: int, base: float = 10_000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (Dh/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # positions (B, T) -> angles (B, 1, T, Dh/2), broadcast over heads
        angles = positions.float()[:, None, :, None] * self.inv_freq
        cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
