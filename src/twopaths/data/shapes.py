"""Procedural shapes: RGB images of coloured circles, squares and triangles with true captions.

Why this dataset exists: it is instant (no files, no network), it has classes (the shape of the
first object) for class-conditional models, and its captions are compositional ("a small red
circle left of a large blue square"), so a text-conditioned model can be scored on prompt
fidelity: every attribute a caption mentions is also returned as an array, and the caption is
true of the picture by construction.

Geometry, in image-relative coordinates (x to the right, y downwards, both in [0, 1]): each
object has a centre ``(x, y)`` and a half-size ``h`` (``SIZE_FRACTIONS``); it is drawn inside
the box ``[x - h, x + h] x [y - h, y + h]``:

- circle: the disc of radius ``h``;
- square: axis-aligned, half-side ``0.8 h``;
- triangle: pointing up, apex at ``y - 0.9 h``, base of half-width ``h`` at ``y + 0.9 h``.

Two objects are placed so their boxes are separated by a gap along at least one axis. The
caption's relation is read from the centres along the axis where they differ most, and that
difference is at least the separation, so "A left of B" means A's box lies wholly to the left
of B's box, not merely that its centre does.

Anti-aliasing: coverage is sampled on a 4x4 grid inside every pixel and averaged (a box filter),
only within a window around each object, which keeps 10,000 images at 32x32 well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from twopaths.errors import ConfigError

__all__ = [
    "COLOUR_NAMES",
    "COLOUR_RGB",
    "RELATIONS",
    "SHAPE_NAMES",
    "SIZE_FRACTIONS",
    "SIZE_NAMES",
    "ShapesData",
    "caption_for",
    "make_shapes",
    "parse_caption",
]

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle")
SIZE_NAMES: tuple[str, ...] = ("small", "large")
# Half-size of an object's box as a fraction of the image side (small ~8 px wide at 32x32,
# large ~13 px: different enough to tell apart, small enough for two large ones to fit).
SIZE_FRACTIONS: tuple[float, ...] = (0.12, 0.20)
# A palette of saturated colours that stay distinct from each other and from the black
# background (blue is lightened a little, pure blue is hard to see on black).
COLOUR_NAMES: tuple[str, ...] = (
    "red",
    "green",
    "blue",
    "yellow",
    "magenta",
    "cyan",
    "white",
    "orange",
)
COLOUR_RGB: np.ndarray = np.array(
    [
        [230, 25, 25],  # red
        [30, 200, 40],  # green
        [50, 90, 255],  # blue
        [245, 225, 30],  # yellow
        [225, 40, 225],  # magenta
        [30, 220, 230],  # cyan
        [245, 245, 245],  # white
        [255, 140, 0],  # orange
    ],
    dtype=np.float32,
)
# Relation of object 0 to object 1 ("<object 0> left of <object 1>").
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

_SUPERSAMPLE = 4  # coverage samples per pixel along each axis
_CHUNK = 2048  # images rendered at a time
_MARGIN = 0.02  # minimum distance from a box to the image border, as a fraction of the side
_GAP = 0.03  # minimum gap between the boxes of two objects (about 1 pixel at 32x32)
_SQUARE_HALF_SIDE = 0.8  # relative to the box half-size
_TRIANGLE_HALF_HEIGHT = 0.9
_TRIANGLE_HALF_BASE = 1.0


@dataclass
class ShapesData:
    """Images and everything needed to check them against their captions.

    Per-object arrays are ``(N, max_objects)``; slots past ``n_objects`` hold -1 (integers) or
    NaN (coordinates). Object 0 is the caption's subject and defines ``labels``.
    """

    images: torch.Tensor  # (N, 3, R, R) uint8, black background
    labels: torch.Tensor  # (N,) int64: shape of object 0 (0 circle, 1 square, 2 triangle)
    captions: list[str]  # N captions, true of the images
    shape: torch.Tensor  # (N, M) int64 index into SHAPE_NAMES, -1 if absent
    colour: torch.Tensor  # (N, M) int64 index into COLOUR_NAMES, -1 if absent
    size: torch.Tensor  # (N, M) int64 index into SIZE_NAMES, -1 if absent
    x: torch.Tensor  # (N, M) float32 centre, fraction of the width from the left, NaN if absent
    y: torch.Tensor  # (N, M) float32 centre, fraction of the height from the top, NaN if absent
    n_objects: torch.Tensor  # (N,) int64, 1..M
    relation: (
        torch.Tensor
    )  # (N,) int64 index into RELATIONS (object 0 to object 1), -1 if one object

    def __len__(self) -> int:
        return len(self.images)

    def to_dataset(self):
        """An :class:`~twopaths.data.images.ImageDataset` with captions and class names."""
        from twopaths.data.images import ImageDataset

        return ImageDataset(self.images, self.labels, self.captions, SHAPE_NAMES)


def caption_for(shape: int, colour: int, size: int) -> str:
    """``"a small red circle"`` for one object's attribute indices."""
    return f"a {SIZE_NAMES[size]} {COLOUR_NAMES[colour]} {SHAPE_NAMES[shape]}"


