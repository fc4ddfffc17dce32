"""A residual MLP denoiser for low-dimensional data (the 2-D Gaussian mixtures of ``data/toy.py``).

Points have no spatial structure for a conv or attention to exploit, so the backbone is a stack of
pre-norm residual MLP blocks (He et al. 2016's residual form; LayerNorm, Ba et al. 2016; SiLU,
Elfwing et al. 2018). The timestep enters as in the U-Net: a sinusoidal embedding (Vaswani et al.
2017, sec. 3.5) through a small MLP, plus an optional class embedding with a null row for
classifier-free guidance (Ho & Salimans 2022); every block adds a projection of it::

    h = in_proj(x)
    h = h + W2 dropout(SiLU(W1 LN(h) + P e))     for each block (W2 starts at zero)
    out = out_proj(SiLU(LN(h)))                   (out_proj starts at zero)

With the last layers of every branch at zero the network outputs exactly 0 at init, as the U-Net does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.nn.embeddings import TimestepClassEmbedding


@dataclass
class MLPDenoiserConfig:
    dim: int = 2  # data dimension D (2 for the mixture2d points)
    out_dim: int | None = None  # None = dim; pass 2 * dim for a learned variance
    width: int = 256  # hidden width of the residual stream
    num_blocks: int = 4  # residual blocks
    mlp_ratio: float = 2.0  # hidden width inside a block = mlp_ratio * width
    time_embed_dim: int = 128  # sinusoidal features of the timestep before the embedding MLP
    num_classes: int = 0  # 0 = unconditional; else a table of num_classes + 1 rows, the last the null label
    dropout: float = 0.0  # inside each block


class MLPBlock(nn.Module):
    """Pre-LN residual block, conditioned by adding a projection of the embedding to its hidden layer."""

    def __init__(self, width: int, hidden: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.emb_proj = nn.Linear(emb_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.fc1(self.norm(h)) + self.emb_proj(F.silu(emb))  # (B, hidden)
        return h + self.fc2(self.dropout(F.silu(z)))  # (B, width)


class MLPDenoiser(nn.Module):
    """Points x_t (B, D), timesteps t (B,) float, labels y (B,) or None -> (B, out_dim).

    Same call as the U-Net, so :class:`twopaths.paradigms.gaussian.GaussianDiffusion` drives either.
    ``y == num_classes`` (or ``y=None`` on a class-conditional net) is the null label.
    """

    def __init__(self, cfg: MLPDenoiserConfig):
        super().__init__()
        self.cfg = cfg
        self.out_dim = cfg.out_dim or cfg.dim
        emb_dim = cfg.width
        self.cond = TimestepClassEmbedding(cfg.time_embed_dim, emb_dim, cfg.num_classes, owner="MLPDenoiser")
        self.in_proj = nn.Linear(cfg.dim, cfg.width)
        hidden = int(cfg.mlp_ratio * cfg.width)
        self.blocks = nn.ModuleList(MLPBlock(cfg.width, hidden, emb_dim, cfg.dropout) for _ in range(cfg.num_blocks))
        self.norm_out = nn.LayerNorm(cfg.width)
        self.out_proj = nn.Linear(cfg.width, self.out_dim)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Timesteps (B,) and labels (B,) or None -> the conditioning vector (B, width)."""
        return self.cond(t, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.cfg.dim:
            raise ValueError(f"MLPDenoiser expects points of shape (B, {self.cfg.dim}), got {tuple(x.shape)}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])  # (B,)
        emb = self.embed(t, y)  # (B, width)
        h = self.in_proj(x)  # (B, width)
        for block in self.blocks:
            h = block(h, emb)  # (B, width)
        return self.out_proj(F.silu(self.norm_out(h)))  # (B, out_dim)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
