"""Samplers for masked (absorbing-state) diffusion: start from [MASK]s, end with tokens.

Every sampler has one signature: ``(predict, x, mask_id, steps, generator, temperature, ...) -> x``
where ``x`` (B, L) holds token ids and ``mask_id`` at the positions still to fill, and
``predict(x) -> logits (B, L, V)`` gives the denoiser's logits over the *real* vocabulary (the
SUBS parameterisation: the [MASK] column is already gone, i.e. its logit is -inf). Only masked
positions are ever written — the given tokens (a prompt, the context of an infill) are carried
over unchanged, exactly as SUBS' carry-over says (Sahoo et al. 2024, sec. 3.2.3).

- :func:`ancestral`: MDLM's reverse process (Sahoo et al. 2024, eq. 7 / Alg. 2) over ``steps``
  uniform times, with the caching trick of sec. 3.3 / appendix B.3: the denoiser does not depend on
  t, so when a step changed no token, the next step reuses the previous prediction.
- :func:`remask`: LLaDA's low-confidence remasking (Nie et al. 2025, sec. 2.4 and Alg. 5): each
  step predicts every masked position and keeps only the ``k`` most confident predictions.
- :func:`block`: LLaDA's semi-autoregressive remasking (sec. 2.4, appendix B.3): blocks of
  ``block_size`` left to right, each filled by :func:`remask` with its share of the steps.

Categorical draws are Gumbel-max in float64 (:func:`sample_categorical`): Zheng et al. 2024
("Masked Diffusion Models are Secretly Time-Agnostic Masked Models and Exploit Inaccurate
Categorical Sampling", sec. 4) show that float32 Gumbel noise is truncated (u >= 2^-24 caps the
noise near 16.6), which silently lowers the sampling temperature and inflates quality metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from twopaths.paradigms import PARADIGMS

Predict = Callable[[torch.Tensor], torch.Tensor]  # x (B, L) -> logits (B, L, V) over real tokens


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of ``probs`` (..., K), by Gumbel-max in float64: argmax(log p + G).

    ``probs`` is upcast to float64 first; the uniforms are float64 too, so the Gumbel tail is not
    truncated (Zheng et al. 2024, sec. 4). Rows need not be normalised; zero entries are never drawn.
    """
    probs = probs.double()
    device = generator.device if generator is not None else probs.device
    u = torch.rand(probs.shape, dtype=torch.float64, generator=generator, device=device).to(probs.device)
    gumbel = -torch.log(-torch.log(u))  # (..., K) standard Gumbel; u == 0 gives -inf, never chosen
    return (torch.log(probs) + gumbel).argmax(-1)


