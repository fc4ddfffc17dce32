"""Associative recall at a controlled distance: a procedural probe of long-range dependencies.

The task follows the associative-recall probes of the Hyena/H3 line of work (Fu et al. 2023,
"Hungry Hungry Hippos", sec. 3.1; Arora et al. 2023, "Zoology", MQAR), with one change that makes
it a *distance* probe: the gap between the queried fact and the query is set exactly, so accuracy
can be read off per distance. Each sequence is a single line of characters::

    ..k3......a7...q1......m5.....?k3E
      ^^                          ^^^^
      target pair                 query marker, query key, answer, end of text

- ``NUM_PAIRS`` key-value pairs, keys distinct lowercase letters, values digits, placed at random
  non-overlapping positions among ``.`` filler tokens;
- then ``?``, a query key (one of the pair keys) and its value, the **answer**; the item ends with
  ``<|endoftext|>`` (``E`` above).

Layout of an item of ``context + 1`` token ids (a model reads ``[:context]``; the autoregressive
model predicts ``[1:]``, so the answer at ``context - 1`` is the last position every model sees)::

    index   0 .. q-2          q-1   q = context-2   context-1   context
    token   pairs + filler    ?     query key       answer      <|endoftext|>

**Distance** ``d`` counts positions from the query key back to the queried pair's value: the
value sits at ``q - d`` (its key at ``q - d - 1``), so ``tokens[q - d] == tokens[q + 1]``
always: the answer is the token exactly ``d`` before the query key. ``d`` ranges over
``2 .. context - 3`` (:func:`max_distance`). Training items draw ``d`` uniformly from that range;
evaluation items cycle through a grid (:data:`DISTANCES`). A model whose output at the query sees
fewer than ``d + 2`` tokens back (key included) cannot do better than chance, ``1 / len(VALUES)``.

Items are generated lazily from ``numpy.random.default_rng([seed, stream, index])``: instant,
identical on every machine, and the train/val/test/eval streams never share an item's randomness.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from twopaths.config import DataConfig
from twopaths.data.base import DatasetSummary, Splits
from twopaths.data.tokenizers import CharTokenizer
from twopaths.errors import ConfigError

KEYS = "abcdefghijklmnopqrstuvwxyz"  # 26 possible keys; one sequence uses NUM_PAIRS of them
VALUES = "0123456789"  # 10 possible values: chance accuracy is 1/10
FILLER = "."
QUERY = "?"
NUM_PAIRS = 8  # key-value pairs per sequence: the query names one, the other 7 are distractors
DISTANCES = (4, 8, 16, 32, 64, 128)  # the evaluation grid (cut to what the context allows)
MIN_DISTANCE = 2  # the value can sit right before the query marker

#: the split streams of the lazily generated items
STREAMS = {"train": 0, "val": 1, "test": 2, "eval": 3}


def recall_tokenizer() -> CharTokenizer:
    """The task's character vocabulary: ``<|endoftext|>``, ``<unk>``, ``.``, digits, ``?``, letters (40 ids)."""
    return CharTokenizer(sorted(set(KEYS + VALUES + FILLER + QUERY)))


def query_index(context: int) -> int:
    """Position of the query key in an item; the answer is at ``query_index + 1 == context - 1``."""
    return context - 2


def max_distance(context: int) -> int:
    """The longest distance an item of ``context`` can have: the queried key at position 0."""
    return query_index(context) - 1


def check_context(context: int) -> None:
    """ConfigError unless ``context`` fits the pairs, the query and at least one distance."""
    # positions 0..q-2 hold the pairs, and context - 4 pair starts; a placed pair rules out at most 3
    # starts, so 3 * (NUM_PAIRS - 1) + 1 starts always leave room for the last pair
    need = 3 * NUM_PAIRS + 2
    if context < need:
        raise ConfigError(f"dataset 'recall' needs data.context >= {need} (room for {NUM_PAIRS} key-value pairs "
                          f"at random places, the query marker, the query key and its answer); got {context}")


def distance_grid(context: int, distances: Sequence[int] = DISTANCES) -> tuple[int, ...]:
    """The grid distances an item of ``context`` can hold."""
    return tuple(d for d in distances if MIN_DISTANCE <= d <= max_distance(context))


def make_item(context: int, distance: int, rng: np.random.Generator, tokenizer: CharTokenizer) -> torch.Tensor:
    """One item, int64 ``(context + 1,)``, with the queried pair's value ``distance`` before the query key.

    The queried pair is placed first (key at ``q - distance - 1``, value at ``q - distance``), then
    the ``NUM_PAIRS - 1`` distractor pairs, one at a time, each at a start drawn uniformly among the
    free positions ``s`` with ``s, s + 1`` both free and both before the query marker. Keys are
    distinct, so the query has exactly one answer.
    """
    check_context(context)
    q = query_index(context)
    if not MIN_DISTANCE <= distance <= max_distance(context):
        raise ConfigError(f"recall distance {distance} is outside {MIN_DISTANCE}..{max_distance(context)} "
                          f"for data.context={context}")
    ids = {c: tokenizer.encode(c)[0] for c in KEYS + VALUES + FILLER + QUERY}
    keys = rng.choice(len(KEYS), size=NUM_PAIRS, replace=False)  # distinct; keys[0] is queried
    values = rng.integers(0, len(VALUES), size=NUM_PAIRS)
    seq = np.full(context + 1, ids[FILLER], dtype=np.int64)
    free = np.ones(q - 1, dtype=bool)  # positions 0 .. q-2 may hold pairs
    starts = [q - distance - 1]
    free[starts[0]:starts[0] + 2] = False
    for _ in range(NUM_PAIRS - 1):
        candidates = np.flatnonzero(free[:-1] & free[1:])
        # never empty: see check_context
        s = int(candidates[rng.integers(len(candidates))])
        free[s:s + 2] = False
        starts.append(s)
    for s, k, v in zip(starts, keys, values):
        seq[s], seq[s + 1] = ids[KEYS[k]], ids[VALUES[v]]
    seq[q - 1], seq[q] = ids[QUERY], ids[KEYS[keys[0]]]
    seq[q + 1] = ids[VALUES[values[0]]]  # the answer
    seq[q + 2] = tokenizer.eot_id
    return torch.from_numpy(seq)


