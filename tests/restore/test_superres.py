"""SR3 super-resolution: the data-consistency projection (exact, in range, nearest), shapes for x2 and x4,
downsample(output) == input, and a short real training run whose loss falls."""

import pytest
import torch

from twopaths.config import DataConfig
from twopaths.data.registry import load_splits
from twopaths.errors import ConfigError, TwopathsError
from twopaths.models import resolve_config
from twopaths.models.superres import _build_sr3
from twopaths.nn.functional import psnr
from twopaths.restore.superres import (SuperResolution, consistency_projection, downsample, upsample_nearest,
                                       upsample_smooth)

#: downsample(output) == low holds to float32 rounding of an average of f^2 values in [-1, 1]
TOL = 1e-5

TINY = ["arch.unet.base_channels=16", "arch.unet.channel_mults=[1,2]", "arch.unet.num_res_blocks=1",
        "arch.unet.attention_resolutions=[]", "arch.unet.groups=4", "arch.diffusion.timesteps=100"]


def tiny_sr3(factor: int, resolution: int = 16, channels: int = 3, extra=()) -> SuperResolution:
    cfg = resolve_config("sr3", overrides=[*TINY, f"arch.factor={factor}", *extra], data="shapes")
    return _build_sr3(cfg, {"channels": channels, "resolution": resolution, "class_names": ["a", "b", "c"]})


def test_resampling_operators():
    y = torch.rand(2, 3, 4, 5)
    for f in (1, 2, 4):
        up = upsample_nearest(y, f)
        assert up.shape == (2, 3, 4 * f, 5 * f) and torch.allclose(downsample(up, f), y, atol=1e-7)
    smooth = upsample_smooth(y * 2 - 1, 4, "bicubic")
    assert smooth.shape == (2, 3, 16, 20) and smooth.abs().max() <= 1


@pytest.mark.parametrize("factor", [2, 4])
def test_consistency_projection_is_exact_in_range_and_nearest(factor):
    g = torch.Generator().manual_seed(factor)
    x = torch.randn(3, 2, 8 * factor, 8 * factor, generator=g) * 0.8  # partly outside [-1, 1]
    low = torch.rand(3, 2, 8, 8, generator=g) * 2 - 1
    low[0, 0, 0, 0], low[0, 0, 0, 1] = 1.0, -1.0  # blocks that must be constant
    p = consistency_projection(x, low, factor)
    assert (downsample(p, factor) - low).abs().max() < TOL
    assert p.abs().max() <= 1.0
    assert torch.all(p[0, 0, :factor, :factor] == 1) and torch.all(p[0, 0, :factor, factor:2 * factor] == -1)
    assert torch.allclose(consistency_projection(p, low, factor), p, atol=1e-6)  # a projection: idempotent
    # the nearest feasible image: no other image in [-1, 1] with the same averages is closer to x
    for seed in range(5):
        other = consistency_projection(torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1,
                                       low, factor)
        assert ((x - p) ** 2).sum() <= ((x - other) ** 2).sum()
    # where nothing needs clamping, it is the affine projection x - up(down(x)) + up(low)
    small = x.clamp(-0.5, 0.5) * 0.1
    mid = low * 0.1
    assert torch.allclose(consistency_projection(small, mid, factor),
                          consistency_projection(small, mid, factor, bound=None), atol=1e-6)
    assert torch.allclose(psnr(x, x + 0.02), torch.full((3,), 10 * torch.log10(torch.tensor(4 / 4e-4))), atol=1e-3)


@pytest.mark.parametrize("factor, resolution", [(2, 16), (4, 16), (4, 28)])
def test_shapes_and_downsampled_output_equals_input(factor, resolution):
    torch.manual_seed(0)
    model = tiny_sr3(factor, resolution, channels=1 if resolution == 28 else 3).eval()
    C = model.sample_shape[0]
    assert model.low_shape == (C, resolution // factor, resolution // factor)
    first_conv = next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 2 * C  # x_t and the upsampled low-res image
    for p in model.net.parameters():  # an untrained but not-zero network, so the projection has work to do
        p.data.add_(torch.randn_like(p) * 0.05)
    low = torch.rand(2, *model.low_shape) * 2 - 1
    for consistency, sampler in (("final", "ddim"), ("every", "ddpm"), ("every", "dpmpp")):
        out = model.upscale(low, sampler, 4, generator=torch.Generator().manual_seed(0), consistency=consistency)
        assert out.shape == (2, C, resolution, resolution)
        assert (downsample(out, factor) - low).abs().max() < TOL and out.abs().max() <= 1.0
    raw = model.upscale(low, "ddim", 4, generator=torch.Generator().manual_seed(0), consistency="none")
    assert (downsample(raw, factor) - low).abs().max() > 1e-2  # the guarantee comes from the projection


def test_training_loss_falls_on_tiny_data():
    torch.manual_seed(0)
    splits = load_splits(DataConfig(name="shapes", size=256, resolution=16))
    model = tiny_sr3(2)
    x = torch.stack([splits.train[i]["image"] for i in range(64)])

    def held_out_loss() -> float:
        with torch.random.fork_rng():
            torch.manual_seed(123)
            with torch.no_grad():
                return sum(float(model.loss({"image": x})) for _ in range(4)) / 4

    before = held_out_loss()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(25):
        batch = x[torch.randint(0, 64, (16,))]
        loss = model.loss({"image": batch})
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_loss()
    assert before > 0.9  # the U-Net outputs 0 at initialisation: eps-MSE = 1
    assert after < 0.6 * before, (before, after)


def test_errors():
    model = tiny_sr3(2)
    with pytest.raises(ValueError, match="low-resolution input must be"):
        model.upscale(torch.zeros(1, 3, 16, 16), steps=2)
    with pytest.raises(ValueError, match="needs a sampler whose state is x_t"):
        model.upscale(torch.zeros(1, 3, 8, 8), "euler", 2, consistency="every")
    with pytest.raises(TwopathsError, match="upscales a given image"):
        model.sample(4)
    with pytest.raises(ValueError, match="needs cond"):
        model.model_output(torch.zeros(1, 3, 16, 16), torch.zeros(1))
    with pytest.raises(ConfigError, match="arch.factor"):
        tiny_sr3(3, 16)
