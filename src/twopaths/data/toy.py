"""2-D Gaussian mixtures with known modes: the standard test of mode coverage.

Because every mode is known, a generator's samples can be scored exactly: how many modes it
reaches and what fraction of samples are "high quality" (within a few standard deviations of
some mode). Both mixtures are the usual GAN mode-collapse benchmarks:

- ``ring8``: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02 (Metz et al., 2017,
  "Unrolled Generative Adversarial Networks"; also Srivastava et al., 2017, "VEEGAN").
- ``grid25``: 25 Gaussians on the grid {-4, -2, 0, 2, 4}^2, std 0.05 (Srivastava et al., 2017,
  "VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational Learning").

Components are equally weighted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from twopaths.errors import ConfigError

__all__ = ["MIXTURES", "MixtureSpec", "PointDataset", "mixture_modes", "sample_mixture"]


@dataclass(frozen=True)
class MixtureSpec:
    """An isotropic, equally weighted Gaussian mixture in 2-D."""

    means: tuple[tuple[float, float], ...]  # K (x, y) component centres
    std: float  # the same standard deviation for every component and axis
    description: str


def _ring(k: int, radius: float) -> tuple[tuple[float, float], ...]:
    return tuple(
        (radius * math.cos(2 * math.pi * i / k), radius * math.sin(2 * math.pi * i / k))
        for i in range(k)
    )


def _grid(values: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for x in values for y in values)


MIXTURES: dict[str, MixtureSpec] = {
    "ring8": MixtureSpec(
        means=_ring(8, radius=2.0),
        std=0.02,
        description="8 Gaussians on a circle of radius 2, std 0.02 (Metz et al. 2017)",
    ),
    "grid25": MixtureSpec(
        means=_grid((-4.0, -2.0, 0.0, 2.0, 4.0)),
        std=0.05,
        description="25 Gaussians on the grid {-4,-2,0,2,4}^2, std 0.05 (Srivastava et al. 2017)",
    ),
}


def _spec(name: str) -> MixtureSpec:
    try:
        return MIXTURES[name]
    except KeyError:
        raise ConfigError(
            f"unknown mixture {name!r}; known mixtures: {', '.join(sorted(MIXTURES))}"
        ) from None


def mixture_modes(name: str) -> tuple[torch.Tensor, float]:
    """``(means (K, 2) float32, std)`` of the named mixture."""
    spec = _spec(name)
    return torch.tensor(spec.means, dtype=torch.float32), spec.std


def sample_mixture(name: str, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points from the named mixture, deterministically for a given ``seed``.

    Returns ``(x float32 (n, 2), label int64 (n,))``, ``label`` being the component each point
    was drawn from.
    """
    if n < 0:
        raise ConfigError(f"sample_mixture: n must be >= 0, got {n}")
    means, std = mixture_modes(name)  # (K, 2)
    generator = torch.Generator().manual_seed(seed)
    label = torch.randint(len(means), (n,), generator=generator)  # (n,) int64, uniform weights
    noise = torch.randn(n, 2, generator=generator)  # (n, 2)
    x = means[label] + std * noise  # (n, 2) float32
    return x, label


class PointDataset(Dataset):
    """Points in the plane with their component labels: items ``{"x": (2,), "label": scalar}``."""

    def __init__(self, x: torch.Tensor, label: torch.Tensor) -> None:
        x, label = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(label)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must be (N, 2), got {tuple(x.shape)}")
        if label.shape != (len(x),):
            raise ValueError(f"label must be ({len(x)},), got {tuple(label.shape)}")
        self.x = x  # (N, 2) float32
        self.label = label.to(torch.int64)  # (N,) int64

    @classmethod
    def from_mixture(cls, name: str, n: int, seed: int = 0) -> PointDataset:
        """``n`` points sampled from the named mixture (see :func:`sample_mixture`)."""
        return cls(*sample_mixture(name, n, seed))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "label": self.label[index]}
