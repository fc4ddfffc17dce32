"""A generative adversarial network trained by simultaneous gradient descent through one scalar loss.

Two players (Goodfellow et al. 2014, "Generative Adversarial Nets"): a generator G maps noise
z ~ N(0, I) to data, a discriminator D scores data with a logit. With s = sigmoid,

    L_D = -log s(D(x)) - log(1 - s(D(G(z))))    = softplus(-D(x)) + softplus(D(G(z)))
    L_G = -log s(D(G(z)))                        = softplus(-D(G(z)))

L_G is the *non-saturating* generator loss of Goodfellow et al. (sec. 3), whose gradient stays
large while D easily rejects G's samples, unlike the minimax log(1 - s(D(G(z)))).

**One loss, two players.** The shared trainer has one optimizer and calls ``loss(batch)`` once per
step, so the GAN returns ``L = L_D + L_G`` built so that one backward pass gives each player only
the gradient of its own loss:

- L_D sees the fake batch *detached* (``fake.detach()``): no gradient reaches G through it;
- L_G scores the fake batch with D's parameters *detached* (``torch.func.functional_call`` with
  ``p.detach()``): the gradient flows through D into G, but none lands on D's parameters.

So dL/dtheta_D = dL_D/dtheta_D and dL/dtheta_G = dL_G/dtheta_G exactly, and an optimizer step
moves both players at once from the same point: *simultaneous* gradient descent. Radford et al.
2016 (DCGAN) and most GAN code *alternate* (a D step, then a G step against the updated D).
Mescheder et al. 2018 ("Which Training Methods for GANs do actually Converge?", sec. 2-3) show
that unregularised simultaneous GD does not converge even on a one-dimensional example (nor does
alternating GD), and that a zero-centred gradient penalty on real data,

    R1 = gamma/2 * E_x ||grad_x D(x)||^2        (Mescheder et al. 2018, eq. 9)

makes both converge locally. R1 belongs to D alone; it is on by default (``r1_gamma``). Its
gradient needs a double backward through D, so it is estimated on a few real items
(``r1_batch``) and paid only while training (under ``no_grad``, as in validation, it is left out).

The generator ends in tanh for images (data in [-1, 1], as DCGAN) and is linear for points.
Adam with beta1 = 0.5 (Radford et al. 2016, sec. 4) is set by the model presets, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from twopaths.paradigms.base import Paradigm, unconditional


@dataclass
class GANConfig:
    latent_dim: int = 64  # size of the noise z ~ N(0, I) fed to the generator
    r1_gamma: float = 1.0  # gamma of the R1 penalty on D (Mescheder et al. 2018, eq. 9); 0 turns it off
    r1_batch: int = 16  # real items the penalty is estimated on (its double backward is the costly part)


def _full(t: torch.Tensor) -> torch.Tensor:
    """Losses in at least fp32 (bf16 autocast outputs are upcast; float64 stays float64)."""
    return t if t.dtype == torch.float64 else t.float()


class GAN(Paradigm):
    """G: ``generator(z (B, latent_dim)) -> (B, *sample_shape)``; D: ``discriminator(x) -> (B, 1)`` logits.

    ``last_metrics`` holds the latest training step's player losses (detached tensors: ``d_loss``,
    ``g_loss``, ``r1``, ``d_real`` and ``d_fake``, D's mean probability that real / fake items are
    real), since the trainer logs only the total.
    """

    item_name = "images"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, cfg: GANConfig,
                 sample_shape: tuple[int, ...], data_key: str = "image", squash: bool = True):
        """``sample_shape``: one item's shape, (C, H, W) or (2,).  ``squash``: tanh on G's output
        (images in [-1, 1]); False for unbounded data such as 2-D points."""
        super().__init__()
        self.generator, self.discriminator, self.cfg = generator, discriminator, cfg
        self.sample_shape, self.data_key, self.squash = tuple(sample_shape), data_key, squash
        self.last_metrics: dict[str, torch.Tensor] = {}
        if data_key != "image":
            self.item_name = "samples"

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Noise (B, latent_dim) -> samples (B, *sample_shape)."""
        x = self.generator(z)  # (B, *sample_shape)
        return torch.tanh(x) if self.squash else x

    def _score_frozen_d(self, x: torch.Tensor) -> torch.Tensor:
        """D(x) with D's parameters detached: gradients reach ``x`` (and G behind it), never D."""
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        frozen.update(self.discriminator.named_buffers())
        return functional_call(self.discriminator, frozen, (x,))  # (B, 1)

    def losses(self, batch: dict[str, Any], z: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every term of one step: ``d_loss`` (with R1), ``g_loss``, ``r1``, ``total`` = d_loss + g_loss,
        and D's mean probabilities ``d_real``, ``d_fake``. ``z`` (B, latent_dim) fixes the noise."""
        real = batch[self.data_key]
        n = real.shape[0]
        if z is None:
            z = torch.randn(n, self.cfg.latent_dim, device=real.device)
        fake = self.generate(z)  # (B, *sample_shape), one G pass serves both players

        logits = self.discriminator(torch.cat([real, fake.detach()]))  # (2B, 1): D never sees G's graph
        real_logit, fake_logit = _full(logits[:n]), _full(logits[n:])
        d_loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        r1 = torch.zeros((), device=real.device)
        if self.cfg.r1_gamma > 0 and torch.is_grad_enabled():
            # gamma/2 E||grad_x D(x)||^2 on real data (Mescheder et al. 2018, eq. 9), the expectation
            # estimated on the first r1_batch items: D has no batch statistics, so each item's
            # gradient is its own and a subset is an unbiased estimate at a fraction of the cost
            sub = real[: self.cfg.r1_batch].detach().requires_grad_(True)  # (b, *sample_shape)
            (grad,) = torch.autograd.grad(_full(self.discriminator(sub)).sum(), sub, create_graph=True)
            r1 = _full(grad).pow(2).flatten(1).sum(1).mean()
            d_loss = d_loss + 0.5 * self.cfg.r1_gamma * r1

        g_logit = _full(self._score_frozen_d(fake))  # (B, 1): gradient flows to G only
        g_loss = F.softplus(-g_logit).mean()  # non-saturating (Goodfellow et al. 2014, sec. 3)
        return {"total": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss, "r1": r1,
                "d_real": torch.sigmoid(real_logit).mean(), "d_fake": torch.sigmoid(fake_logit).mean()}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        terms = self.losses(batch)
        if self.training and torch.is_grad_enabled():
            self.last_metrics = {k: v.detach() for k, v in terms.items() if k != "total"}
        return terms["total"]

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples (n, *sample_shape): images in [-1, 1] or points. ``cond`` must be None
        (the GAN is unconditional); ``generator`` seeds z (drawn on the CPU, so the same seed gives
        the same samples on any device)."""
        unconditional(self, cond)
        device = next(self.parameters()).device
        z = torch.randn(n, self.cfg.latent_dim, generator=generator).to(device)  # (n, latent_dim)
        return _full(self.generate(z))
