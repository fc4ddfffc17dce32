"""Latent diffusion: Gaussian diffusion in the latent space of a KL autoencoder.

Rombach et al. 2022 ("High-Resolution Image Synthesis with Latent Diffusion Models") split image
generation in two. A perceptual-compression stage, an autoencoder E, D with z = E(x) of side R/f
(sec. 3, :mod:`twopaths.backbones.autoencoder`), removes the imperceptible detail; a diffusion
model then learns p(z) in that smaller space (sec. 3.2, eq. 2):

    L_LDM = E_{E(x), eps ~ N(0,1), t} || eps - eps_theta(z_t, t) ||^2

and a sample is D(z_0) of a latent drawn by any diffusion sampler.

Two paradigms live here:

- :class:`AutoencoderTraining` trains the autoencoder alone (``twopaths train autoencoder``);
- :class:`LatentDiffusion` trains both stages in *one* run, one after the other, because the
  trainer only ever calls ``loss(batch)``:

  1. for the first ``ae_steps`` optimizer steps, the autoencoder loss (:func:`autoencoder_loss`);
  2. then the autoencoder is frozen, the **latent scale factor** s = 1 / std(z) is computed on the
     first batch of phase 2 (Rombach et al. sec. 4.3.2 and appendix G: the signal-to-noise ratio
     that the latents' scale sets matters, so KL-regularised latents are rescaled to unit standard
     deviation; their code, ``scale_by_std``, estimates it on the first training batch too), and a
     :class:`~twopaths.paradigms.gaussian.GaussianDiffusion` (unchanged) is trained on s * z.
     Latents are posterior *samples* z ~ q(z | x) by default, as in LDM's code (``latent="mean"``
     uses the posterior mean instead).

  Only the active part gets gradients: in phase 1 the diffusion network is not called, in phase
  2 the encoder runs under ``no_grad``. Their ``.grad`` stays ``None`` and AdamW skips parameters
  without a gradient entirely (no moment update, no weight decay), so the inactive part does not
  move. The phase clock (training micro-batches seen), the phase and the scale are buffers: they
  are checkpointed, and a resumed run continues exactly where it stopped.

  The validation loss is the loss of the current phase: the autoencoder loss until the first
  diffusion step, the diffusion loss after it.

Sampling draws s * z with any sampler of :mod:`twopaths.paradigms.samplers`, divides by s and
decodes; class (or caption) conditioning and classifier-free guidance pass straight to the
latent diffusion.

One caveat about the trainer's EMA of the weights (used for evaluation and sampling): it averages
the autoencoder too, and after the switch its average keeps moving toward the frozen weights
(with the default EMA warm-up it has all but caught up within a few hundred steps), so decode with
EMA weights only after phase 2 has run a while. Data-parallel training (DDP) is not supported:
DDP expects every parameter to receive a gradient at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from twopaths.backbones.autoencoder import Autoencoder
from twopaths.errors import TwopathsError
from twopaths.nn.distributions import DiagonalGaussian
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianDiffusion

Latent = Literal["sample", "mean"]


def autoencoder_loss(ae: Autoencoder, x: torch.Tensor,
                     sample: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The KL autoencoder's loss (Rombach et al. 2022, appendix G, without the perceptual and GAN terms)::

        loss = mean_b [ sum_pixels |x - D(z)|  +  kl_weight * KL(q(z | x) || N(0, I)) ] / pixels

    with z a posterior sample (``sample``) or its mean, |.| the L1 or squared error
    (``cfg.recon``). Both terms are summed per image, as in LDM, so ``kl_weight`` means what it
    means there; dividing by the pixels per image makes the total read as a per-pixel error.
    Returns (loss, {"recon": per-pixel error, "kl": KL per image in nats}).
    """
    recon, posterior = ae(x, sample=sample)  # (B, C, H, W), q(z | x)
    diff = recon.float() - x.float()
    error = diff.abs() if ae.cfg.recon == "l1" else diff.pow(2)  # (B, C, H, W)
    kl = posterior.kl()  # (B,)
    pixels = x[0].numel()
    loss = (error.flatten(1).sum(1) + ae.cfg.kl_weight * kl).mean() / pixels
    return loss, {"recon": error.mean().detach(), "kl": kl.mean().detach()}


