"""Video models on short clips (``moving-fashion``): the two ways to tie frames together.

* ``video-ddpm``: joint video diffusion (Ho et al. 2022, "Video Diffusion Models"): Gaussian diffusion of
  the whole clip on the space-time U-Net (:mod:`twopaths.backbones.video_unet`), all frames denoised
  together, ``steps`` network calls per clip; prediction by the replacement method (and reconstruction
  guidance, ``arch.reconstruction_guidance``; :mod:`twopaths.paradigms.video_diffusion`);
* ``video-ar``: frame-by-frame autoregression (:mod:`twopaths.paradigms.frame_autoregressive`): each frame
  a Gaussian diffusion sample of the same 2-D U-Net given the ``arch.context_frames`` frames before it,
  frames x steps network calls per clip.

Both share the recipe (v-prediction on the cosine schedule with Min-SNR-5 weighting, DPM-Solver++ at 20
steps) and the U-Net's per-frame layout, so the comparison is about joint vs sequential. Unconditional
by default (``arch.conditioning=class`` conditions on the class of the clip's first object). ``twopaths
sample`` writes an animated GIF and a frame strip; ``--context-frames K`` continues held-out test clips.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from twopaths.backbones.unet import UNet, UNetConfig
from twopaths.backbones.video_unet import VideoUNet, VideoUNetConfig
from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import class_labels, conditioning_classes
from twopaths.models.spec import HookFn, ModelSpec, image_preset
from twopaths.nn.flops import forward_gflops
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.frame_autoregressive import FrameAutoregressive
from twopaths.paradigms.gaussian import GaussianConfig
from twopaths.paradigms.samplers import SamplerName
from twopaths.paradigms.video_diffusion import VideoDiffusion
from twopaths.viz import save_clips

__all__ = ["VIDEO_MODELS", "VideoARArch", "VideoDDPMArch", "clip_shape", "held_out_clips", "sample_video",
           "video_sample_hook"]


def _recipe() -> GaussianConfig:
    """v-prediction (Salimans & Ho 2022) on the cosine schedule (Nichol & Dhariwal 2021) with Min-SNR-5
    weighting (Hang et al. 2023): what the CPU image presets use, for both video models."""
    return GaussianConfig(schedule="cosine", prediction="v", weighting="min-snr")


@dataclass
class VideoDDPMArch:
    diffusion: GaussianConfig = field(default_factory=_recipe)
    # the space-time U-Net; its per-frame fields are the image U-Net's, read for 32x32 frames (attention
    # levels follow the data's resolution); frames comes from the data
    unet: VideoUNetConfig = field(default_factory=lambda: VideoUNetConfig(
        in_channels=1, image_size=32, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
        attention_resolutions=(8,), temporal_attention_resolutions=(16, 8), head_channels=32))
    conditioning: Literal["auto", "class", "none"] = "auto"  # auto: unconditional (video metrics are unconditional)
    sampler: SamplerName = "dpmpp"  # the training sample hook's and `sample`'s default
    sample_steps: int = 20  # network calls per clip with that sampler
    sample_guidance: float = 1.0
    reconstruction_guidance: float = 0.0  # predict: w_r of Ho et al. 2022 eq. 7 (0: the replacement method alone)


@dataclass
class VideoARArch:
    diffusion: GaussianConfig = field(default_factory=_recipe)
    # the per-frame 2-D U-Net: the video U-Net's layout without temporal attention; its input channels
    # are set from the data: C + context_frames (C + 1)
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(
        in_channels=1, image_size=32, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
        attention_resolutions=(8,), head_channels=32))
    context_frames: int = 2  # K: each frame is generated given the K frames before it (0: frames independent)
    pairs_per_clip: int = 0  # training (frame, past) pairs drawn per clip; 0: every frame of the clip
    conditioning: Literal["auto", "class", "none"] = "auto"  # auto: unconditional
    sampler: SamplerName = "dpmpp"
    sample_steps: int = 20  # network calls per *frame*
    sample_guidance: float = 1.0


def clip_shape(meta: dict[str, Any]) -> tuple[int, int, int, int]:
    """(T, C, R, R) of the data's clips, or a ConfigError for data that is not video."""
    if "frames" not in meta:
        raise ConfigError("video models train on video data (--data moving-fashion)")
    return int(meta["frames"]), int(meta["channels"]), int(meta["resolution"]), int(meta["resolution"])


