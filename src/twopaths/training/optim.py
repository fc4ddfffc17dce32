"""AdamW with the usual exclusions, and the warmup + cosine learning-rate schedule.

Weight decay shrinks weights toward zero; on a norm's gain, a bias or an embedding table it
only hurts (it fights the scale the norm is there to learn, and it pulls rarely seen tokens'
embeddings to zero). So, as in nanoGPT and most large-model recipes, only matrices and conv
kernels of non-embedding layers are decayed (Loshchilov & Hutter 2019, "Decoupled Weight Decay
Regularization").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from twopaths.config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed group.

    Decayed: parameters with ``ndim >= 2`` that do not belong to an ``nn.Embedding``.
    Not decayed: biases, norm gains (``ndim < 2``) and embedding tables.
    A parameter shared by two modules (tied weights) is listed once; if any owner is an
    embedding, it is not decayed.
    """
    embedding_params = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():  # yields each shared tensor once
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 and id(p) not in embedding_params else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_adamw(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused CUDA kernel on GPU (one launch for all params)."""
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps, fused=device.type == "cuda")


#: warmup takes at most this fraction of a run: a 500-step warmup in a 200-step run would never
#: reach the learning rate (the CLI prints a note when it shortens one)
MAX_WARMUP_FRACTION = 0.1


def effective_warmup(cfg: OptimConfig, max_steps: int) -> int:
    """``optim.warmup_steps``, capped to :data:`MAX_WARMUP_FRACTION` of ``max_steps`` (at least 1 when set)."""
    return min(cfg.warmup_steps, max(1, int(max_steps * MAX_WARMUP_FRACTION)))


def lr_at(step: int, cfg: OptimConfig, max_steps: int) -> float:
    """Learning rate for 1-indexed optimizer ``step``: linear warmup, then cosine to ``lr * min_lr_ratio``.

    The cosine half-period ends exactly at ``max_steps`` (Loshchilov & Hutter 2017, SGDR, eq. 5,
    without restarts). The warmup is :func:`effective_warmup`.
    """
    warmup = effective_warmup(cfg, max_steps)
    if warmup and step <= warmup:
        return cfg.lr * step / warmup
    min_lr = cfg.lr * cfg.min_lr_ratio
    span = max(1, max_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1.0 + math.cos(math.pi * progress))
