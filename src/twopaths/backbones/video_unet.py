"""The space-time U-Net: a denoiser of whole video clips, frames and time at once.

This is the network of Ho et al. 2022 ("Video Diffusion Models", sec. 3 and fig. 1): the image
U-Net of :mod:`twopaths.backbones.unet` made *factorised over space and time*:

- every 2-D layer -- convolutions, GroupNorms, residual blocks, spatial self-attention, the
  resampling layers -- runs on each frame on its own: a clip (B, T, C, H, W) is reshaped to a
  batch of frames (B*T, C, H, W) (the paper's "space-only 3-D convolution", a 1x3x3 kernel, is
  exactly a 3x3 convolution on every frame);
- after each spatial attention block, and in the middle block, a **temporal attention** block
  (:class:`TemporalAttention`) attends over the T frames at every spatial position, the H*W
  positions being batch axes. It is the only place where frames meet, so a configuration without
  temporal attention (``temporal_attention_resolutions=()``) is a per-frame image denoiser;
- temporal attention knows the order of the frames through a learned **relative position** bias, one
  number per head and frame offset added to the attention scores (Ho et al. use relative position
  embeddings there, after Shaw et al. 2018, "Self-Attention with Relative Position Representations";
  the scalar-per-head form is T5's, Raffel et al. 2020). Offsets beyond +-(frames - 1) share the
  outermost entry (Shaw et al.'s clipping), so any number of frames can be denoised;
- the timestep (and optional class) embedding is the image U-Net's, one vector per clip, given to
  every frame.

The building blocks are the image U-Net's own (:class:`~twopaths.nn.blocks.ResBlock`,
:class:`~twopaths.nn.blocks.AttentionBlock`, :class:`~twopaths.nn.blocks.Downsample`,
:class:`~twopaths.nn.blocks.Upsample`, :class:`~twopaths.nn.embeddings.TimestepClassEmbedding`), laid
out as :class:`~twopaths.backbones.unet.UNet` lays them out (skips saved on the way down, consumed
last-in first-out on the way up). Every residual branch, the temporal attention's output projection
included, starts at zero, so the network starts as the identity on its skip paths and outputs 0.

Contract "denoiser": ``net(x (B, T, C, H, W), t (B,), y=None, context=None) -> (B, T, C_out, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import twopaths.nn.attention as shared_attention
from twopaths.backbones.unet import UNetConfig, check_levels, unet_levels
from twopaths.nn.blocks import AttentionBlock, ResBlock, attention_heads, conv3x3, group_norm, zero_init
from twopaths.nn.embeddings import TimestepClassEmbedding

__all__ = ["TemporalAttention", "VideoUNet", "VideoUNetConfig"]


@dataclass
class VideoUNetConfig(UNetConfig):
    """:class:`~twopaths.backbones.unet.UNetConfig` (read per frame) plus the time axis."""

    frames: int = 8  # T of the training clips: the relative position table covers offsets -(T-1)..T-1
    # feature-map sides whose blocks get temporal attention after their (optional) spatial attention; the
    # middle block gets it when the lowest resolution is listed. () = no temporal mixing: a per-frame model
    temporal_attention_resolutions: tuple[int, ...] = (16, 8)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.temporal_attention_resolutions = tuple(self.temporal_attention_resolutions)
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.context_dim:
            raise ValueError("the video U-Net has no cross-attention (context_dim must be 0)")


class TemporalAttention(nn.Module):
    """Multi-head self-attention over the frames of a clip at each spatial position, as a residual
    branch (Ho et al. 2022, sec. 3: "attention over the first axis, treating the spatial axes as batch
    axes")::

        out = x + proj(Attention(q, k, v) with scores + b[head, clip(j - i)]),  q, k, v = qkv(GN(x))

    on frames ``x`` (B*T, C, H, W), clip-major (frame t of clip b at row b*T + t). ``b`` is the learned
    relative position bias (offsets clipped to +-(max_frames - 1)); ``proj`` starts at zero.
    """

    def __init__(self, channels: int, max_frames: int, num_heads: int = 4, head_channels: int | None = None,
                 groups: int = 32):
        super().__init__()
        self.num_heads, self.max_frames = attention_heads(channels, num_heads, head_channels), max_frames
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = zero_init(nn.Linear(channels, channels))
        # one learned score per head and frame offset j - i in -(max_frames - 1)..max_frames - 1
        self.relative_bias = nn.Parameter(torch.zeros(num_heads, 2 * max_frames - 1))

    def position_bias(self, frames: int, device: torch.device | None = None) -> torch.Tensor:
        """The (heads, T, T) additive score bias: entry [h, i, j] for query frame i and key frame j."""
        pos = torch.arange(frames, device=device)
        offset = (pos[None, :] - pos[:, None]).clamp(-(self.max_frames - 1), self.max_frames - 1)  # (T, T): j - i
        return self.relative_bias[:, offset + self.max_frames - 1]  # (heads, T, T)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        BT, C, H, W = x.shape
        if BT % frames:
            raise ValueError(f"{BT} frames do not split into clips of {frames}")
        B, heads = BT // frames, self.num_heads
        h = self.norm(x)  # (B*T, C, H, W): each frame normalised on its own, like every other 2-D layer
        h = h.view(B, frames, C, H * W).permute(0, 3, 1, 2).reshape(B * H * W, frames, C)  # (B HW, T, C)
        qkv = self.qkv(h).unflatten(-1, (3, heads, C // heads))  # (B HW, T, 3, heads, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B HW, heads, T, Dh)
        bias = self.position_bias(frames, x.device).to(q.dtype)  # (heads, T, T)
        h = shared_attention.attention(q, k, v, mask=bias)  # (B HW, heads, T, Dh): every frame sees every frame
        h = self.proj(h.transpose(1, 2).reshape(B * H * W, frames, C))  # (B HW, T, C)
        h = h.view(B, H * W, frames, C).permute(0, 2, 3, 1).reshape(BT, C, H, W)  # (B*T, C, H, W)
        return x + h


class SpaceTimeSequential(nn.Sequential):
    """A sequence of layers on frames (B*T, C, H, W): residual blocks also receive the per-frame
    embedding, temporal attention the number of frames per clip, everything else the frames alone."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, frames: int) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)  # (B*T, C, H, W)
            elif isinstance(layer, TemporalAttention):
                x = layer(x, frames)  # (B*T, C, H, W): mixes the frames of each clip
            else:
                x = layer(x)  # (B*T, C, H', W'): attention over space, or resampling
        return x


class VideoUNet(nn.Module):
    """Noisy clips x_t (B, T, C, H, W), timesteps t (B,) float, labels y (B,) or None
    -> (B, T, C_out, H, W). See the module docstring; ``y == num_classes`` or ``y=None`` on a
    class-conditional net is the null label (classifier-free guidance)."""

    def __init__(self, cfg: VideoUNetConfig):
        super().__init__()
        self.cfg = cfg
        check_levels(cfg, "attention_resolutions", "temporal_attention_resolutions")
        self.out_channels = cfg.out_channels or cfg.in_channels
        base, emb_dim, g = cfg.base_channels, cfg.time_embed_mult * cfg.base_channels, cfg.groups

        def res(c_in: int, c_out: int, resample: Literal["up", "down"] | None = None) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.dropout, g, cfg.scale_shift_norm, resample)

        def attention(c: int, size: int, middle: bool = False) -> list[nn.Module]:
            """Spatial attention (always in the middle block), then temporal attention, as the level asks."""
            layers: list[nn.Module] = []
            if middle or size in cfg.attention_resolutions:
                layers.append(AttentionBlock(c, cfg.num_heads, cfg.head_channels, g))
            if size in cfg.temporal_attention_resolutions:
                layers.append(TemporalAttention(c, cfg.frames, cfg.num_heads, cfg.head_channels, g))
            return layers

        self.cond = TimestepClassEmbedding(base, emb_dim, cfg.num_classes, owner="video U-Net")
        self.conv_in = conv3x3(cfg.in_channels, base * cfg.channel_mults[0])
        self.down, self.mid, self.up, ch = unet_levels(cfg, res, attention, SpaceTimeSequential)
        self.norm_out = group_norm(ch, g)
        self.conv_out = zero_init(conv3x3(ch, self.out_channels))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        if context is not None:
            raise ValueError("the video U-Net has no cross-attention; it takes no context")
        if x.ndim != 5:
            raise ValueError(f"the video U-Net denoises clips (B, T, C, H, W), got {tuple(x.shape)}")
        B, T, C, H, W = x.shape
        factor = 2 ** (len(self.cfg.channel_mults) - 1)
        if H % factor or W % factor:
            raise ValueError(f"frame size {H}x{W} does not divide by {factor} (one halving between levels)")
        if t.ndim == 0:
            t = t.expand(B)  # (B,)
        emb = self.cond(t, y)  # (B, emb_dim): one vector per clip
        emb = emb.repeat_interleave(T, dim=0)  # (B*T, emb_dim): the same for each of its frames
        h = self.conv_in(x.reshape(B * T, C, H, W))  # (B*T, base * mults[0], H, W): frames as a batch
        hs = [h]
        for block in self.down:
            h = block(h, emb, T)  # (B*T, base * mult, H / 2^level, W / 2^level)
            hs.append(h)
        h = self.mid(h, emb, T)  # (B*T, base * mults[-1], H / 2^(L-1), W / 2^(L-1))
        for block in self.up:
            h = block(torch.cat([h, hs.pop()], dim=1), emb, T)  # (B*T, base * mult, ...)
        h = self.conv_out(F.silu(self.norm_out(h)))  # (B*T, C_out, H, W)
        return h.view(B, T, self.out_channels, H, W)  # (B, T, C_out, H, W)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