@torch.no_grad()
def reconstruct(ae: Autoencoder, x: torch.Tensor) -> torch.Tensor:
    """D(mean of q(z | x)), clamped to the images' [-1, 1]: (B, C, H, W)."""
    return ae.decode(ae.encode(x).mode()).float().clamp(-1, 1)


class AutoencoderTraining(Paradigm):
    """Train a :class:`~twopaths.backbones.autoencoder.Autoencoder` alone on images: ``loss`` is
    :func:`autoencoder_loss`. It does not generate (sampling N(0, I) latents through a decoder
    trained with a KL weight of 1e-6 gives no images); ``reconstruct`` is what it offers."""

    item_name = "images"

    def __init__(self, autoencoder: Autoencoder, image_shape: tuple[int, int, int], latent: Latent = "sample"):
        super().__init__()
        self.autoencoder, self.image_shape, self.latent = autoencoder, tuple(image_shape), latent
        self.num_classes = 0  # the eval CLI asks

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return autoencoder_loss(self.autoencoder, batch["image"], sample=self.latent == "sample")[0]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return reconstruct(self.autoencoder, x)

    @torch.no_grad()
    def sample(self, n: int, **kwargs: Any) -> torch.Tensor:
        raise TwopathsError("an autoencoder does not generate images; 'twopaths sample' writes reconstructions "
                            "and 'twopaths eval RUN --metrics recon' scores them (train 'ldm' to generate)")


