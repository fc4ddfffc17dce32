"""Text corpora: reading, finding the fortunes corpus, splitting by document, token windows."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from twopaths.data import text
from twopaths.data.text import (
    TokenWindows,
    find_fortunes,
    fortunes_candidates,
    read_corpus,
    read_text_file,
    split_documents,
    summarize_text,
)
from twopaths.errors import ConfigError, DataError

FORTUNE_FILE = """\
A day without sunshine is like night.
%
  Indented ascii art
 /\\_/\\
%
%
Last one, no trailing separator.   \n"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- reading


def test_fortune_format_splits_on_percent_lines(tmp_path):
    docs = read_corpus(write(tmp_path / "quotes", FORTUNE_FILE))
    assert docs == [
        "A day without sunshine is like night.",
        "  Indented ascii art\n /\\_/\\",  # leading indentation kept
        "Last one, no trailing separator.",  # trailing whitespace stripped, empty doc dropped
    ]


def test_fortune_format_with_crlf_line_endings(tmp_path):
    docs = read_corpus(write(tmp_path / "q", b"one\r\ntwo\r\n%\r\nthree\r\n"))
    assert docs == ["one\ntwo", "three"]


def test_paragraph_format_splits_on_blank_lines(tmp_path):
    content = "\n\nFirst paragraph,\nsecond line.\n\n   \n\n    Indented second.\n\t\nThird.  \n\n"
    docs = read_corpus(write(tmp_path / "essay.txt", content))
    assert docs == ["First paragraph,\nsecond line.", "    Indented second.", "Third."]


def test_percent_inside_a_line_is_not_a_separator(tmp_path):
    docs = read_corpus(write(tmp_path / "t.txt", "50% off\n\n100%\n"))
    assert docs == ["50% off", "100%"]


def test_folder_skips_hidden_dat_binary_and_duplicate_symlinks(tmp_path):
    root = tmp_path / "corpus"
    write(root / "b_quotes", "bee one\n%\nbee two\n")
    write(root / "b_quotes.dat", b"\xff\xfe strfile index, not UTF-8")  # skipped by name
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # skipped: NUL byte
    write(root / ".hidden", "hidden doc\n")
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(root / "sub" / "a.txt", "sub para one\n\nsub para two\n")
    write(root / "sub" / "notes.dat", "a .dat file without a sibling is ordinary text\n")
    os.symlink("b_quotes", root / "a_link.u8")  # sorts before its target, still skipped
    os.symlink(root / "sub" / "a.txt", root / "sub" / "z_link")
    os.symlink("does-not-exist", root / "broken")
    outside = write(tmp_path / "outside.txt", "outside doc\n")
    os.symlink(outside, root / "c_outside")  # a link to a file outside the folder is read once
    os.symlink(outside, root / "d_outside_again")

    docs = read_corpus(root)
    assert docs == [
        "bee one",
        "bee two",
        "outside doc",
        "sub para one",
        "sub para two",
        "a .dat file without a sibling is ordinary text",
    ]


def test_folder_is_read_in_sorted_order(tmp_path):
    for name in ["c", "a", "b"]:
        write(tmp_path / name, f"doc {name}\n")
    assert read_corpus(tmp_path) == ["doc a", "doc b", "doc c"]


def test_invalid_utf8_names_file_and_byte_offset(tmp_path):
    data = "héllo\nwörld ".encode() + b"\xff" + b" tail\n"
    offset = data.index(b"\xff")
    path = write(tmp_path / "latin.txt", data)
    for reader in (read_text_file, read_corpus):
        with pytest.raises(DataError) as info:
            reader(path)
        message = str(info.value)
        assert str(path) in message
        assert f"byte offset {offset}" in message
        assert "line 2" in message
        assert "ff" in message


def test_invalid_utf8_inside_a_folder_names_the_file(tmp_path):
    write(tmp_path / "good", "fine\n")
    bad = write(tmp_path / "sub" / "bad", b"caf\xe9\n")
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*byte offset 3.*e9"):
        read_corpus(tmp_path)


def test_read_text_file_strict_and_strips_bom(tmp_path):
    assert read_text_file(write(tmp_path / "a", b"\xef\xbb\xbfhi \xf0\x9f\x98\x80")) == "hi 😀"
    with pytest.raises(DataError, match="no such file"):
        read_text_file(tmp_path / "missing.txt")


def test_missing_binary_and_empty_corpus_errors(tmp_path):
    with pytest.raises(DataError, match="missing: no such file"):
        read_corpus(tmp_path / "missing")
    with pytest.raises(DataError, match="NUL byte at byte offset 2"):
        read_corpus(write(tmp_path / "bin", b"ab\x00cd"))
    with pytest.raises(DataError, match="no text"):
        read_corpus(write(tmp_path / "blank", "\n \n%\n\n"))
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "x.bin", b"\x00\x01")
    with pytest.raises(DataError, match="no text documents.*1 skipped as binary"):
        read_corpus(empty)


# ---------------------------------------------------------------------------- finding fortunes


@pytest.fixture
def no_fortunes(tmp_path, monkeypatch):
    """No TWOPATHS_DATA and a Debian path that does not exist."""
    monkeypatch.delenv("TWOPATHS_DATA", raising=False)
    debian = tmp_path / "debian" / "fortunes"
    monkeypatch.setattr(text, "DEBIAN_FORTUNES", debian)
    return debian


