"""The contract between a paradigm and the trainer.

A *paradigm* (next-token prediction, Gaussian diffusion, masked diffusion, GAN, VAE) is an
``nn.Module`` that owns its backbone and says how to score a batch and how to sample. The
trainer only ever calls ``loss`` (through ``forward``, so DDP and ``torch.compile`` wrap it) and
never needs to know which paradigm it is training.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def unconditional(model: nn.Module, cond: Any) -> None:
    """Refuse a condition for a model that takes none."""
    if cond is not None:
        raise ValueError(f"this {type(model).__name__} is unconditional; sample it without cond")


class Paradigm(nn.Module):
    #: what throughput is counted in: "items" (images, points, pairs) or "tokens"
    item_name: str = "items"

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Scalar training loss for a batch, averaged over its items (so DDP's mean of means is exact)."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.loss(batch)

    def items_in(self, batch: dict[str, Any]) -> int:
        """How many items (or tokens) a batch holds, for the items/s throughput figure."""
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
        return len(next(iter(batch.values())))

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, sampler: str | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, **options: Any) -> Any:
        """``n`` samples. Every paradigm takes the same keywords: ``cond``, the condition (class ids (n,);
        None: unconditional), ``sampler`` and ``steps`` (iterative samplers; None: the model's own
        default, one rule per paradigm, ``default_steps``), ``generator`` (seeds the noise); plus options of
        its own, also by keyword."""
        raise NotImplementedError(f"{type(self).__name__} does not sample")
