"""Tokenizers: characters, and byte-level BPE trained locally. One interface, one JSON file each.

Two kinds, because they answer different questions:

- ``char``: one id per character seen in training. Tiny vocabulary, long sequences, nothing
  learned before the model; the honest baseline for small corpora.
- ``bpe``: byte-level BPE (GPT-2 style) trained here with the Hugging Face ``tokenizers``
  library, never downloaded. Starts from all 256 bytes, so *any* string encodes and decodes back
  exactly; merges shorten sequences roughly 4x on English.

Both reserve ``<|endoftext|>`` (:attr:`Tokenizer.eot_id`), which separates documents in a token
stream (see ``twopaths.data.text.encode_documents``). :meth:`Tokenizer.decode` writes special
tokens out as their literal text, so a sampled end of text stays visible.

A saved tokenizer is one JSON file; :func:`load_tokenizer` tells the kinds apart by content::

    char: {"type": "char", "chars": ["\\n", " ", "!", ...], "specials": ["<|endoftext|>", "<unk>"]}
    bpe:  the ``tokenizers`` library's own format ({"version": ..., "model": {"type": "BPE", ...}})
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from twopaths.data.text import read_text_file
from twopaths.errors import ConfigError, DataError

PathLike = str | os.PathLike[str]

EOT = "<|endoftext|>"
UNK = "<unk>"
TOKENIZER_KINDS = ("char", "bpe", "smiles")


class Tokenizer(ABC):
    """What every tokenizer offers: text <-> ids, a vocabulary size, an end-of-text id, saving."""

    kind: ClassVar[str]

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids for ``text``; no special tokens are added."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text for ``ids``; special tokens appear as their literal text."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids; every id is in ``range(vocab_size)``."""

    @property
    @abstractmethod
    def eot_id(self) -> int:
        """Id of ``<|endoftext|>``."""

    @abstractmethod
    def save(self, path: PathLike) -> None:
        """Write the tokenizer as one JSON file that :func:`load_tokenizer` reads back."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]``; subclasses may do it faster."""
        return [self.encode(text) for text in texts]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------------


class CharTokenizer(Tokenizer):
    """One id per character (Unicode code point) seen in training.

    Ids: the specials first (``<|endoftext|>`` = 0, ``<unk>`` = 1), then the characters in sorted
    order. Sorting makes the vocabulary depend only on the *set* of characters, so retraining on
    the same text gives the same ids. A character not seen in training encodes as ``<unk>``
    rather than failing: validation and user prompts routinely contain a stray character the
    training split lacked.
    """

    kind = "char"
    SPECIALS: ClassVar[tuple[str, ...]] = (EOT, UNK)

    def __init__(self, chars: Sequence[str], specials: Sequence[str] = SPECIALS) -> None:
        chars, specials = list(chars), list(specials)
        for special in self.SPECIALS:
            if special not in specials:
                raise DataError(f"{self.kind} tokenizer lacks the special token {special!r}")
        bad = [c for c in chars if not (isinstance(c, str) and self._is_token(c))]
        if bad:
            raise DataError(f"{self.kind} tokenizer vocabulary has entries that are not one "
                            f"{self.token_name}: {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise DataError(f"{self.kind} tokenizer vocabulary lists a {self.token_name} twice")
        self.chars = chars
        self.specials = specials
        self._itos: list[str] = specials + chars  # id -> text
        self._stoi: dict[str, int] = {c: i + len(specials) for i, c in enumerate(chars)}
        self._unk_id = specials.index(UNK)
        self._eot_id = specials.index(EOT)

    token_name: ClassVar[str] = "character"

    @staticmethod
    def _is_token(piece: str) -> bool:
        return len(piece) == 1

    @staticmethod
    def split(text: str) -> Sequence[str]:
        """``text`` as the pieces that get one id each: here its characters."""
        return text

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """Vocabulary = sorted set of the pieces (:meth:`split`) in ``texts``, plus the specials."""
        seen: set[str] = set()
        for text in texts:
            seen.update(cls.split(text))
        if not seen:
            raise DataError(f"cannot train a {cls.kind} tokenizer: the training text is empty")
        return cls(sorted(seen))

    def encode(self, text: str) -> list[int]:
        stoi, unk = self._stoi, self._unk_id
        return [stoi.get(c, unk) for c in self.split(text)]

    def decode(self, ids: Sequence[int]) -> str:
        itos, n = self._itos, len(self._itos)
        pieces = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"id {i} is outside the vocabulary (size {n})")
            pieces.append(itos[i])
        return "".join(pieces)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    @property
    def eot_id(self) -> int:
        return self._eot_id

    @property
    def unk_id(self) -> int:
        return self._unk_id

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "chars": self.chars, "specials": self.specials}

    @classmethod
    def from_dict(cls, obj: dict[str, Any], source: str = "char tokenizer") -> CharTokenizer:
        chars, specials = obj.get("chars"), obj.get("specials")
        if not isinstance(chars, list) or not isinstance(specials, list):
            raise DataError(f"{source}: a {cls.kind} tokenizer needs lists 'chars' and 'specials'")
        try:
            return cls(chars, specials)
        except DataError as exc:
            raise DataError(f"{source}: {exc}") from None

    def save(self, path: PathLike) -> None:
        # ensure_ascii: escapes keep the file valid UTF-8 whatever characters were trained on.
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# SMILES
# --------------------------------------------------------------------------------------------