def test_resolution_order(tmp_path, monkeypatch, no_fortunes):
    debian = no_fortunes
    write(debian / "art", "a\n")
    assert find_fortunes() == debian

    root = tmp_path / "root"
    monkeypatch.setenv("TWOPATHS_DATA", str(root))
    assert fortunes_candidates(None) == [root / "fortunes", debian]
    assert find_fortunes() == debian  # TWOPATHS_DATA set, but it has no fortunes
    write(root / "fortunes", "mine\n")
    assert find_fortunes() == root / "fortunes"

    explicit = write(tmp_path / "my.txt", "explicit\n")
    assert fortunes_candidates(explicit) == [explicit]
    assert find_fortunes(explicit) == explicit
    assert find_fortunes(str(explicit)) == explicit


def test_explicit_missing_path_does_not_fall_through(tmp_path, no_fortunes):
    write(no_fortunes / "art", "a\n")  # a fallback exists, and must not be used
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        find_fortunes(missing)


def test_not_found_lists_every_place_and_the_fix(tmp_path, monkeypatch, no_fortunes):
    with pytest.raises(DataError) as info:
        find_fortunes()
    message = str(info.value)
    assert "TWOPATHS_DATA is not set" in message
    assert str(no_fortunes) in message
    assert "apt-get install fortunes" in message
    assert "--set data.path=" in message

    monkeypatch.setenv("TWOPATHS_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError) as info:
        find_fortunes()
    assert str(tmp_path / "root" / "fortunes") in str(info.value)
    assert str(no_fortunes) in str(info.value)


def test_summarize_text(tmp_path, no_fortunes):
    path = write(tmp_path / "q", "héllo\n%\nworld\n")
    row = summarize_text("mine", path)
    assert row.available and row.kind == "text"
    assert row.size == "2 documents, 10 characters, 0.0 MB"
    missing = summarize_text("fortunes")
    assert not missing.available and "apt-get install fortunes" in missing.source


# ---------------------------------------------------------------------------- splitting


def test_split_is_by_document_disjoint_covering_and_deterministic():
    docs = [f"document {i}\nwith two lines" for i in range(200)]
    splits = split_documents(docs, seed=3)
    assert set(splits) == {"train", "val", "test"}
    assert [len(splits[k]) for k in ("train", "val", "test")] == [180, 10, 10]
    flat = splits["train"] + splits["val"] + splits["test"]
    assert sorted(flat) == sorted(docs)  # covering and disjoint; whole documents only
    assert split_documents(docs, seed=3) == splits
    assert split_documents(docs, seed=4) != splits
    assert splits["train"] != docs[:180]  # shuffled


def test_split_gives_every_split_a_document():
    splits = split_documents(["a", "b", "c"])
    assert all(len(v) == 1 for v in splits.values())
    splits = split_documents(list("abcd"), val_fraction=0.45, test_fraction=0.45)
    assert sorted(len(v) for v in splits.values()) == [1, 1, 2]


def test_split_too_few_documents():
    with pytest.raises(DataError, match="only 2 documents"):
        split_documents(["a", "b"])


def test_split_bad_fractions():
    with pytest.raises(ConfigError, match="val_fraction"):
        split_documents(list("abcdef"), val_fraction=0.0)
    with pytest.raises(ConfigError, match="below 1"):
        split_documents(list("abcdef"), val_fraction=0.5, test_fraction=0.5)


# ---------------------------------------------------------------------------- windows


def test_token_windows_shapes_and_contents():
    tokens = torch.arange(23)
    windows = TokenWindows(tokens, context=5)
    assert len(windows) == 4  # starts 0, 5, 10, 15; 20 would need tokens up to 25
    item = windows[1]
    assert set(item) == {"tokens"}
    assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (6,)
    assert item["tokens"].tolist() == [5, 6, 7, 8, 9, 10]
    assert windows[-1]["tokens"].tolist() == list(range(15, 21))
    with pytest.raises(IndexError):
        windows[4]

    item["tokens"][0] = -1  # items are copies: the stream is untouched
    assert windows[1]["tokens"][0] == 5


def test_token_windows_stride_and_exact_fit():
    windows = TokenWindows(torch.arange(10, dtype=torch.int32), context=4, stride=2)
    assert len(windows) == 3  # starts 0, 2, 4 (window 4..8); 6 would need index 10
    assert windows[2]["tokens"].tolist() == [4, 5, 6, 7, 8]
    assert windows[0]["tokens"].dtype == torch.int64
    assert len(TokenWindows(torch.arange(5), context=4)) == 1


def test_token_windows_too_short():
    with pytest.raises(DataError, match=r"val split has 4 tokens.*context 4"):
        TokenWindows(torch.arange(4), context=4, name="val split")
    with pytest.raises(ConfigError):
        TokenWindows(torch.arange(40), context=0)
    with pytest.raises(ValueError):
        TokenWindows(torch.zeros(2, 20, dtype=torch.int64), context=4)


def test_encode_documents_puts_eot_between_documents():
    from twopaths.data.text import encode_documents
    from twopaths.data.tokenizers import CharTokenizer

    tok = CharTokenizer.train(["ab"])
    stream = encode_documents(tok, ["ab", "ba", "a"])
    eot, a, b = tok.eot_id, *tok.encode("ab")
    assert stream.dtype == torch.int64
    assert stream.tolist() == [a, b, eot, b, a, eot, a]


# ---------------------------------------------------------------------------- the real corpus


@pytest.mark.skipif(
    not (text.DEBIAN_FORTUNES / "fortunes").is_file(), reason="Debian 'fortunes' not installed"
)
def test_real_debian_fortunes():
    docs = read_corpus(text.DEBIAN_FORTUNES)
    assert len(docs) > 10_000
    assert len(set(docs)) > 0.95 * len(docs)  # .u8 symlinks did not double the corpus
    assert all(doc and doc == doc.rstrip() for doc in docs)
    assert not any(line == "%" for doc in docs[:2000] for line in doc.split("\n"))