def _at_resolution(sizes: tuple[int, ...], image_size: int, levels: int, resolution: int) -> tuple[int, ...]:
    """Feature-map sides chosen for ``image_size`` frames, moved to the same levels for ``resolution``."""
    return tuple(resolution // 2**i for i in range(levels) if image_size // 2**i in sizes)


def _announce(net: nn.Module, name: str, example: torch.Tensor, per: str) -> nn.Module:
    """One stderr line: parameters and Gflops per forward of ``example`` (so the two models can be matched)."""
    if os.environ.get("RANK", "0") == "0":
        params = sum(p.numel() for p in net.parameters())
        gflops = forward_gflops(net, example, torch.zeros(example.shape[0]))
        print(f"{name}: {params / 1e6:.3g}M parameters, {gflops:.3g} Gflops per forward ({per})", file=sys.stderr)
    return net


def _build_video_ddpm(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    T, C, R, _ = clip_shape(meta)
    n_classes = conditioning_classes(cfg, meta, "video")
    levels = len(a.unet.channel_mults)
    unet = dataclasses.replace(
        a.unet, in_channels=C, out_channels=C * (2 if a.diffusion.learn_sigma else 1), image_size=R, frames=T,
        num_classes=n_classes, attention_resolutions=_at_resolution(a.unet.attention_resolutions, a.unet.image_size,
                                                                    levels, R),
        temporal_attention_resolutions=_at_resolution(a.unet.temporal_attention_resolutions, a.unet.image_size,
                                                      levels, R))
    if a.reconstruction_guidance < 0:
        raise ConfigError(f"config key 'arch.reconstruction_guidance' must be >= 0, got {a.reconstruction_guidance}")
    net = _announce(VideoUNet(unet), "space-time U-Net", torch.zeros(1, T, C, R, R), f"one clip of {T} {R}x{R} frames")
    model = VideoDiffusion(net, a.diffusion, (T, C, R, R), n_classes).set_sampling_defaults(a.sampler, a.sample_steps)
    model.reconstruction_guidance = a.reconstruction_guidance
    return model


def _build_video_ar(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    T, C, R, _ = clip_shape(meta)
    if not 0 <= a.context_frames < T:
        raise ConfigError(f"config key 'arch.context_frames' must be in 0..{T - 1} for {T}-frame clips, "
                          f"got {a.context_frames}")
    if a.pairs_per_clip < 0:
        raise ConfigError(f"config key 'arch.pairs_per_clip' must be >= 0 (0: every frame), got {a.pairs_per_clip}")
    n_classes = conditioning_classes(cfg, meta, "video")
    in_channels = C + a.context_frames * (C + 1)  # the noisy frame, then K past frames with a present channel each
    unet = dataclasses.replace(
        a.unet, in_channels=in_channels, out_channels=C * (2 if a.diffusion.learn_sigma else 1), image_size=R,
        num_classes=n_classes, attention_resolutions=_at_resolution(a.unet.attention_resolutions, a.unet.image_size,
                                                                    len(a.unet.channel_mults), R))
    net = _announce(UNet(unet), "frame U-Net", torch.zeros(1, in_channels, R, R),
                    f"one {R}x{R} frame and its {a.context_frames} past frames; x {T} per clip")
    return FrameAutoregressive(net, a.diffusion, (T, C, R, R), a.context_frames, n_classes,
                               a.pairs_per_clip).set_sampling_defaults(a.sampler, a.sample_steps)


# ----------------------------------------------------------------------------- sampling


def held_out_clips(cfg: RunConfig, n: int, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` clips (n, T, C, R, R) of a run's data split (test: clips of items never trained on)
    and their labels (n,). The val and test clips do not depend on data.size, so only one train clip is
    rendered."""
    from twopaths.data.registry import load_splits

    data = getattr(load_splits(dataclasses.replace(cfg.data, size=1)), split)
    if n > len(data):
        raise TwopathsError(f"--n {n:,} is more than the {len(data):,} clips of the {split} split")
    return data.video[:n], data.labels[:n]


def sample_video(run: Any, *, n: int, seed: int, out: str | None, sampler: str | None, steps: int | None,
                 spacing: str = "leading", class_: str | None = None, guidance: float = 1.0,
                 context_frames: int | None = None, **_: Any) -> int:
    """``twopaths sample`` for video models: an animated GIF and a frame strip (:func:`twopaths.viz.save_clips`).
    With ``context_frames`` K: the first K frames of n test clips are continued, and their ground truth
    is written beside (``X_truth.png``)."""
    model = run.model
    sampler, steps = model.sampling_plan(sampler, steps)
    if guidance < 0:
        raise TwopathsError("--guidance must be >= 0 (1 = plain conditional, 0 = unconditional)")
    labels = class_labels(model, n, class_, run.meta.get("class_names") or [])
    generator = torch.Generator().manual_seed(seed)
    path = Path(out) if out else Path(run.run_dir) / "samples" / "sample.gif"
    per_clip = steps * (model.frames if isinstance(model, FrameAutoregressive) else 1)
    how = f"{sampler}, {steps} steps" + (" per frame" if isinstance(model, FrameAutoregressive) else "")
    if context_frames:
        truth, truth_labels = held_out_clips(run.cfg, n)
        if labels is not None and class_ is None:  # a class-conditional model continues each clip as its own class
            labels = truth_labels
        clips = model.predict(truth[:, :context_frames], sampler=sampler, steps=steps, generator=generator,
                              cond=labels, guidance=guidance, spacing=spacing)
        files = save_clips(clips.cpu().clamp(-1, 1), path, context=context_frames)
        files += save_clips(truth, path.with_name(path.stem + "_truth.png"), context=context_frames)
        print(f"{n} test clip(s) continued from {context_frames} frame(s) ({how}) -> {', '.join(map(str, files))}")
        return 0
    clips = model.sample(n, cond=labels, sampler=sampler, steps=steps, generator=generator, guidance=guidance,
                         spacing=spacing)
    files = save_clips(clips.cpu().clamp(-1, 1), path)
    print(f"{n} clip(s) of {clips.shape[1]} frames ({how}; {per_clip} network calls per clip) -> "
          f"{', '.join(map(str, files))}")
    return 0


def video_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Four clips (seed 0, the run's own sampler) as ``RUN/samples/step_XXXXXXXX.gif`` and its frame strip."""

    def hook(trainer: Any, step: int) -> dict[str, float]:
        model = trainer.model
        labels = class_labels(model, 4, None, [])  # every class in turn, for a conditional model
        clips = model.sample(4, cond=labels, generator=torch.Generator().manual_seed(0)).float().cpu()
        save_clips(clips.clamp(-1, 1), Path(trainer.run_dir) / "samples" / f"step_{step:08d}.gif")
        return {"sample_std": float(clips.std()),
                "sample_frame_change": float((clips[:, 1:] - clips[:, :-1]).abs().mean())}

    return hook


# ----------------------------------------------------------------------------- the specs

_OPTIM = {"lr": 2e-4, "warmup_steps": 500, "min_lr_ratio": 1.0}
_TRAIN = {"batch_size": 32, "max_steps": 30000, "eval_every": 1000, "eval_batches": 10, "ckpt_every": 1000,
          "sample_every": 2000, "ema_decay": 0.9995}
# CPU: two 16-32-32-channel U-Nets of one residual block per level (spatial attention at 8x8; the joint
# model's temporal attention at 16x16 and 8x8), 8 clips of 8 frames per step
_CPU_UNET = {"base_channels": 16, "channel_mults": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": [8],
             "groups": 8, "head_channels": None, "num_heads": 4}
_CPU = {"optim": {"lr": 1e-3, "warmup_steps": 100},
        "train": {"batch_size": 8, "max_steps": 3000, "eval_every": 500, "eval_batches": 5, "ckpt_every": 500,
                  "sample_every": 1000, "ema_decay": 0.999}}

VIDEO_MODELS = [
    ModelSpec(name="video-ddpm", paradigm="gaussian", backbones=("video-unet",),
              summary="joint video diffusion (Ho et al. 2022): all frames denoised together on a space-time "
                      "U-Net (temporal attention); prediction by replacement; moving-fashion",
              data_kinds=("video",), arch_cls=VideoDDPMArch, build=_build_video_ddpm, evaluation="diffusion",
              preset=image_preset(_OPTIM, _TRAIN, data="moving-fashion"),
              cpu_presets={"video": {**_CPU, "arch": {"unet": {**_CPU_UNET,
                                                               "temporal_attention_resolutions": [16, 8]}}}},
              sample_hook=video_sample_hook, sample=sample_video),
    ModelSpec(name="video-ar", paradigm="frame-autoregressive", backbones=("unet",),
              summary="video frame by frame: each frame a diffusion sample of a 2-D U-Net given the "
                      "arch.context_frames frames before it (frames x steps calls per clip); moving-fashion",
              data_kinds=("video",), arch_cls=VideoARArch, build=_build_video_ar, evaluation="diffusion",
              preset=image_preset(_OPTIM, _TRAIN, data="moving-fashion"),
              cpu_presets={"video": {**_CPU, "arch": {"unet": _CPU_UNET}}},
              sample_hook=video_sample_hook, sample=sample_video),
]
