"""Joint video diffusion: Gaussian diffusion of a whole clip (T, C, H, W) at once, and video prediction
from a model trained only to generate whole clips.

Training and unconditional sampling are :class:`~twopaths.paradigms.gaussian.GaussianDiffusion`'s own on
5-D items (Ho et al. 2022, "Video Diffusion Models"): the clip is one sample, the noise and the loss
cover all its frames, and every sampler of :mod:`twopaths.paradigms.samplers` draws all frames together.

**Prediction** (:meth:`VideoDiffusion.predict`) continues the first k frames x^b of a clip. The model
only knows p(x), so the conditional p(x^a | x^b) of the other frames x^a is sampled by the methods of
Ho et al. 2022, sec. 3.1:

- the *replacement method* (Song et al. 2021, "Score-Based Generative Modeling through SDEs", app. I):
  at every network evaluation at noise level t the known frames of the input are replaced by the
  ground truth noised to that level, z^b_t ~ q(z_t | x^b) = N(sqrt(abar_t) x^b, (1 - abar_t) I), so the
  denoiser predicts x^a while seeing a sample of z_t that agrees with the context;
- *reconstruction guidance* (their eq. 7), with weight w_r > 0: the x^a estimate is corrected along
  the gradient of how badly the model reconstructs the context from the same input::

      x~^a = x^a_hat - (w_r sqrt(abar_t) / 2) grad_{z^a_t} || x^b - x^b_hat(z_t) ||^2

  which makes x^a consistent with x^b where replacement alone leaves it only loosely so (they use
  w_r = 2 and find it much better than replacement for long predictions).

Both act on the network's input and output, not on the sampler's state, so every sampler works (the
sigma-state samplers Euler and Heun hand the network x_t on the variance-preserving scale as well), and
the t the network gets may be fractional (DiffWave's aligned steps): abar is then interpolated in log
sigma as the samplers do. The known frames of the result are the context itself, exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.samplers import make_sampler, t_to_sigma
from twopaths.paradigms.schedule import x0_coefficients

__all__ = ["VideoDiffusion", "check_context"]


def check_context(context: torch.Tensor, frame_shape: tuple[int, ...], frames: int) -> int:
    """The number k of context frames of ``context`` (n, k, C, H, W), checked against one frame's
    shape (C, H, W) and the clip length: 1 <= k < frames (a ValueError otherwise)."""
    if context.ndim != 5 or tuple(context.shape[2:]) != tuple(frame_shape):
        raise ValueError(f"context must be (n, k, {', '.join(map(str, frame_shape))}) frames, got "
                         f"{tuple(context.shape)}")
    k = context.shape[1]
    if not 1 <= k < frames:
        raise ValueError(f"the context must hold 1..{frames - 1} frames of a {frames}-frame clip, got {k}")
    return k


class VideoDiffusion(GaussianDiffusion):
    """Gaussian diffusion over clips (T, C, H, W) on a denoiser of clips (the space-time U-Net,
    :class:`~twopaths.backbones.video_unet.VideoUNet`); batches carry ``"video"`` (B, T, C, H, W)."""

    def __init__(self, net: nn.Module, cfg: GaussianConfig, sample_shape: tuple[int, int, int, int],
                 num_classes: int = 0):
        if len(sample_shape) != 4:
            raise ValueError(f"a clip's shape is (T, C, H, W), got {sample_shape}")
        super().__init__(net, cfg, sample_shape, num_classes, "video", clip=1.0, channel_axis=2)
        self.item_name = "clips"
        self.reconstruction_guidance = 0.0  # predict's default w_r (a run's arch.reconstruction_guidance)

    @property
    def frames(self) -> int:
        return self.sample_shape[0]

    def abar_at(self, t: torch.Tensor) -> torch.Tensor:
        """abar at timesteps ``t`` (B,) float: the table's value at whole t, interpolated in log sigma
        (as :func:`~twopaths.paradigms.samplers.sigma_to_t` places fractional ones) in between."""
        table = self.schedule.alphas_cumprod.to(t.device)
        whole = t == t.round()
        exact = table[t.round().long().clamp(0, len(table) - 1)]
        if whole.all():
            return exact.float()
        sigma = t_to_sigma(t.detach().double().cpu(), self.schedule.sigmas().log()).to(t.device)
        return torch.where(whole, exact, 1 / (1 + sigma**2)).float()

    @torch.no_grad()
    def predict(self, context: torch.Tensor, *, frames: int | None = None, sampler: str | None = None,
                steps: int | None = None, generator: torch.Generator | None = None, cond: torch.Tensor | None = None,
                guidance: float = 1.0, reconstruction_guidance: float | None = None, spacing: str = "leading",
                callback: Any = None, **sampler_options: Any) -> torch.Tensor:
        """Continue ``context`` (n, k, C, H, W) in [-1, 1] to (n, T, C, H, W) clips whose first k frames
        are ``context`` (module docstring: replacement, plus reconstruction guidance of weight
        ``reconstruction_guidance`` w_r when > 0; default: the model's own, ``self.reconstruction_guidance``).
        ``frames`` must be the model's T (a joint model draws exactly its T frames); the other arguments as
        :meth:`GaussianDiffusion.sample`."""
        T, C, H, W = self.sample_shape
        if frames is not None and frames != T:
            raise ValueError(f"this joint video model generates clips of exactly {T} frames, not {frames}")
        k = check_context(context, (C, H, W), T)
        if reconstruction_guidance is None:
            reconstruction_guidance = self.reconstruction_guidance
        if reconstruction_guidance < 0:
            raise ValueError(f"reconstruction_guidance must be >= 0, got {reconstruction_guidance}")
        device = next(self.parameters()).device
        n = context.shape[0]
        known = torch.zeros(n, T, C, H, W, device=device)
        known[:, :k] = context.to(device, torch.float32)  # (n, T, C, H, W): the context, zeros after it
        mask = torch.zeros(1, T, 1, 1, 1, device=device)
        mask[:, :k] = 1.0  # (1, T, 1, 1, 1): 1 on the known frames
        y = cond.to(device) if cond is not None else None
        sampler, steps = self.sampling_plan(sampler, steps)
        solver = make_sampler(sampler, self.schedule, steps, spacing=spacing, prediction=self.cfg.prediction,
                              clip=self.clip, **sampler_options)
        w_r = float(reconstruction_guidance)

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            abar = self.abar_at(t).view(-1, 1, 1, 1, 1)  # (n, 1, 1, 1, 1)
            a, s = abar.sqrt(), (1 - abar).sqrt()
            noise = torch.randn(x_t.shape, generator=generator, device=generator.device if generator else device)
            noise = noise.to(device)  # (n, T, C, H, W) N(0, I), drawn where the generator lives
            z = mask * (a * known + s * noise) + (1 - mask) * x_t  # (n, T, C, H, W): the context at level t
            if w_r == 0:
                return self.model_output(z, t, y, guidance)
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                out = self.model_output(z, t, y, guidance)  # (n, T, C, H, W)
                c_skip, c_out = x0_coefficients(self.cfg.prediction, a, s)
                x0 = c_skip * z + c_out * out  # the model's estimate of the clean clip
                error = ((known - x0) * mask).square().sum()  # how badly it reconstructs the context
                grad = torch.autograd.grad(error, z)[0]  # (n, T, C, H, W)
            x0 = x0.detach() - (w_r * a / 2) * grad * (1 - mask)  # Ho et al. 2022, eq. 7, on the unknown frames
            return ((x0 - c_skip * z.detach()) / c_out).detach()  # back to the model's own output (eps, x0 or v)

        x_T = solver.init_noise((n, *self.sample_shape), generator, device)
        clips = solver.sample(model_fn, x_T, generator, callback)  # (n, T, C, H, W)
        clips[:, :k] = known[:, :k]  # the given frames, exactly
        return clips
