"""The baselines' networks: a DCGAN-style up-sampling conv net and its mirror, plus a plain MLP.

The four roles of the GAN and VAE baselines need only two shapes of network:

- :class:`ConvUp`, vector -> image: the DCGAN generator (Radford et al. 2016, "Unsupervised
  Representation Learning with Deep Convolutional Generative Adversarial Networks", sec. 3 and
  fig. 1): project and reshape to a (4w, R/4, R/4) feature map, two stride-2 4x4 transposed convs
  that double the side and halve the width, a 3x3 conv to the output channels. BatchNorm (Ioffe &
  Szegedy 2015) + ReLU follow every hidden layer, as in DCGAN. It is the GAN's generator and the
  VAE's decoder.
- :class:`ConvDown`, image -> vector: the same layers mirrored (3x3 conv, two stride-2 4x4 convs,
  a linear read-out) with LeakyReLU(0.2) as in the DCGAN discriminator. It is the GAN's
  discriminator and the VAE's encoder.

``w`` is ``width``; the one number that scales both nets' parameter counts (about quadratically),
so contenders in the arena can be matched. Any side R divisible by 4 works (28 for Fashion-MNIST,
32 for shapes).

Points in the plane have no spatial structure, so their nets are :class:`MLP` stacks.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["batch", "none"]


def _norm(kind: Norm, channels: int, dims: int = 2) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)


def _check_side(resolution: int, owner: str) -> None:
    if resolution < 4 or resolution % 4:
        raise ValueError(f"{owner} needs an image side divisible by 4 (two stride-2 levels), got {resolution}")


class ConvUp(nn.Module):
    """Latent vectors (B, in_dim) -> feature maps (B, out_channels, R, R), unbounded (no final activation)."""

    def __init__(self, in_dim: int, out_channels: int, resolution: int, width: int = 32, norm: Norm = "batch"):
        """``in_dim``: latent size.  ``out_channels``: image channels (or 2x for a mean and a scale).
        ``resolution``: output side R, divisible by 4.  ``width``: channels at full resolution; R/2 has
        2x and R/4 has 4x.  ``norm``: BatchNorm after every hidden layer (DCGAN) or none."""
        super().__init__()
        _check_side(resolution, "ConvUp")
        self.base = resolution // 4
        self.width = width
        self.project = nn.Linear(in_dim, 4 * width * self.base**2, bias=norm == "none")
        self.norm0 = _norm(norm, 4 * width)
        # kernel 4, stride 2, padding 1: exactly doubles the side (DCGAN's "fractionally-strided" conv)
        self.up1 = nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=norm == "none")
        self.norm1 = _norm(norm, 2 * width)
        self.up2 = nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=norm == "none")
        self.norm2 = _norm(norm, width)
        self.out = nn.Conv2d(width, out_channels, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], 4 * self.width, self.base, self.base)  # (B, 4w, R/4, R/4)
        h = self.act(self.norm0(h))  # (B, 4w, R/4, R/4)
        h = self.act(self.norm1(self.up1(h)))  # (B, 2w, R/2, R/2)
        h = self.act(self.norm2(self.up2(h)))  # (B, w, R, R)
        return self.out(h)  # (B, out_channels, R, R)


class ConvDown(nn.Module):
    """Images (B, in_channels, R, R) -> vectors (B, out_dim): logits (discriminator) or posterior
    parameters (encoder)."""

    def __init__(self, in_channels: int, out_dim: int, resolution: int, width: int = 32, norm: Norm = "none"):
        """``in_channels``: image channels.  ``out_dim``: 1 for a discriminator, 2 x latent for an
        encoder.  ``resolution``: input side R, divisible by 4.  ``width``: channels at full
        resolution (2x at R/2, 4x at R/4).  ``norm``: BatchNorm after the strided convs, or none
        (the default: a gradient penalty on the discriminator assumes each item is scored alone)."""
        super().__init__()
        _check_side(resolution, "ConvDown")
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.down1 = nn.Conv2d(width, 2 * width, 4, 2, 1)  # halves the side
        self.norm1 = _norm(norm, 2 * width)
        self.down2 = nn.Conv2d(2 * width, 4 * width, 4, 2, 1)
        self.norm2 = _norm(norm, 4 * width)
        self.head = nn.Linear(4 * width * (resolution // 4) ** 2, out_dim)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.stem(x))  # (B, w, R, R)
        h = self.act(self.norm1(self.down1(h)))  # (B, 2w, R/2, R/2)
        h = self.act(self.norm2(self.down2(h)))  # (B, 4w, R/4, R/4)
        return self.head(h.flatten(1))  # (B, out_dim)


class MLP(nn.Module):
    """(B, in_dim) -> (B, out_dim) through ``depth`` hidden layers of ``width`` units: the 2-D points'
    generator, discriminator, encoder and decoder. ``act``: "relu" (generator, decoder) or
    "leaky_relu" (slope 0.2; discriminator, encoder)."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 128, depth: int = 3,
                 act: Literal["relu", "leaky_relu"] = "relu"):
        super().__init__()
        dims = [in_dim] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(dims[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, out_dim)
