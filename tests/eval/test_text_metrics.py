"""Text metrics: model perplexity, the Kneser-Ney reference model, gen-PPL with entropy,
distinct-n, Self-BLEU, BLEU and chrF (sacrebleu as the oracle)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn

from twopaths.backbones.window_mlp import WindowMLP, WindowMLPConfig
from twopaths.data.text import TokenWindows
from twopaths.errors import TwopathsError
from twopaths.eval.text import (
    CharNGram,
    bleu,
    char_entropy,
    chrf,
    distinct_n,
    generative_perplexity,
    perplexity,
    sample_entropy,
    self_bleu,
    text_report,
)
from twopaths.paradigms.autoregressive import Autoregressive

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hum old songs about "
         "rivers mountains and far away cities").split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))).capitalize() + "." for _ in range(n)]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return {"train": sentences(300, 0), "test": sentences(30, 1)}


@pytest.fixture(scope="module")
def lm(corpus) -> CharNGram:
    return CharNGram(order=5).fit(corpus["train"])


# ----------------------------------------------------------------------------- model perplexity


class ZeroLogits(nn.Module):
    """Causal 'model' predicting the uniform distribution: its perplexity is exactly the vocabulary size."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*tokens.shape, self.vocab) + 0 * self.dummy  # (B, T, V)


def test_perplexity_of_uniform_model_is_vocab_size():
    windows = TokenWindows(torch.randint(0, 13, (200,)), context=16)
    assert perplexity(Autoregressive(ZeroLogits(13), context=16), windows, batch_size=4) == pytest.approx(13.0)


def test_perplexity_is_exp_mean_token_nll_and_keeps_training_mode():
    torch.manual_seed(0)
    net = WindowMLP(11, WindowMLPConfig(window=3, embed_dim=4, hidden=16, layers=1))
    model = Autoregressive(net, context=8).train()
    windows = TokenWindows(torch.randint(0, 11, (90,)), context=8)
    ppl = perplexity(model, windows, batch_size=3)
    assert model.training
    with torch.no_grad():
        tokens = torch.stack([windows[i]["tokens"] for i in range(len(windows))])  # (N, 9)
        nll = F.cross_entropy(net(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())
    assert ppl == pytest.approx(math.exp(float(nll)), rel=1e-5)


# ----------------------------------------------------------------------------- Kneser-Ney


def test_kneser_ney_matches_hand_computation():
    # "abab", order 2: bigram counts (BOS a)=1, (a b)=2, (b a)=1; unigram continuation counts a=2
    # (after BOS, b), b=1 (after a); too few counts of counts, so the fallback D = 0.5, 1, 1.5.
    # p1(a) = (2-1)/3 + gamma 1.5/3 * 1/3 = 1/2, p1(b) = 1/3, p1(unseen) = 1/6.
    # p(b|a) = (2-1)/2 + 1/2 p1(b) = 2/3, p(a|a) = 1/2 p1(a) = 1/4, p(unseen|a) = 1/12.
    # p(a|BOS) = (1-0.5)/1 + 1/2 p1(a) = 3/4.
    lm = CharNGram(order=2).fit(["abab"])
    dist = lm.next_char_distribution("a")
    assert dist == pytest.approx({"a": 1 / 4, "b": 2 / 3, None: 1 / 12})
    assert lm.log_prob("ab") == pytest.approx(math.log(3 / 4 * 2 / 3))
    assert lm.next_char_distribution("zzz-unseen") == pytest.approx({"a": 1 / 2, "b": 1 / 3, None: 1 / 6})


@pytest.mark.parametrize("context", ["", "The q", "over a lazy ", "xyz€", "s. Th", "zzzzz qu"])
def test_kneser_ney_probabilities_sum_to_one(lm, context):
    dist = lm.next_char_distribution(context)
    assert len(dist) == lm.vocab_size
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-12)
    assert min(dist.values()) > 0  # smoothing: nothing is impossible


@pytest.mark.parametrize("order", [1, 3])
def test_kneser_ney_other_orders_sum_to_one(corpus, order):
    dist = CharNGram(order=order).fit(corpus["train"]).next_char_distribution("jumps ov")
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-12)


def test_log_prob_and_perplexity_agree(lm, corpus):
    texts = corpus["test"][:5]
    nats = -sum(lm.log_prob(t) for t in texts) / sum(map(len, texts))
    assert lm.nats_per_char(texts) == pytest.approx(nats)
    assert lm.perplexity(texts) == pytest.approx(math.exp(nats))
    assert lm(texts) == pytest.approx(nats)  # a CharNGram is a reference callable


