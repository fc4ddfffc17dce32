"""wavenet and diffwave from the command line on a folder of WAV files (two tones, made here, so no
eSpeak is needed): train, sample WAV files with a spectrogram grid, evaluate the loss, refuse bad output."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from twopaths.data.audio import read_wav, write_wav

QUIET = ["--set", "train.batch_size=4", "--set", "train.eval_every=0", "--set", "train.sample_every=0",
         "--set", "train.progress=false", "--set", "optim.warmup_steps=1", "--set", "train.max_steps=2"]


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    t = np.arange(8000) / 8000
    for name, freq in (("low", 220.0), ("high", 880.0)):
        (root / name).mkdir()
        for i in range(6):
            write_wav(root / name / f"{i}.wav", 0.5 * np.sin(2 * np.pi * freq * (1 + 0.02 * i) * t), 8000)
    return root


@pytest.mark.parametrize("model, arch", [
    ("wavenet", ["--set", "arch.channels=8", "--set", "arch.n_layers=3", "--set", "arch.dilation_cycle=3"]),
    ("diffwave", ["--set", "arch.wavenet.channels=8", "--set", "arch.wavenet.n_layers=3",
                  "--set", "arch.wavenet.dilation_cycle=3"]),
])
def test_train_sample_eval(tones, tmp_path, model, arch):
    run = tmp_path / model
    # quarter-second clips (data.seconds): a quarter of a wavenet's sequential steps; eval fits them to the
    # classifier's 1 s
    run_cli("train", model, "--data", "audio", "--set", f"data.path={tones}", "--set", "data.seconds=0.25",
            "--out", str(run), *arch, *QUIET)
    steps = ["--steps", "3"] if model == "diffwave" else []
    out = run_cli("sample", str(run), "--n", "2", "--class", "high", "--out", str(tmp_path / "hi.wav"), *steps)
    assert "2 clip(s) of 0.25 s" in out.stdout
    clips = sorted((tmp_path / "hi").glob("*.wav"))
    assert [c.name for c in clips] == ["000_high.wav", "001_high.wav"]
    assert (tmp_path / "hi" / "spectrograms.png").is_file()
    x, rate = read_wav(clips[0])
    assert rate == 8000 and x.shape == (2000,) and np.isfinite(x).all()
    assert "loss" in run_cli("eval", str(run), "--metrics", "loss").stdout
    if model == "diffwave":  # one clip: a WAV file and its spectrogram beside it
        run_cli("sample", str(run), "--n", "1", "--out", str(tmp_path / "one.wav"), *steps)
        assert (tmp_path / "one.wav").is_file() and (tmp_path / "one.png").is_file()
        _sample_metrics(run, tmp_path)
        out = run_cli("sample", str(run), "--n", "2", "--sampler", "diffwave", "--out", str(tmp_path / "fast.wav"))
        assert "diffwave, 6 steps" in out.stdout  # DiffWave's fast schedule, its own 6 steps by default
    else:
        bad = run_cli("sample", str(run), "--n", "1", "--out", str(tmp_path / "x.png"), check=False)
        assert bad.returncode == 2 and "audio samples are written as .wav" in bad.stderr.strip().splitlines()[-1]
        assert not (tmp_path / "x.png").exists()


def _sample_metrics(run, tmp_path):
    """The classifier's scores of sampled clips, in this process; accuracy only where the classes are digits."""
    import json

    from twopaths.cli import main

    assert main(["eval", str(run), "--metrics", "fd,is", "--n", "4", "--steps", "2", "--split", "train",
                 "--json", str(tmp_path / "a.json")]) == 0
    result = json.loads((tmp_path / "a.json").read_text())["audio"]
    assert set(result["metrics"]) == {"fd", "is", "mis"} and result["floor"]["fd"] >= 0
    assert 1 <= result["metrics"]["is"] <= 10 and result["real_time_factor"] > 0
    assert main(["eval", str(run), "--metrics", "accuracy", "--n", "4", "--steps", "2"]) == 2


def test_audio_models_refuse_other_data(tmp_path):
    proc = run_cli("train", "wavenet", "--data", "mixture2d", "--out", str(tmp_path / "r"), *QUIET, check=False)
    assert proc.returncode == 2 and "wavenet" in proc.stderr.strip().splitlines()[-1]
