"""Image data: the IDX format, Fashion-MNIST (found locally or downloaded with a checksum), and
folders of ordinary image files.

Everything here returns images as ``uint8`` tensors ``(N, C, H, W)``: that is how they are
stored on disk, it is 4x smaller than float32, and :class:`ImageDataset` converts one item at a
time to the project's item convention (``float32`` in ``[-1, 1]``, see :mod:`twopaths.data.base`).

Fashion-MNIST is resolved offline first (an explicit path, ``TWOPATHS_DATA``, the Debian package
``dataset-fashion-mnist``, the download cache) and only downloaded on request
(:func:`download_fashion_mnist`), never implicitly: a training run should not start pulling
30 MB from the internet because a path was mistyped.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from twopaths.data.base import DEBIAN_FASHION_MNIST, DatasetSummary, cache_dir, data_root, read_bytes
from twopaths.errors import ConfigError, DataError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_SHA256",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "download_fashion_mnist",
    "fashion_mnist_candidates",
    "find_fashion_mnist",
    "idx_header",
    "load_fashion_mnist",
    "load_image_folder",
    "read_idx",
    "summarize_fashion_mnist",
    "summarize_image_folder",
    "write_idx",
]

# --------------------------------------------------------------------------------------------
# IDX: the format of the MNIST family (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS").
#
#   bytes 0-1   0x00 0x00
#   byte  2     element type code (below)
#   byte  3     number of dimensions d
#   then        d big-endian uint32 sizes
#   then        the elements, big-endian, C order
# --------------------------------------------------------------------------------------------

_IDX_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_IDX_CODE: dict[tuple[str, int], int] = {
    (dtype.kind, dtype.itemsize): code for code, dtype in _IDX_CODE_TO_DTYPE.items()
}
_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip_path(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _read_maybe_gzipped(path: Path) -> bytes:
    """The file's content, gunzipped when it is a ``.gz`` file (or starts with the gzip magic).

    Sniffing the magic too means a gzipped file that lost its ``.gz`` suffix still reads; the
    reverse (a ``.gz`` name on plain content) is reported, since it usually means a broken
    download rather than a naming choice.
    """
    raw = read_bytes(path, "an IDX file")
    if _is_gzip_path(path) or raw[:2] == _GZIP_MAGIC:
        if raw[:2] != _GZIP_MAGIC:
            raise DataError(
                f"{path}: not a valid gzip file (the name ends in .gz but the content does not "
                "start with the gzip signature); the file is probably a broken download"
            )
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: not a valid gzip file ({exc}); the file is probably truncated or "
                "corrupt, delete it and fetch it again"
            ) from None
    return raw


def _parse_idx_header(head: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate an IDX header; return (big-endian dtype, shape, header length in bytes)."""
    if len(head) < 4:
        raise DataError(f"{path}: only {len(head)} bytes, too short to be an IDX file")
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{path}: not an IDX file (first bytes are 0x{head[0]:02x} 0x{head[1]:02x}, "
            "expected 0x00 0x00)"
        )
    code, ndim = head[2], head[3]
    if code not in _IDX_CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_CODE_TO_DTYPE)
        raise DataError(f"{path}: unknown IDX element type 0x{code:02X} (known: {known})")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_len} header bytes, "
            f"the file has {len(head)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return _IDX_CODE_TO_DTYPE[code], shape, header_len


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    dtype, shape, header_len = _parse_idx_header(data, path)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise DataError(
            f"{path}: IDX file is {problem}: header says shape {shape} of {dtype.name} = "
            f"{expected:,} data bytes, found {actual:,}"
        )
    # frombuffer is a zero-copy read-only view; astype gives a writable array in native byte
    # order (torch.from_numpy refuses non-native byte order and warns on read-only arrays).
    return (
        np.frombuffer(data, dtype=dtype, offset=header_len)
        .reshape(shape)
        .astype(dtype.newbyteorder("="), copy=True)
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gunzipping ``.gz`` transparently) into a native-byte-order array.

    Raises :class:`DataError` naming the file when it is missing, is not valid gzip, has a bad
    magic number or element type, or holds a different number of bytes than its header says.
    """
    path = Path(path)
    return _parse_idx(_read_maybe_gzipped(path), path)


def idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and shape of an IDX file, reading only its first bytes.

    Used by summaries, which must not decompress 26 MB to print one line.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            is_gz = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if is_gz or _is_gzip_path(path) else raw
            head = stream.read(4)
            if len(head) == 4:
                head += stream.read(4 * head[3])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the IDX header ({exc})") from None
    dtype, shape, _ = _parse_idx_header(head, path)
    return dtype.newbyteorder("="), shape


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``. Returns ``path``.

    The inverse of :func:`read_idx`; tests use it to build small Fashion-MNIST look-alikes.
    Supported dtypes: uint8, int8, int16, int32, float32, float64 (what IDX can describe).
    """
    path = Path(path)
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    code = _KIND_SIZE_TO_IDX_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, float32 or "
            "float64"
        )
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX cannot store shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_IDX_CODE_TO_DTYPE[code]).tobytes()
    if _is_gzip_path(path):
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same array, same bytes
    path.write_bytes(payload)
    return path


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist)
# --------------------------------------------------------------------------------------------

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

