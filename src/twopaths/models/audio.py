"""Audio models on 1-second clips (``spoken-digits``, or a folder of WAV files): the two paths.

* ``wavenet``: waveform autoregression over mu-law samples (van den Oord et al. 2016) on the causal
  WaveNet stack, one network call per sample (:mod:`twopaths.paradigms.sample_autoregressive`);
* ``diffwave``: Gaussian diffusion of the whole waveform (Kong et al. 2021) on the same block used
  without causality (:class:`~twopaths.backbones.wavenet.WaveNetDenoiser`), a few dozen calls per clip
  with our samplers.

Both condition on the class (the digit) by default, with labels dropped 10% of the time so one model
is also unconditional (classifier-free guidance for diffwave). ``twopaths sample`` writes WAV files and
a spectrogram grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from twopaths.backbones.wavenet import WaveNet, WaveNetConfig, WaveNetDenoiser
from twopaths.config import RunConfig
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models.diffusion import class_labels, conditioning_classes
from twopaths.models.spec import HookFn, ModelSpec
from twopaths.paradigms.base import Paradigm
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.sample_autoregressive import SampleAutoregressive
from twopaths.paradigms.samplers import SamplerName


@dataclass
class WaveNetArch(WaveNetConfig):
    """The causal WaveNet stack (kernel 2, dilations 1..512 twice: a receptive field of 2,047 samples)."""

    conditioning: Literal["auto", "class", "none"] = "auto"  # auto: the data's classes when it has two or more
    cond_drop: float = 0.1  # labels dropped to the null class in training (conditional and unconditional)
    temperature: float = 1.0  # of the training sample hook


@dataclass
class DiffWaveArch:
    diffusion: GaussianConfig = field(default_factory=lambda: GaussianConfig(schedule="cosine", prediction="v",
                                                                              weighting="min-snr"))
    wavenet: WaveNetConfig = field(default_factory=lambda: WaveNetConfig(channels=64, kernel_size=3, n_layers=20,
                                                                          dilation_cycle=10))
    emb_dim: int = 512  # width of the diffusion-step (+ class) embedding each layer reads (DiffWave: 512)
    conditioning: Literal["auto", "class", "none"] = "auto"
    sampler: SamplerName = "dpmpp"  # used by the training sample hook and as `sample`'s default
    sample_steps: int = 12  # steps of that sampler
    sample_guidance: float = 1.0


def _length(meta: dict[str, Any]) -> int:
    if "length" not in meta:
        raise ConfigError("audio models train on audio data (--data spoken-digits, or --data audio with data.path)")
    return int(meta["length"])


def _build_wavenet(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    n_classes = conditioning_classes(cfg, meta, "audio")
    net_cfg = WaveNetConfig(a.channels, a.kernel_size, a.n_layers, a.dilation_cycle, n_classes, a.dropout)
    return SampleAutoregressive(WaveNet(net_cfg), _length(meta), a.cond_drop)


def _build_diffwave(cfg: RunConfig, meta: dict[str, Any]) -> Paradigm:
    a = cfg.arch
    n_classes = conditioning_classes(cfg, meta, "audio")
    net_cfg = WaveNetConfig(**{**vars(a.wavenet), "num_classes": n_classes})
    out = 2 if a.diffusion.learn_sigma else 1
    return GaussianDiffusion(WaveNetDenoiser(net_cfg, 1, out, a.emb_dim), a.diffusion, (1, _length(meta)), n_classes, "audio",
                             clip=1.0).set_sampling_defaults(a.sampler, a.sample_steps)


def write_clips(clips: torch.Tensor, out: Path, rate: int, titles: list[str]) -> list[Path]:
    """``X.wav`` for one clip (and ``X.png``, its spectrogram); for several, a folder ``X/`` of numbered
    WAV files and ``X/spectrograms.png``. Returns the files written."""
    from twopaths.data.audio import write_wav
    from twopaths.viz import save_spectrograms

    if out.suffix != ".wav":
        raise TwopathsError(f"audio samples are written as .wav files, not {out.name}")
    if len(clips) == 1:
        out.parent.mkdir(parents=True, exist_ok=True)
        return [write_wav(out, clips[0], rate), save_spectrograms(clips, out.with_suffix(".png"), rate, titles)]
    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_wav(folder / f"{i:03d}_{titles[i]}.wav", clip, rate) for i, clip in enumerate(clips)]
    return files + [save_spectrograms(clips, folder / "spectrograms.png", rate, titles)]


def sample_audio(run: Any, *, n: int, seed: int, out: str | None, sampler: str | None, steps: int | None,
                 class_: str | None, guidance: float, temperature: float, **_: Any) -> int:
    """``twopaths sample`` for audio models: WAV files and a spectrogram grid (see :func:`write_clips`)."""
    model = run.model
    names = run.meta.get("class_names") or []
    labels = class_labels(model, n, class_, names)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, GaussianDiffusion):
        sampler, steps = model.sampling_plan(sampler, steps)
        how = f" ({sampler}, {steps} steps)"
        clips = model.sample(n, cond=labels, sampler=sampler, steps=steps, generator=generator, guidance=guidance)
    else:
        how = f" (one network call per sample, temperature {temperature:g})"
        clips = model.sample(n, cond=labels, generator=generator, temperature=temperature)
    titles = [names[int(y)] if labels is not None and names else f"clip {i}" for i, y in
              enumerate(labels if labels is not None else range(n))]
    path = Path(out) if out else Path(run.run_dir) / "samples" / "sample.wav"
    files = write_clips(clips.cpu(), path, int(run.meta.get("sample_rate", 8000)), titles)
    print(f"{n} clip(s) of {clips.shape[-1] / run.meta.get('sample_rate', 8000):g} s{how} -> "
          f"{files[0] if len(files) == 2 else files[0].parent}")
    return 0


def audio_sample_hook(meta: dict[str, Any]) -> HookFn:
    """Four clips (seed 0; every class in turn for a conditional model) as WAVs and spectrograms in
    ``RUN/samples/step_XXXXXXXX/``."""
    def hook(trainer: Any, step: int) -> dict[str, float]:
        model, names = trainer.model, meta.get("class_names") or []
        labels = class_labels(model, 4, None, names)
        g = torch.Generator().manual_seed(0)
        clips = model.sample(4, cond=labels, generator=g)
        titles = [names[int(y)] if labels is not None and names else f"clip {i}" for i, y in
                  enumerate(labels if labels is not None else range(4))]
        write_clips(clips.cpu(), Path(trainer.run_dir) / "samples" / f"step_{step:08d}.wav",
                    int(meta.get("sample_rate", 8000)), titles)
        return {"sample_rms": float(clips.pow(2).mean().sqrt())}

    return hook


_DATA = {"name": "spoken-digits"}
_OPTIM = {"lr": 2e-4, "warmup_steps": 200, "weight_decay": 0.0, "betas": [0.9, 0.999]}  # DiffWave: Adam 2e-4

AUDIO_MODELS = [
    ModelSpec(name="wavenet", paradigm="sample-autoregressive", backbones=("wavenet",),
              summary="WaveNet: causal dilated convolutions over mu-law samples, one call per sample, "
                      "incremental generation (van den Oord et al. 2016); spoken-digits",
              data_kinds=("audio",), arch_cls=WaveNetArch, build=_build_wavenet,
              preset={"arch": {"channels": 64, "n_layers": 20, "dilation_cycle": 10}, "data": _DATA,
                      "optim": {**_OPTIM, "lr": 1e-3},
                      "train": {"batch_size": 8, "max_steps": 20000, "eval_every": 1000, "ckpt_every": 2000,
                                "sample_every": 5000}},
              cpu_presets={"audio": {"arch": {"channels": 32, "n_layers": 10, "dilation_cycle": 10},
                                     "train": {"batch_size": 8, "max_steps": 2000, "eval_every": 250,
                                               "ckpt_every": 500, "sample_every": 2000}}},
              sample_hook=audio_sample_hook, sample=sample_audio),
    ModelSpec(name="diffwave", paradigm="gaussian", backbones=("wavenet-denoiser",),
              summary="DiffWave: Gaussian diffusion of the whole waveform on a non-causal WaveNet "
                      "(Kong et al. 2021); DPM-Solver++ at 12 steps; spoken-digits",
              data_kinds=("audio",), arch_cls=DiffWaveArch, build=_build_diffwave, evaluation="diffusion",
              preset={"data": _DATA, "optim": _OPTIM,
                      "train": {"batch_size": 16, "max_steps": 50000, "eval_every": 1000, "ckpt_every": 2000,
                                "sample_every": 5000}},
              cpu_presets={"audio": {"arch": {"wavenet": {"channels": 32, "n_layers": 10}},
                                     "train": {"batch_size": 16, "max_steps": 2000, "eval_every": 250,
                                               "ckpt_every": 500, "sample_every": 1000}}},
              sample_hook=audio_sample_hook, sample=sample_audio),
]

__all__ = ["AUDIO_MODELS", "DiffWaveArch", "WaveNetArch", "sample_audio", "write_clips"]
