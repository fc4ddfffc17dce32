"""The audio classifier's front end, its shipped weights, and the scores it gives (IS, mIS, FD, accuracy)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from twopaths.errors import TwopathsError
from twopaths.eval.audio_features import (AudioFeatureNet, LogMel, audio_scores, fit_length, inception_scores,
                                          load_audio_feature_net)

FRONT = {"n_fft": 256, "hop": 122, "n_mels": 64, "samples": 8000}
NET = {"in_channels": 1, "num_classes": 10, "resolution": 64, "widths": [8, 8, 8, 8], "convs": 1, "dim": 16,
       "dropout": 0.0}


def test_inception_scores_of_contrived_probabilities():
    k = 10
    onehot = torch.eye(k).repeat(3, 1)  # confident and balanced: IS = K; mIS is unbounded (KL of disjoint classes)
    inception, modified = inception_scores(onehot)
    assert inception == pytest.approx(k, rel=1e-6) and modified > 1e6
    uniform = torch.full((30, k), 1 / k)  # no sample names a class: both 1
    assert inception_scores(uniform) == pytest.approx((1.0, 1.0), abs=1e-9)
    collapsed = torch.eye(k)[[3] * 30]  # confident but one class: IS 1
    assert inception_scores(collapsed)[0] == pytest.approx(1.0, abs=1e-9)
    # mIS by its definition, pair by pair, on random probabilities
    p = torch.softmax(torch.randn(7, k, generator=torch.Generator().manual_seed(0)), 1).double()
    kl = [[float((p[i] * (p[i].log() - p[j].log())).sum()) for j in range(7)] for i in range(7)]
    assert inception_scores(p)[1] == pytest.approx(math.exp(np.mean(kl)), rel=1e-9)


def test_clips_of_another_length_are_centred_in_the_classifiers():
    x = torch.arange(1.0, 7.0).view(1, 1, 6)
    assert fit_length(x, 4).flatten().tolist() == [2, 3, 4, 5]  # the middle
    assert fit_length(x, 9).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0]  # silence on both sides
    assert torch.equal(fit_length(x, 6), x)


def test_log_mel_shapes_and_a_tone_lands_in_its_band():
    front = LogMel(**FRONT)
    import librosa

    front.mel.copy_(torch.from_numpy(librosa.filters.mel(sr=8000, n_fft=256, n_mels=64)))
    t = torch.arange(8000) / 8000
    tone = (0.5 * torch.sin(2 * math.pi * 1000 * t))[None, None]  # 1 kHz
    mel = front.power_mel(tone)  # (1, 64, frames)
    assert mel.shape == (1, 64, 64) and front(tone).shape == (1, 1, 64, 64)
    peak = int(mel[0].mean(1).argmax())
    centres = librosa.mel_frequencies(n_mels=66, fmax=4000)[1:-1]  # the filters' centre frequencies
    assert abs(centres[peak] - 1000) < 60
    with pytest.raises(TwopathsError, match=r"clips of shape \(N, 1, 8000\)"):
        front(torch.zeros(2, 1, 4000))


def test_shipped_classifier_carries_librosas_filterbank_and_hears_unseen_speakers():
    import librosa

    net = load_audio_feature_net("spoken-digits")
    a = net.card["arch"]["front"]
    assert np.allclose(net.front.mel.numpy(), librosa.filters.mel(sr=8000, n_fft=a["n_fft"], n_mels=a["n_mels"]),
                       atol=1e-7)
    assert net.card["test_accuracy"] >= 0.95  # the bar, on speakers training never heard
    assert net.identity.startswith("spoken-digits@") and "test acc" in net.identity


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="spoken digits are synthesised by espeak-ng")
def test_scores_of_spoken_digits_against_spoken_digits(tmp_path):
    """Real against real (80 clips of 4 eSpeak voices, made here): the classifier names the digits, IS is
    near the number of classes, and white noise is much farther from speech than speech is."""
    from twopaths.data import audio

    variants = audio.espeak_variants(audio.find_espeak())[-4:]
    folder = audio.generate_spoken_digits(tmp_path / "sd", seed=7, renditions=2, variants=variants, progress=False)
    splits, _ = audio.spoken_digit_splits(folder)
    clips = torch.cat([splits[k].audio for k in ("train", "val", "test")])  # (80, 1, 8000)
    labels = torch.cat([splits[k].labels for k in ("train", "val", "test")])
    net = load_audio_feature_net("spoken-digits")
    s = audio_scores(net, clips[0::2], clips[1::2], labels=labels[0::2])
    assert s["accuracy"] >= 0.9 and s["is"] > 6 and s["mis"] > s["is"]
    noise = 0.3 * torch.randn(40, 1, 8000, generator=torch.Generator().manual_seed(0))
    assert audio_scores(net, noise, clips[1::2])["fd"] > 3 * s["fd"]
    with pytest.raises(TwopathsError, match="NaN"):
        audio_scores(net, torch.full((4, 1, 8000), float("nan")), clips)


def test_a_corrupt_or_mismatched_weights_file_is_named(tmp_path):
    import json

    from twopaths.eval.features import WEIGHTS_DIR

    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"spoken-digits{suffix}", tmp_path / f"mine{suffix}")
    with open(tmp_path / "mine.safetensors", "r+b") as f:
        f.seek(200)
        f.write(b"\0" * 16)
    with pytest.raises(TwopathsError, match="do not match their card"):
        load_audio_feature_net(tmp_path / "mine.safetensors")
    shutil.copy(WEIGHTS_DIR / "spoken-digits.safetensors", tmp_path / "mine.safetensors")
    card = json.loads((tmp_path / "mine.json").read_text())
    card["arch"]["net"]["dim"] += 1  # the card says another network than the file holds
    (tmp_path / "mine.json").write_text(json.dumps(card))
    with pytest.raises(TwopathsError, match="does not fit its card"):
        load_audio_feature_net(tmp_path / "mine.safetensors")
    with pytest.raises(TwopathsError, match="is not the 64 x 64 picture"):
        AudioFeatureNet({**FRONT, "hop": 61}, NET)
