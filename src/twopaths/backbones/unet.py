"""The denoising U-Net: a convolutional encoder-decoder with skip connections, conditioned on the timestep.

The shape is Ronneberger et al. 2015 ("U-Net: Convolutional Networks for Biomedical Image
Segmentation"): a contracting path that halves the resolution level by level, an expansive path
that doubles it back, and skip connections that concatenate each contracting feature map onto the
expansive path at the same resolution, so fine detail need not squeeze through the bottleneck.

As a diffusion backbone it is the network of Ho et al. 2020 ("Denoising Diffusion Probabilistic
Models", sec. 4 and appendix B), refined by Dhariwal & Nichol 2021 ("Diffusion Models Beat GANs on
Image Synthesis", sec. 3, "ADM"):

- every level is ``num_res_blocks`` residual blocks (Wide ResNet style, GroupNorm instead of weight
  norm), with multi-head self-attention after each block at the chosen feature-map sizes;
- the timestep enters through a sinusoidal embedding (Vaswani et al. 2017, sec. 3.5) and an MLP,
  then a per-block projection that is *added* to the feature maps (Ho et al.) or that scales and
  shifts the normalised features, ``GroupNorm(h) * (1 + s) + b`` ("adaptive group norm", ADM sec. 3);
- a class label (with one extra "null" row for classifier-free guidance, Ho & Salimans 2022) is
  embedded and added to the time embedding;
- text (``context_dim > 0``): a sequence of context vectors, e.g. a caption's encoding, enters
  through cross-attention after the self-attention at every attention resolution and in the middle
  block, the queries from the feature map and the keys and values from the context projected to
  the feature map's width (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
  Diffusion Models", sec. 3.3, as Stable Diffusion's SpatialTransformer; Imagen, Saharia et al.
  2022, attends to its text the same way). A key mask leaves a caption's padding out. By default
  the context's mean over its real tokens is also projected and added to the time embedding, as
  Imagen does with its pooled text embedding (Saharia et al. 2022, sec. 2.4), so the global content
  of a caption reaches every residual block the way a class label does;
- each residual block's last conv, each attention output projection and the output conv start at
  zero, so every block starts as the identity and the whole network outputs exactly 0 at init
  (Goyal et al. 2017's zero-gamma trick, used in Ho et al.'s and ADM's code);
- ADM's options: resolution changes inside residual blocks (BigGAN's up/down blocks, Brock et al.
  2019) instead of a strided conv / nearest + conv, and a fixed head width instead of a fixed head
  count.

Every block output of the contracting path (and the stem conv, and every downsampler) is saved and
consumed, last-in first-out, by one block of the expansive path, which therefore has one block more
per level than the contracting path (as in Ho et al.).

Tensors are NCHW; every op is fine with ``channels_last`` memory format (attention reads the
channels as the last axis without a copy when the input is channels-last).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.nn.blocks import AttentionBlock, Downsample, ResBlock, Upsample, conv3x3, group_norm, zero_init
from twopaths.nn.embeddings import TimestepClassEmbedding


@dataclass
class UNetConfig:
    in_channels: int = 3  # image channels (1 for Fashion-MNIST, 3 for CIFAR-10)
    out_channels: int | None = None  # None = in_channels; pass 2 * in_channels for a learned variance
    image_size: int = 32  # side of the training images; attention_resolutions are read against it
    base_channels: int = 64  # width of the first level; level i has base_channels * channel_mults[i]
    channel_mults: tuple[int, ...] = (1, 2, 2)  # one entry per level; the input halves between levels
    num_res_blocks: int = 2  # residual blocks per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (16,)  # feature-map sides that get self-attention
    num_heads: int = 4  # attention heads (ignored when head_channels is set)
    head_channels: int | None = None  # fixed width per head, heads = channels // head_channels (ADM)
    dropout: float = 0.0  # in every residual block, before its second conv (Ho et al.: 0.1 on CIFAR-10)
    num_classes: int = 0  # 0 = unconditional; else a table of num_classes + 1 rows, the last the null label
    resblock_updown: bool = False  # resample inside residual blocks (BigGAN/ADM) or by strided / nearest conv
    scale_shift_norm: bool = False  # timestep scales and shifts the normalised features (ADM's AdaGN)
    groups: int = 32  # GroupNorm groups (Wu & He 2018); the largest divisor of the width if it does not divide
    time_embed_mult: int = 4  # time embedding width = time_embed_mult * base_channels (Ho et al.: 4)
    context_dim: int = 0  # 0 = no cross-attention; else the width of the context vectors (text encoder's d)
    context_pool: bool = True  # with a context, also add its masked mean (projected) to the time embedding (Imagen)

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        self.attention_resolutions = tuple(self.attention_resolutions)
        if not self.channel_mults:
            raise ValueError("channel_mults needs at least one level")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if self.context_dim < 0:
            raise ValueError(f"context_dim must be >= 0, got {self.context_dim}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Feature-map side at each level for ``image_size`` inputs: (28, 14, 7) for 28 and 3 levels."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mults)))


#: Named sizes. ``unet_preset(name, **overrides)`` copies one with changes (in_channels, num_classes...).
UNET_PRESETS: dict[str, UNetConfig] = {
    # CPU smoke tests: 2 levels, one block each, attention at the lower level.
    "unet-tiny": UNetConfig(in_channels=1, image_size=28, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                            attention_resolutions=(14,), groups=8),
    # Fashion-MNIST: 28 -> 14 -> 7, attention at 14 (and in the middle block at 7).
    "unet-small": UNetConfig(in_channels=1, image_size=28, base_channels=64, channel_mults=(1, 2, 2),
                             num_res_blocks=2, attention_resolutions=(14,)),
    # The same size with ADM's choices: AdaGN, resampling residual blocks, 32-wide heads.
    "adm-small": UNetConfig(in_channels=1, image_size=28, base_channels=64, channel_mults=(1, 2, 2),
                            num_res_blocks=2, attention_resolutions=(14, 7), head_channels=32,
                            resblock_updown=True, scale_shift_norm=True),
    # Ho et al. 2020, appendix B: CIFAR-10 32x32, 128 channels, 4 levels, attention at 16x16, dropout 0.1.
    "ddpm-cifar10": UNetConfig(in_channels=3, image_size=32, base_channels=128, channel_mults=(1, 2, 2, 2),
                               num_res_blocks=2, attention_resolutions=(16,), num_heads=1, dropout=0.1),
}


def unet_preset(name: str, **overrides) -> UNetConfig:
    """A copy of ``UNET_PRESETS[name]`` with ``overrides`` applied."""
    if name not in UNET_PRESETS:
        raise ValueError(f"unknown U-Net preset '{name}'; choose one of {', '.join(UNET_PRESETS)}")
    return dataclasses.replace(UNET_PRESETS[name], **overrides)


# ----------------------------------------------------------------------------- the network


class EmbedSequential(nn.Sequential):
    """A sequence of layers where residual blocks also receive the (time + class) embedding, and
    attention blocks the context (text) and its mask."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None,  # type: ignore[override]
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)  # (B, C, H, W)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, context, context_mask)  # (B, C, H, W)
            else:
                x = layer(x)  # (B, C, H', W')
        return x


