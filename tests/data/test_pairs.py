"""Seq2seq pairs: numbers in words (split by number), TSV parallel text, the pair dataset."""

from __future__ import annotations

import re

import num2words
import pytest

from twopaths.data.pairs import (
    PairDataset,
    _cardinal_writer,
    numbers_pairs,
    read_tsv_pairs,
    summarize_numbers,
    supported_languages,
)
from twopaths.errors import DataError


@pytest.fixture(scope="module")
def french() -> dict[str, list[tuple[str, str]]]:
    return numbers_pairs("fr", max_number=9_999, seed=0)


def test_french_example(french):
    table = dict(p for split in french.values() for p in split)
    assert table["4321"] == "quatre mille trois cent vingt et un"
    assert table["80"] == "quatre-vingts"
    assert table["0"] == "zéro"


def test_split_is_by_number_disjoint_and_covering(french):
    numbers = {k: [int(src) for src, _ in v] for k, v in french.items()}
    assert [len(numbers[k]) for k in ("train", "val", "test")] == [9_000, 500, 500]
    train, val, test = (set(numbers[k]) for k in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(10_000))


def test_split_is_deterministic():
    a = numbers_pairs("en", max_number=999, seed=7)
    assert a == numbers_pairs("en", max_number=999, seed=7)
    assert a["test"] != numbers_pairs("en", max_number=999, seed=8)["test"]


def test_fast_writer_matches_num2words():
    # The fast path is a trimmed copy of num2words' converter; it must write identical words.
    for lang in ("fr", "de", "en", "es", "it", "pt_BR", "ja"):
        write = _cardinal_writer(lang, 99_999)
        for n in range(0, 100_000, 997):
            assert write(n) == num2words.num2words(n, lang=lang), (lang, n)


def test_unknown_language():
    with pytest.raises(DataError, match=r"'xx'.*en, fr, de"):
        numbers_pairs("xx")
    assert "fr" in supported_languages() and "pt_BR" in supported_languages()


def test_summarize_numbers():
    row = summarize_numbers("fr")
    assert row.available and row.kind == "pairs"
    assert row.size == "100,000 pairs, split by number"
    assert "quatre mille trois cent vingt et un" in row.shapes
    assert not summarize_numbers("xx").available


def test_pair_dataset(french):
    dataset = PairDataset(french["test"])
    assert len(dataset) == 500
    item = dataset[0]
    assert set(item) == {"src", "tgt"}
    assert isinstance(item["src"], str) and isinstance(item["tgt"], str)
    assert (item["src"], item["tgt"]) == french["test"][0]


# ---------------------------------------------------------------------------- TSV


def test_read_tsv_pairs(tmp_path):
    path = tmp_path / "fra.tsv"
    path.write_text("Go.\tVa !\r\n\nHello!  \t Salut !\nÇa va?\tHow are you?\n", encoding="utf-8")
    assert read_tsv_pairs(path) == [
        ("Go.", "Va !"),
        ("Hello!", "Salut !"),
        ("Ça va?", "How are you?"),
    ]


@pytest.mark.parametrize(
    ("content", "line", "found"),
    [
        ("a\tb\nno tab here\n", 2, "found 0"),
        ("a\tb\nc\td\na\tb\tattribution\n", 3, "found 2"),
    ],
)
def test_read_tsv_pairs_wrong_tab_count(tmp_path, content, line, found):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}, line {line}") + f".*{found}"):
        read_tsv_pairs(path)


def test_read_tsv_pairs_other_errors(tmp_path):
    empty_side = tmp_path / "empty_side.tsv"
    empty_side.write_text("a\t \n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: empty target"):
        read_tsv_pairs(empty_side)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("caf\u00e9\tcoffee\n".encode("latin-1"))
    with pytest.raises(DataError, match="byte offset 3"):
        read_tsv_pairs(latin1)
    nothing = tmp_path / "nothing.tsv"
    nothing.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no tab-separated pairs"):
        read_tsv_pairs(nothing)