def x0_probs(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """p_theta(x0 | x_t) in float64 from logits (..., V): softmax(logits / T); T = 0 is one-hot argmax."""
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    return torch.softmax(logits.double() / temperature, dim=-1)


@torch.no_grad()
def ancestral(predict: Predict, x: torch.Tensor, mask_id: int, steps: int, generator: torch.Generator | None = None,
              temperature: float = 1.0, cache: bool = True) -> torch.Tensor:
    """MDLM ancestral sampling with the log-linear schedule alpha_t = 1 - t.

    From time t to s < t (a uniform grid 1 = t_0 > ... > t_steps = 0), a masked position stays
    masked with probability (1 - alpha_s) / (1 - alpha_t) = s / t and otherwise becomes a token
    drawn from p_theta(x0 | x_t) (Sahoo et al. 2024, eq. 7 with SUBS); the last step (s = 0)
    unmasks everything left. With ``cache`` the prediction is reused while no token changes.
    """
    V = mask_id  # the real vocabulary is 0..mask_id-1; index V of a draw means "stay masked"
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    probs = None  # (B, L, V) float64, the cached prediction
    for i in range(steps):
        t, s = float(times[i]), float(times[i + 1])
        masked = x == mask_id  # (B, L)
        if not bool(masked.any()):
            break
        if probs is None or not cache:
            probs = x0_probs(predict(x), temperature)
        stay = s / t  # probability a masked position is still masked at s
        q = torch.cat([probs * (1.0 - stay), torch.full_like(probs[..., :1], stay)], dim=-1)  # (B, L, V + 1)
        draw = sample_categorical(q[masked], generator)  # (N,) in 0..V, V = stay masked
        new = x.clone()
        new[masked] = draw
        if bool((new != x).any()):
            probs = None  # a token changed: the next step needs a fresh prediction
        x = new
    return x


@torch.no_grad()
def remask(predict: Predict, x: torch.Tensor, mask_id: int, steps: int, generator: torch.Generator | None = None,
           temperature: float = 1.0, region: torch.Tensor | None = None) -> torch.Tensor:
    """LLaDA low-confidence remasking (Nie et al. 2025, Alg. 5) over ``steps`` steps.

    Each step draws a token for every masked position of ``region`` (bool (B, L) or (L,); default
    everywhere) at ``temperature``, scores it by its probability under the model (temperature 1,
    as LLaDA does), keeps the ``k`` most confident and remasks the rest.
    ``k`` spreads a row's masked count evenly over the steps (the first ``n % steps`` steps take
    one more), so the region is full after the last step. Steps where no row keeps anything are
    skipped without calling the network.
    """
    B, L = x.shape
    region = torch.ones(B, L, dtype=torch.bool, device=x.device) if region is None else region.expand(B, L)
    n = ((x == mask_id) & region).sum(1)  # (B,) positions to fill per row
    step = torch.arange(steps, device=x.device)
    k = n[:, None] // steps + (step[None, :] < (n % steps)[:, None]).long()  # (B, steps) kept per step
    for i in range(steps):
        if not bool(k[:, i].any()):
            continue
        masked = (x == mask_id) & region  # (B, L)
        logits = predict(x)  # (B, L, V)
        cand = torch.full_like(x, mask_id)
        cand[masked] = sample_categorical(x0_probs(logits[masked], temperature), generator)  # (N,) only where masked
        probs = torch.softmax(logits.double(), dim=-1)  # confidence: the model's own probability (any temperature)
        conf = probs.gather(-1, cand.clamp(max=probs.shape[-1] - 1)[..., None]).squeeze(-1)  # (B, L)
        conf = conf.masked_fill(~masked, float("-inf"))
        order = conf.argsort(dim=1, descending=True, stable=True)  # most confident first
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(L, device=x.device).expand(B, L))
        keep = masked & (rank < k[:, i:i + 1])  # (B, L)
        x = torch.where(keep, cand, x)
    return x


@torch.no_grad()
def block(predict: Predict, x: torch.Tensor, mask_id: int, steps: int, block_size: int,
          generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
    """Semi-autoregressive sampling (LLaDA, Nie et al. 2025, sec. 2.4): blocks left to right.

    The sequence is cut into blocks of ``block_size`` positions; blocks with something to fill
    are denoised one after another by :func:`remask`, the ``steps`` divided among them (the first
    ``steps % blocks`` blocks get one more). The network still sees the whole sequence, later
    blocks as [MASK]s.
    """
    B, L = x.shape
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    spans = [(a, min(a + block_size, L)) for a in range(0, L, block_size)]
    spans = [(a, b) for a, b in spans if bool((x[:, a:b] == mask_id).any())]
    if not spans:
        return x
    if steps < len(spans):
        raise ValueError(f"{len(spans)} blocks need at least {len(spans)} steps, got {steps}")
    for j, (a, b) in enumerate(spans):
        region = torch.zeros(L, dtype=torch.bool, device=x.device)
        region[a:b] = True
        x = remask(predict, x, mask_id, steps // len(spans) + (j < steps % len(spans)), generator, temperature,
                   region)
    return x


SAMPLERS = PARADIGMS["mdlm"].samplers  # ancestral, remask, block: the functions above

#: an MDLM sampler's name as configs spell it, built from ``SAMPLERS``
MDLMSamplerName = Literal[SAMPLERS]  # type: ignore[valid-type]
