"""Tokenizers: exact round trips, unknown characters, saving and loading, errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from twopaths.data.tokenizers import (
    EOT,
    UNK,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    train_tokenizer,
)
from twopaths.errors import ConfigError, DataError

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "Un été à Montréal, où l'on mange des crêpes.",
    "Über den Wolken muß die Freiheit wohl grenzenlos sein.",
    "数字は難しい 😀🎉",
] * 20

TRICKY = ["", " ", "  leading spaces", "tab\tand\nnewline\r\n", "\x00 nul", "é", "e\u0301",
          "👩‍👩‍👧‍👦 family", "🇫🇷 flag", "\ufeffbom", "<unk>", "trailing  "]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size=512)


@pytest.fixture(scope="module")
def char() -> CharTokenizer:
    return CharTokenizer.train(CORPUS)


def test_both_kinds_are_tokenizers(bpe, char):
    assert isinstance(bpe, Tokenizer) and isinstance(char, Tokenizer)
    assert train_tokenizer("char", CORPUS).encode("fox") == char.encode("fox")
    assert isinstance(train_tokenizer("bpe", CORPUS, 280), BPETokenizer)


# ---------------------------------------------------------------------------- characters

CHAR_ALPHABET = sorted(set("".join(CORPUS)))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=CHAR_ALPHABET))
def test_char_round_trip(char, s):
    ids = char.encode(s)
    assert len(ids) == len(s)
    assert all(0 <= i < char.vocab_size for i in ids)
    assert char.decode(ids) == s


def test_char_vocabulary_layout(char):
    assert char.vocab_size == len(CHAR_ALPHABET) + 2
    assert char.chars == CHAR_ALPHABET  # sorted
    assert char.decode([char.eot_id]) == EOT
    assert char.eot_id != char.unk_id
    # Training on the same characters in another order gives the same ids.
    assert CharTokenizer.train(reversed(CORPUS)).encode("fox ü") == char.encode("fox ü")


def test_char_unknown_characters_map_to_unk(char):
    ids = char.encode("fox¿Ω")
    assert ids[:3] == char.encode("fox")
    assert ids[3:] == [char.unk_id, char.unk_id]
    assert char.decode(ids) == f"fox{UNK}{UNK}"


def test_char_decode_rejects_out_of_range(char):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        char.decode([char.vocab_size])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        char.decode([-1])


def test_char_save_load(char, tmp_path):
    path = tmp_path / "char.json"
    char.save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["type"] == "char" and saved["chars"] == CHAR_ALPHABET
    assert set(saved["specials"]) == {EOT, UNK}
    loaded = load_tokenizer(path)
    assert isinstance(loaded, CharTokenizer)
    sample = "".join(CORPUS[:5]) + "¿unknown?"
    assert loaded.encode(sample) == char.encode(sample)
    assert (loaded.vocab_size, loaded.eot_id) == (char.vocab_size, char.eot_id)


def test_char_empty_training_text():
    with pytest.raises(DataError, match="empty"):
        CharTokenizer.train(["", ""])


# ---------------------------------------------------------------------------- BPE


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)))
@example("quatre mille trois cent vingt et un")
@example("Ünïcödé ✓ 漢字 😀👍🏽")
def test_bpe_round_trips_any_string(bpe, s):
    ids = bpe.encode(s)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == s


@pytest.mark.parametrize("s", TRICKY)
def test_bpe_round_trips_tricky_strings(bpe, s):
    assert bpe.decode(bpe.encode(s)) == s


def test_bpe_merges_shorten_text(bpe):  # every word of the corpus is frequent: merged whole
    s = "The quick brown fox jumps over the lazy dog."
    assert len(bpe.encode(s)) < len(s.encode("utf-8")) / 2


def test_bpe_vocab_size_is_honoured():
    # A rich enough corpus fills the vocabulary exactly ...
    rich = [" ".join(f"word{i} token{i * 7} piece{i % 13}" for i in range(300))] * 3
    assert BPETokenizer.train(rich, vocab_size=400).vocab_size == 400
    # ... a tiny one runs out of merges and stops below it, never above.
    tiny = BPETokenizer.train(["hello world"] * 3, vocab_size=400)
    assert 257 < tiny.vocab_size < 400
    with pytest.raises(ConfigError, match="at least 257"):
        BPETokenizer.train(CORPUS, vocab_size=100)


def test_bpe_eot(bpe):
    assert bpe.eot_id == bpe.backend.token_to_id(EOT)
    assert bpe.decode([bpe.eot_id]) == EOT
    assert bpe.eot_id not in bpe.encode("".join(CORPUS))  # never produced by ordinary text


def test_bpe_save_load(bpe, tmp_path):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["model"]["type"] == "BPE"
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer)
    for s in CORPUS[:5] + TRICKY:
        assert loaded.encode(s) == bpe.encode(s)
    assert (loaded.vocab_size, loaded.eot_id) == (bpe.vocab_size, bpe.eot_id)
    assert loaded.encode_batch(CORPUS[:5]) == [bpe.encode(s) for s in CORPUS[:5]]


# ---------------------------------------------------------------------------- errors


def test_unknown_kind():
    with pytest.raises(ConfigError, match="'wordpiece'.*char, bpe"):
        train_tokenizer("wordpiece", CORPUS, 300)
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer("bpe", CORPUS)


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_tokenizer(tmp_path / "missing.json")

    not_json = tmp_path / "not.json"
    not_json.write_text("type: char\n", encoding="utf-8")
    with pytest.raises(DataError, match="not JSON.*line 1"):
        load_tokenizer(not_json)

    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"type": "sentencepiece", "pieces": []}), encoding="utf-8")
    with pytest.raises(DataError, match="not a tokenizer twopaths knows"):
        load_tokenizer(unknown)

    a_list = tmp_path / "list.json"
    a_list.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(DataError, match="JSON list"):
        load_tokenizer(a_list)

    broken_char = tmp_path / "broken_char.json"
    broken_char.write_text(json.dumps({"type": "char", "chars": ["ab"], "specials": [EOT, UNK]}))
    with pytest.raises(DataError, match="not one character"):
        load_tokenizer(broken_char)

    no_eot = tmp_path / "no_eot.json"
    tok = CharTokenizer.train(["abc"]).to_dict()
    tok["specials"] = [UNK]
    no_eot.write_text(json.dumps(tok))
    with pytest.raises(DataError, match="lacks the special token"):
        load_tokenizer(no_eot)


def test_load_rejects_a_bpe_file_without_eot(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False)
    backend.train_from_iterator(["hello world"], trainer)
    path = tmp_path / "foreign.json"
    backend.save(str(path))
    with pytest.raises(DataError, match="has no <\\|endoftext\\|> token"):
        load_tokenizer(path)
