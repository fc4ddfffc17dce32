"""``twopaths eval`` with sample metrics: a tiny diffusion run scored with FID/KID/PR beside the
real-vs-real floor, the floor alone, mode coverage, and the errors a user can meet."""

import json

import pytest

from twopaths.cli import main

TINY = ["--set", "data.size=160", "--set", "data.resolution=16", "--set", "arch.unet.base_channels=8",
        "--set", "arch.unet.channel_mults=[1,2]", "--set", "arch.unet.num_res_blocks=1",
        "--set", "arch.unet.image_size=16", "--set", "arch.unet.attention_resolutions=[]",
        "--set", "arch.unet.groups=4", "--set", "arch.diffusion.timesteps=20", "--set", "train.max_steps=2",
        "--set", "train.batch_size=8", "--set", "train.ckpt_every=2", "--set", "train.sample_every=0",
        "--set", "train.eval_every=0", "--set", "train.progress=false", "--set", "arch.sample_steps=2"]


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("eval") / "run"
    assert main(["train", "ddpm", "--data", "shapes", "--out", str(run), *TINY]) == 0
    return run


def test_eval_prints_fid_kid_pr_with_the_floor(ddpm_run, tmp_path, capsys):
    code, out, _ = cli(capsys, "eval", ddpm_run, "--metrics", "fid,kid,pr,classes", "--n", 48, "--steps", 2,
                       "--batch-size", 32, "--json", tmp_path / "m.json")
    assert code == 0
    assert "48 samples (dpmpp, 2 steps" in out and "real-vs-real" in out  # the run's own sampler (the preset's)
    for name in ("fid", "kid", "precision", "recall", "density", "coverage", "class_entropy_norm"):
        assert f"  {name} " in out, name
    assert "shapes@" in out and "test acc" in out  # the feature net's identity on every row
    result = json.loads((tmp_path / "m.json").read_text())["samples"]
    assert result["n"] == 48 and result["feature_net"].startswith("shapes@")
    # two training steps make noise: far worse than real images at the same n
    assert result["metrics"]["fid"] > 2 * result["floor"]["fid"] and result["floor"]["precision"] > 0.5


def test_eval_errors(ddpm_run, capsys):
    for args, message in ((["--metrics", "fid,blue"], "unknown metric(s) blue; available: loss"),
                          (["--metrics", "modes"], "metric(s) modes do not fit image data ('shapes')"),
                          (["--metrics", "fid", "--feature-net", "cifar"], "unknown feature net 'cifar'")):
        code, _, err = cli(capsys, "eval", ddpm_run, "--n", 8, "--steps", 1, *args)
        assert code == 2 and message in err, err
    code, _, err = cli(capsys, "eval", "--real-vs-real", "mixture2d", "--metrics", "fid")
    assert code == 2 and "metric(s) fid do not fit points data" in err
    code, _, err = cli(capsys, "eval", ddpm_run, "--real-vs-real", "shapes")
    assert code == 2 and "not both" in err


def test_real_vs_real_floor_and_mode_coverage(capsys, tmp_path):
    code, out, _ = cli(capsys, "eval", "--real-vs-real", "mixture2d", "--n", 800, "--json", tmp_path / "m.json")
    assert code == 0 and "modes_covered" in out
    assert json.loads((tmp_path / "m.json").read_text())["floor"]["modes_covered"] == 8
    code, out, err = cli(capsys, "eval", "--real-vs-real", "fashion-mnist", "--n", 20_000)
    if code == 2 and "Fashion-MNIST not found" in err:
        pytest.skip("Fashion-MNIST is not installed; 'make test' installs it")
    assert code == 2 and "--n 20,000 is larger than the test split of 'fashion-mnist' (10,000 images)" in err
    code, out, _ = cli(capsys, "eval", "--real-vs-real", "fashion-mnist", "--n", 300, "--metrics", "fid,pr")
    assert code == 0 and "fashion-mnist@" in out and "  fid " in out and "  recall " in out


def test_points_run_gets_mode_coverage(tmp_path, capsys):
    run = tmp_path / "mix"
    assert main(["train", "ddpm", "--data", "mixture2d", "--out", str(run), "--set", "data.size=256",
                 "--set", "train.max_steps=4", "--set", "train.batch_size=64", "--set", "arch.mlp.width=16",
                 "--set", "arch.diffusion.timesteps=20", "--set", "train.progress=false",
                 "--set", "train.eval_every=0", "--set", "train.sample_every=0"]) == 0
    code, out, _ = cli(capsys, "eval", run, "--metrics", "modes", "--n", 400, "--steps", 3,
                       "--json", tmp_path / "m.json")
    assert code == 0 and "400 samples (ddim, 3 steps)" in out and "modes_covered" in out
    samples = json.loads((tmp_path / "m.json").read_text())["samples"]
    assert 0 <= samples["metrics"]["modes_covered"] <= 8 and samples["floor"]["modes_covered"] == 8
    code, _, err = cli(capsys, "eval", run, "--metrics", "fid")
    assert code == 2 and "metric(s) fid do not fit points data ('mixture2d')" in err


def test_sampled_points_keep_their_coordinates_and_images_their_range():
    """The ring of mixture2d has radius 2: clamping samples to an image's [-1, 1] hid every mode (a bug
    that made every points contender cover 0/8 modes)."""
    import torch

    from twopaths.eval.images import sample_model

    class Fixed(torch.nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.shape = shape

        def sample(self, n, *, cond=None, generator=None):
            return torch.full((n, *self.shape), 1.7)

    points = sample_model(Fixed((2,)), 10, progress=False)
    assert points.shape == (10, 2) and torch.all(points == 1.7)
    images = sample_model(Fixed((1, 4, 4)), 3, progress=False)  # a sampler's overshoot is clipped
    assert images.shape == (3, 1, 4, 4) and torch.all(images == 1.0)