def check_levels(cfg: UNetConfig, *attention_fields: str) -> None:
    """A ValueError unless ``cfg.image_size`` halves once between each pair of levels and every size listed
    in the config fields ``attention_fields`` is the feature-map size of a level."""
    sizes, levels = cfg.resolutions, len(cfg.channel_mults)
    if cfg.image_size % 2 ** (levels - 1):
        raise ValueError(f"image_size {cfg.image_size} does not divide by 2**{levels - 1} "
                         f"(one halving between each of the {levels} levels)")
    for name in attention_fields:
        missing = [r for r in getattr(cfg, name) if r not in sizes]
        if missing:
            raise ValueError(f"{name} {missing} match no level: for image_size {cfg.image_size} "
                             f"and {levels} levels the feature maps are {sizes}")


def unet_levels(cfg: UNetConfig, res: Callable[..., nn.Module], attention: Callable[..., list[nn.Module]],
                sequential: type[nn.Sequential]) -> tuple[nn.ModuleList, nn.Sequential, nn.ModuleList, int]:
    """The U-Net's level layout (Ronneberger et al. 2015, as in Ho et al. 2020 and ADM), shared by the
    image and the space-time U-Net: the contracting path (per level ``num_res_blocks`` residual blocks,
    each followed by ``attention(width, feature-map size)``, then a downsampling block between levels),
    the middle (Res, ``attention(width, size, middle=True)``, Res) and the expansive path, whose blocks
    take the previous output concatenated with the skip saved at the same depth. ``res(c_in, c_out,
    resample=None)`` makes a residual block; ``sequential`` chains one block's layers. Returns (down,
    mid, up, the output width); the first skip is the input convolution's output."""
    base, sizes = cfg.base_channels, cfg.resolutions
    ch = base * cfg.channel_mults[0]
    skips = [ch]  # the width of every output that a skip connection will carry
    down = nn.ModuleList()
    for level, mult in enumerate(cfg.channel_mults):
        for _ in range(cfg.num_res_blocks):
            down.append(sequential(res(ch, base * mult), *attention(base * mult, sizes[level])))
            ch = base * mult
            skips.append(ch)
        if level < len(cfg.channel_mults) - 1:
            down.append(sequential(res(ch, ch, "down") if cfg.resblock_updown else Downsample(ch)))
            skips.append(ch)
    mid = sequential(res(ch, ch), *attention(ch, sizes[-1], middle=True), res(ch, ch))  # at the lowest resolution
    up = nn.ModuleList()
    for level, mult in reversed(list(enumerate(cfg.channel_mults))):
        for i in range(cfg.num_res_blocks + 1):
            layers = [res(ch + skips.pop(), base * mult), *attention(base * mult, sizes[level])]
            ch = base * mult
            if level > 0 and i == cfg.num_res_blocks:
                layers.append(res(ch, ch, "up") if cfg.resblock_updown else Upsample(ch))
            up.append(sequential(*layers))
    assert not skips, "every saved skip is consumed"
    return down, mid, up, ch