def parse_caption(text: str) -> tuple[list[dict[str, int | None]], int | None]:
    """The inverse of the captions :func:`make_shapes` writes, for prompts in the same language.

    ``"a small red circle left of a large blue square"`` -> ``([{"shape": 0, "colour": 0,
    "size": 0}, {"shape": 1, "colour": 2, "size": 1}], 0)``: per object, indices into
    SHAPE_NAMES, COLOUR_NAMES and SIZE_NAMES, then the index into RELATIONS of object 0 to object
    1 (None for one object). Grammar: ``OBJECT [RELATION OBJECT]`` with ``OBJECT = a|an [SIZE]
    COLOUR SHAPE``; case, repeated spaces and a final full stop are ignored. The size may be left
    out ("a green triangle": size None); two objects need different colours, which is how the
    generator keeps "the red one" unambiguous. Anything else raises ConfigError with the
    vocabulary.
    """
    words = text.lower().strip().removesuffix(".").split()

    def fail(reason: str):
        raise ConfigError(
            f"prompt {text!r} is outside the shapes caption grammar ({reason}); expected "
            f"'a [SIZE] COLOUR SHAPE [RELATION a [SIZE] COLOUR SHAPE]' with SIZE one of "
            f"{', '.join(SIZE_NAMES)}; COLOUR one of {', '.join(COLOUR_NAMES)}; SHAPE one of "
            f"{', '.join(SHAPE_NAMES)}; RELATION one of {', '.join(RELATIONS)}"
        )

    def word(i: int) -> str:
        return words[i] if i < len(words) else "<end>"

    objects: list[dict[str, int | None]] = []
    relation, i = None, 0
    while True:
        if word(i) not in ("a", "an"):
            fail(f"expected 'a' at word {i + 1}, got {word(i)!r}")
        i += 1
        size = SIZE_NAMES.index(words[i]) if word(i) in SIZE_NAMES else None
        i += size is not None
        if word(i) not in COLOUR_NAMES:
            fail(f"expected a colour at word {i + 1}, got {word(i)!r}")
        if word(i + 1) not in SHAPE_NAMES:
            fail(f"expected a shape at word {i + 2}, got {word(i + 1)!r}")
        objects.append(
            {
                "shape": SHAPE_NAMES.index(words[i + 1]),
                "colour": COLOUR_NAMES.index(words[i]),
                "size": size,
            }
        )
        i += 2
        if i == len(words):
            break
        if len(objects) == 2:
            fail(f"unexpected {' '.join(words[i:])!r} after the second object")
        phrases = [name.split() for name in RELATIONS]  # e.g. ['left', 'of']
        found = [r for r, phrase in enumerate(phrases) if words[i : i + len(phrase)] == phrase]
        if not found:
            fail(f"expected a relation at word {i + 1}, got {word(i)!r}")
        relation = found[0]
        i += len(RELATIONS[relation].split())
    if len(objects) == 2 and objects[0]["colour"] == objects[1]["colour"]:
        fail("the two objects need different colours")
    return objects, relation


