"""Gaussian densities, divergences and the diagonal-Gaussian posterior: the pure probability the
paradigms and the autoencoder share.

- :func:`gaussian_log_density`: log N(x; mean, sigma^2) with sigma = e^(log_scale), elementwise, in nats::

      log N(x; m, s^2) = -1/2 log(2 pi) - log s - (x - m)^2 / (2 s^2)

- :func:`normal_kl`: KL between two diagonal Gaussians, elementwise, in nats::

      KL(N(m1, v1) || N(m2, v2)) = 1/2 (-1 + log v2 - log v1 + v1 / v2 + (m1 - m2)^2 / v2)

- :func:`gaussian_kl_to_standard`: its special case against N(0, I), summed over the last dim
  (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", appendix B)::

      KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) >= 0

- :func:`discretized_gaussian_log_likelihood`: log P(x) of data on 256 levels in [-1, 1], the
  Gaussian integrated over each pixel's bin with open-ended edge bins (Ho et al. 2020, "Denoising
  Diffusion Probabilistic Models", eq. 13); the VAE and the diffusion bound both score images with it,
  so their bits/dim mean the same thing.
- :class:`DiagonalGaussian`: the posterior q(z | x) = N(mean, diag(exp(logvar))) of the latent
  diffusion autoencoder, with the reparameterised sample (Kingma & Welling 2014, sec. 2.4).
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, e^(2 log_scale)), elementwise, in nats."""
    return -0.5 * LOG_2PI - log_scale - 0.5 * ((x - mean) * torch.exp(-log_scale)).pow(2)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def gaussian_kl_to_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, I)) summed over the last dim, in nats (Kingma & Welling 2014, app. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log P(x) for data on ``bins`` levels in [-1, 1] under N(mean, e^(2 log_scale)) integrated over
    each bin, with open-ended edge bins (Ho et al. 2020, eq. 13), elementwise, in nats."""
    half = 1.0 / (bins - 1)
    centered = x - mean
    inv = torch.exp(-log_scale)
    cdf_plus = _std_normal_cdf(inv * (centered + half))
    cdf_min = _std_normal_cdf(inv * (centered - half))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


class DiagonalGaussian:
    """The posterior q(z | x) = N(mean, diag(exp(logvar))) over (B, c, h, w) latents."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean  # (B, c, h, w)
        self.logvar = logvar.clamp(-30.0, 20.0)  # (B, c, h, w); clamped as in LDM so exp() stays finite
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + std * eps, eps ~ N(0, I): the reparameterisation (Kingma & Welling 2014, sec. 2.4)."""
        eps = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype,
                          device=self.mean.device if generator is None else generator.device)
        return self.mean + self.std * eps.to(self.mean.device)  # (B, c, h, w)

    def mode(self) -> torch.Tensor:
        """The most likely latent, the mean (B, c, h, w)."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q(z | x) || N(0, I)) summed over the latent's dimensions, (B,) nats."""
        return gaussian_kl_to_standard(self.mean.flatten(1).float(), self.logvar.flatten(1).float())
