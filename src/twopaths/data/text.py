"""Plain-text corpora: reading them strictly, finding the fortunes corpus, splitting by document,
and cutting token streams into fixed-length training windows.

The default real corpus is the Debian ``fortunes`` package (~15k quotations, ~2.6 MB), but any
UTF-8 text file or folder works: a file with ``%``-only lines is read in fortune format, any other
file is read as blank-line-separated paragraphs.

Pipeline, with the shapes at each step::

    read_corpus(path)           -> list[str]                       documents
    split_documents(docs)       -> {"train"|"val"|"test": list[str]}
    encode_documents(tok, docs) -> int64 (n_tokens,)               EOT between documents
    TokenWindows(tokens, C)     -> item {"tokens": int64 (C + 1,)}  inputs [:-1], targets [1:]
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from twopaths.data.base import DEBIAN_FORTUNES, DatasetSummary, data_root, read_bytes
from twopaths.errors import ConfigError, DataError

if TYPE_CHECKING:  # only for annotations; tokenizers.py does not depend on this module either
    from twopaths.data.tokenizers import Tokenizer

PathLike = str | os.PathLike[str]

# A line holding only "%" separates two fortunes (the strfile(1) format).
_FORTUNE_SEPARATOR = re.compile(r"^%[ \t]*$", re.MULTILINE)
# One or more blank (empty or whitespace-only) lines separate two paragraphs. The match ends at a
# newline, so the indentation of the next paragraph's first line is kept.
_PARAGRAPH_SEPARATOR = re.compile(r"\n[ \t\f\v]*\n(?:[ \t\f\v]*\n)*")
# Blank lines at the start of a document carry no text; indentation of the first real line does.
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t\f\v]*\n)+")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _decode_utf8(data: bytes, path: Path) -> str:
    """Decode ``data`` as strict UTF-8, or raise a DataError that says exactly where it breaks.

    Strict, because silently replacing bad bytes with U+FFFD would put tokens into the vocabulary
    that exist in no real text, and a Latin-1 file read as UTF-8 is almost always a mistake the
    user wants to hear about. A leading byte-order mark is dropped: it is valid UTF-8 but not text.
    """
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end]
        line = data.count(b"\n", 0, exc.start) + 1
        context = data[max(0, exc.start - 8) : exc.end + 8]
        raise DataError(
            f"{path}: not valid UTF-8 at byte offset {exc.start} (line {line}): "
            f"byte(s) {bad.hex(' ')} ({exc.reason}); nearby bytes: {context.hex(' ')}. "
            f"Convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or remove it"
        ) from None
    return text.removeprefix("\ufeff")


def read_text_file(path: PathLike) -> str:
    """Read a whole file as strict UTF-8.

    Raises DataError if the path is missing or unreadable, or if the bytes are not UTF-8 (the
    message names the file, the byte offset and the offending bytes in hex).
    """
    path = Path(path)
    return _decode_utf8(read_bytes(path, "a text file"), path)


def _documents_from_text(text: str) -> list[str]:
    """Split one file's text into documents: on ``%`` lines if it has any, else on blank lines."""
    text = text.replace("\r\n", "\n")
    separator = _FORTUNE_SEPARATOR if _FORTUNE_SEPARATOR.search(text) else _PARAGRAPH_SEPARATOR
    documents = []
    for piece in separator.split(text):
        document = _LEADING_BLANK_LINES.sub("", piece).rstrip()
        if document:
            documents.append(document)
    return documents


