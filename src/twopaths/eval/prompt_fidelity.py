"""Prompt fidelity of text-to-image samples on the shapes language: is what the prompt says in the
picture?

Each image is read by the shapes scene reader (:mod:`twopaths.eval.shapes_reader`: per palette
colour, present or not, and that object's shape, size and centre) and its prompt is parsed by
:func:`twopaths.data.shapes.parse_caption` ("a small red circle left of a large blue square";
sizes may be left out). The checks follow GenEval (Ghosh et al. 2023, "GenEval: An
Object-Focused Framework for Evaluating Text-to-Image Alignment"): an object detector reads the
image and every attribute the prompt names is checked on the detected objects, with the relative
position judged from the object centres. Here the detector is the in-project reader, and the
colour names the object (the prompt's colours are distinct), so "the red circle" is the object in
the red slot.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from twopaths.data.shapes import RELATIONS, parse_caption
from twopaths.errors import ConfigError, TwopathsError
from twopaths.eval.shapes_reader import Scenes, ShapesReader, load_shapes_reader, read_scenes

__all__ = ["ATTRIBUTES", "prompt_fidelity", "score_scenes", "summarise"]

ATTRIBUTES: tuple[str, ...] = ("colour", "shape", "size", "relation", "all")
# Unit vector (dx, dy) of each relation of object 0 to object 1, y pointing down (image rows).
_DIRECTIONS = {"left of": (-1.0, 0.0), "right of": (1.0, 0.0), "above": (0.0, -1.0), "below": (0.0, 1.0)}
# GenEval's cone: the centre offset must lie within 60 degrees of the prompted direction.
_MIN_COSINE = 0.5


def _parse_all(prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Parsed prompts as (N,) int64 arrays: n_objects, relation (-1) and colour/shape/size of
    objects 0 and 1 (-1 where absent; size -1 where the prompt gives none)."""
    cols = {k: [] for k in ("n_objects", "relation", "colour0", "shape0", "size0", "colour1", "shape1", "size1")}
    parsed: dict[str, tuple] = {}
    for i, text in enumerate(prompts):
        if not isinstance(text, str):
            raise ConfigError(f"prompt {i} is a {type(text).__name__}, not a string")
        if text not in parsed:
            try:
                parsed[text] = parse_caption(text)
            except ConfigError as exc:
                raise ConfigError(f"prompt {i}: {exc}") from None
        objects, relation = parsed[text]
        cols["n_objects"].append(len(objects))
        cols["relation"].append(-1 if relation is None else relation)
        for j in range(2):
            obj = objects[j] if j < len(objects) else {}
            for attr in ("colour", "shape", "size"):
                value = obj.get(attr)
                cols[f"{attr}{j}"].append(-1 if value is None else value)
    return {k: torch.tensor(v, dtype=torch.int64) for k, v in cols.items()}


