"""The audio feature network: a spoken-digit classifier on log-mel spectrograms, and the metrics it gives.

Audio has no Inception network either. DiffWave (Kong et al. 2021, sec. 5.2) scores SC09 samples with
a ResNet classifier trained on SC09's spectrograms: the accuracy of class-conditional samples, the
Fréchet distance between features of generated and real clips (FID's method on audio, beside the
real-vs-real floor of two halves of the real clips), the Inception score (Salimans et al. 2016) and the modified
Inception score (Gurumurthy et al. 2017). twopaths does the same with its own classifier,
trained on ``spoken-digits`` by ``scripts/train_feature_net.py spoken-digits`` (a fixed recipe and seed)
and shipped as safetensors with a JSON card, like the image feature nets
(:mod:`twopaths.eval.features`).

The front end, :class:`LogMel`, is a short-time Fourier transform (``torch.stft``, Hann window)
followed by a mel filterbank. The filterbank is librosa's (``librosa.filters.mel``, Slaney's mel
scale and area normalisation), computed by the training script and stored in the weights file as a
buffer, so the network needs no audio library at run time and cannot drift with one. A test checks
the stored matrix against librosa's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twopaths.errors import TwopathsError
from twopaths.eval.features import FeatureNet, load_verified

__all__ = ["AUDIO_SHIPPED", "AudioFeatureNet", "LogMel", "audio_scores", "fit_length", "inception_scores",
           "load_audio_feature_net"]

#: names of the audio feature networks that ship with the package (``eval/weights/NAME.safetensors``)
AUDIO_SHIPPED: tuple[str, ...] = ("spoken-digits",)
_WHERE = {"shipped": AUDIO_SHIPPED, "kind": "audio feature net", "script": "scripts/train_feature_net.py spoken-digits"}


class LogMel(nn.Module):
    """Waveform (N, 1, L) -> standardised log-mel spectrogram (N, 1, n_mels, frames).

    ``|STFT|^2`` with a Hann window of ``n_fft`` samples every ``hop`` samples (no centre padding:
    frames = 1 + (L - n_fft) // hop), times the (n_mels, n_fft / 2 + 1) filterbank ``mel``, then
    ``log(. + 1e-6)`` standardised by ``mean`` and ``std`` (scalars measured on the training clips).
    At 8 kHz, n_fft 256 (32 ms) and hop 122 (15 ms) turn a one-second clip into 64 frames: with 64
    mels, a 64 x 64 picture for :class:`~twopaths.eval.features.FeatureNet`.
    """

    def __init__(self, n_fft: int = 256, hop: int = 122, n_mels: int = 64, samples: int = 8000) -> None:
        super().__init__()
        self.arch = {"n_fft": n_fft, "hop": hop, "n_mels": n_mels, "samples": samples}
        self.register_buffer("mel", torch.zeros(n_mels, n_fft // 2 + 1))  # set from librosa by the script
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))
        self.frames = 1 + (samples - n_fft) // hop

    def power_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) -> (N, n_mels, frames) mel power."""
        a = self.arch
        if x.ndim != 3 or x.shape[1] != 1 or x.shape[2] != a["samples"]:
            raise TwopathsError(f"the audio feature net takes clips of shape (N, 1, {a['samples']}), "
                                f"got {tuple(x.shape)}")
        spec = torch.stft(x[:, 0].float(), a["n_fft"], a["hop"], window=self.window, center=False,
                          return_complex=True)  # (N, n_fft/2 + 1, frames)
        return self.mel @ spec.abs().square()  # (N, n_mels, frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logmel = torch.log(self.power_mel(x) + 1e-6)  # (N, n_mels, frames)
        return ((logmel - self.mean) / self.std)[:, None]  # (N, 1, n_mels, frames)


class AudioFeatureNet(nn.Module):
    """:class:`LogMel` then :class:`~twopaths.eval.features.FeatureNet` on the spectrogram picture:
    the same ``features`` / ``logits`` / ``head`` / ``dim`` / ``identity`` as an image feature net,
    so :func:`twopaths.eval.features.extract` and the FID code take it as they are."""

    def __init__(self, front: dict[str, Any], net: dict[str, Any]) -> None:
        super().__init__()
        self.front, self.net = LogMel(**front), FeatureNet(**net)
        if (self.front.frames, front.get("n_mels", 64)) != (net["resolution"],) * 2:
            raise TwopathsError(f"audio feature net: {front.get('n_mels', 64)} mels x {self.front.frames} frames "
                                f"is not the {net['resolution']} x {net['resolution']} picture its CNN takes")
        self.arch = {"front": dict(self.front.arch), "net": dict(self.net.arch)}
        self.dim = self.net.dim
        self.identity = "AudioFeatureNet (untrained)"  # set by load_audio_feature_net

    @property
    def head(self) -> nn.Linear:
        """The classifier layer on the features (the CNN's own: a property, so it is stored once)."""
        return self.net.head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) waveforms in [-1, 1] -> (N, D) penultimate features."""
        return self.net.features(self.front(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) -> (N, classes)."""
        return self.net.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.front(x))  # (N, classes), with dropout in training