def _corpus_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that belong to the corpus, recursively, in sorted order.

    Skipped, each for a reason:

    - hidden files and folders (``.git``, editor swap files): never meant as content;
    - ``NAME.dat`` next to ``NAME``: a strfile(1) index of the fortune file ``NAME``, binary;
    - symlinks whose target is another file of the folder or a file already taken: Debian ships
      every fortune file twice (``art.u8 -> art``), and reading both would put every document in
      the corpus twice, and so into train *and* test;
    - symlinked folders are not followed (no loops, no surprises outside the folder).

    Binary files are skipped later, by content (see :func:`read_corpus`).
    """
    candidates: list[Path] = []
    for root, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # prune hidden folders
        candidates.extend(Path(root, name) for name in filenames if not name.startswith("."))
    candidates.sort(key=lambda p: p.relative_to(folder).parts)

    regular = {p.resolve() for p in candidates if not p.is_symlink() and p.is_file()}
    taken: set[Path] = set()
    files: list[Path] = []
    for path in candidates:
        if path.suffix == ".dat" and path.with_suffix("").is_file():
            continue  # fortune index
        if path.is_symlink():
            if not path.is_file():
                continue  # broken link, or a link to a folder
            target = path.resolve()
            if target in regular or target in taken:
                continue
            taken.add(target)
        elif not path.is_file():
            continue  # fifo, socket, device
        files.append(path)
    return files


def read_corpus(path: PathLike) -> list[str]:
    """Read a text file or a folder of text files into a list of documents.

    A file with lines holding only ``%`` is in fortune format and splits into documents on those
    lines; any other file splits on blank-line-separated paragraphs. Each document loses blank
    lines at its start and whitespace at its end; empty documents are dropped.

    A folder is read recursively in sorted path order (so the result, and every split made from
    it, is the same on every machine), skipping hidden files, fortune ``.dat`` indexes and
    symlinks to files already read (see :func:`_corpus_files`). Files containing a NUL byte are
    skipped as binary: NUL never occurs in real UTF-8 text but occurs in nearly every binary
    format (indexes, images, archives, UTF-16 text), the same test git and grep use; anything
    else that is not UTF-8 is an error, not skipped, since it is probably text in the wrong
    encoding and silently dropping it would shrink the corpus unnoticed.

    Raises DataError for a missing path, a non-UTF-8 file, a binary file given directly, or a
    corpus with no documents at all.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")

    if path.is_dir():
        files = _corpus_files(path)
        documents: list[str] = []
        skipped_binary = []
        for file in files:
            data = read_bytes(file, "a text file")
            if b"\0" in data:
                skipped_binary.append(file.name)
                continue
            documents.extend(_documents_from_text(_decode_utf8(data, file)))
        if not documents:
            detail = f"{len(files)} file(s) looked at"
            if skipped_binary:
                detail += f", {len(skipped_binary)} skipped as binary"
            raise DataError(f"{path}: no text documents found ({detail})")
        return documents

    data = read_bytes(path, "a text file")
    if b"\0" in data:
        raise DataError(
            f"{path}: contains a NUL byte at byte offset {data.index(0)}, so it looks binary, "
            f"not UTF-8 text"
        )
    documents = _documents_from_text(_decode_utf8(data, path))
    if not documents:
        raise DataError(f"{path}: contains no text")
    return documents


# --------------------------------------------------------------------------------------------
# Finding the fortunes corpus
# --------------------------------------------------------------------------------------------


def fortunes_candidates(explicit: PathLike | None = None) -> list[Path]:
    """Where the fortunes corpus is looked for, in order.

    An explicit path is the only candidate: a user who names a path wants that path, and falling
    through to another corpus would train on data they did not ask for. Otherwise
    ``$TWOPATHS_DATA/fortunes`` (if the variable is set), then the Debian package's folder.
    """
    if explicit is not None:
        return [Path(explicit).expanduser()]
    candidates = []
    root = data_root()
    if root is not None:
        candidates.append(root / "fortunes")
    candidates.append(Path(DEBIAN_FORTUNES))  # looked up at call time, so tests can patch it
    return candidates


