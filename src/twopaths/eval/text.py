"""Text metrics: perplexity, generative perplexity with entropy, diversity, BLEU and chrF.

Two questions, kept apart:

- *How well does a model predict real text?* :func:`perplexity` of an autoregressive model on a
  held-out split: exp of the mean next-token negative log-likelihood (nats), i.e. exp(cross-entropy).
  It is per *token*, so it only compares models that share a tokenizer.
- *How good is the text a model writes?* A model whose likelihood we cannot compute (masked
  diffusion has only a bound) is judged by its samples: their **generative perplexity** under a
  fixed reference model, here :class:`CharNGram`, an interpolated Kneser-Ney character n-gram
  model trained in-project on the training split (no GPT-2 weights can be downloaded). It is per
  *character*, so it compares any two generators. Low gen-PPL alone is easy to fake: "the the the
  ..." is very predictable. So it is always reported together with the samples' character entropy
  (Sahoo et al. 2024, "Simple and Effective Masked Diffusion Language Models" (MDLM), sec. 4,
  report entropy next to gen-PPL for this reason), and :func:`text_report` adds distinct-n
  (Li et al. 2016) and Self-BLEU (Zhu et al. 2018) for diversity.

BLEU (Papineni et al. 2002) and chrF (Popovic 2015) for translation-like tasks come from
sacrebleu (Post 2018, "A Call for Clarity in Reporting BLEU Scores"), corpus level, on its 0-100
scale, with its default tokenisation, so the numbers are comparable with published ones.

Units: every log-likelihood and entropy here is in nats; perplexities are exp(nats).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from twopaths.errors import TwopathsError

Reference = Callable[[Sequence[str]], float]  # texts -> mean negative log-likelihood in nats per character


# ----------------------------------------------------------------------------- model perplexity


def perplexity(model: Any, dataset: Any, batch_size: int = 32, device: str | torch.device = "cpu",
               max_batches: int | None = None) -> float:
    """exp(mean next-token NLL) of an :class:`~twopaths.paradigms.autoregressive.Autoregressive` model
    on ``dataset`` (e.g. a :class:`~twopaths.data.text.TokenWindows` split): every target token
    counts once, via :func:`twopaths.training.trainer.mean_loss`. Per token of the model's tokenizer."""
    from twopaths.training.trainer import mean_loss

    if len(dataset) == 0:
        raise TwopathsError("perplexity: the dataset is empty")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            nll = mean_loss(model, dataset, batch_size, device, max_batches=max_batches)
    finally:
        model.train(was_training)
    return math.exp(min(nll, 700.0))


# ----------------------------------------------------------------------------- reference model


