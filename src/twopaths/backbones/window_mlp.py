"""A fixed-window MLP language model (Bengio et al. 2003, "A Neural Probabilistic Language Model").

Each position sees only the ``window`` tokens before it (inclusive of itself): their embeddings
are concatenated and passed through an MLP to next-token logits. It is the smallest honest
autoregressive backbone: causal by construction, no attention, no recurrence — and so a useful
baseline for what attention buys on long-range dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class WindowMLPConfig:
    window: int = 8  # tokens each prediction sees (the n-1 of an n-gram model)
    embed_dim: int = 32  # per-token embedding width
    hidden: int = 256  # MLP hidden width
    layers: int = 2  # hidden layers
    dropout: float = 0.0


class WindowMLP(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab); position t sees tokens t-window+1..t."""

    def __init__(self, vocab_size: int, cfg: WindowMLPConfig):
        super().__init__()
        self.vocab_size, self.window = vocab_size, cfg.window
        # One extra id pads the left edge, so early positions see "nothing yet" rather than token 0.
        self.pad_id = vocab_size
        self.embed = nn.Embedding(vocab_size + 1, cfg.embed_dim)
        layers: list[nn.Module] = []
        width = cfg.window * cfg.embed_dim
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        padded = F.pad(ids, (self.window - 1, 0), value=self.pad_id)  # (B, T + window - 1)
        windows = padded.unfold(1, self.window, 1)  # (B, T, window): position t's context
        x = self.embed(windows).flatten(2)  # (B, T, window * embed_dim)
        return self.head(self.mlp(x))  # (B, T, vocab)
