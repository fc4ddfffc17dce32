"""Gaussian diffusion: the forward noising process, its schedules, objectives and variational bound.

The forward process is a Markov chain that adds Gaussian noise under a variance schedule beta_t
(Ho et al. 2020, "Denoising Diffusion Probabilistic Models", eq. 2), with the closed form (eq. 4)::

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s)

A network learns to undo it. What it predicts is a choice of *objective*: the noise eps (Ho et al.),
the clean sample x0, or the velocity v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022,
"Progressive Distillation", sec. 4); all three carry the same information given x_t and t, and
:func:`~twopaths.paradigms.schedule.to_x0` / :func:`~twopaths.paradigms.schedule.to_eps` (with the
schedule itself, :mod:`twopaths.paradigms.schedule`) convert between them. Training minimises a weighted MSE (Ho et al.
eq. 14, "L_simple"), optionally with Min-SNR-gamma weighting (Hang et al. 2023) and, with a learned
variance, the hybrid loss L_simple + lambda * L_vlb of improved DDPM (Nichol & Dhariwal 2021, sec. 3.1).
:meth:`GaussianDiffusion.nll_bits_per_dim` evaluates the full variational bound (Ho et al. eq. 5).

Conditioning is a class label or a caption. Either way classifier-free guidance (Ho & Salimans
2022) trains one network that is conditional and unconditional at once, by dropping the condition
to a *null* one (the null label; the empty caption) with probability ``cond_drop``, and samples
with ``uncond + w (cond - uncond)`` (their eq. 6). A caption is encoded by a text encoder that the
paradigm owns and trains jointly with the denoiser (:mod:`twopaths.backbones.text_encoder`); the denoiser
cross-attends to the encoding (``net(x_t, t, y, context=..., context_mask=...)``).

Timesteps are indices 0..T-1 (t = 0 is the least noisy). Schedules are computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from twopaths.errors import DataError
from twopaths.nn.distributions import discretized_gaussian_log_likelihood, normal_kl
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.samplers import DIFFWAVE_BETAS, make_sampler
from twopaths.paradigms.schedule import NoiseSchedule, gather, min_snr_weight, q_sample, target_for, to_x0

# ----------------------------------------------------------------------------- the variational bound


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


# ----------------------------------------------------------------------------- the paradigm


@dataclass
class GaussianConfig:
    timesteps: int = 1000  # T, steps of the forward chain
    schedule: Literal["linear", "cosine", "sigmoid"] = "linear"
    zero_terminal_snr: bool = False  # rescale so x_T is pure noise (Lin et al. 2024)
    prediction: Literal["eps", "x0", "v"] = "eps"
    weighting: Literal["uniform", "min-snr"] = "uniform"
    min_snr_gamma: float = 5.0  # gamma of Min-SNR weighting (Hang et al. 2023 use 5)
    learn_sigma: bool = False  # the network also outputs the variance interpolation (improved DDPM)
    vlb_weight: float = 0.001  # lambda of the hybrid loss when learn_sigma is on (Nichol & Dhariwal: 0.001)
    cond_drop: float = 0.1  # probability of dropping the label / caption in training (classifier-free guidance)


@dataclass
class EncodedPrompts:
    """n prompts run through the text encoder once, for every step of a sampling loop."""

    context: torch.Tensor  # (n, S, d) the prompts' encodings
    mask: torch.Tensor  # (n, S) bool, True = real token
    null_context: torch.Tensor  # (n, S, d) the null caption's encoding, padded to S (for guidance)
    null_mask: torch.Tensor  # (n, S) bool: only its [CLS] token is real
    conditional: bool = True  # False: no prompts were given, ``context`` is the null caption too


class GaussianDiffusion(Paradigm):
    """Gaussian diffusion over any backbone ``net(x_t, t, y) -> output`` of x's shape (2x the channels
    when ``learn_sigma``). ``t`` is float (B,) in [0, T-1]; ``y`` is (B,) class ids with
    ``num_classes`` meaning "no class" (the null label of classifier-free guidance), or None.

    With a ``text_encoder`` (captions -> (context, key mask)), the net is called as
    ``net(x_t, t, y, context=..., context_mask=...)``; batches carry ``"caption"`` (a list of
    strings) and ``sample`` takes ``prompts``. Without one, the net gets no context keywords (so
    backbones without cross-attention, such as the 2-D MLP, work unchanged).
    """

    item_name = "images"

    def __init__(self, net: nn.Module, cfg: GaussianConfig, sample_shape: tuple[int, ...], num_classes: int = 0,
                 data_key: str = "image", clip: float | None = 1.0, text_encoder: nn.Module | None = None,
                 channel_axis: int = 1):
        """``sample_shape``: one item's shape, e.g. (1, 28, 28), (2,) or a clip's (T, C, H, W). ``clip``: bound
        for the x0 estimate while sampling (1.0 for images in [-1, 1]; None for unbounded data such as 2-D
        points). ``text_encoder``: a :class:`~twopaths.backbones.text_encoder.TextEncoder`, trained with the
        net. ``channel_axis``: the axis of a batch (B, ...) that holds the channels, which a learned variance
        doubles (1; 2 for clips (B, T, C, H, W)). Nothing else depends on the number of axes."""
        super().__init__()
        self.net, self.cfg, self.num_classes, self.data_key = net, cfg, num_classes, data_key
        self.channel_axis = channel_axis
        self.text_encoder = text_encoder
        self.sample_shape, self.clip = tuple(sample_shape), clip
        self.schedule = NoiseSchedule.make(cfg.schedule, cfg.timesteps, cfg.zero_terminal_snr)
        if data_key != "image":
            self.item_name = "samples"
        # what sampling uses when the caller names no sampler or steps: a run's arch.sampler and
        # arch.sample_steps (set by its model builder through set_sampling_defaults)
        self.default_sampler, self.sample_steps = "ddim", 50

    def set_sampling_defaults(self, sampler: str, steps: int) -> GaussianDiffusion:
        """Make ``sampler`` at ``steps`` steps this model's default (a run's ``arch.sampler`` and
        ``arch.sample_steps``); returns the model."""
        self.default_sampler, self.sample_steps = sampler, steps
        return self

    def default_steps(self, sampler: str) -> int:
        """The steps ``sampler`` takes when none are asked for, for every caller (``sample``, ``eval``,
        ``upscale``): the model's ``sample_steps``, except when ``sampler`` is not the model's own: ``ddpm``
        then takes all T steps (ancestral sampling with fewer steps is a different chain) and ``diffwave``
        the 6 of DiffWave's fast schedule (:data:`~twopaths.paradigms.samplers.DIFFWAVE_BETAS`)."""
        if sampler == self.default_sampler:
            return self.sample_steps
        return {"ddpm": self.schedule.T, "diffwave": len(DIFFWAVE_BETAS)}.get(sampler, self.sample_steps)

    def sampling_plan(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int]:
        """(sampler, steps) a call draws with: the ones named, else the model's own sampler and
        :meth:`default_steps` for it. Every caller that reports or sizes sampling asks this."""
        sampler = sampler or self.default_sampler
        return sampler, steps or self.default_steps(sampler)

    # ------------------------------------------------------------------ the network, with guidance

    def _labels(self, batch: dict[str, Any], n: int, device: torch.device) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        y = batch["label"].to(device)
        if self.training and self.cfg.cond_drop > 0:  # teach the unconditional model too (Ho & Salimans 2022)
            drop = torch.rand(n, device=device) < self.cfg.cond_drop
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        return y

    def _captions(self, batch: dict[str, Any], n: int) -> list[str]:
        """The batch's captions, each dropped to the null caption with probability cond_drop in training."""
        from twopaths.backbones.text_encoder import NULL_CAPTION

        if "caption" not in batch:
            raise DataError("this model is text-conditioned (arch.conditioning=text) but the data has no captions; "
                            "train it on a dataset with captions, such as shapes")
        captions = list(batch["caption"])
        if self.training and self.cfg.cond_drop > 0:  # teach the unconditional model too (Ho & Salimans 2022)
            drop = (torch.rand(n) < self.cfg.cond_drop).tolist()
            captions = [NULL_CAPTION if d else c for c, d in zip(captions, drop)]
        return captions

    def encode_prompts(self, prompts: Sequence[str] | None, n: int) -> EncodedPrompts:
        """Run n prompts (None: n null captions) and one null caption through the text encoder, once."""
        from twopaths.backbones.text_encoder import NULL_CAPTION

        if self.text_encoder is None:
            raise ValueError("this model has no text encoder; it takes no prompts")
        conditional = prompts is not None
        prompts = list(prompts) if conditional else [NULL_CAPTION] * n
        if len(prompts) != n:
            raise ValueError(f"{len(prompts)} prompts for {n} samples")
        context, mask = self.text_encoder([*prompts, NULL_CAPTION])  # (n + 1, S, d), (n + 1, S)
        return EncodedPrompts(context[:n], mask[:n], context[n:].expand(n, -1, -1), mask[n:].expand(n, -1),
                              conditional)

    def _net(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None,
             text: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The network, given a (context, mask) pair only when the model is text-conditioned."""
        if text is None:
            return self.net(x_t, t, y)
        return self.net(x_t, t, y, context=text[0], context_mask=text[1])

    def network_input(self, x_t: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """What the network reads in training besides t and the conditioning: x_t itself here; a
        subclass adds channels (super-resolution concatenates the upsampled low-resolution image)."""
        return x_t

    def model_output(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                     guidance: float = 1.0, prompts: Sequence[str] | EncodedPrompts | None = None) -> torch.Tensor:
        """The network's prediction (mean part only) at (x_t, t), with classifier-free guidance
        out = uncond + w (cond - uncond) (Ho & Salimans 2022, eq. 6) when ``guidance`` != 1.

        ``prompts``: n captions for a text-conditioned model, or their :meth:`encode_prompts` (what
        :meth:`sample` passes, so the text is encoded once and not at every step); None is the null
        caption, the unconditional model. Conditional and unconditional passes run as one batch of 2n.
        """
        t = t.float().expand(x_t.shape[0]) if t.ndim == 0 else t.float()
        if not self.num_classes:
            y = None  # an unconditional network takes no labels
        if self.text_encoder is None:
            if prompts is not None:
                raise ValueError("this model has no text encoder; it takes no prompts")
            text = None
        else:
            text = prompts if isinstance(prompts, EncodedPrompts) else self.encode_prompts(prompts, x_t.shape[0])
        conditional = y is not None or (text is not None and text.conditional)
        if not conditional or guidance == 1.0:
            return self._split(self._net(x_t, t, y, (text.context, text.mask) if text else None))[0]
        y2 = torch.cat([y, torch.full_like(y, self.num_classes)]) if y is not None else None  # labels, null labels
        text2 = (torch.cat([text.context, text.null_context]), torch.cat([text.mask, text.null_mask])) \
            if text is not None else None  # prompts, then null captions
        both = self._split(self._net(torch.cat([x_t, x_t]), torch.cat([t, t]), y2, text2))[0]
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cfg.learn_sigma:
            mean, var = out.chunk(2, dim=self.channel_axis)  # the network's 2C channels: mean part, variance part
            return mean, var
        return out, None

    # ------------------------------------------------------------------ training

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        x0 = batch[self.data_key]
        n = x0.shape[0]
        t = torch.randint(0, self.schedule.T, (n,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = q_sample(self.schedule, x0, t, noise)
        text = self.text_encoder(self._captions(batch, n)) if self.text_encoder is not None else None
        x_in = self.network_input(x_t, batch)
        out, var_out = self._split(self._net(x_in, t.float(), self._labels(batch, n, x0.device), text))
        target = target_for(self.cfg.prediction, x0, noise, self.schedule, t)
        mse = mean_flat((out.float() - target) ** 2)  # (B,)
        if self.cfg.weighting == "min-snr":
            mse = mse * min_snr_weight(self.cfg.prediction, self.schedule.snr(t), self.cfg.min_snr_gamma)
        loss = mse.mean()
        if self.cfg.learn_sigma:
            # L_vlb trains only the variance: the mean is detached (Nichol & Dhariwal 2021, sec. 3.1)
            vlb = self._vlb_terms(x0, x_t, t, out.detach(), var_out)
            loss = loss + self.cfg.vlb_weight * self.schedule.T * vlb.mean() / x0[0].numel()
        return loss

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None, sampler: str | None = None,
               steps: int | None = None, generator: torch.Generator | None = None, guidance: float = 1.0,
               spacing: str = "leading", callback: Any = None, prompts: Sequence[str] | None = None,
               **sampler_options: Any) -> torch.Tensor:
        """Draw ``n`` samples with a sampler from :mod:`twopaths.paradigms.samplers` (default: the model's
        own, ``default_sampler``; ``steps`` defaults to :meth:`default_steps`). ``cond`` (n,) class ids or
        ``prompts`` (n captions, text-conditioned models; None = the null caption), with classifier-free
        ``guidance`` w (1 = plain conditional). ``callback(i, t, x_t, x0_pred)`` sees every step."""
        sampler, steps = self.sampling_plan(sampler, steps)
        y = cond
        solver = make_sampler(sampler, self.schedule, steps, spacing=spacing, prediction=self.cfg.prediction,
                              clip=self.clip, **sampler_options)
        device = next(self.parameters()).device
        x_T = solver.init_noise((n, *self.sample_shape), generator, device)
        if y is not None:
            y = y.to(device)
        if self.text_encoder is not None:
            prompts = self.encode_prompts(prompts, n)  # the text is encoded once, not at every step
        elif prompts is not None:
            raise ValueError("this model has no text encoder; it takes no prompts")
        return solver.sample(lambda x_t, t: self.model_output(x_t, t, y, guidance, prompts), x_T, generator, callback)

    # ------------------------------------------------------------------ p(x_{t-1} | x_t)

    def p_mean_logvar(self, out: torch.Tensor, var_out: torch.Tensor | None, x_t: torch.Tensor,
                      t: torch.Tensor, clip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t-1} | x_t) and the predicted x0.

        The mean is the posterior mean with x0 replaced by its prediction (Ho et al. eq. 7). The
        variance is fixed to beta_tilde_t, or learned as exp(v log beta_t + (1 - v) log beta_tilde_t)
        with v = (output + 1) / 2 (Nichol & Dhariwal 2021, eq. 15).
        """
        s = self.schedule
        x0 = to_x0(self.cfg.prediction, out.float(), x_t, s, t)
        if clip:
            x0 = x0.clamp(-1, 1)
        mean = gather(s.posterior_coef_x0, t, x_t.ndim) * x0 + gather(s.posterior_coef_xt, t, x_t.ndim) * x_t
        min_log = gather(s.posterior_log_variance, t, x_t.ndim)
        if var_out is None:
            logvar = min_log.expand_as(x_t)
        else:
            max_log = torch.log(gather(s.betas, t, x_t.ndim))
            frac = (var_out.float() + 1) / 2
            logvar = frac * max_log + (1 - frac) * min_log
        return mean, logvar, x0

    def _vlb_terms(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, out: torch.Tensor,
                   var_out: torch.Tensor | None) -> torch.Tensor:
        """Per-sample VLB term L_{t-1} in nats, summed over dimensions (Ho et al. eq. 5):
        KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, and -log p(x_0|x_1) (discretized) at t = 0."""
        s = self.schedule
        true_mean = gather(s.posterior_coef_x0, t, x0.ndim) * x0 + gather(s.posterior_coef_xt, t, x0.ndim) * x_t
        true_logvar = gather(s.posterior_log_variance, t, x0.ndim)
        mean, logvar, _ = self.p_mean_logvar(out, var_out, x_t, t, clip=False)
        kl = normal_kl(true_mean, true_logvar, mean, logvar).flatten(1).sum(1)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar).flatten(1).sum(1)
        return torch.where(t == 0, nll, kl)

    @torch.no_grad()
    def nll_bits_per_dim(self, x0: torch.Tensor, y: torch.Tensor | None = None,
                         prompts: Sequence[str] | None = None,
                         on_step: Callable[[], None] | None = None) -> dict[str, torch.Tensor]:
        """The full variational bound on -log p(x_0) in bits per dimension, per sample (Ho et al. eq. 5):
        L_T (prior KL) + sum_{t>=1} L_{t-1} + L_0, with every one of the T terms evaluated (no Monte
        Carlo over t), so it costs T network evaluations per batch; ``on_step()`` is called after each
        (a progress bar). A text-conditioned model is scored given ``prompts`` (None: the null caption,
        the unconditional bound)."""
        s = self.schedule
        B, dims = x0.shape[0], x0[0].numel()
        if self.text_encoder is not None:
            enc = self.encode_prompts(prompts, B)
            text = (enc.context, enc.mask)
        elif prompts is not None:
            raise ValueError("this model has no text encoder; it takes no prompts")
        else:
            text = None
        total = torch.zeros(B, device=x0.device)
        for step in range(s.T):
            t = torch.full((B,), step, device=x0.device, dtype=torch.long)
            noise = torch.randn_like(x0)
            x_t = q_sample(s, x0, t, noise)
            out, var_out = self._split(self._net(x_t, t.float(), y, text))
            total += self._vlb_terms(x0, x_t, t, out, var_out)
            if on_step is not None:
                on_step()
        t_last = torch.full((B,), s.T - 1, device=x0.device, dtype=torch.long)
        ab = gather(s.alphas_cumprod, t_last, x0.ndim)
        prior = normal_kl(ab.sqrt() * x0, torch.log(1 - ab), torch.zeros_like(x0), torch.zeros_like(x0))
        prior_bits = prior.flatten(1).sum(1)
        to_bits = 1.0 / (dims * math.log(2))
        return {"bits_per_dim": (total + prior_bits) * to_bits, "prior_bits_per_dim": prior_bits * to_bits}
