"""The convolutional building blocks that the U-Net, the latent autoencoder and the SR3 denoiser share.

- :func:`group_norm`: GroupNorm (Wu & He 2018) with the largest group count that divides the width;
- :func:`zero_init`, :func:`conv3x3`: the init and the conv every block is made of;
- :class:`ResBlock`: the residual block with timestep conditioning of Ho et al. 2020 (appendix B)
  and ADM (Dhariwal & Nichol 2021, sec. 3), optionally resampling (BigGAN up/down blocks);
- :class:`ResnetBlock`: the same block without the timestep input (LDM's ``ResnetBlock`` with
  ``temb_channels=0``), for the autoencoder;
- :class:`AttentionBlock`: multi-head self-attention over a feature map's positions, with optional
  cross-attention to a context sequence (Rombach et al. 2022, sec. 3.3);
- :class:`Downsample`, :class:`Upsample`: stride-2 conv and nearest 2x + conv (Ho et al.).

Tensors are NCHW; every op is fine with ``channels_last`` memory format.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import twopaths.nn.attention as shared_attention  # called as a module attribute: one shared SDPA path


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups, or the largest divisor of ``channels`` below it."""
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(g, channels, eps=1e-5)


def zero_init(module: nn.Module) -> nn.Module:
    """Set a layer's weights and bias to 0, so the residual branch it ends contributes nothing at init."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Residual block with timestep conditioning (Ho et al. 2020, appendix B; ADM sec. 3)::

        h = conv1(SiLU(GN(x)))                        [resampled between SiLU and conv1 if up/down]
        h = h + W e                  or  h = GN(h) * (1 + s) + b, (s, b) = W e   (scale_shift)
        h = conv2(dropout(SiLU(GN(h))))               conv2 starts at zero
        out = skip(x) + h                             skip: 1x1 conv when the width changes

    ``e`` is the (time + class) embedding after a SiLU.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0, groups: int = 32,
                 scale_shift: bool = False, resample: Literal["up", "down"] | None = None):
        super().__init__()
        self.scale_shift, self.resample = scale_shift, resample
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = conv3x3(c_in, c_out)
        self.emb_proj = nn.Linear(emb_dim, 2 * c_out if scale_shift else c_out)
        self.norm2 = group_norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(conv3x3(c_out, c_out))
        self.skip = nn.Conv2d(c_in, c_out, kernel_size=1) if c_in != c_out else nn.Identity()

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, kernel_size=2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(x))  # (B, C_in, H, W)
        h, x = self._resample(h), self._resample(x)  # (B, C_in, H', W'), H' = H, H/2 or 2H
        h = self.conv1(h)  # (B, C_out, H', W')
        e = self.emb_proj(F.silu(emb))[:, :, None, None].to(h.dtype)  # (B, C_out or 2 C_out, 1, 1)
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)  # each (B, C_out, 1, 1)
            h = self.norm2(h) * (1 + scale) + shift  # (B, C_out, H', W'): AdaGN
        else:
            h = self.norm2(h + e)  # (B, C_out, H', W'): timestep added per channel
        h = self.conv2(self.dropout(F.silu(h)))  # (B, C_out, H', W')
        return self.skip(x) + h  # (B, C_out, H', W')


class ResnetBlock(nn.Module):
    """out = skip(x) + conv2(SiLU(GN(conv1(SiLU(GN(x)))))); skip is a 1x1 conv when the width changes.
    The U-Net's ResBlock without the timestep input (LDM's ResnetBlock with temb_channels=0)."""

    def __init__(self, c_in: int, c_out: int, groups: int = 32):
        super().__init__()
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = conv3x3(c_in, c_out)
        self.norm2 = group_norm(c_out, groups)
        self.conv2 = conv3x3(c_out, c_out)
        self.skip = nn.Conv2d(c_in, c_out, kernel_size=1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = self.conv2(F.silu(self.norm2(h)))  # (B, C_out, H, W)
        return self.skip(x) + h  # (B, C_out, H, W)


def attention_heads(channels: int, num_heads: int, head_channels: int | None = None) -> int:
    """The number of heads of an attention over ``channels``: ``channels // head_channels`` when a head
    width is given (the ADM convention), else ``num_heads``; either must divide the width."""
    if head_channels is not None:
        if channels % head_channels:
            raise ValueError(f"width {channels} is not divisible by head_channels {head_channels}")
        num_heads = channels // head_channels
    if channels % num_heads:
        raise ValueError(f"width {channels} is not divisible by num_heads {num_heads}")
    return num_heads


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map, as a residual branch
    (Ho et al. 2020, appendix B; heads as in ADM sec. 3)::

        out = x + proj(Attention(q, k, v)),  q, k, v = qkv(GN(x)) per head,  proj starts at zero

    With ``context_dim > 0`` a cross-attention branch follows (Rombach et al. 2022, sec. 3.3)::

        out = out + CrossAttention(LN(out), c W_ctx),  its output projection starts at zero

    the queries from the H*W positions, keys and values from the context c (B, S, context_dim)
    projected to the block's width; masked-out context tokens (padding) get no weight. It is the
    shared :class:`twopaths.nn.attention.MultiHeadAttention` with separate q/k/v projections.

    The attention itself is :func:`twopaths.nn.attention.attention` (PyTorch SDPA), shared with the
    transformers.
    """

    def __init__(self, channels: int, num_heads: int = 4, head_channels: int | None = None, groups: int = 32,
                 context_dim: int = 0):
        super().__init__()
        self.num_heads = attention_heads(channels, num_heads, head_channels)
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)  # a 1x1 conv, applied to (B, HW, C)
        self.proj = zero_init(nn.Linear(channels, channels))
        self.context_dim = context_dim
        if context_dim:  # cross-attention to a context sequence (text), only when asked for
            self.context_proj = nn.Linear(context_dim, channels)  # context width -> this block's width
            self.norm_cross = nn.LayerNorm(channels)
            self.cross_attn = shared_attention.MultiHeadAttention(
                shared_attention.AttentionConfig(channels, num_heads, fused_qkv=False, cross=True))
            zero_init(self.cross_attn.c_proj)  # the branch starts as the identity, like every other here

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C): a view when x is channels-last
        qkv = self.qkv(h).unflatten(-1, (3, self.num_heads, C // self.num_heads))  # (B, HW, 3, heads, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, HW, Dh)
        h = shared_attention.attention(q, k, v)  # (B, heads, HW, Dh): every position sees every position
        h = self.proj(h.transpose(1, 2).reshape(B, H * W, C))  # (B, HW, C): heads side by side, projected
        out = x + h.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)
        if not self.context_dim:
            return out
        seq = out.flatten(2).transpose(1, 2)  # (B, HW, C)
        ctx = self.context_proj(context.to(seq.dtype))  # (B, S, C)
        mask = context_mask[:, None, None, :].bool() if context_mask is not None else None  # (B, 1, 1, S)
        h = self.cross_attn(self.norm_cross(seq), context=ctx, mask=mask)  # (B, HW, C): each position reads the text
        return out + h.transpose(1, 2).reshape(B, C, H, W)  # (B, C, H, W)


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 conv (Ho et al.)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Double the resolution by nearest-neighbour copying, then a 3x3 conv (Ho et al.)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)
