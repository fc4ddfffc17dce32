"""The KL-regularised convolutional autoencoder of latent diffusion.

Rombach et al. 2022 ("High-Resolution Image Synthesis with Latent Diffusion Models", sec. 3 and
appendix G) train diffusion not on pixels but in the latent space of an autoencoder that
compresses an H x W image by a factor f into an (H/f) x (W/f) x c latent. The encoder outputs
the mean and log-variance of a diagonal Gaussian posterior q(z | x), and a small KL penalty
toward N(0, I) (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", appendix B) keeps the
latent space from drifting to arbitrary scales ("KL-reg", sec. 3). Their variant with a weight
of about 1e-6 is mostly an autoencoder: the KL barely limits what the latents carry.

The network follows LDM's ``AutoencoderKL`` (the Encoder / Decoder of Esser et al. 2021, "Taming
Transformers"), at this project's scale:

- encoder: 3x3 conv; per level ``num_res_blocks`` residual blocks, then a stride-2 conv for the
  first log2(f) levels; a middle Res, self-attention, Res at the latent resolution; GroupNorm,
  SiLU and a 3x3 conv to 2c channels (mean and log-variance);
- decoder, the mirror: 3x3 conv from c channels; middle Res, Attn, Res; per level (deepest first)
  ``num_res_blocks + 1`` residual blocks, then nearest-neighbour 2x + conv where the encoder
  halved; GroupNorm, SiLU, 3x3 conv to the image channels. The output is unbounded (no tanh);
  callers clamp to [-1, 1] when they want images.

LDM's 1x1 "quant_conv" / "post_quant_conv" around the latent are left out: each follows or precedes
a linear conv, so they add parameters, not expressiveness. The perceptual (LPIPS) and patch-GAN
losses LDM adds for sharp 256x256 photographs are *not* needed here: on 28x28 Fashion-MNIST and
32x32 shapes an L1 or MSE reconstruction loss alone reconstructs well (see
:func:`twopaths.paradigms.latent.autoencoder_loss`).

The self-attention, GroupNorm and resampling convs are the U-Net's, shared in :mod:`twopaths.nn.blocks`.
The U-Net's ``ResBlock`` needs a timestep embedding, which an autoencoder has none of, so
:class:`~twopaths.nn.blocks.ResnetBlock` is the same block without that input (as LDM's ``ResnetBlock``
with ``temb_channels=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.errors import ConfigError
from twopaths.nn.blocks import AttentionBlock, Downsample, ResnetBlock, Upsample, conv3x3, group_norm
from twopaths.nn.distributions import DiagonalGaussian


@dataclass
class AutoencoderConfig:
    in_channels: int = 1  # image channels; the models set it from the data (1 Fashion-MNIST, 3 shapes)
    latent_channels: int = 4  # c, channels of the latent (LDM: 3-4 for RGB; 2-4 suit grey images)
    base_channels: int = 32  # width of the first (full-resolution) level (LDM: 128 for 256x256 RGB)
    channel_mults: tuple[int, ...] = (1, 2, 2)  # level i has base_channels * channel_mults[i] channels
    num_res_blocks: int = 1  # residual blocks per level in the encoder (the decoder has one more)
    factor: int = 4  # f, a power of two: the first log2(f) levels halve the side (28 -> 7 for f=4, 32 -> 16 for f=2)
    mid_attention: bool = True  # self-attention between the two middle residual blocks (LDM's AEs have it)
    groups: int = 32  # GroupNorm groups (the largest divisor of the width if it does not divide)
    kl_weight: float = 1e-6  # weight of KL(q(z|x) || N(0, I)) against the reconstruction error (LDM: 1e-6)
    recon: Literal["l1", "mse"] = "l1"  # reconstruction error per pixel (LDM: L1, plus the perceptual loss left out)

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        self.check()

    def check(self, key: str = "arch.autoencoder") -> None:
        """Raise a :class:`ConfigError` naming ``key.field`` for a value that cannot work. (``--set``
        changes fields one by one after construction, so the models call this again when building.)"""
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ConfigError(f"config key '{key}.channel_mults' needs at least one level, each >= 1, "
                              f"got {list(self.channel_mults)}")
        if self.factor < 1 or self.factor & (self.factor - 1):
            raise ConfigError(f"config key '{key}.factor' must be a power of two (1, 2, 4, ...), got {self.factor}")
        if len(self.channel_mults) < self.downsamples + 1:
            raise ConfigError(f"config key '{key}.factor': {self.factor} halves the side {self.downsamples} times, "
                              f"which needs {self.downsamples + 1} levels, but '{key}.channel_mults' "
                              f"{list(self.channel_mults)} has {len(self.channel_mults)}")
        for name in ("in_channels", "latent_channels", "base_channels", "num_res_blocks", "groups"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config key '{key}.{name}' must be >= 1, got {getattr(self, name)}")
        if self.kl_weight < 0:
            raise ConfigError(f"config key '{key}.kl_weight' must be >= 0, got {self.kl_weight}")

    @property
    def downsamples(self) -> int:
        """How many times the side is halved: log2(factor)."""
        return self.factor.bit_length() - 1

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        """(c, R/f, R/f) for R x R images; R must divide by the factor."""
        if resolution % self.factor:
            raise ConfigError(f"image side {resolution} does not divide by the autoencoder's factor {self.factor}; "
                             f"choose a factor that divides it (28: 1, 2 or 4; 32: up to 32)")
        return self.latent_channels, resolution // self.factor, resolution // self.factor


def _middle(ch: int, cfg: AutoencoderConfig) -> nn.Sequential:
    """Res, self-attention, Res at the latent resolution (attention left out if ``mid_attention`` is off)."""
    attn = [AttentionBlock(ch, num_heads=1, groups=cfg.groups)] if cfg.mid_attention else []
    return nn.Sequential(ResnetBlock(ch, ch, cfg.groups), *attn, ResnetBlock(ch, ch, cfg.groups))


class Encoder(nn.Module):
    """Images (B, C, R, R) -> posterior parameters (B, 2c, R/f, R/f): mean and log-variance stacked."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        ch = widths[0]
        self.conv_in = conv3x3(cfg.in_channels, ch)
        layers: list[nn.Module] = []
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResnetBlock(ch, width, cfg.groups))
                ch = width
            if level < cfg.downsamples:
                layers.append(Downsample(ch))  # stride-2 3x3 conv: R -> R/2
        self.down = nn.Sequential(*layers)
        self.mid = _middle(ch, cfg)
        self.norm_out = group_norm(ch, cfg.groups)
        self.conv_out = conv3x3(ch, 2 * cfg.latent_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (B, w0, R, R)
        h = self.down(h)  # (B, w_last, R/f, R/f)
        h = self.mid(h)  # (B, w_last, R/f, R/f)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 2c, R/f, R/f)


class Decoder(nn.Module):
    """Latents (B, c, R/f, R/f) -> images (B, C, R, R), unbounded."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        ch = widths[-1]
        self.conv_in = conv3x3(cfg.latent_channels, ch)
        self.mid = _middle(ch, cfg)
        layers: list[nn.Module] = []
        for level in reversed(range(len(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResnetBlock(ch, widths[level], cfg.groups))
                ch = widths[level]
            if 0 < level <= cfg.downsamples:
                layers.append(Upsample(ch))  # nearest 2x + 3x3 conv, where the encoder halved
        self.up = nn.Sequential(*layers)
        self.norm_out = group_norm(ch, cfg.groups)
        self.conv_out = conv3x3(ch, cfg.in_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)  # (B, w_last, R/f, R/f)
        h = self.mid(h)  # (B, w_last, R/f, R/f)
        h = self.up(h)  # (B, w0, R, R)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, R, R)


class Autoencoder(nn.Module):
    """The KL autoencoder: ``encode(x) -> DiagonalGaussian`` over (B, c, R/f, R/f), ``decode(z) -> x``."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def _check(self, x: torch.Tensor) -> None:
        f = self.cfg.factor
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"the autoencoder takes ({self.cfg.in_channels}-channel) images (B, "
                             f"{self.cfg.in_channels}, H, W), got shape {tuple(x.shape)}")
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} does not divide by the autoencoder's factor {f}")

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """Images (B, C, H, W) in [-1, 1] -> the posterior q(z | x) over (B, c, H/f, W/f)."""
        self._check(x)
        mean, logvar = self.encoder(x).float().chunk(2, dim=1)  # (B, c, H/f, W/f) each, fp32 under autocast
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, c, H/f, W/f) -> images (B, C, H, W), unbounded."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, DiagonalGaussian]:
        """(reconstruction from a posterior sample, or from its mean; the posterior)."""
        posterior = self.encode(x)
        z = posterior.sample() if sample else posterior.mode()  # (B, c, H/f, W/f)
        return self.decode(z), posterior

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        return self.cfg.latent_shape(resolution)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