def _relation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relation of object 0 to object 1 along the axis where their centres differ most.

    x, y: (N, 2) centres. Returns (N,) indices into RELATIONS.
    """
    dx = x[:, 1] - x[:, 0]  # > 0: object 0 is left of object 1
    dy = y[:, 1] - y[:, 0]  # > 0: object 0 is above object 1 (y grows downwards)
    horizontal = np.abs(dx) >= np.abs(dy)
    return np.where(horizontal, np.where(dx > 0, 0, 1), np.where(dy > 0, 2, 3))


def _place(
    rng: np.random.Generator, half: np.ndarray, two: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centres for every object; for two-object images, boxes separated along a chosen axis.

    half: (N, 2) box half-sizes. two: (N,) bool. Returns x, y: (N, 2) (column 1 unused for
    one-object images).
    """
    n = len(half)
    lo, hi = half + _MARGIN, 1.0 - half - _MARGIN  # (N, 2) allowed centre range per object
    # Free placement: uniform within the image, used for one-object images and for the axis
    # along which two objects need not be separated.
    free = lo[:, None, :] + (hi - lo)[:, None, :] * rng.random((n, 2, 2))  # (N, axis, object)
    # Separated placement along one axis, in a random order: first a position for the object
    # that comes first along the axis, leaving room for the other, then the other after it.
    first = rng.integers(0, 2, size=n)  # which object comes first along the axis
    second = 1 - first
    rows = np.arange(n)
    need = half.sum(axis=1) + _GAP  # (N,) centre distance that separates the boxes
    lo_first, hi_second = lo[rows, first], hi[rows, second]
    p_first = lo_first + (hi_second - need - lo_first) * rng.random(n)
    p_second = p_first + need + (hi_second - p_first - need) * rng.random(n)
    separated = np.empty((n, 2))
    separated[rows, first] = p_first
    separated[rows, second] = p_second
    axis = rng.integers(0, 2, size=n)  # 0: separate along x, 1: along y
    coords = free.copy()
    coords[rows[two], axis[two]] = separated[two]
    return coords[:, 0], coords[:, 1]


