"""The associative-recall task: its definition (the answer is the token exactly d before the query
key), distinct keys, seeds and streams, the distance grid, registration as a dataset."""

from __future__ import annotations

import pytest
import torch

from twopaths.config import DataConfig
from twopaths.data import recall
from twopaths.data.recall import (KEYS, NUM_PAIRS, VALUES, RecallDataset, distance_grid, eval_set, max_distance,
                                  query_index, recall_tokenizer)
from twopaths.errors import ConfigError

TOK = recall_tokenizer()


def _decode(item: torch.Tensor) -> str:
    return TOK.decode(item[:-1].tolist())  # drop the closing end-of-text


def test_definition_holds_for_every_item_and_distance():
    context = 48
    data = RecallDataset(300, context, seed=3)
    q = query_index(context)
    seen = set()
    for i in range(len(data)):
        item = data[i]["tokens"]
        d = data.distance(i)
        seen.add(d)
        text = _decode(item)
        assert item.shape == (context + 1,) and item.dtype == torch.int64
        assert item[-1] == TOK.eot_id and len(text) == context
        assert text[q - 1] == "?" and text[q] in KEYS and text[q + 1] in VALUES
        # the definition: the answer is the token exactly d before the query key, and the token
        # before that is the query key itself
        assert text[q - d] == text[q + 1] and text[q - d - 1] == text[q]
        # NUM_PAIRS pairs with distinct keys: the answer is determined by the sequence
        body = text[:q - 1]
        keys = [c for c in body if c in KEYS]
        assert len(keys) == NUM_PAIRS == len(set(keys))
        assert all(body[j + 1] in VALUES for j, c in enumerate(body) if c in KEYS)
        assert sum(c in VALUES for c in body) == NUM_PAIRS
        assert set(body) <= set(KEYS + VALUES + ".")
    # training distances are drawn from the whole range 2 .. context - 3
    assert min(seen) == 2 and max(seen) == max_distance(context) == context - 3


def test_seeds_and_streams_are_reproducible_and_independent():
    a, b = RecallDataset(50, 40, seed=0), RecallDataset(50, 40, seed=0)
    assert all(torch.equal(a[i]["tokens"], b[i]["tokens"]) for i in range(50))
    other_seed, other_stream = RecallDataset(50, 40, seed=1), RecallDataset(50, 40, seed=0, stream=1)
    assert sum(torch.equal(a[i]["tokens"], other_seed[i]["tokens"]) for i in range(50)) == 0
    assert sum(torch.equal(a[i]["tokens"], other_stream[i]["tokens"]) for i in range(50)) == 0
    assert torch.equal(a[-1]["tokens"], a[49]["tokens"])
    with pytest.raises(IndexError):
        a[50]


def test_eval_set_cycles_the_grid_the_context_allows():
    assert distance_grid(132) == (4, 8, 16, 32, 64, 128)
    assert distance_grid(40) == (4, 8, 16, 32)  # max distance 37
    tokens, dist = eval_set(132, n_per_distance=5, seed=0)
    assert tokens.shape == (30, 133) and dist.tolist() == [4, 8, 16, 32, 64, 128] * 5
    q = query_index(132)
    for row, d in zip(tokens, dist.tolist()):
        assert row[q - d] == row[q + 1] and row[q - d - 1] == row[q]
    again, _ = eval_set(132, n_per_distance=5, seed=0)
    assert torch.equal(tokens, again)
    # answers are spread over the values, not stuck on one
    assert len(set(tokens[:, q + 1].tolist())) > 3


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ConfigError, match="data.context >= 26"):
        RecallDataset(10, 20)
    with pytest.raises(ConfigError, match="distance 64 is outside"):
        RecallDataset(10, 40, distances=(4, 64))
    with pytest.raises(ConfigError, match="no distance"):
        eval_set(30, 2, distances=(64,))
    with pytest.raises(ConfigError, match="character-level"):
        recall.load_recall_splits(DataConfig(name="recall", tokenizer="bpe"))


def test_registered_as_a_text_dataset_with_a_saved_tokenizer(tmp_path):
    from twopaths.data.registry import dataset_kind, inventory, load_splits, run_meta

    assert dataset_kind("recall") == "text"
    cfg = DataConfig(name="recall", context=40, size=1000)
    splits = load_splits(cfg, tmp_path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1000, 50, 50)
    assert splits.meta["tokenizer"].vocab_size == 40 and splits.meta["distances"] == (4, 8, 16, 32)
    assert not torch.equal(splits.train[0]["tokens"], splits.val[0]["tokens"])
    assert (tmp_path / "tokenizer.json").is_file()
    assert run_meta(cfg, tmp_path)["tokenizer"].encode("?a7") == TOK.encode("?a7")
    assert any(row.name == "recall" and row.kind == "text" for row in inventory())
