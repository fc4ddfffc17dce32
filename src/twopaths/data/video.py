"""Moving Fashion: short grey video clips of Fashion-MNIST items bouncing around a box, with the
true trajectory of every object.

The idea is Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015, "Unsupervised Learning of
Video Representations using LSTMs", sec. 3): a few small pictures, each moving with a constant
velocity and bouncing off the walls of a larger canvas. Here the pictures are Fashion-MNIST items
(Xiao et al. 2017), which the project already loads, so a generated clip can be scored per frame
by the same in-project Fashion-MNIST feature net as generated images (:mod:`twopaths.eval.video`).

One clip, for ``objects`` K (1 or 2), ``frames`` T and canvas side R (``data.resolution``):

- each object is one Fashion-MNIST item, downscaled from 28x28 to ``ITEM_SIZE`` = 12 pixels
  (bilinear with antialiasing, i.e. a box filter), intensities in [0, 1] on a black background;
- it starts at a uniform position, with a speed uniform in [``MIN_SPEED``, ``MAX_SPEED``] pixels per
  frame in a uniform direction, and moves with that constant velocity, reflected off the walls: on
  each axis the centre travels ``u(t) = p0 + v t`` and is folded into ``[lo, hi] = [6, R - 6]`` (the
  item's box stays inside the canvas), a triangle wave of period ``2 (hi - lo)`` (:func:`bounce`).
  This is the exact path of an elastic bounce in continuous time, so the velocity flips at the
  instant a wall is hit, even between two frames;
- it is drawn at its true sub-pixel position: the item is shifted by the fractional part of its
  corner with area weights (every item pixel spreads over the <= 4 canvas pixels it overlaps), so
  its mass and centre of mass move exactly with the recorded centre;
- objects are composited by the maximum (as in Moving MNIST, where overlapping digits saturate),
  and the frame is mapped to [-1, 1].

Coordinates: ``x`` to the right, ``y`` downwards, in pixels, with the canvas covering [0, R] and
pixel ``(row i, column j)`` the square [j, j + 1] x [i, i + 1]. A position is the centre of the
item's 12x12 box (not its centre of mass; Fashion-MNIST items are centred in their box by bounding
box, within about 0.1 pixel at this size).

Splits: train clips use items of the Fashion-MNIST train split; validation and test clips use
disjoint halves of its test split, so no item of a val/test clip is ever seen in training. Each
split is drawn with its own seed from ``data.seed``: same config, identical clips. ``data.size``
train clips (a run's default is 20,000, from ``DATASET_PRESETS``; a ``DataConfig`` built by hand keeps
its own 10,000), ``VAL_CLIPS`` and ``TEST_CLIPS`` for validation and test. Rendering is vectorised:
2-3 s for 20,000 clips of 8 frames on one CPU core, so nothing is cached on disk. Clips are held as
float32, the convention of the items (20,000 clips of 8 x 32 x 32 take 655 MB).

Items are ``{"video": float32 (T, 1, R, R) in [-1, 1], "label": int64}`` (the class of object 0); a
batch is ``{"video": (B, T, 1, R, R), "label": (B,)}``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from twopaths.data.base import DatasetSummary
from twopaths.data.images import FASHION_MNIST_CLASSES, find_fashion_mnist, load_fashion_mnist
from twopaths.errors import ConfigError, DataError

__all__ = ["ITEM_SIZE", "MAX_FRAMES", "MAX_OBJECTS", "MAX_SPEED", "MIN_RESOLUTION", "MIN_SPEED", "TEST_CLIPS",
           "VAL_CLIPS", "VideoClips", "bounce", "check_clip_config", "downscale_items", "make_moving_fashion",
           "moving_fashion_splits", "position_range", "render_clips", "summarize_moving_fashion"]

ITEM_SIZE = 12  # pixels: a Fashion-MNIST item's side on the canvas
MIN_SPEED, MAX_SPEED = 1.0, 3.0  # pixels per frame
MAX_FRAMES = 64
MAX_OBJECTS = 2
MIN_RESOLUTION = 16
VAL_CLIPS, TEST_CLIPS = 1_000, 2_000
_SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # the second word of each split's seed
_CHUNK = 1024  # clips rendered at a time (bounds the memory of the patch tensors)


class VideoClips(Dataset):
    """Clips held in memory with their ground truth.

    ``video`` float32 (N, T, 1, R, R) in [-1, 1]; ``positions`` float32 (N, T, K, 2): the centre
    (x, y) of object k in frame t, pixels; ``velocities`` float32 (N, K, 2): the velocity at t = 0,
    pixels per frame; ``object_labels`` int64 (N, K): each object's Fashion-MNIST class;
    ``labels`` int64 (N,): object 0's class, the clip's class for class-conditional models;
    ``item_index`` int64 (N, K): each object's index among the items the clips were drawn from.
    """

    def __init__(self, video: torch.Tensor, positions: torch.Tensor, velocities: torch.Tensor,
                 object_labels: torch.Tensor, item_index: torch.Tensor | None = None,
                 class_names=FASHION_MNIST_CLASSES) -> None:
        if video.ndim != 5 or video.shape[2] != 1 or positions.shape[:2] != video.shape[:2] \
                or len(object_labels) != len(video) or len(velocities) != len(video):
            raise ValueError(f"video must be (N, T, 1, R, R) with (N, T, K, 2) positions and (N, K) labels, got "
                             f"{tuple(video.shape)}, {tuple(positions.shape)}, {tuple(object_labels.shape)}")
        self.video = video  # (N, T, 1, R, R)
        self.positions = positions  # (N, T, K, 2)
        self.velocities = velocities  # (N, K, 2)
        self.object_labels = object_labels  # (N, K)
        self.labels = object_labels[:, 0].clone()  # (N,)
        self.item_index = item_index  # (N, K)
        self.class_names = list(class_names)

    @property
    def frames(self) -> int:
        return self.video.shape[1]

    @property
    def resolution(self) -> int:
        return self.video.shape[-1]

    @property
    def objects(self) -> int:
        return self.positions.shape[2]

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"video": self.video[index], "label": self.labels[index]}  # (T, 1, R, R), int64 scalar


def check_clip_config(frames: int, resolution: int, objects: int) -> None:
    """A :class:`ConfigError` naming the key when a clip setting is out of range."""
    if not 2 <= frames <= MAX_FRAMES:
        raise ConfigError(f"config key 'data.frames' must be in 2..{MAX_FRAMES} (frames per clip), got {frames}")
    if not 1 <= objects <= MAX_OBJECTS:
        raise ConfigError(f"config key 'data.objects' must be 1 or 2 (objects per clip), got {objects}")
    if resolution < max(MIN_RESOLUTION, ITEM_SIZE + 1):
        raise ConfigError(f"config key 'data.resolution' must be at least {MIN_RESOLUTION} for moving-fashion "
                          f"(the canvas holds {ITEM_SIZE}x{ITEM_SIZE} items), got {resolution}")


def position_range(resolution: int, item_size: int = ITEM_SIZE) -> tuple[float, float]:
    """(lo, hi): the interval a centre coordinate can reach, the item's box inside the canvas."""
    return item_size / 2, resolution - item_size / 2


