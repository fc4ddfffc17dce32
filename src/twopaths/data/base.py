"""What every dataset in twopaths shares: where data lives, how splits are returned, how a
dataset describes itself for ``twopaths data list``.

Item conventions (what ``Dataset.__getitem__`` returns, so any paradigm can read any dataset
of its kind):

- images: ``{"image": float32 (C, H, W) in [-1, 1], "label": int64 scalar}``
- points: ``{"x": float32 (2,), "label": int64 scalar}``   (label = mixture component)
- tokens: ``{"tokens": int64 (context + 1,)}``             (inputs are [:-1], targets [1:])
- pairs:  ``{"src": str, "tgt": str}``
- audio:  ``{"audio": float32 (1, L) in [-1, 1], "label": int64 scalar}``
- video:  ``{"video": float32 (T, C, H, W) in [-1, 1], "label": int64 scalar}``  (a batch: (B, T, C, H, W))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from twopaths.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FORTUNES = Path("/usr/share/games/fortunes")


def read_bytes(path: Path, expected: str) -> bytes:
    """A file's bytes, or a DataError naming the path and saying what was ``expected`` there."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected {expected}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def data_root() -> Path | None:
    """The user's data root from ``TWOPATHS_DATA``, if set (checked before Debian paths)."""
    value = os.environ.get("TWOPATHS_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads go: ``TWOPATHS_CACHE``, else ``$XDG_CACHE_HOME/twopaths``, else ``~/.cache/twopaths``."""
    if os.environ.get("TWOPATHS_CACHE"):
        return Path(os.environ["TWOPATHS_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "twopaths"


@dataclass
class Splits:
    """A dataset's train/val/test splits plus what a model needs to know about it.

    ``meta`` carries dataset facts: ``class_names``, ``channels``, ``resolution``, ``modes`` for
    mixtures, the ``tokenizer`` for text, ``frames`` and ``objects`` for video, ``source`` (where the
    data was found).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetSummary:
    """One row of ``twopaths data list``."""

    name: str
    kind: str  # image | text | points | pairs | audio | video
    source: str  # a path, "procedural", or why it was not found
    size: str  # e.g. "70,000 images" or "15,432 documents, 2.5 MB"
    shapes: str  # e.g. "1x28x28, 10 classes"
    available: bool = True
