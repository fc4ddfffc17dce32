"""RePaint inpainting: the resampling walk, known pixels kept exactly, the mask convention, and, with the
exact denoiser of a dataset of one or two fixed images, the hole filled with the right image."""

import pytest
import torch
from torch import nn

from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion
from twopaths.paradigms.schedule import gather
from twopaths.restore.inpaint import inpaint, network_evaluations, repaint_levels

SHAPE = (1, 8, 8)


class ExactDenoiser(nn.Module):
    """The optimal eps-predictor for data spread evenly over a few fixed images x_k: with a = sqrt(abar_t),
    s = sqrt(1 - abar_t), E[x_0 | x_t] = sum_k w_k x_k, w = softmax_k(-|x_t - a x_k|^2 / (2 s^2)), and
    eps = (x_t - a E[x_0 | x_t]) / s (Tweedie's formula)."""

    def __init__(self, images: torch.Tensor, alphas_cumprod: torch.Tensor):
        super().__init__()
        self.register_buffer("images", images)  # (K, C, H, W)
        self.register_buffer("abar", alphas_cumprod.float())
        self.anchor = nn.Parameter(torch.zeros(()))  # so the paradigm can find a device

    def forward(self, x_t, t, y=None):
        ab = gather(self.abar, t.round().long(), x_t.ndim)  # (B, 1, 1, 1)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        d2 = ((x_t[:, None] - a[:, None] * self.images[None]) ** 2).flatten(2).sum(-1)  # (B, K)
        w = torch.softmax(-d2 / (2 * s.flatten()[:, None] ** 2), dim=1)
        x0 = torch.einsum("bk,kchw->bchw", w, self.images)
        return (x_t - a * x0) / s


def exact_model(images: torch.Tensor, T: int = 100) -> GaussianDiffusion:
    cfg = GaussianConfig(timesteps=T)
    model = GaussianDiffusion(nn.Identity(), cfg, SHAPE)
    model.net = ExactDenoiser(images, model.schedule.alphas_cumprod)
    return model.eval()


