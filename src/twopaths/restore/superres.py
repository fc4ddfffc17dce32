"""Super-resolution by iterative refinement: SR3.

Saharia et al. 2022 ("Image Super-Resolution via Iterative Refinement", sec. 2) train a Gaussian
diffusion model of the high-resolution image x_0 *conditioned on* the low-resolution one: the
low-resolution image is upsampled (bicubic) to the target size and concatenated to x_t along the
channels, so the denoiser sees (2C, H, W) and predicts the C-channel noise::

    L = E || eps - eps_theta(concat(x_t, up(low)), t) ||^2,   x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps

Everything else (schedules, objectives, samplers, classifier-free guidance when classes are used)
is :class:`~twopaths.paradigms.gaussian.GaussianDiffusion`'s. Training pairs are made on the fly
from any image batch: ``low = avgpool_f(x_0)`` with the upsampling factor f.

**Data consistency.** Average pooling and nearest upsampling satisfy down(up_nearest(y)) = y, so the
affine projection ``x <- x - up_nearest(down(x)) + up_nearest(low)`` makes ``down(x) == low`` hold
exactly. Used on x_t at every step (with ``low`` noised to the step's level) it is ILVR (Choi et al.
2021, "ILVR: Conditioning Method for Denoising Diffusion Probabilistic Models", eq. 8, with phi_N =
nearest-up after average-pool). On the final image the pixels must also stay in [-1, 1], and
clamping after the affine projection would break the equality; :func:`consistency_projection`
instead computes the Euclidean projection onto {x in [-1, 1] : down(x) = low}, which in each f x f
block is x_i = clamp(u_i + lambda, -1, 1) with the one lambda that gives the block's mean (the KKT
conditions of that projection; lambda by bisection). So the output **is** in [-1, 1] **and**
``down(output) == low`` to float32 rounding (the tests use 1e-5).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.errors import TwopathsError
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.samplers import X_T_SAMPLERS, Spacing, make_sampler
from twopaths.paradigms.schedule import to_x0

Consistency = Literal["none", "final", "every"]


# ----------------------------------------------------------------------------- resampling operators


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average pooling over factor x factor blocks: (N, C, H, W) -> (N, C, H / f, W / f)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def upsample_nearest(y: torch.Tensor, factor: int) -> torch.Tensor:
    """Each pixel repeated into a factor x factor block; downsample(upsample_nearest(y)) == y."""
    return y.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1) if factor > 1 else y


def upsample_smooth(y: torch.Tensor, factor: int, mode: str = "bicubic") -> torch.Tensor:
    """Bicubic or bilinear upsampling (align_corners=False), clamped to [-1, 1] (bicubic overshoots)."""
    size = (y.shape[-2] * factor, y.shape[-1] * factor)
    return F.interpolate(y.float(), size=size, mode=mode, align_corners=False).clamp(-1, 1)


def consistency_projection(x: torch.Tensor, low: torch.Tensor, factor: int,
                           bound: float | None = 1.0, iters: int = 60) -> torch.Tensor:
    """The nearest image to ``x`` whose average-pooled version is ``low`` (module docstring).

    ``bound=None``: the affine projection x - up(down(x)) + up(low). With a bound b: the Euclidean
    projection onto {x in [-b, b] : down(x) = low}, x_i = clamp(u_i + lambda_block, -b, b), lambda
    found per block by bisection in float64 (``iters`` halvings of an interval of width <= 4b + ...
    leave an error far below float32 rounding). ``low`` must lie in [-b, b] for that set to be
    non-empty; it is clamped there.
    """
    if x.shape[-2] != low.shape[-2] * factor or x.shape[-1] != low.shape[-1] * factor:
        raise ValueError(f"x {tuple(x.shape)} is not {factor}x the size of low {tuple(low.shape)}")
    if bound is None:
        return x - upsample_nearest(downsample(x, factor), factor) + upsample_nearest(low, factor)
    N, C, H, W = x.shape
    h, w = H // factor, W // factor
    # (N, C, h, w, f*f): the pixels of each block in the last axis
    u = x.double().reshape(N, C, h, factor, w, factor).permute(0, 1, 2, 4, 3, 5).reshape(N, C, h, w, -1)
    target = low.double().clamp(-bound, bound).reshape(N, C, h, w, 1)
    lo = -bound - u.amax(-1, keepdim=True)  # every pixel clamps to -b: mean -b <= target
    hi = bound - u.amin(-1, keepdim=True)  # every pixel clamps to +b: mean +b >= target
    for _ in range(iters):
        mid = (lo + hi) / 2
        too_high = (u + mid).clamp(-bound, bound).mean(-1, keepdim=True) > target
        hi = torch.where(too_high, mid, hi)
        lo = torch.where(too_high, lo, mid)
    v = (u + (lo + hi) / 2).clamp(-bound, bound)  # (N, C, h, w, f*f)
    return v.reshape(N, C, h, w, factor, factor).permute(0, 1, 2, 4, 3, 5).reshape(N, C, H, W).to(x.dtype)


# ----------------------------------------------------------------------------- the paradigm


class SuperResolution(GaussianDiffusion):
    """SR3: Gaussian diffusion of the (C, H, W) high-resolution image over a backbone
    ``net(concat(x_t, up(low)), t, y)`` that takes 2C channels and returns C (2C with learned variance).

    ``factor``: H / h of the low-resolution input; ``upsample``: how the condition is made (SR3 uses
    bicubic). ``sample`` is not defined without an input: use :meth:`upscale`.
    """

    def __init__(self, net: nn.Module, cfg: GaussianConfig, sample_shape: tuple[int, int, int], factor: int,
                 num_classes: int = 0, upsample: Literal["bicubic", "bilinear"] = "bicubic"):
        C, H, W = sample_shape
        if factor < 1 or H % factor or W % factor:
            raise ValueError(f"factor {factor} must divide the image size {H}x{W}")
        super().__init__(net, cfg, sample_shape, num_classes, "image", clip=1.0)
        self.factor, self.upsample = factor, upsample

    @property
    def low_shape(self) -> tuple[int, int, int]:
        C, H, W = self.sample_shape
        return C, H // self.factor, W // self.factor

    def condition(self, low: torch.Tensor) -> torch.Tensor:
        """The extra input channels: (N, C, h, w) low-res -> (N, C, H, W) upsampled."""
        return upsample_smooth(low, self.factor, self.upsample)

    # ------------------------------------------------------------------ the network

    def model_output(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                     guidance: float = 1.0, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The network's prediction at (x_t, t) given ``cond`` = :meth:`condition` of the low-res image."""
        if cond is None:
            raise ValueError("SuperResolution.model_output needs cond, the upsampled low-resolution image")
        # GaussianDiffusion.model_output only passes x through to the network (and guidance doubles it)
        return super().model_output(torch.cat([x_t, cond], dim=1), t, y, guidance)

    # ------------------------------------------------------------------ training

    def network_input(self, x_t: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """SR3 trains on pairs (avgpool_f(x_0), x_0) (Saharia et al. eq. 5; the loss is
        :meth:`GaussianDiffusion.loss`): the network reads x_t beside the upsampled low-res image."""
        cond = self.condition(downsample(batch[self.data_key], self.factor))  # (B, C, H, W)
        return torch.cat([x_t, cond], 1)  # (B, 2C, H, W)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def upscale(self, low: torch.Tensor, sampler: str = "ddpm", steps: int | None = None,
                y: torch.Tensor | None = None, guidance: float = 1.0, spacing: Spacing = "leading",
                generator: torch.Generator | None = None, consistency: Consistency = "final",
                callback: Any = None, **sampler_options: Any) -> torch.Tensor:
        """(N, C, h, w) in [-1, 1] -> (N, C, H, W) in [-1, 1].

        ``consistency``: ``"final"`` projects the result with :func:`consistency_projection` so that
        ``downsample(result) == low`` (and the result stays in [-1, 1]); ``"every"`` also applies the
        affine projection to x_t after each step, against ``low`` noised to that step's level (ILVR;
        samplers whose state is x_t: ddpm, ddim, dpmpp); ``"none"`` returns the sampler's output.
        Other arguments as :meth:`GaussianDiffusion.sample` (``steps`` defaults to
        :meth:`~GaussianDiffusion.default_steps`), but the default sampler is ancestral DDPM, as SR3's; ``callback(i, t, x_t, x0_pred)``.
        """
        if tuple(low.shape[1:]) != self.low_shape:
            raise ValueError(f"low-resolution input must be (N, {', '.join(map(str, self.low_shape))}), "
                             f"got {tuple(low.shape)}")
        if consistency not in ("none", "final", "every"):
            raise ValueError(f"consistency must be none, final or every, got '{consistency}'")
        if consistency == "every" and sampler not in X_T_SAMPLERS:
            raise ValueError(f"consistency 'every' projects x_t, which needs a sampler whose state is x_t "
                             f"({', '.join(X_T_SAMPLERS)}), not '{sampler}'")
        device = next(self.parameters()).device
        low = low.to(device, torch.float32).clamp(-1, 1)
        cond = self.condition(low)
        if y is not None:
            y = y.to(device)
        steps = steps or self.default_steps(sampler)
        solver = make_sampler(sampler, self.schedule, steps, spacing=spacing, prediction=self.cfg.prediction,
                              clip=self.clip, **sampler_options)

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.model_output(x_t, t, y, guidance, cond)

        x = solver.init_noise((low.shape[0], *self.sample_shape), generator, device)
        if consistency != "every":
            x = solver.sample(model_fn, x, generator, callback)
        else:
            abar = self.schedule.alphas_cumprod
            for i in range(steps):
                t = torch.full((x.shape[0],), solver.model_time(i), device=device)
                out = model_fn(x, t)
                if callback is not None:
                    callback(i, solver.model_time(i), x, to_x0(self.cfg.prediction, out, x, self.schedule,
                                                               t.long()).clamp(-1, 1))
                x = solver.step(out, i, x, generator)
                t_next = int(solver.timesteps[i + 1]) if i + 1 < steps else -1
                if t_next >= 0:  # ILVR: the low frequencies of x_t from q(x_t | x_0) of the reference
                    a = float(abar[t_next])
                    z = downsample(solver.init_noise(x.shape, generator, device), self.factor)
                    x = consistency_projection(x, a**0.5 * low + (1 - a) ** 0.5 * z, self.factor, bound=None)
        if consistency != "none":
            x = consistency_projection(x, low, self.factor, bound=1.0)
        return x

    @torch.no_grad()
    def sample(self, n: int, **kwargs: Any) -> torch.Tensor:
        raise TwopathsError("a super-resolution model upscales a given image; use upscale(low) "
                            "(or 'twopaths upscale RUN --image small.png')")

    @torch.no_grad()
    def nll_bits_per_dim(self, x0: torch.Tensor, y: torch.Tensor | None = None, **_: Any) -> dict[str, torch.Tensor]:
        raise TwopathsError("the likelihood bound is not implemented for super-resolution models; use --metrics loss")
