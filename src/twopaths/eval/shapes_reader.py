"""A scene reader for the procedural shapes: which palette colours are in an image, and for each,
the shape, size and centre of the object of that colour.

Prompt fidelity (:mod:`twopaths.eval.prompt_fidelity`) needs to read back from a generated image
every attribute a caption names. On :func:`twopaths.data.shapes.make_shapes` images the objects
of one image have distinct palette colours, so a colour names an object, and the reader is a
fixed set of *slots*, one per palette colour, each predicting what a detector predicts for one
box: a presence logit, class logits (shape, size) and box-centre coordinates, trained jointly
with a sum of losses as in YOLO (Redmon et al. 2016, "You Only Look Once", sec. 2.2), with the
slot fixed by colour instead of by grid cell, so no matching step is needed.

Network: a small VGG-style CNN (Simonyan & Zisserman 2015), ``len(widths)`` blocks of
(conv3x3-BN-ReLU) x ``convs`` and a 2x2 max-pool, flattened (keeping where things are, which
the centres need), a ``dim``-wide ReLU layer and a linear layer to ``P x 8`` outputs:

    out[:, p] = [presence logit, shape logits (3), size logits (2), x, y]   for palette colour p

with ``x, y`` the centre as fractions of the width/height from the top-left corner (the
convention of :class:`~twopaths.data.shapes.ShapesData`). Loss (:meth:`ShapesReader.loss`):
binary cross-entropy on presence over all slots, plus cross-entropy on shape and size and a
smooth-L1 on the centre over the slots whose colour is present.

Weights ship like the feature networks (:mod:`twopaths.eval.features`): ``shapes-reader
.safetensors`` and a JSON card (arch, test accuracies per attribute, recipe, date, torch version,
SHA-256) in ``eval/weights``, made by ``scripts/train_shapes_reader.py``; the hash is checked on
load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.data.shapes import COLOUR_NAMES, SHAPE_NAMES, SIZE_NAMES, ShapesData
from twopaths.errors import TwopathsError
from twopaths.eval.features import load_verified, vgg_blocks

__all__ = ["SHIPPED_READER", "Scenes", "ShapesReader", "compare_scenes", "load_shapes_reader", "read_scenes",
           "scenes_from_data"]

#: the reader that ships with the package (``eval/weights/shapes-reader.safetensors`` + ``.json``)
SHIPPED_READER = "shapes-reader"
_WHERE = {"shipped": (SHIPPED_READER,), "kind": "shapes reader", "script": "scripts/train_shapes_reader.py"}
_OUTPUTS = 1 + len(SHAPE_NAMES) + len(SIZE_NAMES) + 2  # presence, shape logits, size logits, x, y


@dataclass
class Scenes:
    """What is in N images, one slot per palette colour (P = len(COLOUR_NAMES)).

    Read by :class:`ShapesReader` or taken from the generator's truth (:func:`scenes_from_data`).
    Slots of absent colours hold -1 (shape, size) and NaN (x, y).
    """

    present: torch.Tensor  # (N, P) bool: an object of palette colour p is in the image
    shape: torch.Tensor  # (N, P) int64 index into SHAPE_NAMES, -1 where absent
    size: torch.Tensor  # (N, P) int64 index into SIZE_NAMES, -1 where absent
    x: torch.Tensor  # (N, P) float32 centre, fraction of the width from the left, NaN where absent
    y: torch.Tensor  # (N, P) float32 centre, fraction of the height from the top, NaN where absent

    def __len__(self) -> int:
        return len(self.present)


def scenes_from_data(data: ShapesData) -> Scenes:
    """The true scenes of generated shapes data: its per-object arrays moved to colour slots."""
    n, p = len(data), len(COLOUR_NAMES)
    scenes = Scenes(present=torch.zeros(n, p, dtype=torch.bool), shape=torch.full((n, p), -1),
                    size=torch.full((n, p), -1), x=torch.full((n, p), float("nan")),
                    y=torch.full((n, p), float("nan")))
    for j in range(data.colour.shape[1]):
        rows = torch.nonzero(data.colour[:, j] >= 0).squeeze(1)  # images with an object j
        slot = data.colour[rows, j]  # its colour is its slot
        scenes.present[rows, slot] = True
        scenes.shape[rows, slot] = data.shape[rows, j]
        scenes.size[rows, slot] = data.size[rows, j]
        scenes.x[rows, slot] = data.x[rows, j]
        scenes.y[rows, slot] = data.y[rows, j]
    return scenes


class ShapesReader(nn.Module):
    """Images (N, 3, R, R) in [-1, 1] -> (N, P, 8) slot outputs (see the module docstring).

    BatchNorm (Ioffe & Szegedy 2015) makes training quick; in :meth:`eval` mode the reader is a
    fixed deterministic function, as a metric must be.
    """

    def __init__(self, resolution: int = 32, widths: Sequence[int] = (32, 64, 128), convs: int = 1,
                 dim: int = 128) -> None:
        super().__init__()
        # constructor arguments, saved in the card so the weights can be rebuilt
        self.arch = {"resolution": resolution, "widths": list(widths), "convs": convs, "dim": dim}
        self.body, r = vgg_blocks(3, resolution, widths, convs, "ShapesReader")
        self.embed = nn.Linear(widths[-1] * r * r, dim)
        self.head = nn.Linear(dim, len(COLOUR_NAMES) * _OUTPUTS)
        self.resolution = resolution
        self.identity = "ShapesReader (untrained)"  # set by load_shapes_reader

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) in [-1, 1] -> (N, P, 8): presence logit, shape logits, size logits, x, y."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.resolution, self.resolution):
            raise TwopathsError(f"shapes reader {self.identity} takes images of shape (N, 3, {self.resolution}, "
                                f"{self.resolution}), got {tuple(x.shape)}")
        h = self.body(x)  # (N, widths[-1], R / 2**L, R / 2**L)
        h = torch.relu(self.embed(h.flatten(1)))  # (N, dim)
        return self.head(h).view(len(x), len(COLOUR_NAMES), _OUTPUTS)  # (N, P, 8)

    @staticmethod
    def decode(out: torch.Tensor) -> Scenes:
        """Slot outputs (N, P, 8) -> :class:`Scenes` (a colour is present when its logit > 0)."""
        s, z = len(SHAPE_NAMES), len(SIZE_NAMES)
        present = out[..., 0] > 0  # (N, P)
        nan = torch.tensor(float("nan"))
        return Scenes(present=present.cpu(),
                      shape=torch.where(present, out[..., 1:1 + s].argmax(-1), -1).cpu(),
                      size=torch.where(present, out[..., 1 + s:1 + s + z].argmax(-1), -1).cpu(),
                      x=torch.where(present, out[..., -2].float(), nan.to(out.device)).cpu(),
                      y=torch.where(present, out[..., -1].float(), nan.to(out.device)).cpu())

    def loss(self, x: torch.Tensor, target: Scenes, weights: dict[str, float] | None = None) -> torch.Tensor:
        """Scalar training loss of images x (N, 3, R, R) against their true scenes: a weighted sum
        of the terms ``presence``, ``shape``, ``size`` and ``centre`` (weights default to 1)."""
        w = {"presence": 1.0, "shape": 1.0, "size": 1.0, "centre": 1.0, **(weights or {})}
        out = self(x)  # (N, P, 8)
        s, z = len(SHAPE_NAMES), len(SIZE_NAMES)
        present = target.present.to(out.device)  # (N, P)
        obj = out[present]  # (K, 8): the slots that hold an object
        centre = torch.stack([target.x[target.present], target.y[target.present]], 1).to(out.device)  # (K, 2)
        terms = {
            "presence": F.binary_cross_entropy_with_logits(out[..., 0], present.float()),
            "shape": F.cross_entropy(obj[:, 1:1 + s], target.shape[target.present].to(out.device)),
            "size": F.cross_entropy(obj[:, 1 + s:1 + s + z], target.size[target.present].to(out.device)),
            # centres are fractions of the side: scaled by 10, an error of 1/10 of the image costs
            # about as much as a wrong class, and smooth-L1 turns linear beyond that
            "centre": F.smooth_l1_loss(10 * obj[:, -2:], 10 * centre),
        }
        return sum(w[k] * v for k, v in terms.items())


def _as_input(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images as the reader takes them: float in [-1, 1] (uint8 0..255 converted), (N, 3, R, R)
    at the reader's resolution (larger squares averaged down by area, smaller ones upsampled
    bilinearly)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
            or images.shape[2] != images.shape[3]:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise TwopathsError(f"the shapes reader reads square RGB images (N, 3, R, R), got {got}")
    if images.dtype == torch.uint8:
        images = images.float().div(127.5).sub(1.0)
    images = images.float()
    if not torch.isfinite(images).all():
        raise TwopathsError("the images to read contain NaN or infinite values")
    images = images.clamp(-1.0, 1.0)
    if images.shape[-1] > resolution:  # average over each output pixel's area: the box filter the
        images = F.interpolate(images, size=(resolution, resolution), mode="area")  # generator renders with
    elif images.shape[-1] < resolution:
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return images


@torch.no_grad()
def read_scenes(images: torch.Tensor, reader: ShapesReader | None = None, batch_size: int = 500) -> Scenes:
    """Read the scenes of ``images`` (N, 3, R, R), in [-1, 1] (or uint8), with ``reader`` (by
    default the shipped one). Square images of another size are resized to the reader's first."""
    reader = load_shapes_reader() if reader is None else reader
    reader.eval()
    device = next(reader.parameters()).device
    x = _as_input(images, reader.resolution)
    parts = [ShapesReader.decode(reader(x[i:i + batch_size].to(device))) for i in range(0, len(x), batch_size)]
    if not parts:
        raise TwopathsError("no images to read")
    return Scenes(*(torch.cat([getattr(p, f) for p in parts]) for f in ("present", "shape", "size", "x", "y")))