class RandomConv(nn.Module):
    """A network that is no denoiser at all (random conv weights): inpainting must still keep the known pixels."""

    def __init__(self, channels: int = 1, num_classes: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.embed = nn.Embedding(num_classes + 1, channels) if num_classes else None

    def forward(self, x_t, t, y=None):
        out = self.conv(x_t) + (t / 100)[:, None, None, None]
        if self.embed is not None:
            y = torch.full_like(t, self.embed.num_embeddings - 1).long() if y is None else y
            out = out + self.embed(y)[:, :, None, None]
        return out


def two_images():
    g = torch.Generator().manual_seed(0)
    return torch.rand((2, *SHAPE), generator=g) * 2 - 1


def box_keep(batch: int = 1) -> torch.Tensor:
    keep = torch.ones(batch, 1, 8, 8)
    keep[:, :, 2:6, 1:7] = 0  # a 4 x 6 hole
    return keep


def test_the_resampling_walk():
    assert repaint_levels(5) == [0, 1, 2, 3, 4, 5]  # no resampling: plain sampling
    assert repaint_levels(4, jump=2, resample=2) == [0, 1, 2, 0, 1, 2, 3, 2, 3, 4]
    assert repaint_levels(3, jump=1, resample=3) == [0, 1, 0, 1, 0, 1, 2, 1, 2, 1, 2, 3]
    assert repaint_levels(1, jump=4, resample=9) == [0, 1]  # the step onto clean data is never resampled
    for steps, jump, r in ((10, 3, 4), (7, 10, 2), (20, 1, 5)):
        levels = repaint_levels(steps, jump, r)
        moves = list(zip(levels[:-1], levels[1:]))
        assert levels[0] == 0 and levels[-1] == steps and min(levels) >= 0
        assert all(b == a + 1 or a - jump <= b < a for a, b in moves)  # one step down, or at most j up
        assert levels.count(steps) == 1 and (steps - 1, steps) == moves[-1]
        assert network_evaluations(steps, jump, r) == (steps - 1) * r + 1
    with pytest.raises(ValueError):
        repaint_levels(4, jump=0)


@pytest.mark.parametrize("sampler, steps, resample, jump", [("ddpm", 20, 1, 1), ("ddpm", 10, 3, 2),
                                                            ("ddim", 8, 2, 3), ("ddpm", 100, 1, 1)])
def test_known_pixels_are_unchanged_and_shapes(sampler, steps, resample, jump):
    torch.manual_seed(0)
    model = GaussianDiffusion(RandomConv(3), GaussianConfig(timesteps=100), (3, 8, 8)).eval()
    image = torch.rand(4, 3, 8, 8) * 2 - 1
    keep = box_keep(4)
    calls = []
    out = inpaint(model, image, keep, steps, resample, jump, sampler, generator=torch.Generator().manual_seed(1),
                  callback=lambda i, t, x, x0: calls.append(i))
    assert out.shape == image.shape and out.dtype == torch.float32
    known = keep.expand_as(image).bool()
    assert torch.allclose(out[known], image[known], atol=1e-6, rtol=0)
    assert (out[~known] - image[~known]).abs().mean() > 0.05  # the hole was generated, not copied
    assert out.abs().max() <= 1.0 + 1e-6
    assert calls == list(range(network_evaluations(steps, jump, resample)))  # one call per network evaluation


def test_class_conditional_and_reproducible():
    torch.manual_seed(0)
    model = GaussianDiffusion(RandomConv(1, num_classes=3), GaussianConfig(timesteps=50), SHAPE, num_classes=3).eval()
    image, keep = two_images()[:1].expand(2, -1, -1, -1), box_keep()
    run = lambda seed, y, w=1.0: inpaint(model, image, keep, 10, 2, 2, y=y, guidance=w,  # noqa: E731
                                         generator=torch.Generator().manual_seed(seed))
    a, b = run(3, torch.tensor([0, 2]), 2.0), run(3, torch.tensor([0, 2]), 2.0)
    assert torch.equal(a, b)  # same seed, same result
    assert not torch.equal(a, run(4, torch.tensor([0, 2]), 2.0))
    assert not torch.allclose(a[0], a[1])  # the class changes the fill
    assert torch.allclose(a[keep.expand_as(a).bool()], image[keep.expand_as(a).bool()], atol=1e-6)


def test_one_image_dataset_is_recovered_in_the_hole():
    x = two_images()[:1]
    model = exact_model(x)
    image = x.clone()
    keep = box_keep()
    image[keep.expand_as(image) == 0] = 0  # nothing of the hole is given
    out = inpaint(model, image, keep, 50, 2, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-4)


@pytest.mark.parametrize("resample, jump", [(1, 1), (3, 5)])
def test_the_known_region_decides_what_fills_the_hole(resample, jump):
    """Data = two images A, B. Unconditional samples are either; inpainting A's known pixels must give A's hole
    (and B's, B's). An inverted mask convention or a wrong mixing of the halves fails this."""
    ab = two_images()
    model = exact_model(ab)
    keep = box_keep(8)
    for k in (0, 1):
        image = ab[k:k + 1].expand(8, -1, -1, -1).clone()
        image[keep.expand_as(image) == 0] = 0.0
        out = inpaint(model, image, keep, 50, resample, jump, generator=torch.Generator().manual_seed(k))
        assert torch.allclose(out, ab[k:k + 1].expand_as(out), atol=1e-3), (k, (out - ab[k]).abs().max())
    # without known pixels the same model draws both images: the fill above was the known region's doing
    free = inpaint(model, torch.zeros(16, *SHAPE), torch.zeros(1, 1, 8, 8), 50,
                   generator=torch.Generator().manual_seed(0))
    nearest = torch.cdist(free.flatten(1), ab.flatten(1)).argmin(1)
    assert set(nearest.tolist()) == {0, 1}


def test_mask_convention_one_keeps_zero_fills():
    ab = two_images()
    model = exact_model(ab)
    image = ab[:1].expand(2, -1, -1, -1)
    out = inpaint(model, image, torch.ones(1, 8, 8), 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, image)  # all kept: the image itself
    half = torch.ones(1, 1, 8, 8)
    half[..., 4:] = 0  # fill the right half only
    out = inpaint(model, ab[1:].clone(), half, 30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[..., :4], ab[1:, ..., :4]) and torch.allclose(out[..., 4:], ab[1:, ..., 4:], atol=1e-3)


def test_bad_inputs():
    model = exact_model(two_images())
    image = torch.zeros(1, *SHAPE)
    with pytest.raises(ValueError, match="without history"):
        inpaint(model, image, box_keep(), 5, sampler="dpmpp")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inpaint(model, image, box_keep() * 2, 5)
    with pytest.raises(ValueError, match="does not broadcast"):
        inpaint(model, image, torch.ones(1, 1, 4, 4), 5)
    with pytest.raises(ValueError, match="image must be"):
        inpaint(model, torch.zeros(1, 3, 8, 8), box_keep(), 5)
