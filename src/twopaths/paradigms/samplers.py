"""Samplers for Gaussian diffusion: DDPM, DDIM, DPM-Solver++(2M), Euler, Heun and DiffWave's fast
schedule, one interface.

Every sampler walks a descending list of training timesteps (:func:`make_timesteps`), asks the
network for its raw output at each one and turns it into the next, less noisy sample::

    sampler = make_sampler("dpmpp", schedule, steps=20)
    x_T = sampler.init_noise((16, 1, 28, 28), generator, device)
    x_0 = sampler.sample(lambda x_t, t: net(x_t, t), x_T)

``model_fn(x_t, t)`` receives x_t on the variance-preserving scale of training (x_t = a x_0 + s eps,
a = sqrt(abar_t), s = sqrt(1 - abar_t)) and ``t`` as float32 (B,); it returns eps, x0 or v according to
``prediction`` (see :mod:`twopaths.paradigms.schedule`). Each sampler first turns that output into an
estimate of x_0, optionally clipped or dynamically thresholded, then takes its step. The algorithms
differ only in the step; they share timesteps, prediction types, clipping, noise and callbacks.

Two families of state:

- ``DDPM``, ``DDIM``, ``DPMSolverPP2M`` carry x_t itself (noise scale 1).
- ``Euler``, ``Heun`` carry x = x_t / a = x_0 + sigma eps with sigma = s / a (Karras et al. 2022,
  "EDM"), and evaluate the network at x_t = x / sqrt(1 + sigma^2). :meth:`Sampler.init_noise` and
  :meth:`Sampler.scale_model_input` handle the difference, so code written against the interface
  works for both (and the same generator seed gives every sampler the same first network input).

Numerics: schedule tables are float64; every per-step coefficient is computed once in float64 at
construction and kept as a Python float, so the loop runs in float32 on the sample's device with no
table lookups or host-device copies. Where this module deliberately differs from diffusers, the
differences are listed in ``docs/samplers.md``.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch

from twopaths.paradigms.schedule import NoiseSchedule, x0_coefficients

Spacing = Literal["leading", "linspace", "trailing"]
SPACINGS = ("leading", "linspace", "trailing")
PREDICTIONS = ("eps", "x0", "v")

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None]


# ----------------------------------------------------------------------------- timesteps


def _round_half_even(p: int, q: int) -> int:
    """round(p / q) for integers q > 0, exactly, ties to even (numpy's rule, without float error)."""
    f, r = divmod(p, q)
    if 2 * r > q or (2 * r == q and f % 2 == 1):
        return f + 1
    return f


def make_timesteps(T: int, steps: int, spacing: Spacing = "leading", steps_offset: int = 0) -> torch.Tensor:
    """``steps`` training timesteps in 0..T-1, descending, as a LongTensor.

    The three spacings of Lin et al. 2024 ("Common Diffusion Noise Schedules and Sample Steps are
    Flawed", table 2), written 0-indexed as diffusers writes them (T = 1000, steps = 10):

    - ``leading``:  k * (T // steps) + steps_offset          -> 900, 800, ..., 100, 0
    - ``linspace``: round(k * (T - 1) / (steps - 1))          -> 999, 888, 777, ..., 111, 0
    - ``trailing``: round(T - k * T / steps) - 1              -> 999, 899, ..., 199, 99

    ``leading`` never visits the noisiest timestep (its x_T is treated as x_900 here), which is
    why Lin et al. recommend ``trailing``. ``steps_offset`` is diffusers' convention: it shifts the
    ``leading`` grid only (Stable Diffusion uses 1, giving 901, ..., 1) and is ignored by the two
    other spacings, which already end at T - 1.

    Rounding is done in exact integer arithmetic, ties to even. diffusers computes the same
    formulas in float64, where a tie sometimes lands a hair off .5 and rounds the other way, and
    where ``np.arange`` for ``trailing`` sometimes yields steps + 1 values ending in -1 (e.g. 61
    steps of 1000); this function always returns exactly ``steps`` distinct timesteps in range.
    """
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..T={T}, got {steps}")
    if spacing == "leading":
        ratio = T // steps
        ts = [k * ratio + steps_offset for k in range(steps)]
    elif spacing == "linspace":
        ts = [_round_half_even(k * (T - 1), steps - 1) for k in range(steps)] if steps > 1 else [0]
    elif spacing == "trailing":
        ts = [_round_half_even(T * (steps - k), steps) - 1 for k in range(steps)][::-1]
    else:
        raise ValueError(f"unknown timestep spacing '{spacing}'; choose one of {', '.join(SPACINGS)}")
    if min(ts) < 0 or max(ts) >= T:
        raise ValueError(f"timesteps {min(ts)}..{max(ts)} fall outside 0..{T - 1} (steps_offset={steps_offset})")
    return torch.tensor(sorted(ts, reverse=True), dtype=torch.long)


# ----------------------------------------------------------------------------- sigma <-> t


def sigma_to_t(sigma: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """The fractional timestep of noise level ``sigma``: t interpolated linearly over log sigma
    between the two training timesteps that bracket it (clamped to [0, T-1]); exact integers for
    sigmas of the table. ``log_sigmas`` is log of :meth:`NoiseSchedule.sigmas` (ascending in t)."""
    log_sigma = torch.as_tensor(sigma, dtype=torch.float64).clamp(min=1e-10).log()
    low = (torch.searchsorted(log_sigmas, log_sigma, right=True) - 1).clamp(0, len(log_sigmas) - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
    return low.double() + w


def t_to_sigma(t: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`sigma_to_t`: log sigma interpolated linearly in t."""
    t = torch.as_tensor(t, dtype=torch.float64).clamp(0, len(log_sigmas) - 1)
    low = t.floor().long().clamp(max=len(log_sigmas) - 2)
    w = t - low
    return ((1 - w) * log_sigmas[low] + w * log_sigmas[low + 1]).exp()


def karras_noise_levels(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> torch.Tensor:
    """n noise levels from sigma_max down to sigma_min, evenly spaced in sigma^(1/rho)
    (Karras et al. 2022, eq. 5; rho = 7 is their choice), float64."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


# ----------------------------------------------------------------------------- helpers


def _x0_coefficients(prediction: str, a: float, s: float) -> tuple[float, float]:
    """:func:`~twopaths.paradigms.schedule.x0_coefficients`, refusing eps-prediction where abar = 0."""
    if prediction == "eps" and a == 0:
        raise ValueError("an eps-prediction model cannot give x0 where abar = 0 (zero terminal SNR); "
                         "use v or x0 prediction (Lin et al. 2024, sec. 3.2)")
    return x0_coefficients(prediction, a, s)


def dynamic_threshold(x0: torch.Tensor, p: float) -> torch.Tensor:
    """Imagen's dynamic thresholding (Saharia et al. 2022, sec. 2.3): per sample, s = the p-quantile
    of |x0| (linear interpolation, as torch.quantile), s = max(s, 1); clip x0 to [-s, s], divide by s."""
    flat = x0.flatten(1).abs().sort(dim=1).values  # (B, D)
    pos = p * (flat.shape[1] - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, flat.shape[1] - 1)
    s = flat[:, lo] + (pos - lo) * (flat[:, hi] - flat[:, lo])  # (B,)
    s = s.clamp(min=1).view(-1, *([1] * (x0.ndim - 1)))
    return torch.clamp(x0, -s, s) / s


def _noise(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal float32 noise; drawn on the generator's device (so a CPU generator gives the
    same numbers for a CUDA sample), then moved."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=torch.float32).to(device)


# ----------------------------------------------------------------------------- the interface


class Sampler:
    """Base class: timesteps, prediction types, x0 clipping, noise and the sampling loop.

    Args (shared by every sampler; algorithm options follow as keywords):
        schedule: the training noise schedule (:class:`NoiseSchedule`).
        steps: number of sampling steps (not network evaluations: see :attr:`nfe`).
        spacing: ``"leading"``, ``"linspace"`` or ``"trailing"`` (:func:`make_timesteps`).
        prediction: what the network outputs: ``"eps"``, ``"x0"`` or ``"v"``.
        clip: clip the x0 estimate to [-clip, clip] each step (None: don't). Right for data in
            [-1, 1] such as images; set None for unbounded data (2-D toys, latents).
        dynamic_threshold: percentile p for Imagen's dynamic thresholding (:func:`dynamic_threshold`);
            when set it replaces ``clip``.
        steps_offset: added to ``leading`` timesteps only (diffusers' convention).

    Attributes:
        timesteps: (steps,) descending; ``timesteps[i]`` is where the network is evaluated at the
            start of step i. LongTensor, except for Euler/Heun with Karras sigmas (fractional, float64).
        nfe: network evaluations for a full run.
        init_noise_sigma: standard deviation of x_T on this sampler's scale.
    """

    name = "sampler"
    stochastic = False

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction '{prediction}'; choose one of {', '.join(PREDICTIONS)}")
        if clip is not None and clip <= 0:
            raise ValueError(f"clip must be positive or None, got {clip}")
        if dynamic_threshold is not None and not 0 < dynamic_threshold <= 1:
            raise ValueError(f"dynamic_threshold is a percentile in (0, 1], got {dynamic_threshold}")
        self.schedule, self.steps, self.spacing, self.prediction = schedule, steps, spacing, prediction
        self.clip, self.dynamic_threshold = clip, dynamic_threshold
        self.timesteps = make_timesteps(schedule.T, steps, spacing, steps_offset)
        self.init_noise_sigma = 1.0

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(steps={self.steps}, spacing='{self.spacing}', "
                f"prediction='{self.prediction}', nfe={self.nfe})")

    @property
    def nfe(self) -> int:
        return self.steps

    # ------------------------------------------------------------------ shared pieces

    def init_noise(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
        """x_T ~ N(0, init_noise_sigma^2 I), float32, on ``device`` (default: CPU)."""
        return _noise(torch.Size(shape), generator, torch.device(device or "cpu")) * self.init_noise_sigma

    def scale_model_input(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """The network's input x_t for state ``x`` at step ``index`` (identity for x_t-state samplers)."""
        return x

    def model_time(self, index: int) -> float:
        """The (possibly fractional) timestep given to the network at the start of step ``index``."""
        return float(self.timesteps[index])

    def postprocess_x0(self, x0: torch.Tensor) -> torch.Tensor:
        """Dynamic thresholding if set, else clipping to [-clip, clip] if set."""
        if self.dynamic_threshold is not None:
            return dynamic_threshold(x0, self.dynamic_threshold)
        if self.clip is not None:
            return x0.clamp(-self.clip, self.clip)
        return x0

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.steps:
            raise IndexError(f"step index {index} outside 0..{self.steps - 1}")

    # ------------------------------------------------------------------ stepping and sampling

    def step(self, model_output: torch.Tensor, index: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One step from the state at ``timesteps[index]`` to the next, given the network's raw
        output at ``(scale_model_input(x, index), model_time(index))``. Returns the new state."""
        self._check_index(index)
        return self._step(model_output.float(), index, x.float(), generator)[0]

    def _step(self, out: torch.Tensor, i: int, x: torch.Tensor,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(next state, x0 estimate) for step i; implemented by each algorithm."""
        raise NotImplementedError

    def _evaluate(self, model_fn: ModelFn, x: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x_t = self.scale_model_input(x, index)
        t = torch.full((x.shape[0],), self.model_time(index), device=x.device, dtype=torch.float32)
        return x_t, model_fn(x_t, t).float()

    def _advance(self, model_fn: ModelFn, i: int, x: torch.Tensor,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(next state, network input x_t, x0 estimate) for step i: one evaluation, then ``_step``."""
        x_t, out = self._evaluate(model_fn, x, i)
        x_next, x0 = self._step(out, i, x, generator)
        return x_next, x_t, x0

    def advance(self, model_fn: ModelFn, index: int, x: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """One whole step from state ``x`` at ``timesteps[index]``, calling ``model_fn`` as many times
        as the algorithm needs (twice for Heun). ``sample`` is a loop over this."""
        self._check_index(index)
        return self._advance(model_fn, index, x.float(), generator)[0]

    def _reset(self) -> None:
        """Forget any state carried between steps (multistep solvers)."""

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, x_T: torch.Tensor, generator: torch.Generator | None = None,
               callback: Callback | None = None) -> torch.Tensor:
        """Run every step from ``x_T`` (on this sampler's scale: use :meth:`init_noise`) and return x_0.

        ``callback(i, t, x_t, x0_pred)`` is called after step i with its timestep, the network's
        input x_t (variance-preserving scale for every sampler) and the clipped x0 estimate there.
        """
        self._reset()
        x = x_T.float()
        for i in range(self.steps):
            x_next, x_t, x0 = self._advance(model_fn, i, x, generator)
            if callback is not None:
                callback(i, self.model_time(i), x_t, x0)
            x = x_next
        return x


class _DiscreteSampler(Sampler):
    """Samplers on the training timesteps whose state is x_t. For step i it holds abar at
    ``timesteps[i]`` and at the *next timestep of the list* ``prev_timesteps[i]`` (-1 after the
    last: abar = 1, the clean data), so uneven strides (linspace, trailing) are exact."""

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        self.prev_timesteps = torch.cat([self.timesteps[1:], torch.tensor([-1])])
        abar = schedule.alphas_cumprod.double()
        self._abar = [float(abar[t]) for t in self.timesteps]
        self._abar_prev = [float(abar[t]) if t >= 0 else 1.0 for t in self.prev_timesteps]
        self._a = [math.sqrt(ab) for ab in self._abar]
        self._s = [math.sqrt(1 - ab) for ab in self._abar]
        self._c = [_x0_coefficients(prediction, a, s) for a, s in zip(self._a, self._s)]

    def _x0(self, out: torch.Tensor, i: int, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw x0 estimate, clipped/thresholded x0 estimate) at step i."""
        c_skip, c_out = self._c[i]
        raw = out if c_skip == 0.0 else c_skip * x_t + c_out * out
        return raw, self.postprocess_x0(raw)


# ----------------------------------------------------------------------------- DDPM


class DDPM(_DiscreteSampler):
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) with the fixed posterior variance beta_tilde.

    Each step draws x_prev ~ N(mu, beta_tilde I) from the posterior q(x_prev | x_t, x_0) with x_0
    replaced by its (clipped) estimate (eq. 6-7)::

        mu = sqrt(abar_prev) beta / (1 - abar_t) x0 + sqrt(alpha) (1 - abar_prev) / (1 - abar_t) x_t
        beta_tilde = (1 - abar_prev) / (1 - abar_t) beta

    On a strided timestep list, alpha = abar_t / abar_prev and beta = 1 - alpha, with abar_prev looked
    up at the next timestep *of the list* (the respacing of Nichol & Dhariwal 2021, sec. 4), never at
    t - T // steps. No noise is added on the last step (beta_tilde = 0 there, as abar_prev = 1).
    """

    name = "ddpm"
    stochastic = True

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        self._coef_x0, self._coef_xt, self._std = [], [], []
        for ab, ab_prev in zip(self._abar, self._abar_prev):
            alpha = ab / ab_prev
            beta = 1 - alpha
            self._coef_x0.append(math.sqrt(ab_prev) * beta / (1 - ab))
            self._coef_xt.append(math.sqrt(alpha) * (1 - ab_prev) / (1 - ab))
            self._std.append(math.sqrt(max((1 - ab_prev) / (1 - ab) * beta, 0.0)))

    def _step(self, out, i, x, generator):
        _, x0 = self._x0(out, i, x)
        x_prev = self._coef_x0[i] * x0 + self._coef_xt[i] * x
        if self._std[i] > 0:
            x_prev = x_prev + self._std[i] * _noise(x.shape, generator, x.device)
        return x_prev, x0


# ----------------------------------------------------------------------------- DDIM


class DDIM(_DiscreteSampler):
    """Denoising diffusion implicit models (Song et al. 2021), eq. 12::

        x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z

    with sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev) (eq. 16):
    eta = 0 is deterministic, eta = 1 is DDPM's ancestral step. abar_prev is looked up in the
    timestep list (never at t - T // steps) and is 1 after the last step.

    Options:
        eta: the stochasticity of eq. 16.
        eps_from_clipped_x0: when the x0 estimate was clipped or thresholded, re-derive eps from it,
            eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t), so the step is the one implied by the x0
            actually used (as guided-diffusion does; diffusers' ``use_clipped_model_output=True``).
            With it, DDIM at eta = 1 equals DDPM step for step, clipping included.
    """

    name = "ddim"

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0,
                 eta: float = 0.0, eps_from_clipped_x0: bool = True):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        self.eta, self.eps_from_clipped_x0 = eta, eps_from_clipped_x0
        self.stochastic = eta > 0
        self._std, self._dir, self._a_prev = [], [], []
        for ab, ab_prev in zip(self._abar, self._abar_prev):
            std = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
            self._std.append(std)
            self._dir.append(math.sqrt(max(1 - ab_prev - std**2, 0.0)))
            self._a_prev.append(math.sqrt(ab_prev))

    def _eps(self, out: torch.Tensor, i: int, x_t: torch.Tensor, raw_x0: torch.Tensor) -> torch.Tensor:
        a, s = self._a[i], self._s[i]
        if self.prediction == "eps":
            return out
        if self.prediction == "v":
            return s * x_t + a * out
        return (x_t - a * raw_x0) / s

    def _step(self, out, i, x, generator):
        raw, x0 = self._x0(out, i, x)
        clipped = self.clip is not None or self.dynamic_threshold is not None
        if clipped and self.eps_from_clipped_x0:
            eps = (x - self._a[i] * x0) / self._s[i]
        else:
            eps = self._eps(out, i, x, raw)
        x_prev = self._a_prev[i] * x0 + self._dir[i] * eps
        if self._std[i] > 0:
            x_prev = x_prev + self._std[i] * _noise(x.shape, generator, x.device)
        return x_prev, x0


# ----------------------------------------------------------------------------- DPM-Solver++(2M)


class DPMSolverPP2M(_DiscreteSampler):
    """DPM-Solver++(2M): the multistep second-order solver of the diffusion ODE in data prediction
    (Lu et al. 2022b, "DPM-Solver++", Algorithm 2). With lambda = log(a / s) (half-log-SNR),
    h_i = lambda_next - lambda_i and r = h_{i-1} / h_i::

        D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}
        x_next = (s_next / s_i) x_i - a_next (e^{-h_i} - 1) D

    The first step has no history and uses the first-order update (D = x0_i: DPM-Solver++1, which is
    DDIM). The last step lands on sigma = 0 (a = 1, s = 0, lambda = +inf) by default; there r = 0,
    the correction term is undefined, and the step is first order: x_next = x0_i.

    Options:
        lower_order_final: with fewer than 15 steps, take the last step first order (diffusers'
            rule for stability at few steps). Matters only with ``final_sigma="min"``; a last step
            onto sigma = 0 is first order regardless.
        final_sigma: ``"zero"`` ends on clean data; ``"min"`` ends at the noise level of t = 0
            (diffusers' ``final_sigmas_type="sigma_min"``) and returns that slightly noisy x.
    """

    name = "dpmpp"

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0,
                 lower_order_final: bool = True, final_sigma: Literal["zero", "min"] = "zero"):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        if final_sigma not in ("zero", "min"):
            raise ValueError(f"final_sigma must be 'zero' or 'min', got '{final_sigma}'")
        self.lower_order_final, self.final_sigma = lower_order_final, final_sigma
        # (a, s, lambda) at every point of the path: the steps' timesteps, then the end point
        abar_end = 1.0 if final_sigma == "zero" else float(schedule.alphas_cumprod[0])
        abars = self._abar + [abar_end]
        a = [math.sqrt(ab) for ab in abars]
        s = [math.sqrt(1 - ab) for ab in abars]
        lam = [math.inf if si == 0 else -math.inf if ai == 0 else math.log(ai / si) for ai, si in zip(a, s)]
        self._cx, self._cd, self._r = [], [], []
        for i in range(steps):
            h = lam[i + 1] - lam[i]
            self._cx.append(s[i + 1] / s[i])
            self._cd.append(-a[i + 1] * math.expm1(-h))  # -a_next (e^{-h} - 1)
            # r = h_{i-1} / h_i; a zero-length step (h = 0) makes the correction vanish (r = inf)
            self._r.append(math.nan if i == 0 else math.inf if h == 0 else (lam[i] - lam[i - 1]) / h)
        self._second = [self._second_order_ok(i) for i in range(steps)]
        self._reset()

    def _second_order_ok(self, i: int) -> bool:
        if i == 0:
            return False
        if i == self.steps - 1:
            if self.final_sigma == "zero" or (self.lower_order_final and self.steps < 15):
                return False
        return True

    def _reset(self) -> None:
        self._history: tuple[int, torch.Tensor] | None = None  # (step index, x0 estimate) of the last step

    def _step(self, out, i, x, generator):
        if i == 0:
            self._reset()
        _, x0 = self._x0(out, i, x)
        d = x0
        if self._second[i] and self._history is not None and self._history[0] == i - 1:
            k = 0.5 / self._r[i]
            d = (1 + k) * x0 - k * self._history[1]
        self._history = (i, x0)
        return self._cx[i] * x + self._cd[i] * d, x0


# ----------------------------------------------------------------------------- Euler and Heun (EDM)


class _SigmaSampler(Sampler):
    """Samplers of the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma on the EDM variable
    x = x_t / a = x_0 + sigma eps (Karras et al. 2022, eq. 1 and 3 with sigma(t) = t). The
    denoiser D comes from the network with the VP preconditioning of their Table 1: the network sees
    x_t = x / sqrt(1 + sigma^2) at timestep t(sigma), and D = c_skip x + c_out output.

    The noise levels are those of the chosen timesteps then 0, or with ``karras_sigmas`` the rho-
    spaced levels of eq. 5 between the same end points; the network then gets the fractional
    timestep :func:`sigma_to_t` (t interpolated over log sigma).
    """

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0,
                 karras_sigmas: bool = False, rho: float = 7.0):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        self.karras_sigmas, self.rho = karras_sigmas, rho
        table = schedule.sigmas().double()
        sig = table[self.timesteps]
        if not math.isfinite(float(sig[0])):
            raise ValueError(f"{type(self).__name__} needs a finite sigma at t={int(self.timesteps[0])}; a zero-"
                             "terminal-SNR schedule has sigma = inf at T-1: use ddpm, ddim or dpmpp, "
                             "or leading spacing")
        self.log_sigmas = table.log()  # for sigma_to_t / t_to_sigma
        if karras_sigmas:
            sig = karras_noise_levels(float(sig[-1]), float(sig[0]), steps, rho)
            self.timesteps = sigma_to_t(sig, self.log_sigmas)
        self.sigmas = torch.cat([sig, sig.new_zeros(1)])  # (steps + 1,) float64, last = 0
        self._sig = self.sigmas.tolist()
        self._t = [float(t) for t in self.timesteps] + [0.0]
        self.init_noise_sigma = math.sqrt(1 + self._sig[0] ** 2)
        # preconditioning per noise level (Table 1, VP): c_in = a = 1/sqrt(1+sigma^2), x_t = a x
        self._c_in = [1 / math.sqrt(1 + sg**2) for sg in self._sig]
        self._c = []
        for sg, c_in in zip(self._sig, self._c_in):
            c_skip, c_out = _x0_coefficients(prediction, c_in, sg * c_in)
            self._c.append((c_skip * c_in, c_out))  # on x rather than x_t

    def scale_model_input(self, x: torch.Tensor, index: int) -> torch.Tensor:
        return x * self._c_in[index]

    def model_time(self, index: int) -> float:
        return self._t[index]

    def _denoise(self, out: torch.Tensor, j: int, x: torch.Tensor) -> torch.Tensor:
        """D(x; sigma_j), clipped: the x0 estimate from the network's output at noise level j."""
        c_skip, c_out = self._c[j]
        return self.postprocess_x0(out if c_skip == 0.0 else c_skip * x + c_out * out)

    def _euler(self, out: torch.Tensor, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Euler step x_next, slope d_i, x0 estimate) from sigma_i to sigma_{i+1}."""
        x0 = self._denoise(out, i, x)
        d = (x - x0) / self._sig[i]
        return x + (self._sig[i + 1] - self._sig[i]) * d, d, x0


class Euler(_SigmaSampler):
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without its
    second-order correction, or Algorithm 2 with S_churn = 0)::

        d_i = (x_i - D(x_i; sigma_i)) / sigma_i,   x_{i+1} = x_i + (sigma_{i+1} - sigma_i) d_i

    One evaluation per step; the last step (to sigma = 0) returns D(x; sigma_last)."""

    name = "euler"

    def _step(self, out, i, x, generator):
        x_next, _, x0 = self._euler(out, i, x)
        return x_next, x0


class Heun(_SigmaSampler):
    """Heun's second-order method, Karras et al. 2022 Algorithm 1 (deterministic, no churn): an
    Euler step to sigma_{i+1}, then, unless sigma_{i+1} = 0, a second evaluation there and the
    average slope (d_i + d'_i) / 2 (trapezoidal rule). nfe = 2 steps - 1. Two evaluations per step
    do not fit ``step()``; use :meth:`advance` or :meth:`sample`."""

    name = "heun"

    @property
    def nfe(self) -> int:
        return 2 * self.steps - 1

    def step(self, model_output, index, x, generator=None):
        raise NotImplementedError("Heun evaluates the network twice per step; use advance() or sample()")

    def _advance(self, model_fn, i, x, generator):
        x_t, out = self._evaluate(model_fn, x, i)
        x_next, d, x0 = self._euler(out, i, x)
        if self._sig[i + 1] > 0:
            _, out2 = self._evaluate(model_fn, x_next, i + 1)
            d2 = (x_next - self._denoise(out2, i + 1, x_next)) / self._sig[i + 1]
            x_next = x + (self._sig[i + 1] - self._sig[i]) * 0.5 * (d + d2)
        return x_next, x_t, x0


# ----------------------------------------------------------------------------- DiffWave's fast schedule

#: DiffWave's 6-step inference noise schedule (Kong et al. 2021, appendix B)
DIFFWAVE_BETAS = (1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5)


class DiffWaveFast(Sampler):
    """DiffWave's fast sampling (Kong et al. 2021, appendix B): a short inference noise schedule
    beta^infer_1..S, unrelated to the training schedule, whose steps are *aligned* to fractional
    training timesteps.

    With alpha^infer_s = 1 - beta^infer_s and abar^infer_s their running product, step s evaluates the
    network at the t where sqrt(abar_t), linearly interpolated between training timesteps, equals
    sqrt(abar^infer_s) (the paper's t_s^align)::

        t_align = t + (sqrt(abar_t) - sqrt(abar^infer_s)) / (sqrt(abar_t) - sqrt(abar_{t+1}))

    and takes the ancestral step of the inference chain (the paper's Algorithm 2 on beta^infer)::

        x_{s-1} = (x_s - beta_s / sqrt(1 - abar_s) eps) / sqrt(alpha_s) + sigma_s z,
        sigma_s = sqrt((1 - abar_{s-1}) / (1 - abar_s) beta_s),  no noise on the last step

    eps comes from the (clipped) x0 estimate at abar^infer_s, so any prediction type works. With 6
    steps the schedule is DiffWave's (:data:`DIFFWAVE_BETAS`); another step count takes betas spaced
    geometrically between the same ends. Sampling starts from N(0, I) although abar^infer_S is 0.375,
    as DiffWave does. Levels beyond the training schedule's ends are clamped to its first or last step.
    ``spacing`` and ``steps_offset`` do not apply.
    """

    name = "diffwave"
    stochastic = True

    def __init__(self, schedule: NoiseSchedule, steps: int, spacing: Spacing = "leading", prediction: str = "eps",
                 clip: float | None = 1.0, dynamic_threshold: float | None = None, steps_offset: int = 0):
        super().__init__(schedule, steps, spacing, prediction, clip, dynamic_threshold, steps_offset)
        betas = DIFFWAVE_BETAS if steps == len(DIFFWAVE_BETAS) else tuple(
            float(b) for b in torch.logspace(math.log10(DIFFWAVE_BETAS[0]), math.log10(DIFFWAVE_BETAS[-1]), steps,
                                             dtype=torch.float64))
        abar = torch.tensor([1 - b for b in betas], dtype=torch.float64).cumprod(0)  # (S,) abar^infer_1..S
        root = schedule.alphas_cumprod.double().sqrt()  # (T,) decreasing
        times = []
        for target in abar.sqrt().tolist():
            t = int(torch.searchsorted(-root, torch.tensor([-target], dtype=torch.float64)).clamp(1, len(root) - 1)) - 1
            frac = (float(root[t]) - target) / (float(root[t]) - float(root[t + 1]))
            times.append(min(max(t + frac, 0.0), len(root) - 1.0))
        order = list(range(steps - 1, -1, -1))  # sampling runs s = S .. 1
        self._beta = [betas[s] for s in order]
        self._abar = [float(abar[s]) for s in order]
        self._abar_prev = [float(abar[s - 1]) if s > 0 else 1.0 for s in order]
        self.timesteps = torch.tensor([times[s] for s in order], dtype=torch.float64)  # fractional, descending
        self._c = [_x0_coefficients(prediction, math.sqrt(ab), math.sqrt(1 - ab)) for ab in self._abar]

    def _step(self, out, i, x, generator):
        c_skip, c_out = self._c[i]
        x0 = self.postprocess_x0(out if c_skip == 0.0 else c_skip * x + c_out * out)
        ab, beta = self._abar[i], self._beta[i]
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x_prev = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
        if i < self.steps - 1:
            sigma = math.sqrt((1 - self._abar_prev[i]) / (1 - ab) * beta)
            x_prev = x_prev + sigma * _noise(x.shape, generator, x.device)
        return x_prev, x0


# ----------------------------------------------------------------------------- registry


#: the samplers by name; the paradigm registry spells the same names (``PARADIGMS["gaussian"].samplers``)
#: for the command line and configs, as plain data (a test checks the two agree)
SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (DDPM, DDIM, DPMSolverPP2M, Euler, Heun, DiffWaveFast)}

#: a sampler's name as configs spell it, built from the registry so the two cannot drift apart
SamplerName = Literal[tuple(SAMPLERS)]  # type: ignore[valid-type]

#: the samplers whose state is x_t itself (noise scale 1), so a step may project or replace x_t
X_T_SAMPLERS: tuple[str, ...] = tuple(name for name, cls in SAMPLERS.items() if issubclass(cls, _DiscreteSampler))


def make_sampler(name: SamplerName, schedule: NoiseSchedule, steps: int, **kw) -> Sampler:
    """A sampler by name (``SAMPLERS``) with the shared arguments and its own options as keywords."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](schedule, steps, **kw)