FASHION_MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# split -> (images file, labels file)
_SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# SHA-256 of the *decompressed* content, keyed by file name. Hashing the IDX bytes rather than
# the .gz makes the check robust to re-compression: Debian's .gz files differ byte-wise from
# upstream's but decompress to identical data.
FASHION_MNIST_SHA256: dict[str, str] = dict(
    zip(
        FASHION_MNIST_FILES,
        (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",  # train-images
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",  # train-labels
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",  # t10k-images
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",  # t10k-labels
        ),
        strict=True,
    )
)

FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)

_HOW_TO_GET_FASHION_MNIST = (
    "To get it, do one of:\n"
    "  - install the Debian package: apt-get install dataset-fashion-mnist\n"
    "  - download it (about 30 MB, checksum-verified): twopaths data fetch fashion-mnist\n"
    "  - put the four IDX files ({files}) in a folder and set TWOPATHS_DATA to it, or pass its "
    "path"
).format(files=", ".join(FASHION_MNIST_FILES))


def _locate(folder: Path, name: str) -> Path | None:
    """``folder/name``, or its un-gzipped twin ``folder/name`` minus ``.gz``, if either exists."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_files(folder: Path) -> list[str]:
    return [name for name in FASHION_MNIST_FILES if _locate(folder, name) is None]


def _describe_place(folder: Path) -> str:
    """Why ``folder`` does not hold Fashion-MNIST, for error messages."""
    if not folder.exists():
        return f"{folder} (does not exist)"
    if not folder.is_dir():
        return f"{folder} (not a folder)"
    return f"{folder} (missing {', '.join(_missing_files(folder))})"


def fashion_mnist_candidates(explicit: str | Path | None = None) -> list[Path]:
    """The folders searched for Fashion-MNIST, in order, without duplicates.

    1. ``explicit`` (and ``explicit/fashion-mnist``, so a data root works as well as the folder);
    2. ``$TWOPATHS_DATA/fashion-mnist``, then ``$TWOPATHS_DATA`` itself;
    3. the Debian package's folder (``/usr/share/datasets/fashion-mnist``);
    4. the download cache, ``cache_dir()/fashion-mnist``.
    """
    places: list[Path] = []
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        places += [explicit, explicit / "fashion-mnist"]
    root = data_root()
    if root is not None:
        places += [root / "fashion-mnist", root]
    # Module globals, looked up at call time, so tests can monkeypatch them.
    places += [DEBIAN_FASHION_MNIST, cache_dir() / "fashion-mnist"]
    unique: list[Path] = []
    for place in places:
        if place not in unique:
            unique.append(place)
    return unique


def find_fashion_mnist(explicit: str | Path | None = None) -> Path:
    """The first folder of :func:`fashion_mnist_candidates` that holds all four files.

    An explicit path that does not hold the files is an error straight away: silently using
    other data than the user pointed at would be worse than stopping.
    """
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        for place in (explicit, explicit / "fashion-mnist"):
            if place.is_dir() and not _missing_files(place):
                return place
        raise DataError(
            f"Fashion-MNIST not found at the path given: {_describe_place(explicit)}.\n"
            + _HOW_TO_GET_FASHION_MNIST
        )
    places = fashion_mnist_candidates(None)
    for place in places:
        if place.is_dir() and not _missing_files(place):
            return place
    looked = "\n".join(f"  - {_describe_place(p)}" for p in places)
    hint = "" if data_root() is not None else "  (TWOPATHS_DATA is not set)\n"
    raise DataError(
        f"Fashion-MNIST not found. Looked in:\n{looked}\n{hint}{_HOW_TO_GET_FASHION_MNIST}"
    )


def _sha256_of_gzip_content(path: Path) -> str:
    """SHA-256 of a gzip file's decompressed content, streamed (no 47 MB buffer)."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_to(url: str, target: Path, *, timeout: float, progress: bool) -> None:
    """Stream ``url`` into ``target``; raise ``OSError`` / ``HTTPException`` on failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "twopaths"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=url.rsplit("/", 1)[-1],
            disable=not progress,
            leave=False,
        ) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received:,} of {total:,} bytes")


def download_fashion_mnist(
    dest: str | Path | None = None,
    mirrors: Sequence[str] = FASHION_MNIST_MIRRORS,
    *,
    checksums: Mapping[str, str] | None = FASHION_MNIST_SHA256,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the four Fashion-MNIST files into ``dest`` (default ``cache_dir()/fashion-mnist``).

    Each file is tried on each mirror in turn. It is streamed into a hidden temporary file in
    ``dest`` and renamed into place (atomically, same file system) only after the SHA-256 of its
    decompressed content matches ``checksums``; so an interrupted or tampered download never
    leaves a file that :func:`find_fashion_mnist` would accept. Files already present and
    verified are not downloaded again.

    ``mirrors`` are URL prefixes (any scheme urllib knows, including ``file://``, which is how
    tests run without a network). ``checksums=None`` skips verification, for test fixtures
    only. Returns ``dest``.

    Raises :class:`DataError` when a download does not match its checksum (the temporary file is
    deleted) or when every mirror fails (the message lists each URL and why).
    """
    dest = Path(dest).expanduser() if dest is not None else cache_dir() / "fashion-mnist"
    if not mirrors:
        raise ConfigError("download_fashion_mnist: no mirrors given")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the download folder {dest} ({exc.strerror or exc})"
        ) from None

    for name in FASHION_MNIST_FILES:
        expected = None if checksums is None else checksums[name]
        final = dest / name
        if final.is_file():
            try:
                if expected is None or _sha256_of_gzip_content(final) == expected:
                    continue  # already downloaded and verified
            except (OSError, EOFError, zlib.error):
                pass  # a corrupt leftover: download it again, replacing it atomically

        failures: list[str] = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                try:
                    _fetch_to(url, tmp, timeout=timeout, progress=progress)
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    reason = getattr(exc, "reason", None) or exc
                    failures.append(f"{url}: {reason}")
                    continue
                if expected is not None:
                    try:
                        actual = _sha256_of_gzip_content(tmp)
                    except (OSError, EOFError, zlib.error) as exc:
                        actual = f"not valid gzip ({exc})"
                    if actual != expected:
                        raise DataError(
                            f"downloaded {url} but its content does not match the published "
                            f"checksum (SHA-256 of the decompressed file: expected {expected}, "
                            f"got {actual}); the download was deleted. Try again later, or use "
                            "the Debian package: apt-get install dataset-fashion-mnist"
                        )
                os.replace(tmp, final)
                break
            finally:
                tmp.unlink(missing_ok=True)  # no-op after a successful os.replace
        else:
            tried = "\n".join(f"  - {failure}" for failure in failures)
            raise DataError(
                f"could not download Fashion-MNIST file {name}; tried:\n{tried}\n"
                "Without a network, install the Debian package (apt-get install "
                "dataset-fashion-mnist), or copy the four IDX files into a folder and set "
                "TWOPATHS_DATA to it (or pass its path)."
            )
    return dest


