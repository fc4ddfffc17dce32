"""Procedural shapes: deterministic, well-formed, and the captions are true of the pixels."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from twopaths.data.shapes import (
    COLOUR_NAMES,
    COLOUR_RGB,
    RELATIONS,
    SHAPE_NAMES,
    SIZE_FRACTIONS,
    SIZE_NAMES,
    make_shapes,
)
from twopaths.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return make_shapes(600, resolution=32, seed=0)


def test_deterministic_by_seed():
    a, b, c = make_shapes(50, seed=7), make_shapes(50, seed=7), make_shapes(50, seed=8)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("resolution", [16, 32, 48])
def test_shapes_and_dtypes(resolution):
    d = make_shapes(40, resolution=resolution, seed=1)
    n, m = 40, 2
    assert d.images.shape == (n, 3, resolution, resolution) and d.images.dtype == torch.uint8
    assert d.labels.shape == (n,) and d.labels.dtype == torch.int64
    assert len(d.captions) == n and len(d) == n
    for field in (d.shape, d.colour, d.size):
        assert field.shape == (n, m) and field.dtype == torch.int64
    assert d.x.shape == (n, m) and d.x.dtype == torch.float32
    assert torch.equal(d.labels, d.shape[:, 0])
    assert set(d.n_objects.tolist()) <= {1, 2}


def test_absent_slots_are_marked(data):
    one = data.n_objects == 1
    assert one.any() and (~one).any()
    assert (data.shape[one, 1] == -1).all() and (data.colour[one, 1] == -1).all()
    assert torch.isnan(data.x[one, 1]).all() and (data.relation[one] == -1).all()
    assert (data.shape[~one] >= 0).all() and not torch.isnan(data.x[~one]).any()
    assert (data.relation[~one] >= 0).all()


def test_one_or_two_objects_uniformly_and_max_objects_1(data):
    assert abs((data.n_objects == 2).float().mean().item() - 0.5) < 0.1
    single = make_shapes(30, max_objects=1, seed=2)
    assert (single.n_objects == 1).all() and single.shape.shape == (30, 1)
    assert not any(r in c for c in single.captions for r in RELATIONS)
    with pytest.raises(ConfigError):
        make_shapes(5, max_objects=3)
    with pytest.raises(ConfigError):
        make_shapes(5, resolution=4)


def test_captions_are_true_of_the_attributes(data):
    for i, caption in enumerate(data.captions):
        phrases = [
            " ".join(
                ("a", SIZE_NAMES[data.size[i, j]], COLOUR_NAMES[data.colour[i, j]])
                + (SHAPE_NAMES[data.shape[i, j]],)
            )
            for j in range(int(data.n_objects[i]))
        ]
        if len(phrases) == 1:
            assert caption == phrases[0]
            continue
        # The relation recomputed from the centres along the dominant axis.
        dx = (data.x[i, 1] - data.x[i, 0]).item()
        dy = (data.y[i, 1] - data.y[i, 0]).item()
        if abs(dx) >= abs(dy):
            relation = "left of" if dx > 0 else "right of"
        else:
            relation = "above" if dy > 0 else "below"
        assert caption == f"{phrases[0]} {relation} {phrases[1]}"
        assert RELATIONS[data.relation[i]] == relation
        # Stronger than centres: the two boxes do not even overlap along that axis.
        half = [SIZE_FRACTIONS[data.size[i, j]] for j in (0, 1)]
        assert max(abs(dx), abs(dy)) >= sum(half)
        assert data.colour[i, 0] != data.colour[i, 1]


def test_every_relation_occurs(data):
    two = data.relation[data.relation >= 0]
    assert set(two.tolist()) == {0, 1, 2, 3}


def test_object_colour_dominates_its_centre(data):
    images = data.images.permute(0, 2, 3, 1).float().numpy()  # (N, R, R, 3)
    palette = np.concatenate([COLOUR_RGB, np.zeros((1, 3), np.float32)])  # + black background
    res = images.shape[1]
    for i in range(len(data)):
        for j in range(int(data.n_objects[i])):
            row, col = int(data.y[i, j] * res), int(data.x[i, j] * res)
            pixel = images[i, row, col]
            nearest = np.linalg.norm(palette - pixel, axis=1).argmin()
            assert nearest == data.colour[i, j], (i, j, data.captions[i], pixel)


def test_pixels_outside_the_objects_are_black(data):
    res = data.images.shape[-1]
    coords = (torch.arange(res) + 0.5) / res  # pixel centres, image-relative
    for i in range(0, len(data), 7):
        outside = torch.ones(res, res, dtype=torch.bool)
        for j in range(int(data.n_objects[i])):
            h = SIZE_FRACTIONS[data.size[i, j]] + 1.0 / res  # the box, plus one pixel
            in_y = (coords - data.y[i, j]).abs() <= h
            in_x = (coords - data.x[i, j]).abs() <= h
            outside &= ~(in_y[:, None] & in_x[None, :])
        assert (data.images[i][:, outside] == 0).all()


def test_areas_match_the_geometry_and_edges_are_antialiased():
    d = make_shapes(300, resolution=64, seed=3, max_objects=1)
    res = 64
    # Ink = sum over pixels of intensity / colour intensity = covered area in pixels.
    ink = d.images.float().sum(dim=(1, 2, 3)) / torch.from_numpy(COLOUR_RGB)[d.colour[:, 0]].sum(1)
    h = torch.tensor(SIZE_FRACTIONS)[d.size[:, 0]] * res
    area_per_h2 = {0: np.pi, 1: (2 * 0.8) ** 2, 2: 0.5 * 2.0 * 1.8}  # circle, square, triangle
    expected = torch.tensor([area_per_h2[int(s)] for s in d.shape[:, 0]]) * h**2
    assert torch.allclose(ink, expected, rtol=0.05)
    values = d.images[d.images > 0]
    assert ((values > 20) & (values < 200)).any()  # partially covered edge pixels exist


def test_classes_and_attributes_roughly_balanced():
    d = make_shapes(3000, seed=4)
    for counts, k in (
        (torch.bincount(d.labels), len(SHAPE_NAMES)),
        (torch.bincount(d.colour[:, 0]), len(COLOUR_NAMES)),
        (torch.bincount(d.size[:, 0]), len(SIZE_NAMES)),
    ):
        assert len(counts) == k
        assert (counts.float() / 3000 - 1 / k).abs().max() < 0.3 / k


def test_to_dataset():
    ds = make_shapes(8, seed=0).to_dataset()
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert isinstance(item["caption"], str) and ds.class_names == list(SHAPE_NAMES)


def test_ten_thousand_images_are_fast():
    start = time.perf_counter()
    d = make_shapes(10_000, resolution=32, seed=0)
    assert len(d) == 10_000
    assert time.perf_counter() - start < 5.0