def _coverage(shape: int, dx: np.ndarray, dy: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Fraction of each pixel covered by one kind of shape.

    dx: (K, 1, S) and dy: (K, S, 1) sample offsets from the centres in pixels, S = SUPERSAMPLE *
    window; h: (K, 1, 1) half-sizes in pixels. Returns (K, window, window) float32 in [0, 1].
    """
    if shape == 0:  # circle
        inside = dx * dx + dy * dy <= h * h  # (K, S, S)
    elif shape == 1:  # square: separable, the 2-D mask is an outer product
        inside = (np.abs(dx) <= _SQUARE_HALF_SIDE * h) & (np.abs(dy) <= _SQUARE_HALF_SIDE * h)
    else:  # triangle, apex up: the half-width grows linearly from apex to base
        top, height = -_TRIANGLE_HALF_HEIGHT * h, 2 * _TRIANGLE_HALF_HEIGHT * h
        half_width = _TRIANGLE_HALF_BASE * h * (dy - top) / height  # (K, S, 1)
        inside = (dy >= top) & (dy <= top + height) & (np.abs(dx) <= half_width)
    k, s, _ = inside.shape
    w = s // _SUPERSAMPLE
    # Box filter: count the samples inside each pixel. Adding the 4 sub-rows and then the 4
    # sub-columns as uint8 slices is ~4x faster than a float reduction over two axes.
    blocks = inside.view(np.uint8).reshape(k, w, _SUPERSAMPLE, w, _SUPERSAMPLE)
    counts = sum(blocks[:, :, i] for i in range(_SUPERSAMPLE))  # (K, w, w, SUPERSAMPLE)
    counts = sum(counts[..., i] for i in range(_SUPERSAMPLE))  # (K, w, w), 0..SUPERSAMPLE**2
    return counts.astype(np.float32) / (_SUPERSAMPLE * _SUPERSAMPLE)


def _render(
    canvas: np.ndarray,
    kind: np.ndarray,
    colour: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    h: np.ndarray,
) -> None:
    """Add one object per image to ``canvas`` (N, R, R, 3) float32, in place.

    kind, colour: (N,) ints (kind -1 = no object); cx, cy, h: (N,) centre and half-size in
    pixels. Objects of the same image never overlap, so adding coverage x colour is exact.
    """
    n, res = canvas.shape[0], canvas.shape[1]
    window = min(res, int(np.ceil(2 * h.max())) + 2) if n else 0  # pixels, covers any object
    sub = (np.arange(window * _SUPERSAMPLE, dtype=np.float32) + 0.5) / _SUPERSAMPLE  # (S,) offsets
    cx, cy, h = cx.astype(np.float32), cy.astype(np.float32), h.astype(np.float32)
    for k in range(len(SHAPE_NAMES)):
        idx = np.flatnonzero(kind == k)
        if idx.size == 0:
            continue
        # Window origin (in pixels) chosen so the window covers the box and stays in the image.
        ox = np.clip(np.floor(cx[idx] - h[idx]).astype(np.int64) - 1, 0, res - window)  # (K,)
        oy = np.clip(np.floor(cy[idx] - h[idx]).astype(np.int64) - 1, 0, res - window)  # (K,)
        dx = (ox[:, None] + sub[None, :] - cx[idx, None])[:, None, :]  # (K, 1, S)
        dy = (oy[:, None] + sub[None, :] - cy[idx, None])[:, :, None]  # (K, S, 1)
        cover = _coverage(k, dx, dy, h[idx, None, None])  # (K, window, window)
        rows = oy[:, None, None] + np.arange(window)[None, :, None]  # (K, window, 1)
        cols = ox[:, None, None] + np.arange(window)[None, None, :]  # (K, 1, window)
        rgb = COLOUR_RGB[colour[idx]][:, None, None, :]  # (K, 1, 1, 3)
        canvas[idx[:, None, None], rows, cols] += cover[..., None] * rgb  # (K, window, window, 3)


def make_shapes(n: int, resolution: int = 32, seed: int = 0, max_objects: int = 2) -> ShapesData:
    """Render ``n`` images of 1 to ``max_objects`` (1 or 2, uniform) shapes on black.

    Deterministic given ``(n, seed)`` (attributes are drawn as arrays of length ``n``, so a
    different ``n`` gives different images: make train and test sets with different seeds, not
    by slicing one call). Shapes, colours and sizes are uniform; the two objects of one image
    have different colours, so "the red one" is always unambiguous.
    """
    if n < 0:
        raise ConfigError(f"make_shapes: n must be >= 0, got {n}")
    if resolution < 8:
        raise ConfigError(f"make_shapes: resolution must be at least 8 pixels, got {resolution}")
    if max_objects not in (1, 2):
        raise ConfigError(f"make_shapes: max_objects must be 1 or 2, got {max_objects}")
    rng = np.random.default_rng(seed)
    m = max_objects

    n_objects = rng.integers(1, m + 1, size=n)  # (N,)
    present = np.arange(m)[None, :] < n_objects[:, None]  # (N, M)
    shape = rng.integers(0, len(SHAPE_NAMES), size=(n, m))  # (N, M)
    size = rng.integers(0, len(SIZE_NAMES), size=(n, m))  # (N, M)
    colour = rng.integers(0, len(COLOUR_NAMES), size=(n, m))  # (N, M)
    if m == 2:  # a distinct second colour: shift by 1..P-1 around the palette of P colours
        p = len(COLOUR_NAMES)
        colour[:, 1] = (colour[:, 0] + rng.integers(1, p, size=n)) % p
    half = np.asarray(SIZE_FRACTIONS)[size]  # (N, M) box half-size, fraction of the side

    if m == 2:
        x, y = _place(rng, half, n_objects == 2)  # (N, 2) each
        relation = np.where(n_objects == 2, _relation(x, y), -1)
    else:
        lo, hi = half + _MARGIN, 1.0 - half - _MARGIN
        x, y = lo + (hi - lo) * rng.random((n, 1)), lo + (hi - lo) * rng.random((n, 1))
        relation = np.full(n, -1)

    # Render in chunks: the float canvas stays small (cache-friendly, and bounded memory for
    # large n or resolution); all randomness was drawn above, so chunking changes no pixel.
    images = np.empty((n, 3, resolution, resolution), dtype=np.uint8)  # (N, 3, R, R)
    for start in range(0, n, _CHUNK):
        part = slice(start, min(n, start + _CHUNK))
        canvas = np.zeros(
            (part.stop - start, resolution, resolution, 3), np.float32
        )  # (C, R, R, 3)
        for j in range(m):
            _render(
                canvas,
                np.where(present[part, j], shape[part, j], -1),
                colour[part, j],
                x[part, j] * resolution,
                y[part, j] * resolution,
                half[part, j] * resolution,
            )
        np.minimum(np.rint(canvas, out=canvas), 255, out=canvas)
        images[part] = canvas.transpose(0, 3, 1, 2)  # (C, R, R, 3) -> (C, 3, R, R), to uint8

    captions = []
    for i in range(n):
        text = caption_for(shape[i, 0], colour[i, 0], size[i, 0])
        if n_objects[i] == 2:
            text += f" {RELATIONS[relation[i]]} " + caption_for(
                shape[i, 1], colour[i, 1], size[i, 1]
            )
        captions.append(text)

    def masked(values: np.ndarray, fill) -> np.ndarray:
        return np.where(present, values, fill)

    return ShapesData(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(shape[:, 0].astype(np.int64)),
        captions=captions,
        shape=torch.from_numpy(masked(shape, -1).astype(np.int64)),
        colour=torch.from_numpy(masked(colour, -1).astype(np.int64)),
        size=torch.from_numpy(masked(size, -1).astype(np.int64)),
        x=torch.from_numpy(masked(x, np.nan).astype(np.float32)),
        y=torch.from_numpy(masked(y, np.nan).astype(np.float32)),
        n_objects=torch.from_numpy(n_objects.astype(np.int64)),
        relation=torch.from_numpy(relation.astype(np.int64)),
    )
