"""The diffusion commands end to end on small real data: train, sample (grid, arrays, trajectory,
classes, guidance), evaluate the likelihood bound, and the errors a user can meet."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

TINY_UNET = ["--set", "data.size=160", "--set", "data.resolution=16", "--set", "arch.unet.base_channels=16",
             "--set", "arch.unet.channel_mults=[1,2]", "--set", "arch.unet.num_res_blocks=1",
             "--set", "arch.unet.image_size=16", "--set", "arch.unet.attention_resolutions=[8]",
             "--set", "arch.unet.groups=4", "--set", "arch.diffusion.timesteps=50", "--set", "train.max_steps=20",
             "--set", "train.batch_size=16", "--set", "train.ckpt_every=10", "--set", "train.sample_every=10",
             "--set", "train.eval_every=10", "--set", "train.eval_batches=2", "--set", "train.progress=false",
             "--set", "arch.sample_steps=5"]


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddpm") / "run"
    run_cli("train", "ddpm", "--data", "shapes", "--out", str(run), *TINY_UNET)
    return run


def test_training_writes_sample_grids(shapes_run):
    for step in ("00000010", "00000020"):
        img = Image.open(shapes_run / "samples" / f"step_{step}.png")
        assert img.size[0] > 16 * 4  # a grid, not one image


def test_sample_png_npz_trajectory_and_classes(shapes_run, tmp_path):
    out = run_cli("sample", str(shapes_run), "--n", "6", "--sampler", "dpmpp", "--steps", "4",
                  "--out", str(tmp_path / "g.png"), "--trajectory", str(tmp_path / "traj.png")).stdout
    assert "dpmpp, 4 steps" in out
    assert Image.open(tmp_path / "g.png").size[0] > 32 and Image.open(tmp_path / "traj.png").size[0] > 100
    run_cli("sample", str(shapes_run), "--n", "5", "--sampler", "heun", "--steps", "3", "--class", "square",
            "--guidance", "2.5", "--out", str(tmp_path / "s.npz"))
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["samples"].shape == (5, 3, 16, 16) and set(arrays["labels"].tolist()) == {1}
    assert np.abs(arrays["samples"]).max() <= 1.0 + 1e-6  # clipped to the data range
    # the same seed gives the same samples
    run_cli("sample", str(shapes_run), "--n", "5", "--sampler", "heun", "--steps", "3", "--class", "1",
            "--guidance", "2.5", "--out", str(tmp_path / "s2.npz"))
    assert np.array_equal(np.load(tmp_path / "s2.npz")["samples"], arrays["samples"])


def test_sampling_errors(shapes_run, tmp_path):
    for args, message in ((["--class", "hexagon"], "unknown class 'hexagon'; choose a number 0..2 or one of"),
                          (["--out", str(tmp_path / "x.jpg")], "--out must end in .png"),
                          (["--guidance", "-1"], "--guidance must be >= 0")):
        proc = run_cli("sample", str(shapes_run), "--n", "2", "--steps", "2", *args, check=False)
        assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_eval_loss_and_bits_per_dim(shapes_run, tmp_path):
    out = run_cli("eval", str(shapes_run), "--split", "test", "--metrics", "loss,nll", "--n", "8",
                  "--json", str(tmp_path / "m.json")).stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "nll_bits_per_dim" in out and np.isfinite(metrics["nll_bits_per_dim"]) and metrics["nll_bits_per_dim"] > 0
    assert metrics["items"] == 8 and metrics["loss"] > 0
    bad = run_cli("eval", str(shapes_run), "--metrics", "blue", check=False)
    assert bad.returncode == 2 and "unknown metric(s) blue" in bad.stderr


def test_points_model_samples_a_scatter_plot(tmp_path):
    run = tmp_path / "mix"
    run_cli("train", "ddpm", "--data", "mixture2d", "--out", str(run), "--set", "data.size=512",
            "--set", "train.max_steps=10", "--set", "train.batch_size=64", "--set", "arch.mlp.width=32",
            "--set", "arch.diffusion.timesteps=50", "--set", "train.progress=false", "--set", "train.eval_every=0",
            "--set", "train.sample_every=0")
    run_cli("sample", str(run), "--n", "100", "--steps", "5", "--out", str(tmp_path / "p.png"))
    assert Image.open(tmp_path / "p.png").size[0] > 200
    proc = run_cli("sample", str(run), "--n", "3", "--steps", "2", "--class", "2", check=False)
    assert proc.returncode == 2 and "trained without class labels" in proc.stderr
