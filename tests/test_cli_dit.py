"""``twopaths train dit`` and ``twopaths sample`` end to end, on a small Fashion-MNIST look-alike
written here (real IDX files, random pixels), and the errors a user meets choosing a DiT size."""

import numpy as np
import pytest
import torch

from conftest import run_cli
from twopaths.data.images import write_idx
from twopaths.errors import ConfigError
from twopaths.models import get_spec, resolve_config
from twopaths.nn.flops import forward_gflops

TINY = ["--set", "train.max_steps=3", "--set", "train.batch_size=8", "--set", "train.ckpt_every=3",
        "--set", "train.sample_every=3", "--set", "train.eval_every=0", "--set", "train.progress=false",
        "--set", "arch.diffusion.timesteps=50", "--set", "arch.sample_steps=2"]


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for split, n in (("train", 5064), ("t10k", 16)):  # validation is a fixed 5,000 of the train images
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def dit_run(tmp_path_factory, fashion_dir):
    run = tmp_path_factory.mktemp("dit") / "run"
    # the full (GPU) preset: its DiT-T/4 and the paper's optimiser are what the tests below check
    proc = run_cli("train", "dit", "--data", "fashion-mnist", "--set", f"data.path={fashion_dir}", "--out", str(run),
                   "--preset", "gpu", *TINY)
    return run, proc


def test_trains_and_says_its_size_and_gflops(dit_run):
    run, proc = dit_run
    assert "DiT-T/4: 4.17M parameters, 0.275 Gflops per forward (28x28, 49 tokens)" in proc.stderr
    config = (run / "config.yaml").read_text()
    assert "backbone: dit" in config and "dit_size: DiT-T/4" in config and "lr: 0.0001" in config
    assert (run / "samples" / "step_00000003.png").is_file()


def test_samples_with_classes_and_guidance(dit_run, tmp_path):
    run, _ = dit_run
    out = run_cli("sample", str(run), "--n", "4", "--steps", "2", "--class", "Sneaker", "--guidance", "2",
                  "--out", str(tmp_path / "s.npz")).stdout
    assert "4 samples, ddim, 2 steps, guidance 2.0" in out
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["samples"].shape == (4, 1, 28, 28) and set(arrays["labels"].tolist()) == {7}
    assert np.isfinite(arrays["samples"]).all() and np.abs(arrays["samples"]).max() <= 1.0 + 1e-6


# ----------------------------------------------------------------------------- the same, in-process

FASHION_META = {"channels": 1, "resolution": 28, "class_names": [str(i) for i in range(10)]}


def build(model: str, *overrides: str, meta: dict = FASHION_META):
    """The model ``twopaths train MODEL --data fashion-mnist --set OVERRIDES`` would train."""
    return get_spec(model).build(resolve_config(model, None, list(overrides), data="fashion-mnist"), meta)


def test_custom_sizes_and_learned_sigma(capsys):
    model = build("dit", "arch.dit_size=custom", "arch.dit.patch_size=7", "arch.dit.d_model=32", "arch.dit.n_layer=1",
                  "arch.diffusion.learn_sigma=true")
    assert model.net.cfg.tokens == 16 and model.net.out_channels == 2 and model.net.cfg.num_classes == 10
    loss = model.loss({"image": torch.randn(4, 1, 28, 28), "label": torch.tensor([0, 3, 7, 9])})  # L_simple + L_vlb
    assert torch.isfinite(loss) and loss > 0.5  # zero output at init: the eps-MSE alone is ~1
    assert capsys.readouterr().err == (f"DiT-custom/7: {model.net.num_params() / 1e6:.3g}M parameters, "
                                       f"{model.net.gflops():.3g} Gflops per forward (28x28, 16 tokens)\n")
    model = build("dit", "arch.dit_size=DiT-S/2", meta={"channels": 3, "resolution": 32, "class_names": []})
    assert (model.net.cfg.d_model, model.net.cfg.n_layer, model.net.cfg.in_channels, model.net.cfg.tokens) == \
        (384, 12, 3, 256)
    assert capsys.readouterr().err.startswith("DiT-S/2: 32.")


@pytest.mark.parametrize("overrides, message", [
    (["arch.dit_size=DiT-S/8"], "DiT-S/8 cuts images into 8x8 patches, which do not tile this data's 28x28 images; "
                                "choose arch.dit_size from: DiT-S/2, DiT-S/4, DiT-B/2, DiT-B/4, DiT-L/2, DiT-L/4, "
                                "DiT-XL/2, DiT-XL/4, DiT-T/2, DiT-T/4 (or arch.dit.patch_size dividing 28 with "
                                "arch.dit_size=custom)"),
    (["arch.dit_size=DiT-Z/2"], "config key 'arch.dit_size': unknown DiT size 'DiT-Z/2'; choose one of: DiT-S/2,"),
    (["arch.dit.d_model=256"], "config key 'arch.dit.d_model' is 256, but arch.dit_size=DiT-T/4 sets it to 192; "
                               "add --set arch.dit_size=custom"),
    (["arch.dit_size=custom", "arch.dit.n_head=5"], "DiT d_model 192 is not divisible by n_head 5"),
])
def test_size_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        build("dit", *overrides)
    assert message in str(err.value)


def test_dit_is_for_images():
    with pytest.raises(ConfigError, match="model 'dit' trains on image data; dataset 'mixture2d' is points data"):
        resolve_config("dit", data="mixture2d")


def test_ddpm_says_its_unet_size_too(capsys):
    model = build("ddpm", "arch.unet.base_channels=16", "arch.unet.channel_mults=[1,2]", "arch.unet.num_res_blocks=1",
                  "arch.unet.groups=4")
    gflops = forward_gflops(model.net, torch.zeros(1, 1, 28, 28), torch.zeros(1))
    assert capsys.readouterr().err == f"U-Net: 0.178M parameters, {gflops:.3g} Gflops per forward (28x28)\n"
    assert sum(p.numel() for p in model.net.parameters()) == pytest.approx(0.178e6, rel=0.003)