def score_scenes(scenes: Scenes, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per image and attribute, whether the scene shows what its prompt says.

    Returns ``{attribute: (N,) int8}`` for the :data:`ATTRIBUTES`, 1 right, 0 wrong, -1 not
    scored (see :func:`prompt_fidelity` for the definitions). ``scenes`` may be read by the reader
    or be the truth (:func:`~twopaths.eval.shapes_reader.scenes_from_data`).
    """
    if len(scenes) != len(prompts):
        raise TwopathsError(f"{len(scenes)} images but {len(prompts)} prompts; give one prompt per image")
    p = _parse_all(prompts)
    n = len(prompts)
    rows = torch.arange(n)
    two = p["n_objects"] == 2  # (N,)
    wanted = torch.zeros_like(scenes.present)  # (N, P): the prompt's colours
    wanted[rows, p["colour0"]] = True
    wanted[rows[two], p["colour1"][two]] = True
    colour = (scenes.present == wanted).all(1)  # (N,) exactly the prompted colours

    def read(j: int, field: str) -> torch.Tensor:
        """The scene's value of `field` in the slot of object j's colour (object 0 where j is absent)."""
        c = torch.where(p[f"colour{j}"] >= 0, p[f"colour{j}"], p["colour0"])
        return getattr(scenes, field)[rows, c]

    named = [torch.ones(n, dtype=torch.bool), two]  # (N,) the prompt names object j
    here = [read(j, "present") for j in range(2)]  # (N,) object j's colour is in the scene
    shape_ok = [~named[j] | (here[j] & (read(j, "shape") == p[f"shape{j}"])) for j in range(2)]
    stated = [named[j] & (p[f"size{j}"] >= 0) for j in range(2)]  # the prompt states object j's size
    size_ok = [~stated[j] | (here[j] & (read(j, "size") == p[f"size{j}"])) for j in range(2)]

    # relation of object 0 to object 1: the centre offset within 60 degrees of the prompted direction
    dx = read(0, "x") - read(1, "x")  # (N,); NaN where a colour is absent
    dy = read(0, "y") - read(1, "y")
    directions = torch.tensor([_DIRECTIONS[r] for r in RELATIONS])  # (4, 2)
    d = directions[p["relation"].clamp(min=0)]  # (N, 2)
    along = dx * d[:, 0] + dy * d[:, 1]  # (N,) component of the offset along the prompted direction
    length = torch.sqrt(dx * dx + dy * dy)
    relation = two & here[0] & here[1] & (along > _MIN_COSINE * length) & (length > 0)

    shape, size = shape_ok[0] & shape_ok[1], size_ok[0] & size_ok[1]
    everything = colour & shape & size & (relation | ~two)

    def mark(ok: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        return torch.where(scored, ok.to(torch.int8), torch.tensor(-1, dtype=torch.int8))

    always = torch.ones(n, dtype=torch.bool)
    return {"colour": mark(colour, always), "shape": mark(shape, always), "size": mark(size, stated[0] | stated[1]),
            "relation": mark(relation, two), "all": mark(everything, always)}


def prompt_fidelity(images: torch.Tensor, prompts: Sequence[str], reader: ShapesReader | None = None,
                    batch_size: int = 500) -> dict:
    """How often ``images`` (N, 3, R, R) in [-1, 1] (or uint8) show what their ``prompts`` say.

    Each image is read with ``reader`` (default: the shipped ``shapes-reader``, trained at 32x32;
    larger square images are averaged down to 32x32, which reads 64x64 renders as well as 32x32
    ones, while smaller images are upsampled and lose shape detail) and each prompt is parsed with
    :func:`~twopaths.data.shapes.parse_caption`. Per image, with "the object of colour c" meaning
    the reader's slot for c:

    - **colour**: the set of colours present is exactly the prompt's (its one colour for a
      one-object prompt, so that object is the only one; both colours and nothing else for a
      two-object prompt). Scored for every prompt.
    - **shape**: every object of the prompt is present (by its colour) and has the prompted
      shape. Scored for every prompt.
    - **size**: every object whose size the prompt states is present and has that size. Scored
      only for prompts that state at least one size.
    - **relation**: for two-object prompts, both colours are present and the offset from the
      centre of object 1 to the centre of object 0 points within 60 degrees of the prompted
      direction (its component along the direction exceeds half its length: GenEval's rule).
      Scored only for two-object prompts.
    - **all**: every attribute scored for that prompt is right.

    Returns ``{attribute: fraction right among the prompts where it is scored}`` (NaN where no
    prompt is scored), ``counts``: ``{attribute: {"correct": k, "scored": m}}``, ``n`` (images)
    and ``reader`` (the reader's identity, e.g. ``"shapes-reader@1a2b3c4d ..."``).
    """
    if len(images) != len(prompts):
        raise TwopathsError(f"{len(images)} images but {len(prompts)} prompts; give one prompt per image")
    _parse_all(prompts)  # report a bad prompt before reading any image
    reader = load_shapes_reader() if reader is None else reader
    out = summarise(score_scenes(read_scenes(images, reader, batch_size), prompts))
    out["reader"] = reader.identity
    return out


def summarise(marks: dict[str, torch.Tensor]) -> dict:
    """Fractions and counts from :func:`score_scenes`' marks, as :func:`prompt_fidelity` returns them."""
    out: dict = {}
    counts = {}
    for attr in ATTRIBUTES:
        correct, scored = int((marks[attr] == 1).sum()), int((marks[attr] >= 0).sum())
        out[attr] = correct / scored if scored else float("nan")
        counts[attr] = {"correct": correct, "scored": scored}
    out.update(counts=counts, n=len(marks["all"]))
    return out
