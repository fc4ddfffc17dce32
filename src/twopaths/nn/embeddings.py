"""Conditioning embeddings: what a denoiser is told besides its noisy input.

:class:`TimestepClassEmbedding` turns a diffusion timestep into a vector — sinusoidal features
(Vaswani et al. 2017, sec. 3.5, as Ho et al. 2020 use them) through a two-layer SiLU MLP — and adds
a learned class vector. The class table has one extra row, the *null* label: classifier-free
guidance (Ho & Salimans 2022) trains the same network with labels dropped to that row, so one
model is both conditional and unconditional.
"""

from __future__ import annotations

import torch
from torch import nn

from twopaths.nn.positional import sinusoidal


class TimestepClassEmbedding(nn.Module):
    """Timesteps t (B,) float (fractional allowed) and labels y (B,) or None -> (B, dim).

    ``y is None`` on a class-conditional embedding means the null label (row ``num_classes``);
    labels given to an unconditional one are an error, not silently ignored.
    """

    def __init__(self, freq_dim: int, dim: int, num_classes: int = 0, owner: str = "model"):
        super().__init__()
        self.freq_dim, self.num_classes, self.owner = freq_dim, num_classes, owner
        self.time_embed = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.class_embed = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        freqs = sinusoidal(t, self.freq_dim).to(self.time_embed[0].weight.dtype)  # (B, freq_dim)
        emb = self.time_embed(freqs)  # (B, dim)
        if self.class_embed is not None:
            if y is None:  # no label given: the null label, row num_classes
                y = torch.full((t.shape[0],), self.num_classes, dtype=torch.long, device=t.device)
            emb = emb + self.class_embed(y)  # (B, dim)
        elif y is not None:
            raise ValueError(f"this {self.owner} is unconditional (num_classes=0) but was given class labels")
        return emb
