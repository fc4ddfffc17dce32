"""Text-to-image end to end on the shapes captions: train a tiny text-conditioned ddpm, sample it
with a prompt and guidance, and meet the errors a user can make (unknown words, --prompt on a
model without text, text conditioning on data without captions)."""

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

TINY_TEXT_UNET = ["--set", "arch.conditioning=text", "--set", "data.size=160", "--set", "data.resolution=16",
                  "--set", "arch.unet.base_channels=16", "--set", "arch.unet.channel_mults=[1,2]",
                  "--set", "arch.unet.num_res_blocks=1", "--set", "arch.unet.image_size=16",
                  "--set", "arch.unet.attention_resolutions=[8]", "--set", "arch.unet.groups=4",
                  "--set", "arch.text.d_model=32", "--set", "arch.text.n_layer=1",
                  "--set", "arch.diffusion.timesteps=50", "--set", "train.max_steps=6", "--set", "train.batch_size=16",
                  "--set", "train.ckpt_every=6", "--set", "train.sample_every=6", "--set", "train.eval_every=6",
                  "--set", "train.eval_batches=1", "--set", "train.progress=false", "--set", "arch.sample_steps=3"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("t2i") / "run"
    run_cli("train", "ddpm", "--data", "shapes", "--out", str(run), *TINY_TEXT_UNET)
    return run


def test_training_hook_writes_a_grid_and_its_captions(text_run):
    grid = text_run / "samples" / "step_00000006.png"
    captions = (text_run / "samples" / "step_00000006.txt").read_text().splitlines()
    assert Image.open(grid).size[0] > 16 * 8  # a grid of 8 columns
    assert len(captions) == 16 and captions[0] == "a large red circle" and captions[8] == captions[0]
    assert "vocab:" in (text_run / "config.yaml").read_text()  # the vocabulary is saved with the run


def test_sample_with_a_prompt_and_guidance(text_run, tmp_path):
    out = run_cli("sample", str(text_run), "--prompt", "a large green triangle", "--guidance", "3", "--n", "4",
                  "--steps", "3", "--out", str(tmp_path / "g.npz")).stdout
    assert "guidance 3.0" in out
    samples = np.load(tmp_path / "g.npz")["samples"]
    assert samples.shape == (4, 3, 16, 16) and np.abs(samples).max() <= 1.0 + 1e-6
    assert (tmp_path / "g.txt").read_text().splitlines() == ["a large green triangle"] * 4
    # no --prompt: the test split's captions, written beside the grid
    out = run_cli("sample", str(text_run), "--n", "3", "--steps", "2", "--out", str(tmp_path / "t.png")).stdout
    captions = (tmp_path / "t.txt").read_text().splitlines()
    assert "from the test split" in out and len(captions) == 3 and all(c.startswith("a ") for c in captions)


def test_unknown_words_are_named(text_run, tmp_path):
    bad = run_cli("sample", str(text_run), "--prompt", "a purple hexagon", "--n", "2", "--steps", "2",
                  "--out", str(tmp_path / "x.png"), check=False)
    assert bad.returncode == 2
    assert "unknown word(s) 'purple', 'hexagon'" in bad.stderr and "the model knows: a above below" in bad.stderr


def test_prompt_on_a_class_conditional_run_and_text_on_points_are_errors(tmp_path):
    run = tmp_path / "class"
    class_args = [a for a in TINY_TEXT_UNET if a not in ("arch.conditioning=text",)]
    class_args = [a for i, a in enumerate(class_args) if not (a == "--set" and class_args[i + 1].startswith("--"))]
    run_cli("train", "ddpm", "--data", "shapes", "--out", str(run), *class_args,
            "--set", "train.sample_every=0", "--set", "train.eval_every=0", "--set", "train.max_steps=1",
            "--set", "train.ckpt_every=1")
    bad = run_cli("sample", str(run), "--prompt", "a red circle", "--n", "2", "--steps", "2", check=False)
    assert bad.returncode == 2 and "--prompt is for text-conditioned models" in bad.stderr
    assert "arch.conditioning=auto" in bad.stderr
    bad = run_cli("train", "ddpm", "--data", "mixture2d", "--dry-run", "--set", "arch.conditioning=text", check=False)
    assert bad.returncode == 2 and "'arch.conditioning' is 'text'" in bad.stderr
