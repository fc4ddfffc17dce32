"""Fashion-MNIST: where it is looked for, what the errors say, downloading from a local mirror,
and loading. Everything runs on tiny look-alike files built here; nothing touches the network,
and the real machine's Debian files and cache are hidden by the ``isolated`` fixture."""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from twopaths.data import images
from twopaths.data.images import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    download_fashion_mnist,
    fashion_mnist_candidates,
    find_fashion_mnist,
    load_fashion_mnist,
    summarize_fashion_mnist,
    write_idx,
)
from twopaths.errors import DataError


def make_fake(
    folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True, seed: int = 0
) -> dict:
    """Write the four Fashion-MNIST files with random content; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name if gz else name.removesuffix(".gz")), array)
    return arrays


def checksums_of(folder: Path) -> dict[str, str]:
    """SHA-256 of each file's decompressed content, the way the library checks them."""
    return {
        name: hashlib.sha256(gzip.decompress((folder / name).read_bytes())).hexdigest()
        for name in FASHION_MNIST_FILES
    }


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Point the Debian path and the cache into tmp_path and unset TWOPATHS_DATA."""
    debian, cache = tmp_path / "debian", tmp_path / "cache"
    monkeypatch.setattr(images, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("TWOPATHS_CACHE", str(cache))
    monkeypatch.delenv("TWOPATHS_DATA", raising=False)
    return {"tmp": tmp_path, "debian": debian, "cache": cache / "fashion-mnist"}


def test_constants():
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert set(images.FASHION_MNIST_SHA256) == set(FASHION_MNIST_FILES)


# ---------------------------------------------------------------------------- resolution order


def test_candidates_in_order(isolated, monkeypatch):
    data = isolated["tmp"] / "data"
    monkeypatch.setenv("TWOPATHS_DATA", str(data))
    explicit = isolated["tmp"] / "mine"
    assert fashion_mnist_candidates(explicit) == [
        explicit,
        explicit / "fashion-mnist",
        data / "fashion-mnist",
        data,
        isolated["debian"],
        isolated["cache"],
    ]
    assert fashion_mnist_candidates() == fashion_mnist_candidates(explicit)[2:]


def test_explicit_beats_twopaths_data(isolated, monkeypatch):
    data = isolated["tmp"] / "data"
    make_fake(data)
    make_fake(isolated["tmp"] / "mine")
    monkeypatch.setenv("TWOPATHS_DATA", str(data))
    assert find_fashion_mnist(isolated["tmp"] / "mine") == isolated["tmp"] / "mine"
    assert find_fashion_mnist(str(isolated["tmp"] / "mine")) == isolated["tmp"] / "mine"


def test_explicit_data_root_with_a_fashion_mnist_subfolder(isolated):
    make_fake(isolated["tmp"] / "root" / "fashion-mnist")
    assert (
        find_fashion_mnist(isolated["tmp"] / "root") == isolated["tmp"] / "root" / "fashion-mnist"
    )


def test_twopaths_data_beats_debian_and_its_subfolder_comes_first(isolated, monkeypatch):
    data = isolated["tmp"] / "data"
    make_fake(isolated["debian"])
    make_fake(data)
    monkeypatch.setenv("TWOPATHS_DATA", str(data))
    assert find_fashion_mnist() == data
    make_fake(data / "fashion-mnist")
    assert find_fashion_mnist() == data / "fashion-mnist"


def test_debian_beats_cache_and_cache_is_last(isolated):
    make_fake(isolated["cache"])
    assert find_fashion_mnist() == isolated["cache"]
    make_fake(isolated["debian"])
    assert find_fashion_mnist() == isolated["debian"]


def test_ungzipped_files_are_accepted(isolated):
    arrays = make_fake(isolated["debian"], gz=False)
    root = find_fashion_mnist()
    assert root == isolated["debian"]
    loaded = load_fashion_mnist(root)
    assert torch.equal(
        loaded["test"][0][:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"])
    )


def test_not_found_lists_every_place_and_the_fixes(isolated, monkeypatch):
    data = isolated["tmp"] / "data"
    monkeypatch.setenv("TWOPATHS_DATA", str(data))
    with pytest.raises(DataError) as info:
        find_fashion_mnist()
    message = str(info.value)
    for place in fashion_mnist_candidates():
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "twopaths data fetch fashion-mnist" in message
    assert "TWOPATHS_DATA" in message


def test_incomplete_folder_is_skipped_and_the_missing_file_named(isolated):
    make_fake(isolated["debian"])
    (isolated["debian"] / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\.gz"):
        find_fashion_mnist()
    make_fake(isolated["cache"])
    assert find_fashion_mnist() == isolated["cache"]


def test_explicit_path_without_the_files_fails_at_once(isolated):
    make_fake(isolated["debian"])  # would be found if the search fell through
    missing = isolated["tmp"] / "typo"
    with pytest.raises(DataError) as info:
        find_fashion_mnist(missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    assert str(isolated["debian"]) not in str(info.value)
    empty = isolated["tmp"] / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte.gz"):
        find_fashion_mnist(empty)


# ---------------------------------------------------------------------------- loading


def test_load_shapes_dtypes_and_values(isolated):
    arrays = make_fake(isolated["tmp"] / "fm", n_train=7, n_test=3)
    data = load_fashion_mnist(isolated["tmp"] / "fm")
    assert set(data) == {"train", "test"}
    train_x, train_y = data["train"]
    assert train_x.shape == (7, 1, 28, 28) and train_x.dtype == torch.uint8
    assert train_y.shape == (7,) and train_y.dtype == torch.int64
    assert data["test"][0].shape == (3, 1, 28, 28)
    assert torch.equal(train_x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]))
    assert torch.equal(train_y, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]).long())


def test_count_mismatch_is_an_error(isolated):
    folder = isolated["tmp"] / "fm"
    make_fake(folder, n_train=6)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_fashion_mnist(folder)
    assert "6 images" in str(info.value) and "5 labels" in str(info.value)


def test_labels_out_of_range_and_wrong_shapes(isolated):
    folder = isolated["tmp"] / "fm"
    make_fake(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10], dtype=np.uint8))
    with pytest.raises(DataError, match="0..9"):
        load_fashion_mnist(folder)
    make_fake(folder)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((4, 784), dtype=np.uint8))
    with pytest.raises(DataError, match=r"\(N, H, W\)"):
        load_fashion_mnist(folder)


def test_verify_rejects_files_that_are_not_the_official_data(isolated):
    folder = isolated["tmp"] / "fm"
    make_fake(folder)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_fashion_mnist(folder, verify=True)


def test_summary(isolated):
    make_fake(isolated["debian"], n_train=6, n_test=4)
    row = summarize_fashion_mnist()
    assert row.available and row.source == str(isolated["debian"])
    assert row.size == "10 images (6 train, 4 test)"
    assert row.shapes == "1x28x28, 10 classes"
    assert row.kind == "image" and row.name == "fashion-mnist"


def test_summary_when_missing_says_how_to_get_it(isolated):
    row = summarize_fashion_mnist()
    assert not row.available
    assert "apt-get install dataset-fashion-mnist" in row.source
    assert str(isolated["debian"]) in row.source


# ---------------------------------------------------------------------------- downloading


@pytest.fixture
def mirror(tmp_path):
    """A folder of tiny IDX .gz files served through file:// URLs, and their checksums."""
    folder = tmp_path / "mirror"
    arrays = make_fake(folder, seed=3)
    return {"url": folder.as_uri() + "/", "checksums": checksums_of(folder), "arrays": arrays}


