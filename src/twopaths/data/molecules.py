"""Molecules as SMILES strings: the MOSES benchmark's data (Polykovskiy et al. 2020, "Molecular Sets
(MOSES): A Benchmarking Platform for Molecular Generation Models", Front. Pharmacol. 11:565644).

MOSES is 1.94M molecules from ZINC Clean Leads, split into train (1,584,663), test (176,074) and a
scaffold test set (176,226) whose Bemis-Murcko scaffolds are absent from train. The files ship in the
``molsets`` package on PyPI (``moses/dataset/data/*.csv.gz``, one ``SMILES`` column); its own
dependency pins are old, so ``make`` installs it with ``--no-deps`` and we only read its files
(``importlib.util.find_spec`` locates the package without running it). ``data.path`` may name a
folder holding the same three files, or a file of SMILES (one per line, ``.smi``, or a CSV with a
``SMILES`` column) to train on instead.

Datasets: ``moses`` (all of train; validation is ``data.val_fraction`` of it, test is MOSES' test set)
and ``moses-small`` (a fixed random ``data.size`` molecules of train and a tenth as many of test: CPU
sized). Each molecule is one document, so a language model learns where a molecule ends; both
datasets default to the SMILES tokenizer (``data.tokenizer=smiles``).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from twopaths.data.text import split_documents
from twopaths.errors import DataError

MOSES_FILES = {"train": "train.csv.gz", "test": "test.csv.gz", "test_scaffolds": "test_scaffolds.csv.gz"}
MOLECULE_DATASETS = ("moses", "moses-small")
INSTALL_HINT = "pip install --no-deps molsets ('make test' and 'make demo' install it)"


def molsets_folder(what: str = "the MOSES data") -> Path:
    """Where the ``molsets`` package (import name ``moses``) is installed, found without running it;
    a :class:`DataError` saying ``what`` needs it and how to install it otherwise."""
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{what} needs the files of the molsets package, which is not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def find_moses(explicit: str | Path | None = None) -> Path:
    """The folder holding MOSES' ``train.csv.gz`` and ``test.csv.gz``: ``explicit``, else the ``molsets``
    package's data folder. One clear :class:`DataError` when neither has them."""
    folder = Path(explicit) if explicit is not None else molsets_folder(
        f"the MOSES data (or --set data.path=FOLDER with {MOSES_FILES['train']} and {MOSES_FILES['test']})"
    ) / "dataset" / "data"
    missing = [name for name in (MOSES_FILES["train"], MOSES_FILES["test"]) if not (folder / name).is_file()]
    if missing:
        raise DataError(f"MOSES data not found: {folder} lacks {', '.join(missing)}")
    return folder


def read_smiles(path: str | Path) -> list[str]:
    """The SMILES of ``path``: a CSV (optionally gzipped) with a ``SMILES`` column, or one SMILES per line
    (``.smi``: anything after the first whitespace, such as a name, is dropped). Blank lines are skipped;
    a file with no SMILES, or that is not UTF-8 text, is a :class:`DataError` naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"SMILES file not found: {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); expected SMILES") from None
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if "," in first or first.upper() == "SMILES":  # CSV with a header
        rows = list(csv.reader(io.StringIO(text)))
        header = [h.strip().upper() for h in rows[0]]
        if "SMILES" not in header:
            raise DataError(f"{path}: a CSV file needs a SMILES column; its header is {rows[0]}")
        col = header.index("SMILES")
        smiles = [row[col].strip() for row in rows[1:] if len(row) > col and row[col].strip()]
    else:
        smiles = [line.split()[0] for line in lines if line.strip()]
    if not smiles:
        raise DataError(f"{path} holds no SMILES")
    return smiles


@lru_cache(maxsize=4)
def _read_moses(folder: str, split: str) -> list[str]:
    """One of MOSES' files, read once per process (1.58M training molecules take seconds to parse); callers
    get the shared list and must not change it."""
    return read_smiles(Path(folder) / MOSES_FILES[split])


def molecule_documents(name: str, path: str | None, size: int, seed: int, val_fraction: float,
                       test_fraction: float) -> tuple[dict[str, list[str]], str]:
    """SMILES by split (train/val/test) for dataset ``name`` and where they came from (see the module
    docstring). A ``path`` to a file is split like any text corpus (by molecule, fixed seed)."""
    if path is not None and Path(path).is_file():
        return split_documents(read_smiles(path), seed=seed, val_fraction=val_fraction,
                               test_fraction=test_fraction), str(path)
    folder = find_moses(path)
    train, test = _read_moses(str(folder), "train"), _read_moses(str(folder), "test")
    rng = np.random.default_rng(seed)
    if name == "moses-small":
        train = [train[i] for i in np.sort(rng.choice(len(train), min(size, len(train)), replace=False))]
        test = [test[i] for i in np.sort(rng.choice(len(test), min(max(1, size // 10), len(test)), replace=False))]
    n_val = max(1, int(round(len(train) * val_fraction)))
    order = rng.permutation(len(train))
    val = [train[i] for i in np.sort(order[:n_val])]
    train = [train[i] for i in np.sort(order[n_val:])]
    return {"train": train, "val": val, "test": list(test)}, str(folder)  # copies: the files are cached


__all__ = ["INSTALL_HINT", "MOLECULE_DATASETS", "MOSES_FILES", "find_moses", "molecule_documents", "molsets_folder",
           "read_smiles"]
