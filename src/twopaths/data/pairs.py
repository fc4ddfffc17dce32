"""Sequence-to-sequence pairs: numbers written out in words, and any tab-separated parallel text.

The numbers task ("4321" -> "quatre mille trois cent vingt et un") is a real, if small,
translation problem, generated offline by ``num2words`` in dozens of languages: the model must
learn a vocabulary, word order and each language's irregularities (French "soixante-dix", German
"einundzwanzig" with units before tens). Splits are *by number*, so a test number never occurs in
training and a high test score means the model learned the rule, not the table.

Items follow the pairs convention of ``twopaths.data.base``: ``{"src": str, "tgt": str}``;
tokenizing is the model's business, with the character vocabularies :func:`pair_tokenizers` builds
from the training pairs (and keeps with the run).
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import num2words
import numpy as np
from torch.utils.data import Dataset

from twopaths.data.base import DatasetSummary
from twopaths.data.text import read_text_file, split_counts
from twopaths.data.tokenizers import EOT, UNK, CharTokenizer, run_tokenizer
from twopaths.errors import ConfigError, DataError

PathLike = str | os.PathLike[str]

Pair = tuple[str, str]


# --------------------------------------------------------------------------------------------
# Numbers in words
# --------------------------------------------------------------------------------------------


def supported_languages() -> list[str]:
    """Language codes ``num2words`` can write cardinals in ("en", "fr", "de", "pt_BR", ...)."""
    return sorted(num2words.CONVERTER_CLASSES)


def _check_language(lang: str) -> None:
    if lang not in num2words.CONVERTER_CLASSES:
        codes = supported_languages()
        common = [c for c in ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "ja") if c in codes]
        raise DataError(
            f"num2words does not know the language {lang!r}; try one of {', '.join(common)} "
            f"({len(codes)} supported in all; twopaths.data.pairs.supported_languages() lists them)"
        )


def _cardinal_writer(lang: str, max_number: int) -> Callable[[int], str]:
    """A function ``n -> num2words(n, lang=lang)`` for ``0 <= n <= max_number``, made fast.

    Why not just call ``num2words``: for most European languages it splits each number by scanning
    every power of ten the language has a name for, up to 10**600, comparing big integers each
    time; 100,000 French numbers take about 12 s. A copy of the converter whose table stops at
    ``max_number`` scans only the few entries that can matter and writes the same words about 10x
    faster (the scan skips every entry larger than the number anyway). That copy touches
    ``num2words`` internals, so it is checked against the real ``num2words`` on numbers of every
    length first, and the plain call is used whenever the table is not where we expect it or any
    answer differs.
    """

    def reference(n: int) -> str:
        return num2words.num2words(n, lang=lang)

    converter = num2words.CONVERTER_CLASSES[lang]
    cards = getattr(converter, "cards", None)
    if not isinstance(cards, dict) or not hasattr(converter, "to_cardinal"):
        return reference
    fast = copy.copy(converter)  # shallow: only ``cards`` is replaced, the shared one is untouched
    fast.cards = OrderedDict((k, v) for k, v in cards.items() if k <= max_number)

    # Every number up to 120, and around each power of ten: where languages change their rules.
    probes = {*range(121), 4321, 80_081, 91_970, max_number // 3, max_number}
    probes |= {m * 10**k + d for k in range(2, 10) for m in (1, 2, 7) for d in (0, 1, 21, 80)}
    probes = sorted(n for n in probes if n <= max_number)
    try:
        if all(fast.to_cardinal(n) == reference(n) for n in probes):
            return fast.to_cardinal
    except Exception:  # noqa: BLE001 - any failure of the shortcut means: use the plain call
        pass
    return reference


def numbers_pairs(
    lang: str,
    max_number: int = 99_999,
    seed: int = 0,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> dict[str, list[Pair]]:
    """Pairs ``("4321", "quatre mille trois cent vingt et un")`` for every number in
    ``0..max_number``, split into ``train``/``val``/``test`` by number.

    The split is a fixed-seed permutation of the numbers, so the same ``seed`` gives the same
    split everywhere and no number is in two splits. Takes about 1.3 s for the default 100,000
    numbers in any language (see :func:`_cardinal_writer`).

    Raises DataError for a language ``num2words`` does not support (listing some that it does) or
    a number it cannot write; ConfigError for a negative ``max_number``.
    """
    _check_language(lang)
    if max_number < 0:
        raise ConfigError(f"max_number must be >= 0, got {max_number}")
    n_train, n_val, _ = split_counts(max_number + 1, val_fraction, test_fraction, "numbers")
    order = np.random.default_rng(seed).permutation(max_number + 1)

    write = _cardinal_writer(lang, max_number)

    def pair(n: int) -> Pair:
        try:
            return str(n), write(n)
        except Exception as exc:  # noqa: BLE001 - num2words bugs surface as assorted errors
            raise DataError(
                f"num2words cannot write {n} in {lang!r} ({type(exc).__name__}: {exc}); "
                f"use another language or a smaller max_number"
            ) from None

    pairs = [pair(int(n)) for n in order]
    return {
        "train": pairs[:n_train],
        "val": pairs[n_train : n_train + n_val],
        "test": pairs[n_train + n_val :],
    }


def summarize_numbers(lang: str, max_number: int = 99_999) -> DatasetSummary:
    """One ``twopaths data list`` row for ``numbers-<lang>``, with an example pair; cheap (writes
    one number, not all of them). An unsupported language gives ``available=False``."""
    name = f"numbers-{lang}"
    try:
        _check_language(lang)
        example = 4321 if max_number >= 4321 else max_number
        words = num2words.num2words(example, lang=lang)
    except Exception as exc:  # noqa: BLE001 - DataError above, or a num2words failure
        return DatasetSummary(name, "pairs", str(exc), "-", "-", available=False)
    return DatasetSummary(
        name=name,
        kind="pairs",
        source="procedural (num2words)",
        size=f"{max_number + 1:,} pairs, split by number",
        shapes=f'"{example}" -> "{words}"',
    )


# --------------------------------------------------------------------------------------------
# Tab-separated parallel text
# --------------------------------------------------------------------------------------------


def read_tsv_pairs(path: PathLike) -> list[Pair]:
    """Read ``source<TAB>target`` lines from a UTF-8 file (e.g. a Tatoeba/Anki export).

    Each non-empty line must hold exactly one tab; spaces around each side are stripped. Anything
    else is a DataError naming the file and line, because guessing which tab separates the
    languages would silently train on misaligned pairs.
    """
    text = read_text_file(path).replace("\r\n", "\n")
    pairs: list[Pair] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        tabs = line.count("\t")
        if tabs != 1:
            hint = " (keep two columns, e.g. `cut -f1,2`)" if tabs > 1 else ""
            raise DataError(
                f"{path}, line {number}: expected exactly one tab between source and target, "
                f"found {tabs}{hint}"
            )
        src, tgt = (side.strip() for side in line.split("\t"))
        if not src or not tgt:
            raise DataError(f"{path}, line {number}: empty {'source' if not src else 'target'}")
        pairs.append((src, tgt))
    if not pairs:
        raise DataError(f"{path}: no tab-separated pairs found")
    return pairs


class PairDataset(Dataset):
    """A list of ``(source, target)`` strings as a Dataset of ``{"src": str, "tgt": str}``."""

    def __init__(self, pairs: Sequence[Pair]) -> None:
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, str]:
        src, tgt = self.pairs[index]
        return {"src": src, "tgt": tgt}


# --------------------------------------------------------------------------------------------
# Character vocabularies of a pair dataset
# --------------------------------------------------------------------------------------------

PAD, BOS = "<pad>", "<bos>"
#: ids 0-3 of every pair tokenizer; ``<|endoftext|>`` doubles as end-of-sequence
PAIR_SPECIALS = (EOT, UNK, PAD, BOS)


def pair_tokenizers(train: Sequence[Pair], run_dir: os.PathLike[str] | str | None = None) -> dict[str, CharTokenizer]:
    """Character tokenizers of the source and the target side, ``{"src_tokenizer", "tgt_tokenizer"}``.

    Each is trained on its side of the *training* pairs (a character only in validation or test
    encodes as ``<unk>``) with the specials :data:`PAIR_SPECIALS`: ``<pad>``, ``<bos>`` and
    ``<|endoftext|>`` as end of sequence. Like a text run's ``tokenizer.json``, they are saved as
    ``RUN/tokenizer_src.json`` and ``RUN/tokenizer_tgt.json`` and reloaded (never retrained) when
    they exist, so a resumed run, ``translate`` and ``eval`` use exactly the training ids.
    """
    def build(index: int) -> CharTokenizer:
        chars = sorted({ch for pair in train for ch in pair[index]})
        if not chars:
            raise DataError("cannot build a pair vocabulary: the training pairs are empty")
        return CharTokenizer(chars, PAIR_SPECIALS)

    out: dict[str, CharTokenizer] = {}
    for side, index in (("src", 0), ("tgt", 1)):
        path = Path(run_dir) / f"tokenizer_{side}.json" if run_dir is not None else None
        tokenizer = run_tokenizer(path, lambda: build(index))
        if not isinstance(tokenizer, CharTokenizer) or not set(PAIR_SPECIALS) <= set(tokenizer.specials):
            raise DataError(f"{path}: not a pair tokenizer (a char tokenizer with {', '.join(PAIR_SPECIALS)})")
        out[f"{side}_tokenizer"] = tokenizer
    return out