def _load_split(root: Path, images_name: str, labels_name: str, verify: bool):
    tensors = []
    for name in (images_name, labels_name):
        path = _locate(root, name)
        if path is None:
            raise DataError(f"Fashion-MNIST: {_describe_place(root)}")
        data = _read_maybe_gzipped(path)
        if verify:
            actual = hashlib.sha256(data).hexdigest()
            if actual != FASHION_MNIST_SHA256[name]:
                raise DataError(
                    f"{path}: checksum mismatch (SHA-256 of the decompressed content: expected "
                    f"{FASHION_MNIST_SHA256[name]}, got {actual}); the file is corrupt or is not "
                    "the official Fashion-MNIST"
                )
        tensors.append((path, _parse_idx(data, path)))
    (images_path, images), (labels_path, labels) = tensors
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (N, H, W), found {images.dtype} "
            f"{images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{labels_path}: expected integer labels of shape (N,), found {labels.dtype} "
            f"{labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"Fashion-MNIST: {images_path.name} holds {len(images):,} images but "
            f"{labels_path.name} holds {len(labels):,} labels (in {root})"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
        raise DataError(
            f"{labels_path}: labels must lie in 0..{len(FASHION_MNIST_CLASSES) - 1}, found "
            f"{labels.min()}..{labels.max()}"
        )
    images_t = torch.from_numpy(images).unsqueeze(1)  # (N, H, W) -> (N, 1, H, W) uint8
    labels_t = torch.from_numpy(labels.astype(np.int64))  # (N,) int64
    return images_t, labels_t


