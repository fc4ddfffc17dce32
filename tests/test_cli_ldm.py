"""Latent diffusion end to end on Fashion-MNIST with tiny networks: an ldm run across its phase
switch (hooks, resume from before the switch bit for bit), sampling, reconstruction metrics; an
autoencoder run's reconstructions; and an ldm that starts from that autoencoder run."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from conftest import run_cli
from twopaths.data.images import find_fashion_mnist
from twopaths.errors import DataError
from twopaths.training.metrics import read_metrics

TINY_AE = ["--set", "arch.autoencoder.base_channels=8", "--set", "arch.autoencoder.channel_mults=[1,2]",
           "--set", "arch.autoencoder.factor=2", "--set", "arch.autoencoder.latent_channels=2",
           "--set", "arch.autoencoder.groups=4"]
TINY_LATENT_UNET = ["--set", "arch.unet.base_channels=16", "--set", "arch.unet.num_res_blocks=1",
                    "--set", "arch.unet.image_size=14", "--set", "arch.unet.attention_resolutions=[14]",
                    "--set", "arch.unet.head_channels=null", "--set", "arch.unet.groups=4",
                    "--set", "arch.diffusion.timesteps=50", "--set", "arch.sample_steps=3"]
SHORT = ["--set", "train.batch_size=16", "--set", "train.eval_batches=2", "--set", "train.progress=false",
         "--set", "train.log_every=1", "--set", "optim.warmup_steps=2"]
# 12 steps, the switch after step 6; checkpoints, evaluation and samples every 4 steps
LDM = ["train", "ldm", "--data", "fashion-mnist", *TINY_AE, *TINY_LATENT_UNET, *SHORT,
       "--set", "arch.ae_steps=6", "--set", "train.max_steps=12", "--set", "train.ckpt_every=4",
       "--set", "train.keep_last=5", "--set", "train.sample_every=4", "--set", "train.eval_every=4"]


def _trace(run_dir):
    return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in read_metrics(run_dir) if "split" not in r]


@pytest.fixture(scope="module")
def ldm_run(tmp_path_factory):
    try:
        find_fashion_mnist()
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    run = tmp_path_factory.mktemp("ldm") / "run"
    run_cli(*LDM, "--out", str(run))
    return run


def test_training_crosses_the_switch(ldm_run):
    rows = read_metrics(ldm_run)
    hooks = {r["step"]: r for r in rows if r.get("split") == "samples"}
    assert set(hooks[4]) >= {"recon_mse", "recon_psnr"}  # phase 1: reconstructions
    assert set(hooks[8]) >= {"sample_std", "latent_scale"} and hooks[8]["latent_scale"] > 0  # phase 2: samples
    assert hooks[8]["latent_scale"] == hooks[12]["latent_scale"]  # set once
    assert (ldm_run / "samples" / "step_00000004_recon.png").is_file()
    assert (ldm_run / "samples" / "step_00000012.png").is_file()
    assert [r["step"] for r in rows if r.get("split") == "val"] == [4, 8, 12]


def test_resume_from_before_the_switch_is_exact(ldm_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ldm_run, copy)
    for step in ("00000008", "00000012"):  # keep only the checkpoint at step 4, in the autoencoder phase
        shutil.rmtree(copy / "checkpoints" / f"step_{step}")
    out = run_cli("train", "--resume", str(copy))
    assert "resuming" in out.stderr
    assert _trace(copy) == _trace(ldm_run)  # losses, learning rates, gradient norms of both phases
    final = "checkpoints/step_00000012/model.safetensors"
    assert (copy / final).read_bytes() == (ldm_run / final).read_bytes()  # weights, phase, clock, scale


def test_sample_and_reconstruction_metrics(ldm_run, tmp_path):
    out = run_cli("sample", str(ldm_run), "--n", "6", "--steps", "2", "--class", "Sneaker", "--guidance", "2",
                  "--out", str(tmp_path / "s.npz"), "--trajectory", str(tmp_path / "traj.png")).stdout
    assert "dpmpp, 2 steps" in out  # the run's own sampler (the ldm preset's arch.sampler)
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["samples"].shape == (6, 1, 28, 28) and np.abs(arrays["samples"]).max() <= 1.0
    assert set(arrays["labels"].tolist()) == {7}
    assert Image.open(tmp_path / "traj.png").size[0] > 100

    out = run_cli("eval", str(ldm_run), "--metrics", "recon,fid", "--n", "100", "--sampler", "dpmpp", "--steps", "2",
                  "--json", str(tmp_path / "m.json")).stdout
    assert "psnr_db" in out and "real-vs-real" in out and "100 samples (dpmpp, 2 steps" in out
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["samples"]["metrics"]["fid"] > 0  # FID of samples drawn in latent space and decoded
    recon = report["recon"]
    assert recon["n"] == 100 and recon["split"] == "test" and recon["mse"] > 0 and np.isfinite(recon["psnr"])
    assert recon["fid"] > recon["fid_floor"] > 0  # an untrained autoencoder is worse than real images


def test_autoencoder_run_reconstructs_and_seeds_an_ldm(tmp_path):
    ae_run = tmp_path / "ae"
    run_cli("train", "autoencoder", "--data", "fashion-mnist", "--out", str(ae_run), *TINY_AE, *SHORT,
            "--set", "train.max_steps=4", "--set", "train.sample_every=4", "--set", "train.eval_every=0")
    assert (ae_run / "samples" / "step_00000004_recon.png").is_file()
    out = run_cli("sample", str(ae_run), "--n", "10", "--out", str(tmp_path / "r.png")).stdout
    assert "10 test images" in out and "PSNR" in out
    assert Image.open(tmp_path / "r.png").size[1] > 4 * 28  # two rows of originals, two of reconstructions

    ldm = tmp_path / "ldm"
    run_cli("train", "ldm", "--data", "fashion-mnist", "--out", str(ldm), *TINY_LATENT_UNET, *SHORT,
            "--set", f"arch.autoencoder_run={ae_run}", "--set", "arch.autoencoder.base_channels=64",  # overruled
            "--set", "train.max_steps=2", "--set", "train.sample_every=2", "--set", "train.eval_every=0")
    assert "latent_scale" in [r for r in read_metrics(ldm) if r.get("split") == "samples"][0]  # diffusion at once
    ae_weights = load_file(str(ae_run / "checkpoints" / "step_00000004" / "ema.safetensors"))
    ldm_weights = load_file(str(ldm / "checkpoints" / "step_00000002" / "model.safetensors"))
    for name, value in ae_weights.items():  # the frozen autoencoder is the autoencoder run's (EMA) one
        assert np.array_equal(ldm_weights[name].numpy(), value.numpy()), name
    assert "base_channels: 8" in (ldm / "config.yaml").read_text()  # its config was adopted too