#: one SMILES token: a bracket atom ([nH], [C@@H], [O-]), a two-letter organic atom (Br, Cl), a one-letter
#: atom (aromatic in lower case), a bond (- = # $ : / \\), a branch, a ring-bond number (one digit or %nn),
#: the dot of a disconnected structure, chirality and wildcards (Weininger 1988; the split of the Molecular
#: Transformer, Schwaller et al. 2019, ACS Cent. Sci. 5, 1572, and of MOSES' CharRNN vocabulary)
SMILES_TOKEN = re.compile(r"\[[^\[\]]+\]|Br|Cl|[BCNOSPFI]|[bcnosp]|%\d\d|\d|[-=#$:/\\().+@*~?>]")


class SmilesTokenizer(CharTokenizer):
    """One id per SMILES token seen in training (:data:`SMILES_TOKEN`): ``Cl`` and ``[nH]`` are one token
    each, so a model never spells an atom letter by letter. Otherwise as :class:`CharTokenizer` (sorted
    vocabulary, ``<unk>`` for a token training never saw). A string the pattern cannot cover entirely is
    not SMILES and is refused with the offending position."""

    kind = "smiles"
    token_name: ClassVar[str] = "SMILES token"

    @staticmethod
    def _is_token(piece: str) -> bool:
        return SMILES_TOKEN.fullmatch(piece) is not None

    @staticmethod
    def split(text: str) -> list[str]:
        tokens, at = [], 0
        for match in SMILES_TOKEN.finditer(text):
            if match.start() != at:
                break
            tokens.append(match.group())
            at = match.end()
        if at != len(text):
            raise DataError(f"not a SMILES string: {text!r} has {text[at:at + 5]!r} at offset {at}, "
                            f"which is no SMILES token")
        return tokens


# --------------------------------------------------------------------------------------------
# Byte-level BPE
# --------------------------------------------------------------------------------------------