def bounce(unfolded: torch.Tensor | np.ndarray, lo: float, hi: float):
    """Fold free-flight coordinates into [lo, hi] as elastic reflections off both walls.

    ``u -> lo + L - | ((u - lo) mod 2L) - L |`` with L = hi - lo: a triangle wave, the position of a
    point moving at constant speed between two mirrors. Any shape; numpy or torch.
    """
    span = hi - lo
    r = (unfolded - lo) % (2 * span)  # in [0, 2L): the phase within one round trip
    return lo + span - abs(r - span)


def downscale_items(items: torch.Tensor, size: int = ITEM_SIZE) -> torch.Tensor:
    """uint8 (M, 1, 28, 28) items -> float32 (M, size, size) intensities in [0, 1] (bilinear, antialiased)."""
    x = items.float().div_(255.0)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[:, 0].clamp_(0, 1)


def _shift_patches(items: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Items (P, S, S) moved right/down by ``frac`` (P, 2) = (fx, fy) in [0, 1) of a pixel, on a
    (P, S + 1, S + 1) patch. Each item pixel spreads over the patch pixels it overlaps, weighted by
    the overlapping area, which keeps the item's mass and moves its centre of mass by exactly frac."""
    padded = F.pad(items, (1, 1, 1, 1))  # (P, S + 2, S + 2): zeros around
    fx, fy = frac[:, 0, None, None], frac[:, 1, None, None]  # (P, 1, 1)
    here = padded[:, 1:, 1:]  # patch pixel (a, b) <- item pixel (a, b)
    left = padded[:, 1:, :-1]  # <- item pixel (a, b - 1)
    up = padded[:, :-1, 1:]  # <- item pixel (a - 1, b)
    diag = padded[:, :-1, :-1]  # <- item pixel (a - 1, b - 1)
    return (1 - fy) * ((1 - fx) * here + fx * left) + fy * ((1 - fx) * up + fx * diag)  # (P, S + 1, S + 1)


def render_clips(items: torch.Tensor, positions: torch.Tensor, resolution: int,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """Draw clips: ``items`` (N, K, S, S) intensities in [0, 1], ``positions`` (N, T, K, 2) box
    centres in pixels -> float32 (N, T, 1, R, R) in [-1, 1], objects composited by their maximum.

    Every centre must keep its item's box inside the canvas (:func:`position_range`). ``out``: a
    contiguous (N, T, 1, R, R) float32 tensor to draw into (saves a copy of a large set).
    """
    n, t, k, _ = positions.shape
    s = items.shape[-1]
    out = torch.empty(n, t, 1, resolution, resolution) if out is None else out
    if n == 0:
        return out
    corner = positions.double() - s / 2  # (N, T, K, 2): the box's top-left corner
    whole = corner.floor()
    frac = (corner - whole).float()
    whole = whole.long()
    if whole.min() < 0 or whole.max() > resolution - s:
        raise DataError("render_clips: a position puts its item outside the canvas")
    p = n * t * k  # one patch per (clip, frame, object)
    patches = _shift_patches(items[:, None].expand(n, t, k, s, s).reshape(p, s, s), frac.reshape(p, 2))
    # The patch is one pixel wider than the item; a canvas one pixel wider too takes it at every position
    # (the extra column or row carries zero weight when the box touches the right or bottom wall).
    canvas = torch.zeros(p, resolution + 1, resolution + 1)
    ar = torch.arange(s + 1)
    rows = whole[..., 1].reshape(p, 1, 1) + ar[None, :, None]  # (P, S + 1, 1)
    cols = whole[..., 0].reshape(p, 1, 1) + ar[None, None, :]  # (P, 1, S + 1)
    canvas[torch.arange(p)[:, None, None], rows, cols] = patches
    canvas = canvas.view(n, t, k, resolution + 1, resolution + 1)
    frames = canvas[:, :, 0]  # (N, T, R + 1, R + 1)
    for j in range(1, k):  # max-composite the other objects
        frames = torch.maximum(frames, canvas[:, :, j])
    torch.mul(frames[..., :resolution, :resolution], 2, out=out.view(n, t, resolution, resolution))
    return out.sub_(1)  # (N, T, 1, R, R) in [-1, 1]


def make_moving_fashion(items: torch.Tensor, item_labels: torch.Tensor, n: int, *, frames: int = 8,
                        resolution: int = 32, objects: int = 1, seed: int | tuple[int, ...] = 0) -> VideoClips:
    """``n`` clips (see the module docstring) of items drawn with replacement from ``items``
    (uint8 (M, 1, 28, 28), Fashion-MNIST's layout) with their class ``item_labels`` (M,).

    Deterministic: the same items and arguments give identical clips.
    """
    check_clip_config(frames, resolution, objects)
    if n < 0:
        raise ConfigError(f"the number of clips must be >= 0, got {n}")
    if len(items) == 0:
        raise DataError("moving-fashion needs at least one item to draw from")
    rng = np.random.default_rng(seed)
    lo, hi = position_range(resolution)
    chosen = rng.integers(0, len(items), size=(n, objects))  # (N, K) item indices
    start = rng.uniform(lo, hi, size=(n, objects, 2))  # (N, K, 2) centres at t = 0
    speed = rng.uniform(MIN_SPEED, MAX_SPEED, size=(n, objects))  # (N, K) pixels per frame
    angle = rng.uniform(0.0, 2 * math.pi, size=(n, objects))  # (N, K)
    velocity = speed[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (N, K, 2)
    t = np.arange(frames, dtype=np.float64)[None, :, None, None]  # (1, T, 1, 1)
    positions = bounce(start[:, None] + velocity[:, None] * t, lo, hi)  # (N, T, K, 2), float64
    positions = torch.from_numpy(positions.astype(np.float32))
    index = torch.from_numpy(chosen)
    video = torch.empty(n, frames, 1, resolution, resolution)
    for i in range(0, n, _CHUNK):
        sprites = downscale_items(items[index[i:i + _CHUNK].reshape(-1)])  # (chunk * K, S, S)
        sprites = sprites.view(-1, objects, ITEM_SIZE, ITEM_SIZE)
        render_clips(sprites, positions[i:i + _CHUNK], resolution, out=video[i:i + _CHUNK])
    return VideoClips(video, positions, torch.from_numpy(velocity.astype(np.float32)),
                      item_labels.to(torch.int64)[index], index)


def moving_fashion_splits(path: str | None, size: int, *, frames: int, resolution: int, objects: int,
                          seed: int) -> tuple[dict[str, VideoClips], str]:
    """The moving-fashion clips by split and the Fashion-MNIST folder they come from: ``size`` train
    clips from Fashion-MNIST's train items, VAL_CLIPS and TEST_CLIPS from two disjoint halves of its
    test items (a fixed permutation), each split with its own seed ``(seed, 0|1|2)``."""
    check_clip_config(frames, resolution, objects)
    root = find_fashion_mnist(path)
    raw = load_fashion_mnist(root)
    (train_x, train_y), (test_x, test_y) = raw["train"], raw["test"]
    half = torch.from_numpy(np.random.default_rng(seed).permutation(len(test_x)))
    pools = {"train": (train_x, train_y), "val": (test_x[half[:len(half) // 2]], test_y[half[:len(half) // 2]]),
             "test": (test_x[half[len(half) // 2:]], test_y[half[len(half) // 2:]])}
    counts = {"train": size, "val": VAL_CLIPS, "test": TEST_CLIPS}
    return {split: make_moving_fashion(*pools[split], counts[split], frames=frames, resolution=resolution,
                                       objects=objects, seed=(seed, _SPLIT_STREAMS[split]))
            for split in ("train", "val", "test")}, str(root)


def summarize_moving_fashion(path: str | None = None) -> DatasetSummary:
    """The ``twopaths data list`` row: available wherever Fashion-MNIST is."""
    shapes = f"Tx1xRxR (data.frames 8, data.resolution 32): 1-2 {ITEM_SIZE}x{ITEM_SIZE} items bouncing, trajectories"
    size = f"any number (data.size, default 20,000) + {VAL_CLIPS + TEST_CLIPS:,} val/test clips"
    try:
        root = find_fashion_mnist(path)
    except DataError:
        return DatasetSummary("moving-fashion", "video", "needs fashion-mnist (see its row)", size, shapes,
                              available=False)
    return DatasetSummary("moving-fashion", "video", f"procedural, from Fashion-MNIST in {root}", size, shapes)
