"""Generation: KV cache vs recomputation, batching, sampling filters, stopping, streaming; and a real
gpt-nano training run whose loss falls well below the unigram entropy of its text."""

import math
from collections import Counter

import pytest
import torch

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.backbones.window_mlp import WindowMLP, WindowMLPConfig
from twopaths.paradigms.autoregressive import Autoregressive, generate_text, sample_logits


def gpt(positional="learned", context=48, seed=0):
    torch.manual_seed(seed)
    cfg = TransformerConfig(n_layer=2, n_head=2, d_model=32, context=context, positional=positional)
    return Autoregressive(Transformer(40, cfg), context=context).eval()


PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9, 8], [3, 3, 3, 3, 11]]


@pytest.mark.parametrize("positional", ["learned", "rope", "sinusoidal"])
def test_kv_cache_equals_recomputation(positional):
    model = gpt(positional)
    cached, logits_c = model.generate(PROMPTS, 30, temperature=0, use_cache=True, return_logits=True)
    full, logits_f = model.generate(PROMPTS, 30, temperature=0, use_cache=False, return_logits=True)
    assert cached == full and all(len(row) == 30 for row in cached)
    assert torch.allclose(logits_c, logits_f, atol=1e-4)


def test_batched_prompts_of_different_lengths_equal_one_by_one():
    model = gpt()
    batched, logits_b = model.generate(PROMPTS, 25, temperature=0, return_logits=True)
    for i, prompt in enumerate(PROMPTS):
        alone, logits_a = model.generate([prompt], 25, temperature=0, return_logits=True)
        assert alone[0] == batched[i]
        assert torch.allclose(logits_a[0], logits_b[i], atol=1e-4)


def test_generation_past_the_context_rebuilds_the_cache():
    model = gpt(context=16)
    out = model.generate([[1, 2, 3]], 40, temperature=0)
    assert len(out[0]) == 40  # 3 + 40 > 16: the cache was rebuilt from the newest tokens, twice or more


def test_window_mlp_recomputes_and_batches_rows_separately():
    torch.manual_seed(0)
    model = Autoregressive(WindowMLP(40, WindowMLPConfig(window=4, hidden=16)), context=4).eval()
    batched = model.generate(PROMPTS, 10, temperature=0)
    assert batched == [model.generate([p], 10, temperature=0)[0] for p in PROMPTS]


def test_stop_id_and_stop_callback():
    model = gpt()
    greedy = model.generate([[1, 2]], 20, temperature=0)[0]
    stop_token = greedy[5]
    first = greedy.index(stop_token)
    assert model.generate([[1, 2]], 20, temperature=0, stop_id=stop_token)[0] == greedy[:first]
    assert model.generate([[1, 2]], 20, temperature=0, stop=lambda row, ids: len(ids) == 3)[0] == greedy[:3]


def test_streaming_sees_every_step():
    model = gpt()
    seen = []
    out = model.generate(PROMPTS, 12, temperature=0, on_token=lambda t: seen.append(t.tolist()))
    assert [[step[i] for step in seen] for i in range(3)] == out


def test_sampling_filters():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    assert sample_logits(logits, temperature=0).unique().tolist() == [0]
    assert set(sample_logits(logits, 1.0, top_k=2, generator=g).unique().tolist()) == {0, 1}
    p = torch.softmax(logits[0], -1)  # p0 ~ 0.64, p0 + p1 ~ 0.88
    assert set(sample_logits(logits, 1.0, top_p=0.5, generator=g).unique().tolist()) == {0}
    assert set(sample_logits(logits, 1.0, top_p=0.8, generator=g).unique().tolist()) == {0, 1}
    draws = sample_logits(logits, 1.0, generator=g)
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    assert torch.allclose(freq, p, atol=0.03)  # plain sampling follows softmax
    hot = sample_logits(logits, 5.0, generator=g)
    assert torch.bincount(hot, minlength=5).min() > 200  # high temperature flattens


class Chars:
    def __init__(self):
        self.chars = ["<eot>"] + list("abcdefghijklmnopqrstuvwxyz .")
        self.eot_id = 0

    def encode(self, s):
        return [self.chars.index(c) for c in s]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids if i)


def test_generate_text_stop_strings_and_streaming():
    torch.manual_seed(0)
    model = Autoregressive(Transformer(29, TransformerConfig(n_layer=1, n_head=1, d_model=16, context=64)), 64).eval()
    tok = Chars()
    full = generate_text(model, tok, "ab", max_new_tokens=30, temperature=0)
    cut = full[3:5]
    pieces = []
    text = generate_text(model, tok, "ab", max_new_tokens=30, temperature=0, stop_strings=[cut], on_text=pieces.append)
    assert text == full[:full.index(cut)]
    assert "".join(pieces) == text


def unigram_entropy(ids: list[int]) -> float:
    counts = Counter(ids)
    n = len(ids)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def test_gpt_nano_learns_well_below_unigram_entropy(tmp_path):
    """A real training run on CPU: a small slice of text, the trainer, gpt-nano's architecture."""
    from conftest import write_corpus
    from twopaths.data.registry import load_splits
    from twopaths.models import resolve_config
    from twopaths.training.trainer import Trainer

    corpus = write_corpus(tmp_path / "slice.txt", n_docs=400)
    cfg = resolve_config("gpt-nano", data="text", overrides=[
        f"data.path={corpus}", "data.context=64", "train.batch_size=16", "train.max_steps=120",
        "train.eval_every=0", "train.progress=false", "train.sample_every=0", "optim.warmup_steps=12",
        "optim.lr=3e-3"])
    splits = load_splits(cfg.data, tmp_path / "run")
    tokens = splits.train.tokens.tolist()
    entropy = unigram_entropy(tokens)
    torch.manual_seed(0)
    from twopaths.models import get_spec

    model = get_spec("gpt-nano").build(cfg, splits.meta)
    trainer = Trainer(model, splits.train, cfg, tmp_path / "run", val_set=splits.val)
    trainer.fit()
    val = trainer.evaluate(max_batches=20)["loss"]
    print(f"unigram entropy {entropy:.3f} nats, gpt-nano validation loss {val:.3f} nats")
    assert entropy > 2.5  # the text is not trivial
    assert val < 0.5 * entropy  # measured: 0.87 vs 3.09 nats after 120 steps


def test_sample_follows_the_paradigm_contract():
    """sample(n, *, cond, generator, ...): n continuations of one prompt, keyword-only, unconditional."""
    model = gpt()
    out = model.sample(3, prompt=[1, 2], max_new_tokens=5, temperature=0)
    assert out == [model.generate([[1, 2]], 5, temperature=0)[0]] * 3
    with pytest.raises(TypeError):
        model.sample(3, [1, 2])  # keyword-only
    with pytest.raises(ValueError, match="continues a prompt"):
        model.sample(3)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(3, prompt=[1], cond=torch.zeros(3))