class LatentDiffusion(Paradigm):
    """An autoencoder and a Gaussian diffusion over its scaled latents, trained in two phases.

    ``diffusion`` is a :class:`GaussianDiffusion` whose ``sample_shape`` is the latent shape
    (c, R/f, R/f) and whose ``clip`` is None (latents are not bounded). ``sample`` takes the
    arguments of :meth:`GaussianDiffusion.sample` and returns images (n, C, R, R) in [-1, 1].
    """

    item_name = "images"

    def __init__(self, autoencoder: Autoencoder, diffusion: GaussianDiffusion, image_shape: tuple[int, int, int],
                 ae_steps: int, grad_accum: int = 1, latent: Latent = "sample",
                 check_autoencoder: Callable[[], None] | None = None):
        """``ae_steps``: optimizer steps of phase 1 (0: start with the diffusion phase, for an
        autoencoder trained elsewhere). ``grad_accum``: micro-batches per optimizer step, so the
        switch happens after whole steps. ``check_autoencoder``: called when the diffusion phase
        starts; it raises a :class:`TwopathsError` if the autoencoder is not usable (with
        ``ae_steps=0``: "the pretrained weights were not loaded")."""
        super().__init__()
        if ae_steps < 0 or grad_accum < 1:
            raise ValueError(f"need ae_steps >= 0 and grad_accum >= 1, got {ae_steps} and {grad_accum}")
        self.autoencoder, self.diffusion = autoencoder, diffusion
        self.image_shape, self.latent_shape = tuple(image_shape), tuple(diffusion.sample_shape)
        self.ae_steps, self.grad_accum, self.latent = ae_steps, grad_accum, latent
        self.check_autoencoder = check_autoencoder
        self.data_key = "image"
        # the phase clock: training micro-batches seen (int, so the EMA leaves it alone)
        self.register_buffer("micro_batches", torch.zeros((), dtype=torch.long))
        # 0 = autoencoder phase, 1 = diffusion phase (set when the scale is computed)
        self.register_buffer("phase", torch.zeros((), dtype=torch.long))
        # the latent scale factor, kept as the bits of a float64 in an int64 buffer: the trainer's
        # EMA averages floating-point buffers, and an average of 1.0 and s is not a scale factor
        self.register_buffer("scale_bits", torch.tensor(1.0, dtype=torch.float64).view(torch.long))

    # ------------------------------------------------------------------ what the CLI and hooks read

    @property
    def schedule(self):  # noqa: ANN201 - the latent diffusion's NoiseSchedule
        return self.diffusion.schedule

    @property
    def num_classes(self) -> int:
        return self.diffusion.num_classes

    @property
    def default_sampler(self) -> str:
        """The latent diffusion's sampler (``arch.sampler``)."""
        return self.diffusion.default_sampler

    def default_steps(self, sampler: str) -> int:
        """The latent diffusion's :meth:`GaussianDiffusion.default_steps`."""
        return self.diffusion.default_steps(sampler)

    def sampling_plan(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int]:
        """The latent diffusion's :meth:`GaussianDiffusion.sampling_plan`."""
        return self.diffusion.sampling_plan(sampler, steps)

    @property
    def text_encoder(self):  # noqa: ANN201 - the latent diffusion's caption encoder, or None
        return getattr(self.diffusion, "text_encoder", None)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One generated item's shape: the image's (C, R, R) (the latent's is ``latent_shape``)."""
        return self.image_shape

    @property
    def scale(self) -> torch.Tensor:
        """The latent scale factor s = 1 / std(z), a float32 scalar tensor (1 before phase 2)."""
        return self.scale_bits.view(torch.float64).float()

    @property
    def in_diffusion_phase(self) -> bool:
        return bool(self.phase.item() == 1)

    # ------------------------------------------------------------------ the two stages

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        return self.autoencoder.encode(x)

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled latents of images: a posterior sample or its mean, (B, c, R/f, R/f), no gradient."""
        with torch.no_grad():
            posterior = self.autoencoder.encode(x)
            return posterior.sample() if self.latent == "sample" else posterior.mode()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latents (B, c, R/f, R/f) -> images (B, C, R, R) in [-1, 1]."""
        return self.autoencoder.decode(z).float().clamp(-1, 1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """D(mean of q(z | x)) in [-1, 1], (B, C, R, R)."""
        return reconstruct(self.autoencoder, x)

    @torch.no_grad()
    def start_diffusion_phase(self, x: torch.Tensor) -> float:
        """Freeze the autoencoder's role and set s = 1 / std of the latents of images ``x`` (one
        batch, as LDM's ``scale_by_std``); returns s."""
        if self.check_autoencoder is not None:
            self.check_autoencoder()
        z = self.latents(x).double()
        std = float(z.std())
        if not std > 0:
            raise TwopathsError(f"the latents have standard deviation {std}; the autoencoder collapsed, "
                                f"so there is no scale to set (train it longer or lower its kl_weight)")
        self.scale_bits.copy_(torch.tensor(1.0 / std, dtype=torch.float64).view(torch.long))
        self.phase.fill_(1)
        return 1.0 / std

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Phase 1: :func:`autoencoder_loss`. Phase 2: the diffusion loss on s * z (only the diffusion
        network gets gradients). A training step (train mode, gradients on) advances the clock."""
        x = batch["image"]
        if self.training and torch.is_grad_enabled():
            if not self.in_diffusion_phase and int(self.micro_batches) >= self.ae_steps * self.grad_accum:
                self.start_diffusion_phase(x)
            self.micro_batches += 1
        if not self.in_diffusion_phase:
            return autoencoder_loss(self.autoencoder, x, sample=self.latent == "sample")[0]
        z = self.latents(x) * self.scale  # (B, c, R/f, R/f), about unit variance
        return self.diffusion.loss({**batch, "image": z})

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None, sampler: str | None = None,
               steps: int | None = None, generator: torch.Generator | None = None, guidance: float = 1.0,
               spacing: str = "leading", callback: Any = None, callback_items: int = 4,
               **sampler_options: Any) -> torch.Tensor:
        """``n`` images (n, C, R, R) in [-1, 1]: latents from :meth:`GaussianDiffusion.sample` (same
        arguments; ``prompts`` for a text-conditioned run and sampler options pass through),
        unscaled and decoded. ``callback(i, t, x_t, x0_pred)`` sees the first
        ``callback_items`` items of every step *decoded* to images (a decoder pass per step, so only
        a few)."""
        if not self.in_diffusion_phase:
            raise TwopathsError(f"this latent diffusion run is still in its autoencoder phase "
                                f"({int(self.micro_batches) // self.grad_accum} of {self.ae_steps} steps); "
                                f"it generates once the diffusion phase has trained")
        inv = 1.0 / self.scale

        def decoded(i: int, t: float, z_t: torch.Tensor, z0: torch.Tensor) -> None:
            k = min(callback_items, z_t.shape[0])
            callback(i, t, self.decode(z_t[:k] * inv), self.decode(z0[:k] * inv))

        z = self.diffusion.sample(n, cond=cond, sampler=sampler, steps=steps, generator=generator, guidance=guidance,
                                  spacing=spacing, callback=decoded if callback is not None else None,
                                  **sampler_options)
        return self.decode(z * inv)  # (n, C, R, R)


__all__ = ["AutoencoderTraining", "LatentDiffusion", "autoencoder_loss", "reconstruct"]