def load_fashion_mnist(
    root: str | Path, verify: bool = False
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Load Fashion-MNIST from the folder ``root`` (see :func:`find_fashion_mnist`).

    Returns ``{"train": (images, labels), "test": (images, labels)}`` with images ``uint8
    (N, 1, 28, 28)`` and labels ``int64 (N,)`` (N = 60,000 and 10,000 for the real data).
    ``verify=True`` also checks each file's SHA-256 against the published data (about 0.1 s).
    """
    root = Path(root).expanduser()
    return {
        split: _load_split(root, images_name, labels_name, verify)
        for split, (images_name, labels_name) in _SPLIT_FILES.items()
    }


def summarize_fashion_mnist(explicit: str | Path | None = None) -> DatasetSummary:
    """One ``twopaths data list`` row; reads only the IDX headers, so it is instant."""
    summary = DatasetSummary(
        name="fashion-mnist",
        kind="image",
        source="",
        size="70,000 images (60,000 train, 10,000 test)",
        shapes=f"1x28x28, {len(FASHION_MNIST_CLASSES)} classes",
    )
    try:
        root = find_fashion_mnist(explicit)
    except DataError:
        places = (
            [Path(explicit).expanduser()] if explicit is not None else fashion_mnist_candidates()
        )
        summary.available = False
        summary.source = (
            f"not found (looked in {', '.join(map(str, places))}); get it with "
            "`apt-get install dataset-fashion-mnist` or `twopaths data fetch fashion-mnist`, "
            "or set TWOPATHS_DATA"
        )
        return summary
    counts = {}
    try:
        for split, (images_name, _) in _SPLIT_FILES.items():
            path = _locate(root, images_name)
            assert path is not None  # find_fashion_mnist checked it
            _, shape = idx_header(path)
            if len(shape) != 3:
                raise DataError(f"{path}: expected 3 dimensions (N, H, W), found {shape}")
            counts[split] = shape
    except DataError as exc:
        summary.available = False
        summary.source = f"unreadable: {exc}"
        return summary
    n_train, h, w = counts["train"]
    n_test = counts["test"][0]
    summary.source = str(root)
    summary.size = f"{n_train + n_test:,} images ({n_train:,} train, {n_test:,} test)"
    summary.shapes = f"1x{h}x{w}, {len(FASHION_MNIST_CLASSES)} classes"
    return summary


# --------------------------------------------------------------------------------------------
# A dataset of images held in memory
# --------------------------------------------------------------------------------------------


class ImageDataset(Dataset):
    """Images held as ``uint8 (N, C, H, W)``, served as ``float32 (C, H, W)`` in ``[-1, 1]``.

    Keeping uint8 in memory and converting per item costs nothing measurable and keeps
    Fashion-MNIST at 47 MB instead of 188 MB. Items follow :mod:`twopaths.data.base`:
    ``{"image": float32 (C, H, W), "label": int64 scalar}``, plus ``"caption": str`` when
    captions were given (text-conditioned models read them).
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        captions: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"labels must be (N,) with N = {len(images)} images, got {tuple(labels.shape)}"
            )
        if captions is not None and len(captions) != len(images):
            raise ValueError(f"{len(captions)} captions for {len(images)} images")
        self.images = images  # (N, C, H, W) uint8
        self.labels = labels.to(torch.int64)  # (N,) int64
        self.captions = list(captions) if captions is not None else None
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> tuple[int, int]:
        return self.images.shape[2], self.images.shape[3]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index].to(torch.float32).div_(127.5).sub_(1.0)  # (C, H, W) in [-1, 1]
        item = {"image": image, "label": self.labels[index]}  # label: int64 scalar
        if self.captions is not None:
            item["caption"] = self.captions[index]
        return item

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> ImageDataset:
        """A new dataset of the items at ``indices`` (copies the selected images)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        captions = [self.captions[i] for i in index.tolist()] if self.captions is not None else None
        return ImageDataset(self.images[index], self.labels[index], captions, self.class_names)


# --------------------------------------------------------------------------------------------
# Folders of image files
# --------------------------------------------------------------------------------------------

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Pillow >= 9.1 moved the filters to Image.Resampling; older ones have them on Image.
_RESAMPLING = getattr(Image, "Resampling", Image)


def _is_image_file(path: Path) -> bool:
    return (
        path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not path.name.startswith(".")
    )


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, sorted, skipping hidden files and folders."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if _is_image_file(path):
            found.append(path)
    return sorted(found)


def _scan_image_folder(path: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names) for a folder: subfolders are classes, else one class."""
    if not path.exists():
        raise DataError(f"image folder {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder (expected a folder of images)")
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    class_names: list[str] = []
    # Subfolders with no images are skipped (not made empty classes) so that stray folders such
    # as caches do not become classes; the class names returned say what each label means.
    for folder in subfolders:
        images = _images_under(folder)
        if images:
            labels += [len(class_names)] * len(images)
            class_names.append(folder.name)
            files += images
    if not files:
        images = sorted(p for p in path.iterdir() if _is_image_file(p))
        if images:
            files, labels, class_names = images, [0] * len(images), [path.resolve().name]
    if not files:
        raise DataError(
            f"no images found in {path} (searched it and its subfolders for "
            f"{', '.join(IMAGE_EXTENSIONS)} files, case-insensitive)"
        )
    return files, labels, class_names


