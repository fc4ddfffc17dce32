"""The noise schedule of Gaussian diffusion and the arithmetic of its forward process.

A schedule beta_t, t = 0..T-1, defines the forward Markov chain that adds Gaussian noise (Ho et al.
2020, "Denoising Diffusion Probabilistic Models", eq. 2)::

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)

with alpha_t = 1 - beta_t and abar_t = prod_{s<=t} alpha_s, the closed form (eq. 4)::

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),  i.e.  x_t = a x_0 + s eps,  a = sqrt(abar_t), s = sqrt(1 - abar_t)

and the posterior of one reverse step (eq. 6-7)::

    q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde_t I)
    c0 = beta_t sqrt(abar_{t-1}) / (1 - abar_t),  ct = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t),
    beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)

A network predicts eps, x0 or the velocity v = a eps - s x0 (Salimans & Ho 2022, "Progressive
Distillation", sec. 4); all three carry the same information given x_t and t::

    x0 = (x_t - s eps) / a = a x_t - s v,    eps = (x_t - a x0) / s = s x_t + a v

:func:`x0_coefficients` writes the first as x0 = c_skip x_t + c_out output; :func:`to_x0` and
:func:`to_eps` apply it at integer timesteps. The signal-to-noise ratio is SNR_t = abar_t / (1 - abar_t);
the EDM noise level (Karras et al. 2022) is sigma_t = s / a, so x_t / a = x_0 + sigma_t eps.

Both the training paradigm (:mod:`twopaths.paradigms.gaussian`) and the samplers
(:mod:`twopaths.paradigms.samplers`) build on this module. Schedules are computed in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

Prediction = Literal["eps", "x0", "v"]


# ----------------------------------------------------------------------------- schedules


def make_betas(kind: str, T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_t for t = 0..T-1, float64.

    - ``linear``: beta_start..beta_end evenly (Ho et al. 2020, sec. 4), scaled by 1000/T so any T
      covers the same total noise (as improved DDPM does).
    - ``cosine``: abar(t) = cos^2(((t/T + s) / (1 + s)) pi/2), s = 0.008, betas clipped at 0.999
      (Nichol & Dhariwal 2021, eq. 17).
    - ``sigmoid``: sigmoid of an even grid on [-6, 6], scaled into [beta_start, beta_end] (the
      form diffusers calls "sigmoid"; Jabri et al. 2023 use a sigmoid schedule).
    """
    if kind == "linear":
        scale = 1000 / T
        return torch.linspace(scale * beta_start, scale * beta_end, T, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (beta_end - beta_start) + beta_start
    raise ValueError(f"unknown schedule '{kind}'; choose linear, cosine or sigmoid")


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Shift and scale sqrt(abar) so the last step is pure noise (SNR = 0) while the first is unchanged
    (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Algorithm 1)."""
    sqrt_abar = torch.cumprod(1 - betas, 0).sqrt()
    first, last = sqrt_abar[0].clone(), sqrt_abar[-1].clone()
    sqrt_abar = (sqrt_abar - last) * first / (first - last)
    abar = sqrt_abar**2
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas


@dataclass
class NoiseSchedule:
    """Everything derived from beta_t (all float64, shape (T,))."""

    betas: torch.Tensor

    @classmethod
    def make(cls, kind: str = "linear", T: int = 1000, zero_terminal_snr: bool = False) -> NoiseSchedule:
        betas = make_betas(kind, T)
        return cls(rescale_zero_terminal_snr(betas) if zero_terminal_snr else betas)

    def __post_init__(self) -> None:
        b = self.betas.double()
        self.betas = b
        self.alphas = 1 - b
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)  # abar_t
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde)   (Ho et al. eq. 6-7)
        self.posterior_variance = b * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        # beta_tilde_0 = 0; its log is clipped to beta_tilde_1 (as in Ho et al.'s code)
        self.posterior_log_variance = torch.log(torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_coef_x0 = b * self.alphas_cumprod_prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_coef_xt = (1 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1 - self.alphas_cumprod)

    @property
    def T(self) -> int:
        return len(self.betas)

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t)."""
        ab = gather(self.alphas_cumprod, t)
        return ab / (1 - ab)

    def sigmas(self) -> torch.Tensor:
        """EDM noise levels sigma_t = sqrt((1 - abar_t) / abar_t): x_t / sqrt(abar_t) = x_0 + sigma_t eps."""
        return ((1 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()


def gather(values: torch.Tensor, t: torch.Tensor, ndim: int | None = None) -> torch.Tensor:
    """values[t] as float32 on t's device, shaped (B, 1, ..., 1) to broadcast over ``ndim`` dims."""
    out = values.to(t.device)[t.long()].float()
    return out.view(-1, *([1] * (ndim - 1))) if ndim else out


# ----------------------------------------------------------------------------- forward process and objectives


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in one step: sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. eq. 4)."""
    ab = gather(schedule.alphas_cumprod, t, x0.ndim)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def target_for(prediction: Prediction, x0: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule,
               t: torch.Tensor) -> torch.Tensor:
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    ab = gather(schedule.alphas_cumprod, t, x0.ndim)
    return ab.sqrt() * noise - (1 - ab).sqrt() * x0  # v


def x0_coefficients(prediction: Prediction, a: Any, s: Any) -> tuple[Any, Any]:
    """(c_skip, c_out) with x0 = c_skip * x_t + c_out * output for x_t = a x0 + s eps (a = sqrt(abar),
    s = sqrt(1 - abar); floats or tensors): eps: (x_t - s eps) / a;  x0: output;  v: a x_t - s v
    (Salimans & Ho 2022, sec. 4)."""
    if prediction == "eps":
        return 1.0 / a, -s / a
    if prediction == "x0":
        return 0.0, 1.0
    return a, -s


def to_x0(prediction: Prediction, output: torch.Tensor, x_t: torch.Tensor, schedule: NoiseSchedule,
          t: torch.Tensor) -> torch.Tensor:
    """The model's estimate of x_0 from its raw output at integer timesteps ``t`` (see :func:`x0_coefficients`)."""
    if prediction == "x0":
        return output
    ab = gather(schedule.alphas_cumprod, t, x_t.ndim)
    c_skip, c_out = x0_coefficients(prediction, ab.sqrt(), (1 - ab).sqrt())
    return c_skip * x_t + c_out * output


def to_eps(prediction: Prediction, output: torch.Tensor, x_t: torch.Tensor, schedule: NoiseSchedule,
           t: torch.Tensor) -> torch.Tensor:
    """The model's estimate of eps: eps: itself;  x0: (x_t - a x0) / s;  v: s x_t + a v."""
    if prediction == "eps":
        return output
    ab = gather(schedule.alphas_cumprod, t, x_t.ndim)
    a, s = ab.sqrt(), (1 - ab).sqrt()
    return (x_t - a * output) / s if prediction == "x0" else s * x_t + a * output


def min_snr_weight(prediction: Prediction, snr: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weight (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    Weighting Strategy", eq. 8 and its eps/v forms): the x0-MSE weight min(SNR, gamma), expressed
    for the chosen objective (eps-MSE = x0-MSE * SNR; v-MSE = x0-MSE * (SNR + 1))."""
    clipped = snr.clamp(max=gamma)
    if prediction == "x0":
        return clipped
    if prediction == "eps":
        return clipped / snr
    return clipped / (snr + 1)
