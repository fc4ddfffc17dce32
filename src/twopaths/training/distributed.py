"""Multi-process data parallel (PyTorch DDP) under ``torchrun``.

``torchrun --nproc_per_node N -m twopaths train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; we start a process group on NCCL (GPUs) or gloo (CPU). Each rank sees a
disjoint slice of every global batch, gradients are averaged by DDP, and only rank 0 writes
logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    from twopaths.errors import ConfigError

    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("config key 'train.device' is 'cuda' but no CUDA device is available; use auto or cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that torchrun described in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= info.world_size
    return t


def any_rank(flags: list[bool], info: DistInfo, device: torch.device) -> list[bool]:
    """Each flag OR-ed over ranks, so every rank takes the same decision (e.g. "checkpoint now")."""
    if not info.enabled:
        return flags
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def min_over_ranks(value: int, info: DistInfo, device: torch.device) -> int:
    """The smallest of every rank's ``value`` (e.g. the step a time limit allows)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], device=device, dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order (used to save each rank's RNG state)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
