"""Frame-by-frame video generation: each frame a Gaussian diffusion sample conditioned on the frames before it.

The clip is factorised autoregressively over time, p(x^1..x^T) = prod_k p(x^k | x^{k-K}..x^{k-1}),
with a window of K = ``context_frames`` past frames, and each factor is an image diffusion model: a
2-D denoiser of the frame x^k that also reads its K predecessors as extra input channels. Generation
draws frame 0, then frame 1 given frame 0, and so on: T image samplings of ``steps`` network calls
each, every one a full :class:`~twopaths.paradigms.gaussian.GaussianDiffusion` sampling with any of its
samplers. Video prediction is the same loop started at the first unknown frame.

The past enters as channels (the conditioning of SR3, Saharia et al. 2022, and of the frame-conditional
video models of Harvey et al. 2022, "Flexible Diffusion Modeling of Long Videos", and Ho et al. 2022,
"Video Diffusion Models", whose conditional models read the observed frames beside the noisy ones).
The network input of frame k is ``concat(x^k_t, slot_1, ..., slot_K)``, slot i holding frame k - K - 1 + i
as C channels followed by one *present* channel, all ones; a slot before the clip's start holds zeros
with present = 0, so the first frame is an unconditional image sample and the second sees one frame.
Training draws (frame, its past) pairs from the clips (every frame of each clip by default, or
``pairs_per_clip`` random ones) and minimises the per-frame diffusion loss, each pair with its own t.

**Why this design.** The denoiser is the same 2-D U-Net that the joint model
(:mod:`twopaths.paradigms.video_diffusion` on :class:`~twopaths.backbones.video_unet.VideoUNet`) applies to
every frame, minus the temporal attention, and both train under the same Gaussian diffusion with the
same schedule, objective and samplers. What differs is only *how frames are tied together*: jointly,
by attention across all T frames while they are denoised together, or sequentially, by conditioning
each clean frame on the clean frames before it. The joint-vs-sequential question is then measured
with the network family, the training FLOPs and the per-frame quality machinery held fixed: the
autoregressive model pays T times the sequential network calls at sampling, can extend a clip beyond
the length it was trained on, and risks drift as its errors feed back (Harvey et al. 2022, sec. 5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.samplers import make_sampler
from twopaths.paradigms.video_diffusion import check_context

__all__ = ["FrameAutoregressive", "PastConditionedDiffusion", "past_channels"]


def past_channels(video: torch.Tensor, index: torch.Tensor, context_frames: int) -> torch.Tensor:
    """The conditioning channels of frames ``index`` of clips ``video``: the ``context_frames`` K frames
    before each, with a present channel (module docstring).

    video (B, L, C, H, W); index (B, P) long, each in 0..L (only frames < index are read, so frame
    ``index`` itself may be absent) -> (B, P, K (C + 1), H, W): for each pair, K slots of C frame
    channels and 1 present channel, oldest first; slots before the clip's start are zeros.
    """
    B, L, C, H, W = video.shape
    K = context_frames
    P = index.shape[1]
    if K == 0:
        return video.new_zeros(B, P, 0, H, W)
    padded = torch.cat([video.new_zeros(B, K, C, H, W), video], dim=1)  # (B, K + L, C, H, W): frame f at K + f
    slots = index[:, :, None] + torch.arange(K, device=index.device)  # (B, P, K): where frames idx-K..idx-1 sit
    frames = padded[torch.arange(B, device=index.device)[:, None, None], slots]  # (B, P, K, C, H, W)
    present = (slots >= K).to(video.dtype)[..., None, None, None].expand(B, P, K, 1, H, W)  # (B, P, K, 1, H, W)
    return torch.cat([frames, present], dim=3).flatten(2, 3)  # (B, P, K (C + 1), H, W)


class PastConditionedDiffusion(GaussianDiffusion):
    """Gaussian diffusion of one frame (C, H, W) whose network reads ``concat(x_t, past)``, ``past`` the
    (B, K (C + 1), H, W) channels of :func:`past_channels`; batches carry ``"frame"`` and ``"past"``."""

    def __init__(self, net: nn.Module, cfg: GaussianConfig, frame_shape: tuple[int, int, int], context_frames: int,
                 num_classes: int = 0):
        super().__init__(net, cfg, frame_shape, num_classes, "frame", clip=1.0)
        self.context_frames = context_frames

    def network_input(self, x_t: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return torch.cat([x_t, batch["past"]], dim=1)  # (B, C + K (C + 1), H, W)

    def model_output(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,  # type: ignore[override]
                     guidance: float = 1.0, past: torch.Tensor | None = None) -> torch.Tensor:
        """The prediction at (x_t, t) given the frame's ``past`` channels (classifier-free guidance on y)."""
        if past is None:
            raise ValueError("PastConditionedDiffusion.model_output needs past, the frame's past channels")
        return super().model_output(torch.cat([x_t, past], dim=1), t, y, guidance)

    @torch.no_grad()
    def sample_frame(self, past: torch.Tensor, *, cond: torch.Tensor | None = None, sampler: str | None = None,
                     steps: int | None = None, generator: torch.Generator | None = None, guidance: float = 1.0,
                     spacing: str = "leading", callback: Any = None, **sampler_options: Any) -> torch.Tensor:
        """One frame (n, C, H, W) for each row of ``past`` (n, K (C + 1), H, W): a whole sampling run."""
        sampler, steps = self.sampling_plan(sampler, steps)
        solver = make_sampler(sampler, self.schedule, steps, spacing=spacing, prediction=self.cfg.prediction,
                              clip=self.clip, **sampler_options)
        x_T = solver.init_noise((past.shape[0], *self.sample_shape), generator, past.device)
        return solver.sample(lambda x_t, t: self.model_output(x_t, t, cond, guidance, past), x_T, generator, callback)

    @torch.no_grad()
    def sample(self, n: int, **_: Any) -> torch.Tensor:  # type: ignore[override]
        raise ValueError("a frame model samples given its past: use sample_frame(past) or the clip model's sample")

    def nll_bits_per_dim(self, *_: Any, **__: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        raise ValueError("the frame-by-frame video model has no likelihood bound here")


class FrameAutoregressive(Paradigm):
    """Clips (T, C, H, W) generated frame by frame (module docstring) by ``net``, a 2-D denoiser
    ``net(concat(x_t, past) (B, C + K (C + 1), H, W), t, y) -> (B, C, H, W)`` (2C with a learned variance).

    The paradigm contract: ``loss(batch)`` with ``batch["video"]`` (B, T, C, H, W) (and ``"label"``);
    ``sample(n, ...)`` and ``predict(context, ...)`` -> (n, T, C, H, W).
    """

    item_name = "clips"
    data_key = "video"

    def __init__(self, net: nn.Module, cfg: GaussianConfig, clip_shape: tuple[int, int, int, int],
                 context_frames: int = 2, num_classes: int = 0, pairs_per_clip: int = 0):
        super().__init__()
        T, C, H, W = clip_shape
        if not 0 <= context_frames < T:
            raise ValueError(f"context_frames must be in 0..{T - 1} for {T}-frame clips, got {context_frames}")
        if pairs_per_clip < 0:
            raise ValueError(f"pairs_per_clip must be >= 0 (0: every frame), got {pairs_per_clip}")
        self.diffusion = PastConditionedDiffusion(net, cfg, (C, H, W), context_frames, num_classes)
        self.sample_shape, self.context_frames, self.pairs_per_clip = tuple(clip_shape), context_frames, pairs_per_clip
        self.num_classes = num_classes

    # the per-frame diffusion's pieces, read where a Gaussian diffusion's would be (eval, the arena)
    @property
    def net(self) -> nn.Module:
        return self.diffusion.net

    @property
    def cfg(self) -> GaussianConfig:
        return self.diffusion.cfg

    @property
    def schedule(self) -> Any:
        return self.diffusion.schedule

    @property
    def frames(self) -> int:
        return self.sample_shape[0]

    def set_sampling_defaults(self, sampler: str, steps: int) -> FrameAutoregressive:
        self.diffusion.set_sampling_defaults(sampler, steps)
        return self

    def default_steps(self, sampler: str) -> int:
        """Steps per frame (:meth:`GaussianDiffusion.default_steps` of the frame model)."""
        return self.diffusion.default_steps(sampler)

    def sampling_plan(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int]:
        """(sampler, steps per frame): :meth:`GaussianDiffusion.sampling_plan` of the frame model."""
        return self.diffusion.sampling_plan(sampler, steps)

    # ------------------------------------------------------------------ training

    def pairs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The frame model's batch of (frame, its past) pairs from a batch of clips: every frame of each
        clip, or ``pairs_per_clip`` distinct random ones. {"frame": (B P, C, H, W), "past": (B P, K (C + 1),
        H, W), "label": (B P,)} (labels when the clips have them)."""
        video = batch[self.data_key]  # (B, T, C, H, W)
        B, T = video.shape[:2]
        if self.pairs_per_clip and self.pairs_per_clip < T:
            index = torch.rand(B, T, device=video.device).argsort(1)[:, :self.pairs_per_clip]  # (B, P) random frames
        else:
            index = torch.arange(T, device=video.device).expand(B, T)  # (B, T): all of them
        P = index.shape[1]
        frame = video[torch.arange(B, device=video.device)[:, None], index]  # (B, P, C, H, W)
        past = past_channels(video, index, self.context_frames)  # (B, P, K (C + 1), H, W)
        out = {"frame": frame.flatten(0, 1), "past": past.flatten(0, 1)}
        if "label" in batch:
            out["label"] = batch["label"].repeat_interleave(P)  # (B P,): each clip's label on its frames
        return out

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The per-frame diffusion loss (:meth:`GaussianDiffusion.loss`) averaged over the pairs."""
        return self.diffusion.loss(self.pairs(batch))

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def _continue(self, clip: torch.Tensor, start: int, cond: torch.Tensor | None, sampler: str | None,
                  steps: int | None, generator: torch.Generator | None, guidance: float, spacing: str,
                  callback: Any, sampler_options: dict[str, Any]) -> torch.Tensor:
        """Fill frames start.. of ``clip`` (n, F, C, H, W) in order, each given the frames before it."""
        n, frames = clip.shape[:2]
        for f in range(start, frames):
            index = torch.full((n, 1), f, device=clip.device)
            past = past_channels(clip[:, :f], index, self.context_frames)[:, 0]  # (n, K (C + 1), H, W): frames < f
            step_callback = (lambda i, t, x_t, x0, f=f: callback(f, i, t, x_t, x0)) if callback is not None else None
            clip[:, f] = self.diffusion.sample_frame(past, cond=cond, sampler=sampler, steps=steps, generator=generator,
                                                     guidance=guidance, spacing=spacing, callback=step_callback,
                                                     **sampler_options)
        return clip

    @torch.no_grad()
    def sample(self, n: int, *, cond: torch.Tensor | None = None, sampler: str | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, guidance: float = 1.0, spacing: str = "leading",
               frames: int | None = None, callback: Any = None, **sampler_options: Any) -> torch.Tensor:
        """``n`` clips (n, frames, C, H, W), frame 0 first (default: the training clips' T frames; more
        extends the clip past what was trained on). ``steps`` per frame (default: the run's own sampler
        and steps), so a clip costs frames x steps network calls. ``cond`` (n,) class ids, with classifier-
        free ``guidance``; ``callback(frame, i, t, x_t, x0)`` sees every step of every frame."""
        frames = frames or self.frames
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        device = next(self.parameters()).device
        clip = torch.zeros(n, frames, *self.sample_shape[1:], device=device)
        return self._continue(clip, 0, cond.to(device) if cond is not None else None, sampler, steps, generator,
                              guidance, spacing, callback, sampler_options)

    @torch.no_grad()
    def predict(self, context: torch.Tensor, *, frames: int | None = None, sampler: str | None = None,
                steps: int | None = None, generator: torch.Generator | None = None, cond: torch.Tensor | None = None,
                guidance: float = 1.0, spacing: str = "leading", callback: Any = None,
                **sampler_options: Any) -> torch.Tensor:
        """Continue ``context`` (n, k, C, H, W) to (n, frames, C, H, W) clips (default ``frames``: the
        training T; any number above k): the first k frames are the context, exactly, and each later
        frame is sampled given the frames before it (the frame loop of :meth:`sample`, started at k)."""
        frames = frames or self.frames
        k = check_context(context, self.sample_shape[1:], frames)
        device = next(self.parameters()).device
        clip = torch.zeros(context.shape[0], frames, *self.sample_shape[1:], device=device)
        clip[:, :k] = context.to(device, torch.float32)
        return self._continue(clip, k, cond.to(device) if cond is not None else None, sampler, steps, generator,
                              guidance, spacing, callback, sampler_options)
