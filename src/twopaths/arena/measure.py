"""Measuring instruments for the arena: FLOPs, peak memory, wall-clock, network calls.

Each one measures something the report prints as evidence, so each says exactly what it counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from twopaths.nn.flops import flops_of


def train_step_flops(model: nn.Module, batch: dict[str, Any]) -> int:
    """FLOPs of one forward + backward pass of ``model.loss`` on ``batch`` (weights untouched)."""
    def step() -> None:
        model.loss(batch).backward()

    with torch.random.fork_rng():
        flops = flops_of(step)
    model.zero_grad(set_to_none=True)
    return flops


def training_memory_bytes(model: nn.Module, batch: dict[str, Any], optimizer_slots: int = 2, ema: bool = True) -> int:
    """What one training step holds at its peak, counted tensor by tensor (any device):
    weights, their gradients, AdamW's ``optimizer_slots`` moments, the EMA copy, and the activations
    autograd saves for the backward pass (each storage once), measured by running ``model.loss``.

    A CPU process's resident memory cannot say this (the allocator keeps freed memory), so on CPU
    this is the arena's memory figure; on CUDA :class:`PeakMemory` measures the allocator's peak.
    """
    seen: set[tuple[int, int]] = set()
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in seen and not isinstance(t, nn.Parameter):
            seen.add(key)
            saved += storage.nbytes()
        return t

    with torch.random.fork_rng(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.loss(batch)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return param_bytes + trainable * (1 + optimizer_slots) + (param_bytes if ema else 0) + saved


class PeakMemory:
    """Peak CUDA memory (``torch.cuda.max_memory_allocated``, tensors only) while a block runs,
    above what was allocated when it started; ``peak_bytes`` stays None on other devices, where
    :func:`training_memory_bytes` gives the arena's figure instead."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base


@contextlib.contextmanager
def timed(device: torch.device) -> Iterator[dict[str, float]]:
    """``with timed(device) as t: ...`` then ``t["seconds"]``; waits for queued GPU work at both ends."""
    out: dict[str, float] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield out
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out["seconds"] = time.perf_counter() - start