class RecallDataset(Dataset):
    """``n`` recall items of ``context + 1`` tokens: ``{"tokens": int64 (context + 1,)}``.

    Item ``i`` is generated on demand from ``default_rng([seed, stream, i])``. Its distance is
    ``distances[i % len(distances)]`` when ``distances`` is given (an evaluation grid), else drawn
    uniformly from ``2 .. max_distance(context)`` by the same generator.
    """

    def __init__(self, n: int, context: int, seed: int = 0, stream: int = 0,
                 distances: Sequence[int] | None = None, tokenizer: CharTokenizer | None = None):
        check_context(context)
        if n < 1:
            raise ConfigError(f"a recall dataset needs at least 1 item, got {n}")
        self.n, self.context, self.seed, self.stream = n, context, seed, stream
        self.distances = tuple(distances) if distances is not None else None
        if self.distances is not None:
            for d in self.distances:
                if not MIN_DISTANCE <= d <= max_distance(context):
                    raise ConfigError(f"recall distance {d} is outside {MIN_DISTANCE}..{max_distance(context)} "
                                      f"for data.context={context}")
        self.tokenizer = tokenizer or recall_tokenizer()

    def __len__(self) -> int:
        return self.n

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.stream, index])

    def distance(self, index: int) -> int:
        """The distance of item ``index`` (generating the item's randomness, not its tokens)."""
        if self.distances is not None:
            return self.distances[index % len(self.distances)]
        return int(self._rng(index).integers(MIN_DISTANCE, max_distance(self.context) + 1))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"item {index} out of range for {self.n} recall items")
        rng = self._rng(index)
        if self.distances is not None:
            d = self.distances[index % len(self.distances)]
        else:
            d = int(rng.integers(MIN_DISTANCE, max_distance(self.context) + 1))
        return {"tokens": make_item(self.context, d, rng, self.tokenizer)}


def eval_set(context: int, n_per_distance: int, seed: int = 0,
             distances: Sequence[int] = DISTANCES) -> tuple[torch.Tensor, torch.Tensor]:
    """The accuracy-vs-distance probe: ``n_per_distance`` items at each grid distance the context allows.

    Returns tokens int64 ``(N, context + 1)`` and their distances int64 ``(N,)``, N = grid size * n,
    from the ``eval`` stream (never a training item's randomness).
    """
    grid = distance_grid(context, distances)
    if not grid:
        raise ConfigError(f"no distance of {tuple(distances)} fits data.context={context} "
                          f"(the largest is {max_distance(context)})")
    data = RecallDataset(len(grid) * n_per_distance, context, seed, STREAMS["eval"], grid)
    tokens = torch.stack([data[i]["tokens"] for i in range(len(data))])  # (N, context + 1)
    dist = torch.tensor([data.distance(i) for i in range(len(data))], dtype=torch.int64)  # (N,)
    return tokens, dist


def chance_accuracy() -> float:
    """A guess among the values: the accuracy of a model that cannot see the queried pair."""
    return 1.0 / len(VALUES)


def load_recall_splits(cfg: DataConfig, run_dir: Path | None = None) -> Splits:
    """The ``recall`` dataset's splits for a run: ``data.size`` training items (distances uniform in
    ``2 .. data.context - 3``), validation and test items by the data's fractions of that, each
    split its own stream. The character tokenizer is fixed; it is saved to ``RUN/tokenizer.json``
    like any text run's, so ``sample`` and ``eval`` reload it without regenerating data."""
    from twopaths.data.text import split_counts

    if cfg.tokenizer != "char":
        raise ConfigError(f"dataset 'recall' is character-level: data.tokenizer must be 'char', got '{cfg.tokenizer}'")
    check_context(cfg.context)
    tokenizer = recall_tokenizer()
    if run_dir is not None and not (Path(run_dir) / "tokenizer.json").is_file():
        path = Path(run_dir) / "tokenizer.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")  # unique: DDP ranks may race here
        tokenizer.save(tmp)
        tmp.replace(path)
    _, n_val, n_test = split_counts(cfg.size, cfg.val_fraction, cfg.test_fraction, unit="items")
    make = lambda n, split: RecallDataset(n, cfg.context, cfg.seed, STREAMS[split], tokenizer=tokenizer)  # noqa: E731
    return Splits(make(cfg.size, "train"), make(n_val, "val"), make(n_test, "test"),
                  {"source": "procedural", "tokenizer": tokenizer, "distances": distance_grid(cfg.context)})


def summarize() -> DatasetSummary:
    """The ``twopaths data list`` row."""
    return DatasetSummary("recall", "text", "procedural", "any number (data.size, default 10,000)",
                          f"{NUM_PAIRS} key-value pairs, then a query; answer d <= data.context - 3 back; 40 ids")


__all__ = ["DISTANCES", "RecallDataset", "chance_accuracy", "distance_grid", "eval_set", "load_recall_splits",
           "make_item", "max_distance", "query_index", "recall_tokenizer"]