def compare_scenes(pred: Scenes, true: Scenes) -> dict[str, float]:
    """Per-attribute accuracy of read scenes against the truth (the reader's test numbers).

    ``presence``: fraction of (image, colour) slots right; ``colours``: fraction of images whose
    set of colours is exactly right; ``shape`` / ``size``: fraction of true objects whose slot
    reads the right shape / size (an object read as absent counts as wrong); ``centre_error``:
    mean absolute error of the centre coordinates of true objects read as present, in fractions
    of the side.
    """
    obj = true.present  # (N, P)
    both = obj & pred.present
    return {
        "presence": float((pred.present == true.present).float().mean()),
        "colours": float((pred.present == true.present).all(1).float().mean()),
        "shape": float((pred.shape[obj] == true.shape[obj]).float().mean()),
        "size": float((pred.size[obj] == true.size[obj]).float().mean()),
        "centre_error": float(torch.cat([(pred.x - true.x)[both], (pred.y - true.y)[both]]).abs().mean()),
    }


def load_shapes_reader(name_or_path: str | Path = SHIPPED_READER, device: torch.device | str = "cpu") \
        -> ShapesReader:
    """A trained :class:`ShapesReader` in eval mode: the shipped one (``"shapes-reader"``) or a
    ``.safetensors`` file with a ``.json`` card beside it. The weights' SHA-256 must match the
    card. ``reader.identity`` reads e.g. ``"shapes-reader@1a2b3c4d (test all-attribute acc 99.6%)"``.
    """
    reader, name, digest = load_verified(name_or_path, lambda arch: ShapesReader(**arch), **_WHERE)
    acc = reader.card.get("test_accuracy", {}).get("all")
    reader.identity = f"{name}@{digest[:8]}" + (f" (test all-attribute acc {100 * acc:.1f}%)" if acc else "")
    return reader.to(device)