def find_fortunes(explicit: PathLike | None = None) -> Path:
    """The first existing fortunes candidate (file or folder); DataError naming every place looked
    at, and how to fix it, if there is none."""
    if explicit is not None:
        path = fortunes_candidates(explicit)[0]
        if not path.exists():
            raise DataError(f"text corpus not found: {path} does not exist")
        return path

    for candidate in fortunes_candidates():
        if candidate.exists():
            return candidate

    looked = []
    if data_root() is None:
        looked.append("$TWOPATHS_DATA/fortunes (TWOPATHS_DATA is not set)")
    looked.extend(f"{c} (does not exist)" for c in fortunes_candidates())
    raise DataError(
        "fortunes corpus not found; looked in: "
        + "; ".join(looked)
        + ". Install it with `apt-get install fortunes`, or pass any UTF-8 text file or folder "
        "with --set data.path=..."
    )


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def split_counts(
    n: int, val_fraction: float, test_fraction: float, unit: str = "documents"
) -> tuple[int, int, int]:
    """Sizes ``(train, val, test)`` for ``n`` items, each at least 1.

    Shared by every dataset that splits a list of units (documents here, numbers in pairs.py), so
    that all of them round the same way. Raises ConfigError for fractions outside (0, 1) or summing
    to 1 or more, and DataError (naming ``n`` and ``unit``) if ``n < 3``.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 to leave a training split, "
            f"got {val_fraction} + {test_fraction}"
        )
    if n < 3:
        raise DataError(
            f"only {n} {unit}: too few to give the train, val and test splits at least one each "
            f"(need at least 3; splits never cut inside one of the {unit})"
        )
    n_val = max(1, round(n * val_fraction))
    n_test = max(1, round(n * test_fraction))
    while n - n_val - n_test < 1:  # only with large fractions of tiny n
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def split_documents(
    docs: Sequence[str],
    seed: int = 0,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> dict[str, list[str]]:
    """Shuffle documents with a fixed seed and split them into ``train``/``val``/``test``.

    The split is by whole document, never inside one: a quotation cut in two would leak its second
    half into the test set as a near-copy of a training example. Identical ``docs`` and ``seed``
    give identical splits on every machine (numpy's ``Generator`` is stable across platforms).
    Every split gets at least one document (DataError if there are fewer than three).
    """
    n_train, n_val, _ = split_counts(len(docs), val_fraction, test_fraction, "documents")
    order = np.random.default_rng(seed).permutation(len(docs))
    return {
        "train": [docs[i] for i in order[:n_train]],
        "val": [docs[i] for i in order[n_train : n_train + n_val]],
        "test": [docs[i] for i in order[n_train + n_val :]],
    }


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def encode_documents(tokenizer: Tokenizer, docs: Sequence[str]) -> torch.Tensor:
    """Encode documents and join them into one stream, ``eot_id`` between consecutive documents.

    The end-of-text token tells the model where one document stops and an unrelated one begins,
    so it learns not to carry context across that boundary. Returns int64 ``(n_tokens,)``.
    """
    eot = tokenizer.eot_id
    stream: list[int] = []
    for i, ids in enumerate(tokenizer.encode_batch(list(docs))):
        if i:
            stream.append(eot)
        stream.extend(ids)
    return torch.tensor(stream, dtype=torch.int64)  # (n_tokens,)


class TokenWindows(Dataset):
    """Fixed-length windows over one token stream, for next-token prediction.

    Item ``i`` is ``{"tokens": tokens[i * stride : i * stride + context + 1]}``, int64
    ``(context + 1,)``: a model reads ``[:-1]`` and predicts ``[1:]``, so one extra token gives
    ``context`` targets. ``stride`` defaults to ``context``, so consecutive windows share exactly
    one token and every token is a target exactly once; a smaller stride gives overlapping windows.
    Only full windows are served; the tail shorter than a window is dropped.

    Args:
        tokens: int64 ``(n_tokens,)``, a split's documents encoded and joined (see
            :func:`encode_documents`).
        context: number of input tokens per window (>= 1).
        stride: distance between the starts of consecutive windows (>= 1); default ``context``.
        name: what the stream is ("train split", ...), used in error messages.
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        context: int,
        stride: int | None = None,
        name: str = "token stream",
    ) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 1:
            shape = tuple(getattr(tokens, "shape", ()))
            raise ValueError(f"tokens must be a 1-D tensor, got {type(tokens).__name__} {shape}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        if context < 1:
            raise ConfigError(f"context must be at least 1, got {context}")
        stride = context if stride is None else stride
        if stride < 1:
            raise ConfigError(f"stride must be at least 1, got {stride}")

        n_tokens = tokens.numel()
        if n_tokens < context + 1:
            raise DataError(
                f"{name} has {n_tokens:,} tokens, too few for one window of context {context} "
                f"(needs {context + 1:,}); use a smaller context or more text"
            )
        self.tokens = tokens.to(torch.int64).contiguous()  # (n_tokens,)
        self.context = context
        self.stride = stride
        self._length = (n_tokens - (context + 1)) // stride + 1

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"window {index} out of range for {self._length} windows")
        start = index * self.stride
        # A copy, not a view: a consumer that edits its batch in place must not edit the corpus.
        window = self.tokens[start : start + self.context + 1].clone()  # (context + 1,)
        return {"tokens": window}


