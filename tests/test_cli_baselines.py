"""The GAN and VAE through the CLI on tiny real data: train (with sample grids and the players'
losses logged), sample a grid, arrays and a scatter plot, evaluate the VAE's bits/dim, and the
errors a user can meet."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from twopaths.runs import load_run

TINY = ["--set", "data.size=96", "--set", "data.resolution=8", "--set", "arch.width=4", "--set", "train.max_steps=4",
        "--set", "train.batch_size=16", "--set", "train.ckpt_every=2", "--set", "train.sample_every=2",
        "--set", "train.progress=false"]


@pytest.fixture(scope="module", params=["gan", "vae"])
def shapes_run(request, tmp_path_factory):
    run = tmp_path_factory.mktemp(request.param) / "run"
    extra = ["--set", "train.eval_every=2", "--set", "train.eval_batches=1"] if request.param == "vae" else []
    run_cli("train", request.param, "--data", "shapes", "--out", str(run), *TINY, *extra)
    return request.param, run


def test_train_writes_grids_and_logs_both_players(shapes_run):
    model, run = shapes_run
    assert Image.open(run / "samples" / "step_00000004.png").size[0] > 8 * 8
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    hooks = [m for m in lines if m.get("split") == "samples"]
    assert hooks and all(np.isfinite(m["sample_std"]) for m in hooks)
    if model == "gan":
        assert {"d_loss", "g_loss", "r1", "d_real", "d_fake"} <= set(hooks[-1])
    else:
        assert any(m.get("split") == "val" for m in lines)


def test_sample_grid_and_arrays_same_seed_same_samples(shapes_run, tmp_path):
    _, run = shapes_run
    refused = run_cli("sample", str(run), "--n", "6", "--sampler", "ddpm", check=False)  # it would be ignored
    assert refused.returncode == 2 and "are for diffusion models" in refused.stderr
    out = run_cli("sample", str(run), "--n", "6", "--out", str(tmp_path / "g.png")).stdout
    assert "6 samples" in out and Image.open(tmp_path / "g.png").size[0] > 16
    run_cli("sample", str(run), "--n", "5", "--seed", "3", "--out", str(tmp_path / "a.npz"))
    a = np.load(tmp_path / "a.npz")["samples"]
    assert a.shape == (5, 3, 8, 8) and np.abs(a).max() <= 1
    # the same seed gives the same samples: the first five of six drawn with seed 3 in-process
    again = load_run(run).model.sample(5, generator=torch.Generator().manual_seed(3))
    assert np.allclose(a, again.numpy(), atol=1e-6)


def test_sampling_errors(shapes_run, tmp_path):
    _, run = shapes_run
    for args, message in ((["--class", "circle"], "trained without class labels"),
                          (["--trajectory", str(tmp_path / "t.png")], "samples in one pass")):
        proc = run_cli("sample", str(run), "--n", "2", *args, check=False)
        assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_vae_eval_bits_per_dim(shapes_run, tmp_path):
    model, run = shapes_run
    if model != "vae":
        pytest.skip("the likelihood bound is the VAE's")
    run_cli("eval", str(run), "--split", "test", "--metrics", "loss,nll", "--n", "8", "--json", str(tmp_path / "m.json"))
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["nll_bits_per_dim"] > 0 and np.isfinite(metrics["elbo_bits_per_dim"])


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_points_scatter_plot(model, tmp_path):
    run = tmp_path / "mix"
    run_cli("train", model, "--data", "mixture2d", "--out", str(run), "--set", "data.size=256",
            "--set", "train.max_steps=3", "--set", "train.batch_size=32", "--set", "arch.width=8",
            "--set", "train.progress=false", "--set", "train.eval_every=0", "--set", "train.sample_every=0")
    run_cli("sample", str(run), "--n", "50", "--out", str(tmp_path / "p.png"))
    assert Image.open(tmp_path / "p.png").size[0] > 200