class BPETokenizer(Tokenizer):
    """Byte-level BPE, a thin wrapper over a ``tokenizers.Tokenizer``.

    Byte-level means text is first mapped to its UTF-8 bytes (each shown as one printable
    character, GPT-2's trick), and merges are learned over bytes. Because the initial alphabet is
    all 256 bytes, no input is ever unknown, and ``decode(encode(s)) == s`` for every string.
    No prefix space is added, so that round trip is exact at the start of the text too.

    One caveat inherited from ``tokenizers``: the literal text ``<|endoftext|>`` inside an input
    encodes as the special token, not as its characters (round trips still hold).
    """

    kind = "bpe"

    def __init__(self, backend: HFTokenizer, source: str = "BPE tokenizer") -> None:
        eot = backend.token_to_id(EOT)
        if eot is None:
            raise DataError(f"{source}: has no {EOT} token, so it cannot separate documents")
        self.backend = backend
        self._eot_id = int(eot)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
        """Learn merges on ``texts`` until ``vocab_size`` ids exist (or no pair occurs
        ``min_frequency`` times: a small corpus can give a smaller vocabulary).

        ``vocab_size`` counts the 256 byte tokens and ``<|endoftext|>``, so it must be >= 257.
        """
        if vocab_size < 257:
            raise ConfigError(
                f"BPE vocab_size must be at least 257 (256 byte tokens + {EOT}), got {vocab_size}"
            )
        if min_frequency < 1:
            raise ConfigError(f"min_frequency must be at least 1, got {min_frequency}")
        backend = HFTokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[EOT],  # id 0
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes
            show_progress=False,
        )
        texts = list(texts)
        if not any(texts):
            raise DataError("cannot train a BPE tokenizer: the training text is empty")
        backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
        return cls(backend)

    @classmethod
    def from_file(cls, path: PathLike) -> BPETokenizer:
        try:
            backend = HFTokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exception with its parse error
            raise DataError(f"{path}: not a valid tokenizers JSON file ({exc})") from None
        return cls(backend, source=str(path))

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # Parallel in Rust; the fortunes corpus encodes in about a second.
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def eot_id(self) -> int:
        return self._eot_id

    def save(self, path: PathLike) -> None:
        self.backend.save(str(path))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int | None = None) -> Tokenizer:
    """Train a ``"char"`` or ``"bpe"`` tokenizer on ``texts``.

    ``vocab_size`` is required for BPE and ignored for characters, whose vocabulary is whatever
    characters the text contains.
    """
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "smiles":
        return SmilesTokenizer.train(texts)
    if kind == "bpe":
        if vocab_size is None:
            raise ConfigError("a BPE tokenizer needs a vocab_size (e.g. 2048)")
        return BPETokenizer.train(texts, vocab_size)
    raise ConfigError(
        f"unknown tokenizer kind {kind!r}; choose one of: {', '.join(TOKENIZER_KINDS)}"
    )


def run_tokenizer(path: Path | None, build: Callable[[], Tokenizer]) -> Tokenizer:
    """A run's tokenizer kept at ``path`` (``RUN/tokenizer*.json``): loaded when the file exists, else
    ``build()`` and saved there (atomically: DDP ranks may race). Reloading, never retraining, keeps a
    resumed run, ``sample`` and ``eval`` on exactly the ids the model was trained with; so a missing
    file next to trained checkpoints is refused rather than rebuilt. ``path`` None: build, keep nothing."""
    if path is not None and path.is_file():
        return load_tokenizer(path)
    if path is not None and any((path.parent / "checkpoints").glob("step_*")):  # trained, but its ids are gone
        raise DataError(f"{path} is missing, but {path.parent} holds trained checkpoints: a tokenizer rebuilt from "
                        f"the data now need not give the ids the model learned; restore the file from a copy "
                        f"of the run")
    tokenizer = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tokenizer.save(tmp)
        tmp.replace(path)
    return tokenizer


def load_tokenizer(path: PathLike) -> Tokenizer:
    """Load a tokenizer saved by :meth:`Tokenizer.save`, telling the kinds apart by content.

    Raises DataError if the file is missing, is not JSON, or is JSON of no kind we know.
    """
    text = read_text_file(path)  # strict UTF-8, clear error for a missing file
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not a tokenizer file: not JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    if isinstance(obj, dict) and obj.get("type") in ("char", "smiles"):
        return (CharTokenizer if obj["type"] == "char" else SmilesTokenizer).from_dict(obj, source=str(path))
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "version" in obj:
        model_type = obj["model"].get("type")
        if model_type != "BPE":
            raise DataError(
                f"{path}: a tokenizers file with a {model_type!r} model; twopaths reads BPE only"
            )
        return BPETokenizer.from_file(path)
    found = f"keys {sorted(obj)[:6]}" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}"
    raise DataError(
        f"{path}: not a tokenizer twopaths knows (found {found}); expected a char tokenizer "
        f'({{"type": "char", ...}}) or a Hugging Face tokenizers BPE file'
    )
