"""``twopaths inpaint`` and ``twopaths upscale`` end to end on tiny runs trained through the CLI, and the
errors a user can meet (missing file, wrong size, mask of another size, the wrong kind of run)."""

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from twopaths.cli import build_parser, main

TINY = ["--set", "data.size=160", "--set", "data.resolution=16", "--set", "arch.unet.base_channels=16",
        "--set", "arch.unet.channel_mults=[1,2]", "--set", "arch.unet.num_res_blocks=1",
        "--set", "arch.unet.image_size=16", "--set", "arch.unet.attention_resolutions=[8]",
        "--set", "arch.unet.groups=4", "--set", "arch.diffusion.timesteps=50", "--set", "train.max_steps=10",
        "--set", "train.batch_size=16", "--set", "train.ckpt_every=10", "--set", "train.eval_every=0",
        "--set", "train.progress=false", "--set", "arch.sample_steps=4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 16x16 RGB picture, its 4x4 version, a mask with a white (= fill) square, and a mask of the wrong size."""
    d = tmp_path_factory.mktemp("pictures")
    g = np.random.default_rng(0)
    picture = g.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(picture).save(d / "img.png")
    Image.fromarray(picture[::4, ::4]).save(d / "small.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 2:10] = 255
    Image.fromarray(mask).save(d / "mask.png")
    Image.fromarray(mask[::2, ::2]).save(d / "mask8.png")
    return d


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ddpm") / "run"
    run_cli("train", "ddpm", "--data", "shapes", "--out", str(run), *TINY, "--set", "train.sample_every=0")
    return run


@pytest.fixture(scope="module")
def sr3_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sr3") / "run"
    run_cli("train", "sr3", "--data", "shapes", "--out", str(run), *TINY, "--set", "arch.factor=4",
            "--set", "train.sample_every=10")
    return run


def _cli(capsys, *args):
    """The real command line, in this process: (exit status, stdout, last stderr line)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, (err.strip().splitlines() or [""])[-1]


def test_inpaint_with_a_mask_png(ddpm_run, files, tmp_path):
    out = run_cli("inpaint", str(ddpm_run), "--image", str(files / "img.png"), "--mask", str(files / "mask.png"),
                  "--n", "2", "--steps", "8", "--resample", "2", "--jump", "3", "--out", str(tmp_path / "f.png")).stdout
    assert "2 results, 64 of 256 pixels filled" in out and "15 network evaluations" in out
    side = Image.open(tmp_path / "f.png")
    assert side.size[0] > 4 * 16 * 4 - 1  # input | mask | 2 results, each shown 4x
    picture = np.asarray(Image.open(files / "img.png"))
    fill = np.asarray(Image.open(files / "mask.png")) >= 128
    results = [np.asarray(Image.open(tmp_path / f"f_result_{k}.png")) for k in (0, 1)]
    for result in results:
        assert result.shape == (16, 16, 3)
        assert np.array_equal(result[~fill], picture[~fill])  # every kept pixel exactly as given
    assert not np.array_equal(results[0][fill], results[1][fill])  # two different completions


def test_inpaint_with_a_box_to_arrays(ddpm_run, files, tmp_path, capsys):
    status, out, _ = _cli(capsys, "inpaint", ddpm_run, "--image", files / "img.png", "--box", "0,8,16,16",
                          "--steps", "5", "--resample", "1", "--sampler", "ddim", "--out", tmp_path / "g.npz")
    assert status == 0 and "128 of 256 pixels filled" in out
    arrays = np.load(tmp_path / "g.npz")
    keep = arrays["keep"]
    assert keep.shape == (1, 16, 16) and keep[:, 8:].sum() == 0 and keep[:, :8].min() == 1  # rows 8.. filled
    kept = np.broadcast_to(keep, arrays["image"].shape).astype(bool)
    assert np.allclose(arrays["results"][0][kept], arrays["image"][kept], atol=1e-6)


def test_upscale(sr3_run, files, tmp_path):
    assert (sr3_run / "samples" / "step_00000010.png").is_file()  # the training hook's low | bicubic | sr3 | real
    out = run_cli("upscale", str(sr3_run), "--image", str(files / "small.png"), "--steps", "3",
                  "--out", str(tmp_path / "big.png")).stdout
    big = np.asarray(Image.open(tmp_path / "big.png")).astype(np.float64)
    small = np.asarray(Image.open(files / "small.png")).astype(np.float64)
    assert big.shape == (16, 16, 3) and Image.open(tmp_path / "big_compare.png").size[0] > 3 * 16 * 4 - 1
    pooled = big.reshape(4, 4, 4, 4, 3).mean(axis=(1, 3))
    assert np.abs(pooled - small).max() <= 0.5 + 1e-9  # exact before rounding each pixel to 8 bits
    gap = float(out.split("max |downsample(result) - input| = ")[1].split()[0])
    assert gap < 1e-5


def test_bad_inputs(ddpm_run, sr3_run, files, tmp_path, capsys):
    img, mask = files / "img.png", files / "mask.png"
    cases = [
        (["inpaint", ddpm_run, "--image", tmp_path / "nope.png", "--box", "0,0,4,4"], "image file not found"),
        (["inpaint", ddpm_run, "--image", files / "small.png", "--box", "0,0,4,4"],
         "small.png is 4x4 pixels; this run (ddpm on shapes) takes 16x16 images"),
        (["inpaint", ddpm_run, "--image", img, "--mask", files / "mask8.png"],
         "mask8.png is 8x8 pixels but the image is 16x16; they must match"),
        (["inpaint", ddpm_run, "--image", img], "give the region to fill with --mask"),
        (["inpaint", ddpm_run, "--image", img, "--mask", mask, "--box", "0,0,4,4"], "give the region to fill"),
        (["inpaint", ddpm_run, "--image", img, "--box", "4,4,2,9"], "--box 4,4,2,9 must satisfy"),
        (["inpaint", ddpm_run, "--image", img, "--box", "a,b"], "--box must be four integers"),
        (["inpaint", ddpm_run, "--image", img, "--mask", files / "small.png"], "is 4x4 pixels but the image"),
        (["inpaint", ddpm_run, "--image", img, "--mask", mask, "--out", tmp_path / "x.jpg"], "--out must end in"),
        (["inpaint", sr3_run, "--image", img, "--box", "0,0,4,4"], "inpaint needs a Gaussian diffusion image model"),
        (["inpaint", tmp_path / "norun", "--image", img, "--box", "0,0,4,4"], "run directory not found"),
        (["upscale", ddpm_run, "--image", files / "small.png"], "upscale needs a super-resolution run (model sr3)"),
        (["upscale", sr3_run, "--image", img], "img.png is 16x16 pixels; this sr3 run (x4 to 16x16) takes 4x4"),
        (["upscale", sr3_run, "--image", tmp_path / "nope.png"], "image file not found"),
        (["sample", sr3_run], "model 'sr3' upscales a given image"),
    ]
    for args, message in cases:
        status, _, last = _cli(capsys, *args)
        assert status == 2 and message in last, (args, last)
    # an image editor's black-on-white mask inverted (nothing white): refused, not silently a no-op
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "black.png")
    status, _, last = _cli(capsys, "inpaint", ddpm_run, "--image", img, "--mask", tmp_path / "black.png")
    assert status == 2 and "white pixels (or the --box) mark the region to fill" in last


def test_help_states_the_mask_convention():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["inpaint"].format_help()
    assert "WHITE marks the region to FILL" in text and "--box" in text and "examples:" in text
    assert "7x7 for x4" in sub.choices["upscale"].format_help()