class UNet(nn.Module):
    """Noisy images x_t (B, C, H, W), timesteps t (B,) float, labels y (B,) or None, and with
    ``context_dim`` a context (B, S, context_dim) with its key mask (B, S) (True = real token)
    -> (B, C_out, H, W).

    ``y == num_classes`` (or ``y=None`` on a class-conditional net) is the null label, the
    unconditional model of classifier-free guidance; for text the null caption is an input of the
    text encoder, so a context is always given. H and W must divide by 2**(levels - 1); any
    such size works, with attention at the levels chosen for ``image_size``.
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        check_levels(cfg, "attention_resolutions")
        self.out_channels = cfg.out_channels or cfg.in_channels
        base, emb_dim, g = cfg.base_channels, cfg.time_embed_mult * cfg.base_channels, cfg.groups

        def res(c_in: int, c_out: int, resample: Literal["up", "down"] | None = None) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.dropout, g, cfg.scale_shift_norm, resample)

        def attn(c: int) -> AttentionBlock:
            return AttentionBlock(c, cfg.num_heads, cfg.head_channels, g, cfg.context_dim)

        # timestep (and class) embedding: sinusoidal features -> Linear, SiLU, Linear (Ho et al.)
        self.cond = TimestepClassEmbedding(base, emb_dim, cfg.num_classes, owner="U-Net")
        if cfg.context_dim and cfg.context_pool:  # the pooled context joins it (Imagen, sec. 2.4)
            self.context_embed = nn.Linear(cfg.context_dim, emb_dim)

        def attention(c: int, size: int, middle: bool = False) -> list[nn.Module]:
            return [attn(c)] if middle or size in cfg.attention_resolutions else []

        self.conv_in = conv3x3(cfg.in_channels, base * cfg.channel_mults[0])
        self.down, self.mid, self.up, ch = unet_levels(cfg, res, attention, EmbedSequential)

        self.norm_out = group_norm(ch, g)
        self.conv_out = zero_init(conv3x3(ch, self.out_channels))

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Timesteps (B,) float and labels (B,) or None -> the conditioning vector (B, emb_dim)."""
        return self.cond(t, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.context_dim and context is None:
            raise ValueError(f"this U-Net cross-attends to a context (context_dim={self.cfg.context_dim}); pass "
                             f"context (B, S, {self.cfg.context_dim}), e.g. the null caption's encoding")
        if not self.cfg.context_dim and context is not None:
            raise ValueError("this U-Net has no cross-attention (context_dim=0) but was given a context")
        if context is not None and context.shape[-1] != self.cfg.context_dim:
            raise ValueError(f"context width {context.shape[-1]} does not match context_dim {self.cfg.context_dim}")
        levels = len(self.cfg.channel_mults)
        factor = 2 ** (levels - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"input size {tuple(x.shape[-2:])} does not divide by {factor} = 2**({levels} - 1): "
                             f"a U-Net with {levels} levels halves it {levels - 1} times; pad or resize the images")
        if t.ndim == 0:
            t = t.expand(x.shape[0])  # (B,)
        emb = self.embed(t, y)  # (B, emb_dim)
        if context is not None and self.cfg.context_pool:
            keep = (context_mask if context_mask is not None else torch.ones(context.shape[:2], device=x.device))
            keep = keep[..., None].to(context.dtype)  # (B, S, 1): 1 for real tokens
            pooled = (context * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, context_dim): mean of the real tokens
            emb = emb + self.context_embed(pooled).to(emb.dtype)  # (B, emb_dim)
        h = self.conv_in(x)  # (B, base * mults[0], H, W)
        hs = [h]  # skip stack
        for block in self.down:
            h = block(h, emb, context, context_mask)  # (B, base * mult, H / 2^level, W / 2^level)
            hs.append(h)  # saved for the expansive path
        h = self.mid(h, emb, context, context_mask)  # (B, base * mults[-1], H / 2^(L-1), W / 2^(L-1))
        for block in self.up:
            h = block(torch.cat([h, hs.pop()], dim=1), emb, context, context_mask)  # (B, base * mult, ...)
        h = F.silu(self.norm_out(h))  # (B, base * mults[0], H, W)
        return self.conv_out(h)  # (B, C_out, H, W)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