class DocumentRows(Dataset):
    """One document per row, for models that read a whole document at once (a sequence VAE).

    Item ``i`` is ``{"tokens": [eot, d_1 .. d_n, eot, eot, ...]}``, int64 ``(context + 1,)``: document
    ``i`` between two end-of-text tokens and padded with more of them, the shape of a
    :class:`TokenWindows` item whose window starts at a document. A model reads ``[:-1]`` and
    predicts ``[1:]`` up to and including the first end token after the start. A document longer than
    ``context - 1`` tokens does not fit: one :class:`DataError` says how many and how to fit them.
    """

    def __init__(self, tokenizer: Tokenizer, docs: Sequence[str], context: int, name: str = "documents") -> None:
        if context < 2:
            raise ConfigError(f"context must be at least 2 for one token between two end tokens, got {context}")
        eot = tokenizer.eot_id
        encoded = tokenizer.encode_batch(list(docs))
        longest = max(map(len, encoded), default=0)
        if longest > context - 1:
            too_long = sum(len(ids) > context - 1 for ids in encoded)
            raise DataError(f"{name}: {too_long:,} of {len(encoded):,} documents are longer than data.context - 1 = "
                            f"{context - 1} tokens (the longest has {longest}); use --set data.context={longest + 1}")
        if not encoded:
            raise DataError(f"{name} has no documents")
        self.rows = torch.full((len(encoded), context + 1), eot, dtype=torch.int64)  # (N, context + 1)
        for i, ids in enumerate(encoded):
            self.rows[i, 1:1 + len(ids)] = torch.tensor(ids, dtype=torch.int64)
        self.context = context

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"tokens": self.rows[index].clone()}  # a copy: consumers may edit their batch


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def summarize_text(name: str, path: PathLike | None = None) -> DatasetSummary:
    """One ``twopaths data list`` row for a text corpus; ``path=None`` means the fortunes corpus.

    A corpus that cannot be found or read gives ``available=False`` with the reason as ``source``
    rather than an exception, so one missing dataset does not hide the others from the listing.
    """
    try:
        resolved = find_fortunes() if path is None else find_fortunes(path)
        documents = read_corpus(resolved)
    except DataError as exc:
        return DatasetSummary(
            name=name, kind="text", source=str(exc), size="-", shapes="-", available=False
        )
    characters = sum(len(d) for d in documents)
    megabytes = sum(len(d.encode("utf-8")) for d in documents) / 1e6
    return DatasetSummary(
        name=name,
        kind="text",
        source=str(resolved),
        size=f"{len(documents):,} documents, {characters:,} characters, {megabytes:.1f} MB",
        shapes="token windows (context + 1,)",
    )