class CharNGram:
    """Interpolated Kneser-Ney character n-gram language model with modified discounts
    (Chen & Goodman 1998, "An Empirical Study of Smoothing Techniques for Language Modeling",
    sec. 3, "modified Kneser-Ney": three discounts D1, D2, D3+ instead of one)::

        p_k(w | h) = max(c_k(hw) - D_k(c_k(hw)), 0) / c_k(h.)  +  gamma_k(h) p_{k-1}(w | h')
        gamma_k(h) = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / c_k(h.)

    where h' is h without its oldest character, c_k is the raw count at the highest order and the
    *continuation* count N1+(. h w) (how many distinct characters precede h w) below it (Kneser &
    Ney 1995), N_j(h.) counts the characters seen exactly j (3+: at least 3) times after h, and
    D_kj are estimated from the counts of counts n_j of order k (Chen & Goodman sec. 3, after Ney
    et al. 1994):
    Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3. An unseen
    context gives all its mass to the lower order; the unigram level is interpolated with the
    uniform distribution, so every character has non-zero probability and, for any context, the
    probabilities over the vocabulary sum to exactly 1.

    The vocabulary is every character of the training text plus one "unseen character" symbol
    that any other character maps to. Each document starts with ``order - 1`` begin-of-text
    symbols (context only, never predicted); no end-of-text is predicted, so texts cut at a length
    limit are scored fairly. Counts are kept as sorted int64 n-gram codes (numpy), so fitting the
    2.5 MB fortunes corpus at order 5 takes seconds and scoring is vectorised.
    """

    def __init__(self, order: int = 5):
        if order < 1:
            raise TwopathsError(f"CharNGram order must be at least 1, got {order}")
        self.order = order
        self.chars: list[str] = []
        self._index: dict[str, int] = {}
        self._tables: list[dict[str, np.ndarray]] = []

    # ------------------------------------------------------------------ ids

    @property
    def vocab_size(self) -> int:
        """Predictable symbols: the training characters and the unseen-character symbol."""
        return len(self.chars) + 1

    def _ids(self, text: str) -> np.ndarray:
        """Begin-of-text padding then character ids: (order - 1 + len(text),) int64; 0 = BOS,
        1..C the training characters, C + 1 any other character."""
        if not self._index:
            raise TwopathsError("CharNGram: call fit(documents) before scoring text")
        unk = len(self.chars) + 1
        ids = [self._index.get(ch, unk) for ch in text]
        return np.array([0] * (self.order - 1) + ids, dtype=np.int64)

    def _windows(self, texts: Sequence[str]) -> np.ndarray:
        """Every character of ``texts`` with its context: (N, order) ids, the last column the character."""
        rows = [np.lib.stride_tricks.sliding_window_view(self._ids(t), self.order) for t in texts if t]
        return np.concatenate(rows) if rows else np.zeros((0, self.order), dtype=np.int64)

    def _codes(self, windows: np.ndarray, k: int) -> np.ndarray:
        """Base-B code of each window's last ``k`` symbols (oldest most significant): (N,) int64."""
        code = np.zeros(len(windows), dtype=np.int64)
        for j in range(self.order - k, self.order):
            code = code * self._base + windows[:, j]
        return code

    # ------------------------------------------------------------------ fitting

    def fit(self, documents: Sequence[str]) -> CharNGram:
        """Count the n-grams of ``documents`` (a list of training texts) and estimate the discounts."""
        if isinstance(documents, str):
            raise TwopathsError("CharNGram.fit takes a list of documents, not one string")
        self.chars = sorted({ch for doc in documents for ch in doc})
        if not self.chars:
            raise TwopathsError("CharNGram.fit: the training documents contain no characters")
        self._index = {ch: i + 1 for i, ch in enumerate(self.chars)}
        self._base = len(self.chars) + 2  # BOS, characters, unseen
        if self._base ** self.order >= 2**62:
            raise TwopathsError(f"CharNGram: {len(self.chars)} distinct characters at order {self.order} "
                                f"overflow 64-bit n-gram codes; lower the order")
        windows = self._windows(documents)  # (N, order)
        self._tables = []
        higher = None  # the distinct (k+1)-gram codes, whose suffixes give continuation counts
        for k in range(self.order, 0, -1):
            if k == self.order:
                grams, counts = np.unique(self._codes(windows, k), return_counts=True)
            else:
                grams, counts = np.unique(higher % self._base**k, return_counts=True)  # N1+(. g)
            higher = grams
            self._tables.append(self._table(grams, counts))
        self._tables.reverse()  # _tables[k - 1] is order k
        return self

    def _table(self, grams: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Sorted codes and counts of one order, its discounts, and per-context totals."""
        n = [int((counts == j).sum()) for j in range(1, 5)]  # n1..n4, counts of counts
        discounts = np.array([0.0, 0.5, 1.0, 1.5])  # a fallback for tiny data where some n_j is 0
        if all(n):
            y = n[0] / (n[0] + 2 * n[1])
            discounts[1:] = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
        # D_j <= j keeps every term >= 0; D_j >= 0.001 keeps every probability > 0 (gamma(h) > 0)
        discounts[1:] = np.clip(discounts[1:], 1e-3, [1.0, 2.0, 3.0])
        discount = discounts[np.minimum(counts, 3)]  # (G,) D(c) of each n-gram
        contexts, inverse = np.unique(grams // self._base, return_inverse=True)
        totals = np.bincount(inverse, weights=counts, minlength=len(contexts))  # c(h.)
        held = np.bincount(inverse, weights=discount, minlength=len(contexts))  # D1 N1 + D2 N2 + D3 N3+
        return {"grams": grams, "counts": counts.astype(np.float64), "discount": discount,
                "contexts": contexts, "totals": totals, "gamma": held / totals, "D": discounts[1:]}

    # ------------------------------------------------------------------ probabilities

    @staticmethod
    def _lookup(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found (N,) bool, index (N,)) of each query in the sorted ``keys``."""
        idx = np.searchsorted(keys, queries).clip(max=max(len(keys) - 1, 0))
        return (keys[idx] == queries) if len(keys) else np.zeros(len(queries), bool), idx

    def _probs(self, windows: np.ndarray) -> np.ndarray:
        """p(last symbol | the ones before it) for each window (N, order): (N,) float64."""
        p = np.full(len(windows), 1.0 / self.vocab_size)  # order 0: uniform over the vocabulary
        for k in range(1, self.order + 1):
            tab = self._tables[k - 1]
            code = self._codes(windows, k)
            seen_ctx, ci = self._lookup(tab["contexts"], code // self._base)
            seen, gi = self._lookup(tab["grams"], code)
            c = np.where(seen, tab["counts"][gi], 0.0)
            d = np.where(seen, tab["discount"][gi], 0.0)
            total = np.where(seen_ctx, tab["totals"][ci], 1.0)
            mixed = np.maximum(c - d, 0.0) / total + tab["gamma"][ci] * p
            p = np.where(seen_ctx, mixed, p)  # an unseen context passes the lower order through
        return p

    def next_char_distribution(self, context: str) -> dict[str | None, float]:
        """p(next character | ``context``) for every vocabulary symbol; the key None is the
        unseen-character symbol. The values sum to 1."""
        ctx = self._ids(context)[-(self.order - 1):] if self.order > 1 else np.zeros(0, np.int64)
        targets = np.arange(1, self.vocab_size + 1)  # (V,)
        windows = np.concatenate([np.tile(ctx, (len(targets), 1)), targets[:, None]], axis=1)  # (V, order)
        probs = self._probs(windows)
        return {**dict(zip(self.chars, probs[:-1].tolist())), None: float(probs[-1])}

    def log_prob(self, text: str) -> float:
        """log p(text) in nats: the sum over its characters, the document starting fresh."""
        return float(np.log(self._probs(self._windows([text]))).sum())

    def nats_per_char(self, texts: Sequence[str]) -> float:
        """Mean negative log-likelihood per character over all of ``texts`` (each starts fresh)."""
        if isinstance(texts, str):
            texts = [texts]
        windows = self._windows(texts)
        if len(windows) == 0:
            raise TwopathsError("CharNGram: no characters to score (all texts are empty)")
        return float(-np.log(self._probs(windows)).mean())

    __call__ = nats_per_char  # a CharNGram is a Reference: texts -> nats per character

    def perplexity(self, texts: Sequence[str]) -> float:
        """Per-character perplexity exp(nats_per_char(texts))."""
        return math.exp(self.nats_per_char(texts))

    def __repr__(self) -> str:
        grams = sum(len(t["grams"]) for t in self._tables)
        return f"CharNGram(order={self.order}, vocab_size={self.vocab_size}, ngram_types={grams})"


# ----------------------------------------------------------------------------- samples: likelihood and entropy


def char_entropy(text: str) -> float:
    """Entropy (nats) of the character frequency distribution of ``text``: -sum_c f_c log f_c."""
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    if counts.size == 0:
        return 0.0
    f = counts / counts.sum()
    return float(0.0 - (f * np.log(f)).sum())  # 0.0 - ...: one repeated character gives 0.0, not -0.0


def sample_entropy(samples: Sequence[str]) -> dict[str, float]:
    """``per_sample``: the mean over non-empty samples of each one's character entropy (MDLM sec. 4;
    a sample that repeats itself scores low); ``unigram``: the entropy of all samples' characters
    pooled (a model that always writes the same few characters scores low). Both in nats."""
    nonempty = [s for s in samples if s]
    if not nonempty:
        raise TwopathsError("sample entropy: every sample is empty")
    return {"per_sample": float(np.mean([char_entropy(s) for s in nonempty])),
            "unigram": char_entropy("".join(nonempty))}


def generative_perplexity(samples: Sequence[str], reference: Reference) -> dict[str, float]:
    """Generative perplexity of ``samples`` under ``reference`` (a :class:`CharNGram` or any callable
    texts -> nats per character), always with the samples' entropies, since low entropy alone makes
    gen-PPL look good (MDLM, Sahoo et al. 2024, sec. 4).

    Returns ``gen_ppl`` (exp of nats per character), ``nats_per_char``, ``entropy_per_sample``,
    ``entropy_unigram`` (nats, see :func:`sample_entropy`) and ``chars`` (characters scored).
    """
    if isinstance(samples, str):
        raise TwopathsError("generative_perplexity takes a list of samples, not one string")
    entropy = sample_entropy(samples)  # raises on no characters
    nats = float(reference(list(samples)))
    return {"gen_ppl": math.exp(min(nats, 700.0)), "nats_per_char": nats,
            "entropy_per_sample": entropy["per_sample"], "entropy_unigram": entropy["unigram"],
            "chars": sum(map(len, samples))}


# ----------------------------------------------------------------------------- diversity


def distinct_n(texts: Sequence[str], n: int, unit: str = "word") -> float:
    """Distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
    Conversation Models", sec. 4.3): distinct n-grams / all n-grams, pooled over ``texts``. Units
    are whitespace-separated words (``unit="word"``, as in the paper) or characters (``"char"``).
    0.0 when no text has n units."""
    if n < 1:
        raise TwopathsError(f"distinct_n: n must be at least 1, got {n}")
    if unit not in ("word", "char"):
        raise TwopathsError(f"distinct_n: unit must be 'word' or 'char', got {unit!r}")
    grams: list[tuple[str, ...]] = []
    for text in texts:
        units = text.split() if unit == "word" else list(text)
        grams.extend(tuple(units[i:i + n]) for i in range(len(units) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str], max_refs: int | None = 100, max_hyps: int | None = None,
              seed: int = 0) -> float:
    """Self-BLEU (Zhu et al. 2018, "Texygen: A Benchmarking Platform for Text Generation Models",
    sec. 3.2): each text is scored by sentence BLEU against the other texts as references, and the
    scores are averaged; higher means the texts resemble each other (less diverse). sacrebleu's
    sentence BLEU with effective order (0-100). At most ``max_refs`` references per text and
    ``max_hyps`` hypotheses, drawn with ``seed``, bound the O(n^2) cost."""
    from sacrebleu.metrics import BLEU

    if len(texts) < 2:
        raise TwopathsError(f"self_bleu needs at least 2 texts, got {len(texts)}")
    rng = np.random.default_rng(seed)
    hyps = range(len(texts))
    if max_hyps is not None and max_hyps < len(texts):
        hyps = sorted(rng.choice(len(texts), size=max_hyps, replace=False).tolist())
    metric = BLEU(effective_order=True)
    scores = []
    for i in hyps:
        others = [j for j in range(len(texts)) if j != i]
        if max_refs is not None and max_refs < len(others):
            others = sorted(rng.choice(others, size=max_refs, replace=False).tolist())
        scores.append(metric.sentence_score(texts[i], [texts[j] for j in others]).score)
    return float(np.mean(scores))


# ----------------------------------------------------------------------------- reference-based


def _reference_streams(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu's layout from one reference (a str) or a list of references per hypothesis:
    stream j holds every hypothesis' j-th reference, None where a hypothesis has fewer."""
    if len(hyps) != len(refs):
        raise TwopathsError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise TwopathsError("no hypotheses to score")
    per_hyp = [[r] if isinstance(r, str) else list(r) for r in refs]
    if any(not r for r in per_hyp):
        raise TwopathsError("every hypothesis needs at least one reference")
    width = max(map(len, per_hyp))
    return [[r[j] if j < len(r) else None for r in per_hyp] for j in range(width)]


def bleu(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (Papineni et al. 2002) via sacrebleu, 0-100. ``refs[i]``: the reference of
    ``hyps[i]``, or a list of them."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hyps), _reference_streams(hyps, refs)).score)


def chrf(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Corpus chrF (Popovic 2015, character n-gram F-score, beta 2) via sacrebleu, 0-100."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hyps), _reference_streams(hyps, refs)).score)


# ----------------------------------------------------------------------------- the bundle


def text_report(samples: Sequence[str], reference: Reference, real: Sequence[str] | None = None,
                orders: Sequence[int] = (1, 2, 3), self_bleu_refs: int | None = 100,
                self_bleu_hyps: int | None = 200) -> dict[str, float]:
    """Every sample-quality number of the arena for a list of generated texts: generative
    perplexity and entropies (:func:`generative_perplexity`), ``distinct_N`` for each of ``orders``
    (words), ``self_bleu``, and ``samples``. With ``real`` (held-out real texts, ideally as many
    and as long as the samples), the same numbers for them under ``real_*`` keys: the floor a
    perfect generator would reach with this reference and sample count."""
    report: dict[str, float] = {"samples": len(samples), **generative_perplexity(samples, reference)}
    for n in orders:
        report[f"distinct_{n}"] = distinct_n(samples, n)
    report["self_bleu"] = self_bleu(samples, self_bleu_refs, self_bleu_hyps) if len(samples) > 1 else float("nan")
    if real is not None:
        floor = text_report(real, reference, None, orders, self_bleu_refs, self_bleu_hyps)
        report.update({f"real_{k}": v for k, v in floor.items()})
    return report
