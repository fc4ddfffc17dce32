"""Exponential moving average of a model's weights.

Sampling from an EMA of the weights is what makes diffusion samples clean (Ho et al. 2020, sec. 4;
Karras et al. 2024 study why) and it rarely hurts a language model. With warmup the decay
starts small so the average is not dominated by the random initialisation:
``decay_t = min(decay, (1 + t) / (10 + t))`` (the TensorFlow ``ExponentialMovingAverage``
``num_updates`` rule).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """fp32 shadow copies of a module's parameters and floating-point buffers, by name."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.decay = decay
        self.warmup = warmup
        self.shadow: dict[str, torch.Tensor] = {
            name: t.detach().clone().float() for name, t in self._tracked(model)
        }

    @staticmethod
    def _tracked(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
        yield from model.named_parameters()  # shared (tied) parameters appear once
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                yield name, buf

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """shadow <- decay * shadow + (1 - decay) * weights, in one fused foreach call."""
        names = list(self.shadow)
        current = dict(self._tracked(model))
        shadows = [self.shadow[n] for n in names]
        values = [current[n].detach().float() for n in names]
        torch._foreach_lerp_(shadows, values, 1.0 - self.decay_at(step))

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily put the EMA weights into ``model`` (for evaluation and sampling)."""
        current = dict(self._tracked(model))
        backup = {n: t.detach().clone() for n, t in current.items()}
        with torch.no_grad():
            for n, t in current.items():
                t.copy_(self.shadow[n])
        try:
            yield model
        finally:
            with torch.no_grad():
                for n, t in current.items():
                    t.copy_(backup[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.contiguous() for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        unexpected = sorted(set(state) - set(self.shadow))
        if missing or unexpected:
            raise KeyError(f"EMA keys differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for n, t in state.items():
            self.shadow[n].copy_(t)
