"""A variational autoencoder, scored in bits per dimension like the diffusion bound.

Kingma & Welling 2014 ("Auto-Encoding Variational Bayes"): a latent z ~ p(z) = N(0, I), a decoder
p(x | z), and an encoder q(z | x) = N(mu(x), diag sigma^2(x)) trained together by maximising the
evidence lower bound (eq. 3)

    log p(x) >= ELBO(x) = E_{q(z|x)}[log p(x | z)] - KL(q(z | x) || p(z))

with the reparameterisation z = mu + sigma * eps, eps ~ N(0, I) (sec. 2.4), and the KL in closed
form (appendix B): KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) >= 0.

**Likelihood.** So that bits/dim means the same thing as the diffusion model's bound, images (on
256 levels in [-1, 1]) use the *discretised* Gaussian of Ho et al. 2020 (eq. 13; the same function,
:func:`~twopaths.nn.distributions.discretized_gaussian_log_likelihood`): the decoder outputs a
mean and a log-scale per pixel and P(x | z) integrates the Gaussian over each pixel's bin. The
bound is then on the discrete -log P(x), exactly what diffusion's VLB bounds. 2-D points are
continuous: a Gaussian density in nats (its "bits per dim" is a differential quantity and may be
negative).

**Tighter bound.** :meth:`VAE.nll_bits_per_dim` can also report the importance-weighted bound of
Burda et al. 2016 ("Importance Weighted Autoencoders", eq. 8),
log p(x) >= E[log 1/K sum_k p(x, z_k) / q(z_k | x)], which rises monotonically to log p(x) with K.

``loss`` is -ELBO per dimension in nats. While training the KL can be reweighted: ``beta`` != 1 as
in Higgins et al. 2017's beta-VAE, and a linear *warm-up* of its weight from 0 over ``kl_warmup``
steps (Bowman et al. 2016, "Generating Sentences from a Continuous Space", sec. 3.1; Sonderby et
al. 2016, "Ladder Variational Autoencoders", sec. 2.3), which keeps a decoder with a learned
variance from explaining the data by its noise alone before the latents are used (posterior
collapse). Evaluation always uses the true ELBO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from twopaths.nn.distributions import discretized_gaussian_log_likelihood, gaussian_kl_to_standard, gaussian_log_density
from twopaths.paradigms.base import Paradigm, unconditional

@dataclass
class VAEConfig:
    latent_dim: int = 32  # size of z
    beta: float = 1.0  # weight of the KL term while training (1 = the ELBO; Higgins et al. 2017)
    kl_warmup: int = 0  # training steps over which the KL weight ramps linearly from 0 to beta (0 = off)
    iw_samples: int = 1  # K of the importance-weighted bound in nll_bits_per_dim (1 = the ELBO itself)
    min_log_scale: float = -7.0  # floor of the decoder's log-scale (keeps the density finite)


def _full(t: torch.Tensor) -> torch.Tensor:
    """Network outputs in at least fp32 (bf16 autocast outputs are upcast; float64 stays float64)."""
    return t if t.dtype == torch.float64 else t.float()


class VAE(Paradigm):
    """Encoder ``x -> (B, 2 * latent_dim)`` (mu, log sigma^2); decoder ``z -> (B, 2C, H, W)`` or
    ``(B, 2D)`` (mean, log-scale along dim 1)."""

    item_name = "images"

    def __init__(self, encoder: nn.Module, decoder: nn.Module, cfg: VAEConfig, sample_shape: tuple[int, ...],
                 data_key: str = "image", discrete: bool = True):
        """``sample_shape``: one item's shape, (C, H, W) or (2,).  ``discrete``: data on 256 levels in
        [-1, 1] (images; discretised likelihood) or continuous (points; Gaussian density)."""
        super().__init__()
        self.encoder, self.decoder, self.cfg = encoder, decoder, cfg
        self.sample_shape, self.data_key, self.discrete = tuple(sample_shape), data_key, discrete
        self.num_classes = 0  # unconditional (the eval CLI asks)
        # training steps seen, for the KL warm-up (a buffer: checkpointed, so a resumed run continues the ramp)
        self.register_buffer("kl_steps", torch.zeros((), dtype=torch.long))
        if data_key != "image":
            self.item_name = "samples"

    # ------------------------------------------------------------------ the two halves

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data (B, *sample_shape) -> posterior mean and log-variance, each (B, latent_dim)."""
        mu, logvar = _full(self.encoder(x)).chunk(2, dim=1)  # (B, L), (B, L)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (B, latent_dim) -> mean and log-scale of p(x | z), each (B, *sample_shape)."""
        mean, log_scale = _full(self.decoder(z)).chunk(2, dim=1)  # (B, C, H, W) or (B, D), twice
        return mean, log_scale.clamp(min=self.cfg.min_log_scale)

    def log_likelihood(self, x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over dimensions, (B,) nats: discretised (images) or a density (points)."""
        if self.discrete:
            return discretized_gaussian_log_likelihood(x, mean, log_scale).flatten(1).sum(1)
        return gaussian_log_density(x, mean, log_scale).flatten(1).sum(1)

    # ------------------------------------------------------------------ the bound

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample reconstruction log-likelihood E_q[log p(x|z)] and the KL, each (B,) nats."""
        mu, logvar = self.encode(x)  # (B, L) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation (K&W sec. 2.4)
        mean, log_scale = self.decode(z)
        return self.log_likelihood(_full(x), mean, log_scale), gaussian_kl_to_standard(mu, logvar)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """-ELBO per dimension in nats (the KL weighted by ``beta`` while training)."""
        x = batch[self.data_key]
        rec, kl = self.elbo_terms(x)
        if not (self.training and torch.is_grad_enabled()):
            return (kl - rec).mean() / x[0].numel()
        weight = torch.full((), self.cfg.beta, device=x.device)
        if self.cfg.kl_warmup > 0:  # on-device arithmetic: no host sync per step
            weight = weight * ((self.kl_steps + 1).float() / self.cfg.kl_warmup).clamp(max=1.0)
        self.kl_steps += 1
        return (weight * kl - rec).mean() / x[0].numel()

    def iw_bound(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The importance-weighted bound log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x), (B,) nats
        (Burda et al. 2016, eq. 8); K = 1 is a one-sample ELBO."""
        mu, logvar = self.encode(x)  # (B, L)
        B, L = mu.shape
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(k, B, L, device=x.device, dtype=mu.dtype)
        z = mu + std * eps  # (K, B, L)
        mean, log_scale = self.decode(z.reshape(k * B, L))  # (K*B, ...)
        xs = _full(x).unsqueeze(0).expand(k, *x.shape).reshape(k * B, *x.shape[1:])
        log_px_z = self.log_likelihood(xs, mean, log_scale).view(k, B)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)  # (K, B)
        log_qz = gaussian_log_density(z, mu, 0.5 * logvar).sum(-1)  # (K, B)
        return torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)

    @torch.no_grad()
    def nll_bits_per_dim(self, x: torch.Tensor, y: torch.Tensor | None = None,
                         k: int | None = None) -> dict[str, torch.Tensor]:
        """Upper bounds on -log p(x) in bits per dimension, per sample (B,):

        - ``bits_per_dim``: the tightest bound computed: the importance-weighted one with K =
          ``k`` (default ``cfg.iw_samples``) samples when K > 1, else the ELBO;
        - ``elbo_bits_per_dim``: -ELBO (one z sample);
        - ``prior_bits_per_dim``: its KL(q(z|x) || p(z)) part, the VAE's prior term (as diffusion's L_T).

        ``y`` is accepted for the same call as the diffusion model and ignored (unconditional)."""
        k = k or self.cfg.iw_samples
        to_bits = 1.0 / (x[0].numel() * math.log(2))
        rec, kl = self.elbo_terms(x)
        out = {"elbo_bits_per_dim": (kl - rec) * to_bits, "prior_bits_per_dim": kl * to_bits}
        out["bits_per_dim"] = -self.iw_bound(x, k) * to_bits if k > 1 else out["elbo_bits_per_dim"]
        return out

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means for ``n`` latents z ~ N(0, I): (n, *sample_shape), clamped to [-1, 1] for
        images. ``cond`` must be None (unconditional); ``generator`` seeds z (drawn on the CPU)."""
        unconditional(self, cond)
        device = next(self.parameters()).device
        z = torch.randn(n, self.cfg.latent_dim, generator=generator).to(device)  # (n, L)
        mean, _ = self.decode(z)
        return mean.clamp(-1, 1) if self.discrete else mean
