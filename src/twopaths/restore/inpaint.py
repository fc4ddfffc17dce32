"""Inpainting with a trained Gaussian diffusion model: RePaint.

Lugmayr et al. 2022 ("RePaint: Inpainting using Denoising Diffusion Probabilistic Models",
Algorithm 1) fill a hole in an image with a model trained only to generate whole images. Every
reverse step builds x_{t-1} from two halves joined by the mask m (1 = known pixel, 0 = to fill)::

    x_{t-1}^known   ~ q(x_{t-1} | x_0)   = sqrt(abar_{t-1}) x_0 + sqrt(1 - abar_{t-1}) eps   (Ho et al. eq. 4)
    x_{t-1}^unknown ~ p(x_{t-1} | x_t)                                      (the model's reverse step)
    x_{t-1}         = m * x_{t-1}^known + (1 - m) * x_{t-1}^unknown

The two halves are drawn independently, so they disagree at the border. *Resampling* lets the
model harmonise them: after reaching x_{t-1}, noise it back to x_t ~ q(x_t | x_{t-1}) and take the
reverse step again, ``resample`` times in all. With *jump length* j the chain goes down j steps and
then jumps back up j steps at once (q(x_{t+j} | x_t) in closed form) before going down again
(RePaint sec. 4.2: j = 10, r = 10 over T = 250). :func:`repaint_levels` writes that walk down.

Here the chain runs over the timesteps of a (possibly strided) DDPM or DDIM sampler from
:mod:`twopaths.paradigms.samplers` (``steps`` < T for CPU speed); the reverse step is that sampler's
``step`` and the known half is :func:`~twopaths.paradigms.schedule.q_sample`, so the arithmetic is
the library's one copy. The last step lands on abar = 1, where the known half is the given image
itself: **known pixels come out exactly as given** (Algorithm 1 writes sqrt(abar_t) x_0 at t = 1,
which is off by a factor sqrt(1 - beta_1); this module uses abar_{t-1}, as the equation means).

Masks: float tensors, **1 = keep (known), 0 = fill**, broadcastable to the image (one channel is
shared by all). Images and results are in [-1, 1].
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from twopaths.paradigms import REPAINT_SAMPLERS
from twopaths.paradigms.gaussian import GaussianDiffusion
from twopaths.paradigms.samplers import Spacing, make_sampler
from twopaths.paradigms.schedule import q_sample, to_x0

REPAINT_STEPS = 100  # default levels of the walk (each resampled and jumped: see network_evaluations)


def repaint_steps(model: GaussianDiffusion, steps: int | None = None) -> int:
    """The levels RePaint walks: ``steps``, else :data:`REPAINT_STEPS` (at most the model's T)."""
    return steps or min(model.schedule.T, REPAINT_STEPS)

#: (move index, timestep the network saw, x_t, clipped x0 estimate), after every reverse step
InpaintCallback = Callable[[int, float, torch.Tensor, torch.Tensor], None]


def repaint_levels(steps: int, jump: int = 1, resample: int = 1) -> list[int]:
    """The walk of RePaint's resampling schedule over levels 0..steps, as the list of levels visited.

    Level l < steps is the sampler's timestep ``timesteps[l]`` (0 the noisiest), level ``steps`` is
    clean data. The walk goes down in blocks of ``jump`` levels; after each block it jumps back
    up to the block's start and comes down again, ``resample - 1`` times. The last move, onto
    clean data, is made once and never resampled (in Algorithm 1 the re-noising stops at t = 1).
    ``resample = 1`` is plain sampling: 0, 1, ..., steps. Down moves (l -> l + 1) cost one network
    evaluation each; with jump 1 there are (steps - 1) * resample + 1 of them.

    >>> repaint_levels(4, jump=2, resample=2)
    [0, 1, 2, 0, 1, 2, 3, 2, 3, 4]
    """
    if steps < 1 or jump < 1 or resample < 1:
        raise ValueError(f"steps, jump and resample must be >= 1, got {steps}, {jump}, {resample}")
    levels = [0]
    start, last_noisy = 0, steps - 1
    while start < last_noisy:
        end = min(start + jump, last_noisy)
        levels += range(start + 1, end + 1)
        for _ in range(resample - 1):
            levels += [start, *range(start + 1, end + 1)]  # one jump up, then down again
        start = end
    levels.append(steps)
    return levels


def _check_inputs(image: torch.Tensor, mask: torch.Tensor, sample_shape: tuple[int, ...]) -> torch.Tensor:
    if image.ndim != 4 or tuple(image.shape[1:]) != tuple(sample_shape):
        raise ValueError(f"image must be (N, {', '.join(map(str, sample_shape))}) for this model, "
                         f"got {tuple(image.shape)}")
    mask = mask.to(image.device, torch.float32)
    if mask.ndim == 3:
        mask = mask[None]
    try:
        torch.broadcast_shapes(mask.shape, image.shape)
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the image {tuple(image.shape)}") \
            from None
    if mask.numel() and (mask.min() < 0 or mask.max() > 1):
        raise ValueError("mask values must lie in [0, 1] (1 = keep, 0 = fill)")
    return mask


@torch.no_grad()
def inpaint(model: GaussianDiffusion, image: torch.Tensor, mask: torch.Tensor, steps: int | None = None,
            resample: int = 1, jump: int = 1, sampler: str = "ddpm", spacing: Spacing = "leading",
            y: torch.Tensor | None = None, guidance: float = 1.0, generator: torch.Generator | None = None,
            callback: InpaintCallback | None = None, prompts: list[str] | None = None,
            **sampler_options) -> torch.Tensor:
    """Fill the pixels of ``image`` where ``mask`` is 0 with RePaint (module docstring).

    Args:
        model: a trained :class:`GaussianDiffusion` over images; class-conditional ones take ``y``.
        image: (N, C, H, W) in [-1, 1], the model's ``sample_shape``; what lies under the hole is ignored.
        mask: 1 = keep, 0 = fill; (N or 1, 1 or C, H, W) or (1 or C, H, W), values in [0, 1].
        steps: timesteps of the sampler's (strided) schedule; default :func:`repaint_steps`.
        resample: r, passes through each block (1 = no resampling).
        jump: j, levels per block before jumping back up.
        sampler: ``ddpm`` (ancestral, as RePaint) or ``ddim`` (``eta`` in ``sampler_options``).
        spacing: where the ``steps`` timesteps fall among the T training ones (:func:`make_timesteps`).
        y, guidance: (N,) class ids and classifier-free guidance scale, as in :meth:`GaussianDiffusion.sample`.
        generator: the source of every random draw (same seed, same result).
        callback: ``callback(i, t, x_t, x0_pred)`` after every reverse step i.
        prompts: N captions for a text-conditioned model (None: unconditional).

    Returns:
        (N, C, H, W): equal to ``image`` wherever ``mask`` is 1 (to float rounding), generated elsewhere.
    """
    if sampler not in REPAINT_SAMPLERS:
        raise ValueError(f"inpainting walks back up the chain, which needs a sampler without history; "
                         f"choose one of {', '.join(REPAINT_SAMPLERS)}, got '{sampler}'")
    if len(model.sample_shape) != 3:
        raise ValueError(f"inpainting needs an image model, this one makes items of shape {model.sample_shape}")
    device = next(model.parameters()).device
    x0_known = image.to(device, torch.float32)
    mask = _check_inputs(x0_known, mask, model.sample_shape)
    s = model.schedule
    steps = repaint_steps(model, steps)
    solver = make_sampler(sampler, s, steps, spacing=spacing, prediction=model.cfg.prediction, clip=model.clip,
                          **sampler_options)
    timesteps = [int(t) for t in solver.timesteps]
    abar = [float(s.alphas_cumprod[t]) for t in timesteps] + [1.0]  # per level; level `steps` is clean
    if y is not None:
        y = y.to(device)
    n = x0_known.shape[0]
    text = {} if prompts is None else {"prompts": model.encode_prompts(prompts, n)}  # encoded once

    def noised_known(level: int) -> torch.Tensor:
        """x^known at ``level``: a draw from q(x_t | x_0), or x_0 itself at the clean level."""
        if level == steps:
            return x0_known
        t = torch.full((n,), timesteps[level], device=device, dtype=torch.long)
        return q_sample(s, x0_known, t, solver.init_noise(x0_known.shape, generator, device))

    x = solver.init_noise(x0_known.shape, generator, device)  # level 0: pure noise everywhere
    levels = repaint_levels(steps, jump, resample)
    evaluations = 0
    for here, there in zip(levels[:-1], levels[1:]):
        if there < here:
            # jump up: x_there ~ q(x_there | x_here) = N(sqrt(abar_there / abar_here) x, (1 - that) I)
            ratio = abar[there] / abar[here]
            x = math.sqrt(ratio) * x + math.sqrt(1 - ratio) * solver.init_noise(x.shape, generator, device)
            continue
        t = torch.full((n,), float(timesteps[here]), device=device)
        out = model.model_output(x, t, y, guidance, **text)
        unknown = solver.step(out, here, x, generator)
        if callback is not None:
            x0_pred = to_x0(model.cfg.prediction, out.float(), x, s, t.long())
            callback(evaluations, float(timesteps[here]), x,
                     x0_pred.clamp(-model.clip, model.clip) if model.clip else x0_pred)
        evaluations += 1
        x = mask * noised_known(there) + (1 - mask) * unknown
    return x


def network_evaluations(steps: int, jump: int = 1, resample: int = 1) -> int:
    """How many network calls :func:`inpaint` makes (times 2 with classifier-free guidance)."""
    levels = repaint_levels(steps, jump, resample)
    return sum(b > a for a, b in zip(levels[:-1], levels[1:]))
