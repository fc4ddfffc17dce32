"""Moving Fashion: deterministic clips of the right shape, true trajectories that bounce, pixels that
sit where the trajectories say, registered as a dataset, and bad settings refused in one sentence."""

from __future__ import annotations

import pytest
import torch

from twopaths.config import DataConfig, RunConfig, validate
from twopaths.data.registry import DATASET_PRESETS, dataset_kind, inventory, load_splits
from twopaths.data.video import (ITEM_SIZE, MAX_SPEED, MIN_SPEED, TEST_CLIPS, VAL_CLIPS, bounce,
                                 downscale_items, make_moving_fashion, position_range, render_clips)
from twopaths.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def items():
    """40 made-up items in Fashion-MNIST's layout (uint8 (M, 1, 28, 28)): random pixels, blank top and bottom."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    x[..., :4, :] = 0  # margins, as real items have
    x[..., -4:, :] = 0
    return x, torch.arange(40) % 10


@pytest.fixture(scope="module")
def clips(items):
    return make_moving_fashion(*items, 300, frames=10, resolution=32, seed=3)


def test_shapes_dtypes_and_range(items):
    c = make_moving_fashion(*items, 20, frames=6, resolution=40, objects=2, seed=0)
    assert c.video.shape == (20, 6, 1, 40, 40) and c.video.dtype == torch.float32
    assert c.positions.shape == (20, 6, 2, 2) and c.velocities.shape == (20, 2, 2)
    assert c.object_labels.shape == (20, 2) and torch.equal(c.labels, c.object_labels[:, 0])
    assert float(c.video.min()) == -1.0 and float(c.video.max()) <= 1.0
    item = c[3]
    assert item["video"].shape == (6, 1, 40, 40) and item["label"].dtype == torch.int64
    batch = torch.utils.data.default_collate([c[i] for i in range(4)])
    assert batch["video"].shape == (4, 6, 1, 40, 40) and batch["label"].shape == (4,)


def test_same_seed_same_clips(items):
    a, b = (make_moving_fashion(*items, 30, seed=5) for _ in range(2))
    other = make_moving_fashion(*items, 30, seed=6)
    assert torch.equal(a.video, b.video) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, other.positions)


def test_trajectories_stay_inside_and_bounce(clips):
    lo, hi = position_range(32)
    p, v = clips.positions[:, :, 0].double(), clips.velocities[:, 0].double()  # (N, T, 2), (N, 2)
    assert (p >= lo - 1e-4).all() and (p <= hi + 1e-4).all()
    speed = v.norm(dim=-1)
    assert (speed >= MIN_SPEED - 1e-5).all() and (speed <= MAX_SPEED + 1e-5).all()
    # between two frames an axis either moves by exactly its speed, or hit a wall on the way
    step = p.diff(dim=1)  # (N, T - 1, 2)
    free = (step.abs() - v.abs()[:, None]).abs() < 1e-4
    before, after = p[:, :-1], p[:, 1:]
    reach = v.abs()[:, None]  # a bounce can only happen within one step's travel of a wall
    near_wall = (torch.minimum(before, after) - lo < reach) | (hi - torch.maximum(before, after) < reach)
    assert (free | near_wall).all() and (~free).any()
    assert (step.abs() <= v.abs()[:, None] + 1e-4).all()  # a bounce within a step shortens it
    # the velocity flips sign exactly at the bounces: the first step has the initial velocity's sign
    # and the sign changes at a step that did not move freely
    sign = torch.sign(step)
    assert (sign[:, 0] == torch.sign(v)).float().mean() > 0.95  # (a few bounce in the first step)
    flipped = sign[:, 1:] != sign[:, :-1]
    assert (~flipped | ~free[:, 1:] | ~free[:, :-1]).all()
    # the path is the analytic reflection of the free flight
    t = torch.arange(p.shape[1], dtype=torch.float64)[None, :, None]
    assert torch.allclose(bounce(p[:, :1] + v[:, None] * t, lo, hi), p, atol=1e-4)


def test_the_object_is_drawn_where_the_trajectory_says(items, clips):
    """The rendered frame's centre of mass is the recorded centre plus the item's own centre-of-mass
    offset within its box: the object is drawn at its sub-pixel position, not rounded."""
    sprites = downscale_items(items[0][clips.item_index[:, 0]]).double()  # (N, S, S), what was drawn
    ar = torch.arange(ITEM_SIZE, dtype=torch.float64) + 0.5 - ITEM_SIZE / 2  # pixel centres from the box centre
    mass = sprites.sum((1, 2))  # (N,)
    offset = torch.stack([(sprites.sum(1) * ar).sum(1), (sprites.sum(2) * ar).sum(1)], 1) / mass[:, None]
    frames = (clips.video[:, :, 0].double() + 1) / 2  # (N, T, R, R) intensities in [0, 1]
    grid = torch.arange(32, dtype=torch.float64) + 0.5
    m = frames.sum((2, 3))  # (N, T)
    com = torch.stack([(frames.sum(2) * grid).sum(-1), (frames.sum(3) * grid).sum(-1)], -1) / m[..., None]
    assert torch.allclose(m, mass[:, None].expand_as(m), rtol=1e-4)  # the whole item is drawn, nothing clipped
    expected = clips.positions[:, :, 0].double() + offset[:, None]  # (N, T, 2)
    assert (com - expected).norm(dim=-1).max() < 0.01  # exact up to float32: far within the 0.5 px


def test_two_objects_composite_by_maximum(items):
    c = make_moving_fashion(*items, 10, objects=2, seed=1)
    sprites = downscale_items(items[0][c.item_index.flatten()]).view(10, 2, ITEM_SIZE, ITEM_SIZE)
    alone = [render_clips(sprites[:, k:k + 1], c.positions[:, :, k:k + 1], 32) for k in range(2)]
    assert torch.equal(c.video, torch.maximum(*alone))
    assert torch.equal(c.object_labels, items[1][c.item_index])


def _validate(key: str, value: int) -> None:
    cfg = RunConfig(model="any")
    setattr(cfg.data, key, value)
    validate(cfg)


def test_bad_settings_raise_one_clear_error(items):
    with pytest.raises(ConfigError, match=r"'data.frames' must be in 2..64"):
        make_moving_fashion(*items, 5, frames=1)
    with pytest.raises(ConfigError, match=r"'data.objects' must be 1 or 2"):
        make_moving_fashion(*items, 5, objects=3)
    with pytest.raises(ConfigError, match=r"'data.resolution' must be at least 16"):
        make_moving_fashion(*items, 5, resolution=12)
    for key, value in (("frames", 1), ("frames", 65), ("objects", 0), ("objects", 3)):
        with pytest.raises(ConfigError, match=f"config key 'data.{key}' must be"):
            _validate(key, value)  # at config time, before any data is loaded
    with pytest.raises(DataError, match="Fashion-MNIST not found"):
        load_splits(DataConfig(name="moving-fashion", path="/nonexistent/fashion"))


def test_registered_as_video():
    assert dataset_kind("moving-fashion") == "video"
    assert DATASET_PRESETS["moving-fashion"] == {"data": {"size": 20_000}}
    row = next(r for r in inventory() if r.name == "moving-fashion")
    assert row.kind == "video" and "Tx1xRxR" in row.shapes


def test_splits_from_fashion_mnist():
    try:
        splits = load_splits(DataConfig(name="moving-fashion", size=50, frames=4, seed=2))
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not installed ({exc}); 'make test' installs it")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50, VAL_CLIPS, TEST_CLIPS)
    assert splits.train.video.shape == (50, 4, 1, 32, 32)
    meta = splits.meta
    assert (meta["frames"], meta["resolution"], meta["channels"], meta["objects"]) == (4, 32, 1, 1)
    assert meta["class_names"][0] == "T-shirt/top" and meta["item_size"] == ITEM_SIZE
    again = load_splits(DataConfig(name="moving-fashion", size=50, frames=4, seed=2))
    assert torch.equal(again.test.video, splits.test.video)
    assert not torch.equal(splits.val.positions[:50], splits.train.positions)
