"""Folders of image files, the in-memory ImageDataset, and the folder summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from twopaths.data.images import ImageDataset, load_image_folder, summarize_image_folder
from twopaths.errors import ConfigError, DataError


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def solid(h: int, w: int, rgb=(200, 30, 30)) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


@pytest.fixture
def two_classes(tmp_path):
    root = tmp_path / "pets"
    for i in range(3):
        save(root / "cats" / f"c{i}.png", solid(30, 40, (200, 30, 30)))
    save(root / "dogs" / "d0.jpg", solid(20, 20, (30, 30, 200)), quality=95)
    save(root / "dogs" / "nested" / "d1.bmp", solid(12, 12, (30, 30, 200)))
    (root / "dogs" / "notes.txt").write_text("not an image")
    save(root / "dogs" / ".hidden.png", solid(5, 5))
    (root / "empty-folder").mkdir()
    return root


def test_subfolders_are_classes(two_classes):
    images, labels, names = load_image_folder(two_classes, resolution=16, channels=3)
    assert images.shape == (5, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1] and labels.dtype == torch.int64
    assert names == ["cats", "dogs"]
    assert (images[:3, 0] > 190).all() and (images[:3, 2] < 40).all()  # cats are red
    assert (images[3:, 2] > 190).all()  # dogs are blue


def test_greyscale(two_classes):
    images, _, _ = load_image_folder(two_classes, resolution=8, channels=1)
    assert images.shape == (5, 1, 8, 8)
    red_luma = round(0.299 * 200 + 0.587 * 30 + 0.114 * 30)
    assert (images[0] - red_luma).abs().max() <= 1


def test_centre_crop_then_resize(tmp_path):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:20] = (0, 255, 0)
    wide[:, 20:] = (0, 0, 255)
    save(tmp_path / "one" / "wide.png", wide)
    images, labels, names = load_image_folder(tmp_path / "one", resolution=4, channels=3)
    assert names == ["one"] and labels.tolist() == [0]  # no subfolders: one class, the folder
    assert images.shape == (1, 3, 4, 4)
    assert torch.equal(
        images[0].flatten(1).unique(dim=1), torch.tensor([[0], [255], [0]], dtype=torch.uint8)
    )


def test_upscaling_and_gradients_survive_resizing(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 8).astype(np.uint8), (8, 1))
    save(tmp_path / "g" / "ramp.png", ramp)  # mode L
    images, _, _ = load_image_folder(tmp_path / "g", resolution=32, channels=3)
    assert images.shape == (1, 3, 32, 32)
    row = images[0, 0, 16].float()
    assert row[0] < 30 and row[-1] > 225 and (row[1:] - row[:-1] >= -3).all()  # still a ramp
    assert torch.equal(images[0, 0], images[0, 1])  # grey stays grey in RGB


def test_transparency_is_composited_on_black_and_webp_reads(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, 4:, 3] = 255  # right half opaque white, left half transparent white
    save(tmp_path / "t" / "a.png", rgba)
    save(tmp_path / "t" / "b.webp", solid(8, 8, (0, 200, 0)), lossless=True)
    images, _, _ = load_image_folder(tmp_path / "t", resolution=8, channels=3)
    assert (images[0, :, :, :4] == 0).all() and (images[0, :, :, 4:] == 255).all()
    assert (images[1, 1] == 200).all()


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}.*does not exist"):
        load_image_folder(tmp_path / "nope", 16, 3)


def test_a_file_is_not_a_folder(tmp_path):
    path = save(tmp_path / "x.png", solid(4, 4))
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(path, 16, 3)


def test_empty_folder_says_what_was_searched(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path / "empty", 16, 3)
    message = str(info.value)
    assert str(tmp_path / "empty") in message and ".png" in message and ".jpeg" in message


def test_corrupt_image_names_the_file(two_classes):
    bad = two_classes / "dogs" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError) as info:
        load_image_folder(two_classes, 16, 3)
    assert str(bad) in str(info.value)


def test_bad_arguments(two_classes):
    with pytest.raises(ConfigError, match="channels"):
        load_image_folder(two_classes, 16, 2)
    with pytest.raises(ConfigError, match="resolution"):
        load_image_folder(two_classes, 0, 3)


def test_summary(two_classes, tmp_path):
    row = summarize_image_folder(two_classes)
    assert row.available and row.name == "pets" and row.kind == "image"
    assert row.size == "5 images (2 to 3 per class)"
    assert row.shapes.endswith("2 classes")
    assert (
        summarize_image_folder(two_classes, resolution=16, channels=1).shapes
        == "1x16x16, 2 classes"
    )
    missing = summarize_image_folder(tmp_path / "nope")
    assert not missing.available and "does not exist" in missing.source


def test_image_dataset_items_and_subset():
    images = (
        torch.tensor([0, 255, 128], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 2, 2).clone()
    )
    ds = ImageDataset(
        images, torch.tensor([2, 0, 1]), captions=["a", "b", "c"], class_names=["x", "y", "z"]
    )
    assert len(ds) == 3 and ds.channels == 1 and ds.resolution == (2, 2)
    item = ds[1]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 2, 2)
    assert torch.equal(ds[0]["image"], torch.full((1, 2, 2), -1.0)) and torch.equal(
        item["image"], torch.ones(1, 2, 2)
    )
    assert (
        item["label"].dtype == torch.int64 and item["label"].shape == () and item["caption"] == "b"
    )
    assert ds.images[1].max() == 255  # items are converted copies, the store is untouched
    sub = ds.subset([2, 0])
    assert len(sub) == 2 and sub.captions == ["c", "a"] and sub.labels.tolist() == [1, 2]
    assert sub.class_names == ["x", "y", "z"]
    no_captions = ImageDataset(images, torch.zeros(3, dtype=torch.int64))
    assert "caption" not in no_captions[0]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 1, 2, 2) and batch["caption"] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        ImageDataset(images.float(), torch.zeros(3))
    with pytest.raises(ValueError):
        ImageDataset(images, torch.zeros(2))