def test_download_from_a_file_mirror_into_the_cache(isolated, mirror):
    dest = download_fashion_mnist(
        mirrors=[mirror["url"]], checksums=mirror["checksums"], progress=False
    )
    assert dest == isolated["cache"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        FASHION_MNIST_FILES
    )  # no temp files left
    assert find_fashion_mnist() == dest
    loaded = load_fashion_mnist(dest)
    assert torch.equal(
        loaded["train"][0][:, 0], torch.from_numpy(mirror["arrays"]["train-images-idx3-ubyte.gz"])
    )


def test_download_falls_back_to_the_next_mirror(isolated, mirror):
    dead = (isolated["tmp"] / "dead").as_uri() + "/"
    dest = download_fashion_mnist(
        isolated["tmp"] / "dl",
        mirrors=[dead, mirror["url"]],
        checksums=mirror["checksums"],
        progress=False,
    )
    assert sorted(p.name for p in dest.iterdir()) == sorted(FASHION_MNIST_FILES)


def test_files_already_downloaded_and_verified_are_kept(isolated, mirror):
    dest = isolated["tmp"] / "dl"
    download_fashion_mnist(
        dest, mirrors=[mirror["url"]], checksums=mirror["checksums"], progress=False
    )
    dead = (isolated["tmp"] / "dead").as_uri() + "/"
    assert (
        download_fashion_mnist(dest, mirrors=[dead], checksums=mirror["checksums"], progress=False)
        == dest
    )


def test_checksum_failure_leaves_no_file_behind(isolated, mirror):
    wrong = dict(mirror["checksums"], **{"train-images-idx3-ubyte.gz": "0" * 64})
    dest = isolated["tmp"] / "dl"
    with pytest.raises(DataError) as info:
        download_fashion_mnist(dest, mirrors=[mirror["url"]], checksums=wrong, progress=False)
    assert "train-images-idx3-ubyte.gz" in str(info.value) and "0" * 64 in str(info.value)
    assert list(dest.iterdir()) == []  # neither the file nor its temporary download


def test_all_mirrors_failing_lists_the_urls_and_the_alternatives(isolated):
    dead = [(isolated["tmp"] / name).as_uri() + "/" for name in ("a", "b")]
    with pytest.raises(DataError) as info:
        download_fashion_mnist(isolated["tmp"] / "dl", mirrors=dead, progress=False)
    message = str(info.value)
    for url in dead:
        assert url + "train-images-idx3-ubyte.gz" in message
    assert "apt-get install dataset-fashion-mnist" in message and "TWOPATHS_DATA" in message
    assert list((isolated["tmp"] / "dl").iterdir()) == []


def test_default_mirrors_are_the_official_ones():
    assert (
        images.FASHION_MNIST_MIRRORS[0]
        == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    )
    assert (
        "raw.githubusercontent.com/zalandoresearch/fashion-mnist" in images.FASHION_MNIST_MIRRORS[1]
    )


# ---------------------------------------------------------------------------- the real files


@pytest.mark.skipif(
    not all((Path("/usr/share/datasets/fashion-mnist") / n).is_file() for n in FASHION_MNIST_FILES),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_debian_files():
    start = time.perf_counter()
    data = load_fashion_mnist(Path("/usr/share/datasets/fashion-mnist"), verify=True)
    elapsed = time.perf_counter() - start
    assert data["train"][0].shape == (60000, 1, 28, 28)
    assert data["test"][0].shape == (10000, 1, 28, 28)
    assert data["train"][1].dtype == torch.int64
    assert torch.bincount(data["train"][1]).tolist() == [6000] * 10
    assert torch.bincount(data["test"][1]).tolist() == [1000] * 10
    assert elapsed < 10  # ~0.5 s; generous so a busy machine does not fail the test