def test_real_text_is_far_more_likely_than_random_characters(lm, corpus):
    rng = np.random.default_rng(0)
    noise = ["".join(rng.choice(lm.chars, size=len(t))) for t in corpus["test"]]
    real, random_ppl = lm.perplexity(corpus["test"]), lm.perplexity(noise)
    assert real < 3.0 < 0.1 * random_ppl, (real, random_ppl)


def test_kneser_ney_errors():
    with pytest.raises(TwopathsError, match="fit"):
        CharNGram().nats_per_char(["abc"])
    with pytest.raises(TwopathsError, match="no characters"):
        CharNGram().fit(["", ""])
    with pytest.raises(TwopathsError, match="empty"):
        CharNGram(order=2).fit(["ab"]).nats_per_char(["", ""])


# ----------------------------------------------------------------------------- gen-PPL and entropy


def test_repetitive_samples_have_low_entropy(corpus):
    assert char_entropy("a" * 100) == 0.0
    assert char_entropy("abab") == pytest.approx(math.log(2))
    real = sample_entropy(corpus["test"])
    repetitive = sample_entropy(["a" * 200, "the the the the " * 10])
    assert repetitive["per_sample"] < 0.5 * real["per_sample"]
    assert repetitive["unigram"] < real["unigram"]


def test_generative_perplexity_reports_entropy_next_to_ppl(lm, corpus):
    real = generative_perplexity(corpus["test"], lm)
    assert real["gen_ppl"] == pytest.approx(lm.perplexity(corpus["test"]))
    assert real["chars"] == sum(map(len, corpus["test"]))
    greedy = ""  # greedy decoding from the reference itself: the most likely text there is, and a loop
    for _ in range(200):
        dist = lm.next_char_distribution(greedy)
        greedy += max((ch for ch in dist if ch is not None), key=dist.get)
    degenerate = generative_perplexity([greedy] * 4, lm)
    assert degenerate["gen_ppl"] < real["gen_ppl"]  # the trap: repetition looks "better" ...
    assert degenerate["entropy_per_sample"] < 0.7 * real["entropy_per_sample"]  # ... entropy exposes it
    custom = generative_perplexity(["abc"], lambda texts: math.log(7.0))  # any texts -> nats/char callable
    assert custom["gen_ppl"] == pytest.approx(7.0)
    with pytest.raises(TwopathsError, match="empty"):
        generative_perplexity(["", ""], lm)


# ----------------------------------------------------------------------------- diversity and references


def test_distinct_n_by_hand():
    texts = ["a b a b", "a c"]
    assert distinct_n(texts, 1) == 3 / 6  # a b a b a c: {a, b, c}
    assert distinct_n(texts, 2) == 3 / 4  # (a b) (b a) (a b) (a c)
    assert distinct_n(texts, 3) == 2 / 2  # (a b a) (b a b); "a c" has none
    assert distinct_n(texts, 5) == 0.0
    assert distinct_n(["abca"], 2, unit="char") == 3 / 3


def test_self_bleu_matches_sacrebleu_loop(corpus):
    texts = corpus["test"][:8]
    metric = sacrebleu.metrics.BLEU(effective_order=True)
    expected = np.mean([metric.sentence_score(t, texts[:i] + texts[i + 1:]).score for i, t in enumerate(texts)])
    assert self_bleu(texts, max_refs=None) == pytest.approx(expected)
    assert self_bleu(["same words here"] * 3) == pytest.approx(100.0)
    assert 0 <= self_bleu(texts, max_refs=3, max_hyps=4) <= 100


def test_bleu_and_chrf_match_sacrebleu(corpus):
    hyps, refs = corpus["test"][:10], corpus["test"][10:20]
    assert bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    multi = [[r, h] for r, h in zip(refs, hyps)]  # the hypothesis among its references: perfect
    assert bleu(hyps, multi) == pytest.approx(100.0)
    ragged = [[r] if i % 2 else [r, corpus["test"][i]] for i, r in enumerate(refs)]
    assert bleu(hyps, ragged) == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs, [None if i % 2 else corpus["test"][i] for i in range(10)]]).score)
    with pytest.raises(TwopathsError, match="10 hypotheses but 9"):
        bleu(hyps, refs[:9])


def test_text_report_bundles_everything(lm, corpus):
    report = text_report(corpus["test"][:10], lm, real=corpus["test"][10:20])
    for key in ("gen_ppl", "entropy_per_sample", "entropy_unigram", "distinct_1", "distinct_2", "distinct_3",
                "self_bleu", "samples", "real_gen_ppl", "real_entropy_per_sample", "real_self_bleu"):
        assert key in report and math.isfinite(report[key]), key
    assert report["samples"] == 10
