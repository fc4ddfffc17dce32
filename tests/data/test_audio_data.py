"""Audio data: WAV reading and writing, fitting a recording into a clip, the spoken-digits set synthesised
by eSpeak NG (split by speaker, built atomically), and folders of WAV files as a dataset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io.wavfile

from twopaths.config import DataConfig, RunConfig, validate
from twopaths.data import audio
from twopaths.data.audio import (DIGITS, fit_clip, generate_spoken_digits, read_manifest, read_wav,
                                 spoken_digit_splits, spoken_digits_folder, write_wav)
from twopaths.data.registry import dataset_kind, load_splits
from twopaths.errors import ConfigError, DataError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="spoken-digits is synthesised by espeak-ng: apt-get install espeak-ng")


def test_wav_round_trip_and_sample_formats(tmp_path):
    x = np.sin(np.linspace(0, 20, 800)).astype(np.float32) * 0.5
    y, rate = read_wav(write_wav(tmp_path / "a.wav", x, 8000))
    assert rate == 8000 and np.abs(y - x).max() < 1 / 32767 + 1e-6
    scipy.io.wavfile.write(tmp_path / "u8.wav", 16000, np.array([128, 255, 0], np.uint8))
    assert read_wav(tmp_path / "u8.wav")[0].tolist() == pytest.approx([0.0, 127 / 128, -1.0])
    stereo = np.stack([np.full(10, 1000, np.int16), np.full(10, -1000, np.int16)], axis=1)
    scipy.io.wavfile.write(tmp_path / "st.wav", 8000, stereo)
    assert np.allclose(read_wav(tmp_path / "st.wav")[0], 0.0)  # channels averaged
    (tmp_path / "bad.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match="bad.wav: not a readable WAV file"):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(DataError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_fit_clip_resamples_trims_centres_and_normalises():
    rate = 22050
    word = np.sin(2 * np.pi * 440 * np.arange(int(0.3 * rate)) / rate).astype(np.float32) * 0.2
    x = np.concatenate([np.zeros(5000, np.float32), word, np.zeros(9000, np.float32)])
    clip = fit_clip(x, rate)
    assert clip.shape == (8000,) and abs(float(np.abs(clip).max()) - 0.95) < 1e-5
    loud = np.flatnonzero(np.abs(clip) > 0.02)
    assert abs((loud[0] + loud[-1]) / 2 - 4000) < 20  # the word sits in the middle
    assert abs(loud[-1] - loud[0] + 1 - 0.3 * 8000) < 30  # 0.3 s at 8 kHz: silence trimmed, duration kept
    long = fit_clip(np.ones(3 * 8000, np.float32), 8000, peak=None)
    assert long.shape == (8000,) and np.all(long == 1.0)


@needs_espeak
def test_spoken_digits_split_by_speaker(tmp_path):
    variants = audio.espeak_variants(audio.find_espeak())[:4]
    folder = generate_spoken_digits(tmp_path / "sd", renditions=1, variants=variants, progress=False)
    rows = read_manifest(folder)
    assert len(rows) == 4 * len(DIGITS) and (folder / "ESPEAK_VERSION").is_file()
    speakers = {s: {r["variant"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert all(speakers.values()) and not (speakers["train"] & (speakers["val"] | speakers["test"]))
    splits, source = spoken_digit_splits(folder)
    assert source == str(folder) and splits["train"].audio.shape == (20, 1, 8000)
    assert float(splits["val"].audio.abs().max()) == pytest.approx(0.95, abs=1e-3)
    item = splits["test"][0]
    assert item["audio"].shape == (1, 8000) and 0 <= int(item["label"]) < 10
    assert [p.name for p in tmp_path.iterdir()] == ["sd"]  # the temporary build folder is gone


@needs_espeak
def test_a_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def speak(*args):
        calls.append(args)
        if len(calls) > 3:
            raise KeyboardInterrupt  # a killed run
        real_speak(*args)

    real_speak = audio._speak
    monkeypatch.setattr(audio, "_speak", speak)
    with pytest.raises(KeyboardInterrupt):
        generate_spoken_digits(tmp_path / "sd", renditions=1, variants=["f1", "m1", "m2"], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_folders_without_a_manifest_or_wav_files_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="has no manifest.csv: not a spoken-digits folder"):
        spoken_digits_folder(tmp_path)
    with pytest.raises(DataError, match="has no subfolder with .wav files"):
        load_splits(DataConfig(name="audio", path=str(tmp_path)))
    with pytest.raises(DataError, match="needs a folder of WAV files"):
        load_splits(DataConfig(name="audio"))


def test_a_folder_of_wav_files_is_an_audio_dataset(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for c in ("bird", "frog"):
        (tmp_path / c).mkdir()
        for i in range(10):
            write_wav(tmp_path / c / f"{i}.wav", rng.uniform(-0.5, 0.5, 16000), 16000)  # 1 s at 16 kHz
    splits = load_splits(DataConfig(name="audio", path=str(tmp_path), val_fraction=0.1, test_fraction=0.1))
    assert dataset_kind("audio") == "audio" == dataset_kind("spoken-digits")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 2, 2)
    assert splits.meta["class_names"] == ["bird", "frog"] and splits.meta["sample_rate"] == 8000
    assert splits.train[0]["audio"].shape == (1, 8000)
    assert "note: 20 of 20 WAV files are at 16,000 Hz, not 8,000 Hz; they were resampled" in capsys.readouterr().err
    half = load_splits(DataConfig(name="audio", path=str(tmp_path), val_fraction=0.1, test_fraction=0.1,
                                  seconds=0.5))
    assert half.train[0]["audio"].shape == (1, 4000) and half.meta["length"] == 4000  # data.seconds
    with pytest.raises(ConfigError, match="spoken-digits clips are 1 s"):
        load_splits(DataConfig(name="spoken-digits", seconds=0.5))
    with pytest.raises(ConfigError, match="data.seconds' must be in 0.05..30"):
        validate(RunConfig(model="wavenet", data=DataConfig(name="audio", seconds=float("nan"))))
    (tmp_path / "frog" / "9.wav").write_bytes(b"RIFF....")
    with pytest.raises(DataError, match="9.wav: not a readable WAV file"):
        load_splits(DataConfig(name="audio", path=str(tmp_path)))