def _load_image(path: Path, resolution: int, mode: str) -> np.ndarray:
    """Decode, centre-crop to a square, resize, convert: ``(H, W)`` or ``(H, W, 3)`` uint8."""
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)  # phone photos store rotation in EXIF
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                # Composite transparent pixels onto black, the background of the procedural data.
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                img.alpha_composite(rgba)
            img = img.convert(mode)
            width, height = img.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            img = img.crop((left, top, left + side, top + side))
            if side != resolution:
                # LANCZOS antialiases when shrinking; BICUBIC is the usual choice for enlarging.
                method = _RESAMPLING.LANCZOS if side > resolution else _RESAMPLING.BICUBIC
                img = img.resize((resolution, resolution), method)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def load_image_folder(
    path: str | Path, resolution: int, channels: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load every PNG/JPEG/BMP/WebP image under ``path``.

    Layout: if ``path`` has subfolders holding images, each is a class (labels follow the sorted
    folder names); otherwise all images are one class named after the folder. Each image is
    centre-cropped to a square, resized to ``resolution`` and converted to greyscale
    (``channels=1``) or RGB (``channels=3``).

    Returns ``(images uint8 (N, C, R, R), labels int64 (N,), class_names)``.
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
    if resolution < 1:
        raise ConfigError(f"resolution must be a positive number of pixels, got {resolution}")
    path = Path(path).expanduser()
    files, labels, class_names = _scan_image_folder(path)
    mode = "L" if channels == 1 else "RGB"
    images = np.stack([_load_image(f, resolution, mode) for f in files])  # (N, R, R[, 3])
    if channels == 1:
        images = images[:, None, :, :]  # (N, 1, R, R)
    else:
        images = images.transpose(0, 3, 1, 2)  # (N, R, R, 3) -> (N, 3, R, R)
    return (
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.tensor(labels, dtype=torch.int64),
        class_names,
    )


def summarize_image_folder(
    path: str | Path, resolution: int | None = None, channels: int | None = None
) -> DatasetSummary:
    """One ``twopaths data list`` row for an image folder; decodes no pixels (headers only)."""
    path = Path(path).expanduser()
    name = path.name or str(path)
    try:
        files, labels, class_names = _scan_image_folder(path)
    except DataError as exc:
        return DatasetSummary(name, "image", str(exc), "0 images", "-", available=False)
    if resolution is not None and channels is not None:
        shapes = f"{channels}x{resolution}x{resolution}"
    else:
        try:
            with Image.open(files[0]) as img:  # lazy: reads the header only
                width, height = img.size
                c = len(img.getbands())
            shapes = f"{c}x{height}x{width} (first image, before resizing)"
        except (OSError, ValueError, SyntaxError):
            shapes = "unknown (first image unreadable)"
    counts = np.bincount(labels, minlength=len(class_names))
    shapes += f", {len(class_names)} class{'es' if len(class_names) != 1 else ''}"
    size = f"{len(files):,} images"
    if len(class_names) > 1:
        size += f" ({counts.min():,} to {counts.max():,} per class)"
    return DatasetSummary(name, "image", str(path), size, shapes)


# ----------------------------------------------------------------------------- n images of a split