def load_audio_feature_net(name_or_path: str | Path = "spoken-digits",
                           device: torch.device | str = "cpu") -> AudioFeatureNet:
    """The trained classifier in eval mode, by shipped name or a ``.safetensors`` path with its card;
    the weights' SHA-256 must match the card."""
    net, name, digest = load_verified(name_or_path, lambda arch: AudioFeatureNet(**arch), **_WHERE)
    acc = net.card.get("test_accuracy")
    net.identity = f"{name}@{digest[:8]}" + (f" (test acc {100 * acc:.1f}%)" if acc is not None else "")
    return net.to(device)


def inception_scores(probs: torch.Tensor) -> tuple[float, float]:
    """(IS, modified IS) of (N, classes) class probabilities.

    IS = exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016): high when each sample is confidently one
    class and the classes are balanced. mIS = exp(E_{x, x'} KL(p(y|x) || p(y|x'))) over pairs of samples
    (Gurumurthy et al. 2017, eq. 5; DiffWave's Table 2): also rewards diversity within a class.
    IS lies in [1, classes]; mIS is at least 1 and unbounded (confident samples of different classes are
    far apart; probabilities are clamped at 1e-12). mIS uses all N^2 pairs (x = x' contributes 0)."""
    p = probs.double().clamp_min(1e-12)
    logp = p.log()  # (N, K)
    marginal = p.mean(0)  # (K,)
    inception = math.exp(float((p * (logp - marginal.log())).sum(1).mean()))
    negentropy = (p * logp).sum(1)  # (N,) sum_y p(y|x) log p(y|x)
    cross = p @ logp.T  # (N, N) [i, j] = sum_y p(y|x_i) log p(y|x_j)
    modified = math.exp(float((negentropy[:, None] - cross).mean()))
    return inception, modified


def fit_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Clips ``(N, 1, L)`` centred in ``length`` samples: the middle ``length`` of longer clips, shorter ones
    padded with silence on both sides (as :func:`twopaths.data.audio.fit_clip` fits recordings)."""
    extra = x.shape[-1] - length
    if extra >= 0:
        return x[..., extra // 2:extra // 2 + length]
    return torch.nn.functional.pad(x, ((-extra) // 2, -extra - (-extra) // 2))


@torch.no_grad()
def audio_scores(net: AudioFeatureNet, fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None,
                 batch_size: int = 250) -> dict[str, float]:
    """Every sample metric of generated clips ``fake`` (N, 1, L) against real ones ``real`` (M, 1, L):
    ``fd`` (Fréchet distance in the classifier's features), ``fd_floor`` (real vs real: the real clips
    split in two halves, the floor's usual estimate at n = M / 2), ``is`` and ``mis`` of the fake clips,
    and ``accuracy`` (the classifier names each clip's ``labels``, when given: class-conditional
    samples). Clips of another length than the classifier hears are centred in it, cut or padded with
    silence (:func:`fit_length`), the generated and the real alike."""
    from twopaths.eval.features import extract
    from twopaths.eval.fid import fid_from_features

    if len(fake) < 2 or len(real) < 4:
        raise TwopathsError(f"audio scores need at least 2 generated and 4 real clips, got {len(fake)} and "
                            f"{len(real)}")
    if not torch.isfinite(fake).all():
        raise TwopathsError("the generated clips contain NaN or infinite samples")
    length = net.front.arch["samples"]
    fake, real = fit_length(fake.float().clamp(-1, 1), length), fit_length(real.float(), length)
    f_fake, logits = extract(net, fake, batch_size, with_logits=True, progress=False)
    f_real = extract(net, real, batch_size, progress=False)
    half = len(f_real) // 2
    out = {"fd": fid_from_features(f_fake, f_real), "fd_floor": fid_from_features(f_real[:half], f_real[half:])}
    out["is"], out["mis"] = inception_scores(torch.softmax(logits, 1))
    if labels is not None:
        out["accuracy"] = float((logits.argmax(1) == labels.cpu()).double().mean())
    return out

