"""2-D Gaussian mixtures: the modes are the published ones and the samples follow them."""

from __future__ import annotations

import math

import pytest
import torch

from twopaths.data.toy import MIXTURES, PointDataset, mixture_modes, sample_mixture
from twopaths.errors import ConfigError


def test_ring8_modes():
    means, std = mixture_modes("ring8")
    assert means.shape == (8, 2) and means.dtype == torch.float32 and std == 0.02
    torch.testing.assert_close(means.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(means[:, 1], means[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(
        angles.sort().values, torch.arange(8) * (2 * math.pi / 8), atol=1e-5, rtol=0
    )


def test_grid25_modes():
    means, std = mixture_modes("grid25")
    assert means.shape == (25, 2) and std == 0.05
    expected = {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(m) for m in means.tolist()} == expected


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_samples_match_the_spec(name):
    means, std = mixture_modes(name)
    n = 40_000
    x, label = sample_mixture(name, n, seed=1)
    assert x.shape == (n, 2) and x.dtype == torch.float32
    assert label.shape == (n,) and label.dtype == torch.int64
    counts = torch.bincount(label, minlength=len(means))
    expected = n / len(means)
    assert (counts - expected).abs().max() < 5 * math.sqrt(expected)  # uniform weights
    for k in range(len(means)):
        points = x[label == k]
        # The sample mean is within 5 standard errors; the sample std within 10 %.
        assert (points.mean(0) - means[k]).abs().max() < 5 * std / math.sqrt(len(points))
        assert torch.allclose(points.std(0), torch.full((2,), std), rtol=0.1)


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_label_is_the_nearest_mode(name):
    means, _ = mixture_modes(name)
    x, label = sample_mixture(name, 5000, seed=2)
    assert torch.equal(torch.cdist(x, means).argmin(dim=1), label)


def test_deterministic_by_seed():
    a, la = sample_mixture("ring8", 100, seed=5)
    b, lb = sample_mixture("ring8", 100, seed=5)
    c, _ = sample_mixture("ring8", 100, seed=6)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)


def test_unknown_mixture_names_the_known_ones():
    with pytest.raises(ConfigError, match="grid25.*ring8"):
        sample_mixture("ring9", 10, seed=0)


def test_point_dataset_items():
    ds = PointDataset.from_mixture("grid25", 10, seed=0)
    assert len(ds) == 10
    item = ds[3]
    assert set(item) == {"x", "label"}
    assert item["x"].shape == (2,) and item["x"].dtype == torch.float32
    assert item["label"].shape == () and item["label"].dtype == torch.int64
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 2) and batch["label"].shape == (4,)
