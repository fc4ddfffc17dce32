"""Sequence transduction: p(target | source) with an encoder-decoder, trained by teacher forcing.

Training (Vaswani et al. 2017, "Attention Is All You Need", sec. 3 and 5.4) maximises
``log p(y | x) = sum_t log p(y_t | y_<t, x)``: the decoder sees the target shifted right
(``<bos> y_1 .. y_n``) and predicts every next token (``y_1 .. y_n <eos>``) in one pass, padding
ignored. The cross-entropy is label-smoothed (Szegedy et al. 2016, "Rethinking the Inception
Architecture", sec. 7; Vaswani et al. sec. 5.4, eps_ls = 0.1): the one-hot target is replaced by
``(1 - eps) * onehot(y) + eps / V`` over the V target ids, so per token::

    loss = (1 - eps) * (-log p_y) + eps * mean_v(-log p_v)

It "hurts perplexity, as the model learns to be more unsure, but improves accuracy and BLEU"
(sec. 5.4). So smoothing is applied in training mode only: in eval mode :meth:`Transduction.loss`
is the plain per-token negative log-likelihood, and validation loss and perplexity stay honest.

Decoding finds a likely target for each source, one token at a time, with the decoder's KV cache
(self-attention keys/values appended per step; the memory's cross-attention keys/values
projected once, on the first step) or, with ``use_cache=False``, by re-running the decoder over
the whole prefix each step (the reference the cache is tested against):

- :meth:`Transduction.greedy`: the most likely next token each step (or a sampled one with a
  temperature).
- :meth:`Transduction.beam_search`: keeps the ``beam`` best partial targets per source, batched
  over sources, and ranks finished ones by log p(Y | X) / lp(Y) with GNMT's length penalty
  (Wu et al. 2016, "Google's Neural Machine Translation System", eq. 14, coverage penalty 0)::

      lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha

  |Y| counts the target's tokens including the end-of-sequence token; alpha = 0 ranks by raw
  log-probability, larger alpha favours longer outputs (GNMT uses 0.6 - 0.7; 0.6 here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from twopaths.backbones.seq2seq import Seq2Seq
from twopaths.data.pairs import BOS, PAD
from twopaths.errors import DataError
from twopaths.paradigms.autoregressive import sample_logits
from twopaths.paradigms.base import Paradigm


def label_smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, eps: float,
                                 ignore_index: int) -> torch.Tensor:
    """Mean over the non-ignored targets of ``(1 - eps) * nll + eps * mean_v(-log p_v)``.

    logits (N, V), targets (N,). Written out (the smoothed target distribution puts ``eps / V`` on
    every id, the target included); ``F.cross_entropy(..., label_smoothing=eps, ignore_index=...)``
    computes the same and is the test's oracle. 0 when every target is ignored.
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (N, V)
    keep = targets != ignore_index  # (N,)
    nll = -logp.gather(-1, targets.clamp(min=0)[:, None]).squeeze(-1)  # (N,): -log p(target)
    uniform = -logp.mean(dim=-1)  # (N,): cross-entropy against the uniform distribution
    per_token = (1.0 - eps) * nll + eps * uniform if eps > 0 else nll
    return (per_token * keep).sum() / keep.sum().clamp(min=1)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp(Y) = (5 + |Y|)^alpha / 6^alpha (Wu et al. 2016, eq. 14); 1 for alpha = 0."""
    return ((5.0 + length) / 6.0) ** alpha


class _Stepper:
    """Runs the decoder one step at a time for N rows: with a KV cache on the newest token only, or
    (``use_cache=False``) on the whole prefix again. ``select`` keeps chosen rows (beam search)."""

    def __init__(self, net: Seq2Seq, memory: torch.Tensor, memory_mask: torch.Tensor, bos_id: int, max_len: int,
                 use_cache: bool):
        self.net, self.memory, self.memory_mask = net, memory, memory_mask  # (N, S, d), (N, S)
        self.prefix = torch.full((memory.shape[0], 1), bos_id, dtype=torch.long, device=memory.device)  # (N, t)
        self.pending = self.prefix  # tokens the cache has not seen yet
        self.cache = net.new_cache(memory.shape[0], max_len + 1, device=memory.device, dtype=memory.dtype) \
            if use_cache else None

    def logits(self) -> torch.Tensor:
        """Next-token logits (N, V) after the current prefix."""
        ids = self.pending if self.cache is not None else self.prefix
        return self.net.decode(ids, self.memory, self.memory_mask, cache=self.cache)[:, -1]

    def push(self, tokens: torch.Tensor) -> None:
        """Append one token per row (N,)."""
        self.pending = tokens[:, None]
        self.prefix = torch.cat([self.prefix, self.pending], dim=1)

    def select(self, rows: torch.Tensor) -> None:
        """Keep rows ``rows`` (N',) in that order: prefixes, memory and cache alike."""
        self.prefix, self.pending = self.prefix[rows], self.pending[rows]
        self.memory, self.memory_mask = self.memory[rows], self.memory_mask[rows]
        if self.cache is not None:
            self.cache.reorder(rows)


class Transduction(Paradigm):
    """An encoder-decoder trained on ``{"src": [str], "tgt": [str]}`` batches; decodes greedily or by beam search.

    ``src_tokenizer`` / ``tgt_tokenizer`` are character tokenizers with the pair specials
    (:data:`twopaths.data.pairs.PAIR_SPECIALS`; the same object when the vocabulary is shared).
    Sources are encoded as ``x_1 .. x_m <eos>``, targets as ``<bos> y_1 .. y_n <eos>``; both are
    right-padded, and neither may exceed the backbone's context.
    """

    item_name = "tokens"

    def __init__(self, net: Seq2Seq, src_tokenizer: Any, tgt_tokenizer: Any, label_smoothing: float = 0.1):
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.net = net
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.label_smoothing = label_smoothing
        self.context = net.cfg.context
        self.src_pad, self.src_eos = src_tokenizer.specials.index(PAD), src_tokenizer.eot_id
        self.pad_id, self.bos_id, self.eos_id = (tgt_tokenizer.specials.index(PAD), tgt_tokenizer.specials.index(BOS),
                                                 tgt_tokenizer.eot_id)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ tokens

    def _pad(self, rows: list[list[int]], pad: int, side: str) -> torch.Tensor:
        longest = max(map(len, rows))
        if longest > self.context:
            raise DataError(f"a {side} of {longest} tokens (special tokens included) is longer than the model's "
                            f"context of {self.context}; raise --set arch.context=... or shorten the pairs")
        out = torch.full((len(rows), longest), pad, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out.to(self.device)

    def encode_sources(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Source strings -> ids (B, S) ``x_1 .. x_m <eos> <pad>..``, and the mask (B, S) of real tokens."""
        ids = self._pad([self.src_tokenizer.encode(t) + [self.src_eos] for t in texts], self.src_pad, "source")
        return ids, ids != self.src_pad

    def encode_targets(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Target strings -> decoder inputs ``<bos> y_1 .. y_n`` and outputs ``y_1 .. y_n <eos>``, (B, T) each."""
        ids = [self.tgt_tokenizer.encode(t) for t in texts]
        inputs = self._pad([[self.bos_id] + row for row in ids], self.pad_id, "target")
        outputs = self._pad([row + [self.eos_id] for row in ids], self.pad_id, "target")
        return inputs, outputs

    # ------------------------------------------------------------------ training

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Label-smoothed cross-entropy per target token in training mode, plain NLL per token in eval mode."""
        src, src_mask = self.encode_sources(batch["src"])  # (B, S)
        tgt_in, tgt_out = self.encode_targets(batch["tgt"])  # (B, T)
        logits = self.net(src, src_mask, tgt_in)  # (B, T, V): position t predicts target token t + 1
        eps = self.label_smoothing if self.training else 0.0
        return label_smoothed_cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), eps, self.pad_id)

    def items_in(self, batch: dict[str, Any]) -> int:
        """Target tokens scored (end-of-sequence included), so evaluation means are per token."""
        return sum(len(self.tgt_tokenizer.encode(t)) + 1 for t in batch["tgt"])

    # ------------------------------------------------------------------ decoding

    def _ban(self, logits: torch.Tensor) -> torch.Tensor:
        """Never emit <pad> or <bos> (float logits (N, V))."""
        logits = logits.float().clone()
        logits[:, [self.pad_id, self.bos_id]] = float("-inf")
        return logits

    def _max_len(self, max_len: int | None) -> int:
        """Most target tokens to generate (end-of-sequence included); the context bounds it."""
        return self.context if max_len is None else max(1, min(max_len, self.context))

    @torch.no_grad()
    def greedy(self, src_ids: torch.Tensor, src_mask: torch.Tensor, max_len: int | None = None,
               use_cache: bool = True, temperature: float = 0.0, generator: torch.Generator | None = None,
               return_logits: bool = False) -> list[list[int]] | tuple[list[list[int]], torch.Tensor]:
        """The most likely next token each step (``temperature`` > 0: sampled), for B sources at once.

        src_ids, src_mask (B, S) as from :meth:`encode_sources`. Returns each row's target ids without
        the end-of-sequence token; ``return_logits`` also returns every step's logits (B, steps, V).
        A finished row keeps being fed (its later tokens are ignored) until every row is done.
        """
        max_len = self._max_len(max_len)
        B = src_ids.shape[0]
        stepper = _Stepper(self.net, self.net.encode(src_ids, src_mask), src_mask, self.bos_id, max_len, use_cache)
        tokens = torch.full((B, max_len), self.pad_id, dtype=torch.long, device=src_ids.device)
        done = torch.zeros(B, dtype=torch.bool, device=src_ids.device)
        steps_logits = []
        for t in range(max_len):
            logits = stepper.logits()  # (B, V)
            if return_logits:
                steps_logits.append(logits.float())
            nxt = sample_logits(self._ban(logits), temperature, generator=generator)  # (B,)
            nxt = nxt.masked_fill(done, self.pad_id)
            tokens[:, t] = nxt
            done |= nxt == self.eos_id
            if bool(done.all()) or t + 1 == max_len:
                break
            stepper.push(nxt)
        out = [row[:row.index(self.eos_id)] if self.eos_id in row else [i for i in row if i != self.pad_id]
               for row in tokens.tolist()]
        return (out, torch.stack(steps_logits, dim=1)) if return_logits else out

    @torch.no_grad()
    def beam_search(self, src_ids: torch.Tensor, src_mask: torch.Tensor, beam: int = 4, alpha: float = 0.6,
                    max_len: int | None = None, use_cache: bool = True,
                    return_scores: bool = False) -> list[list[int]] | tuple[list[list[int]], list[float]]:
        """Beam search over B sources at once; returns each source's best target ids (no end token).

        Each source keeps ``beam`` live hypotheses. A step scores every (hypothesis, next token)
        pair by its total log-probability and looks at the best 2 * beam: a candidate ending in
        end-of-sequence among the first ``beam`` is *finished* (scored log p / lp(|Y|)); the best
        ``beam`` others live on (the 2 * beam make sure there are enough: each hypothesis has one
        end-of-sequence candidate). A source is done once ``beam`` hypotheses have finished and the
        ``beam``-th best of them scores at least as well as the best live one would if it ended now
        (log p / lp(current length); the ``early_stopping=False`` rule of Hugging Face's beam search),
        or at ``max_len`` tokens, where its live hypotheses count as finished; done sources leave the
        batch. Merely counting ``beam`` finished ones is not enough: a label-smoothed model gives
        every token about eps / V, so early ``<eos>`` candidates rank among the best 2 * beam at the
        first steps, and those empty or cut-off hypotheses would end the search before any good one
        finished. The first step runs once per source (all its hypotheses would be equal), so the
        memory's cross-attention keys/values are computed once per source and copied to its beams.
        ``return_scores`` also returns the winners' normalised scores. ``beam=1`` is greedy decoding:
        the single live hypothesis is the best candidate unless that one ends, and then it is done.
        """
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        max_len = self._max_len(max_len)
        B = src_ids.shape[0]
        stepper = _Stepper(self.net, self.net.encode(src_ids, src_mask), src_mask, self.bos_id, max_len, use_cache)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]  # (score / lp, ids)
        alive = list(range(B))  # the source of each group of rows
        hyps: list[list[int]] = [[] for _ in range(B)]  # tokens of each row
        scores = torch.zeros(B, 1, device=src_ids.device)  # (groups, hypotheses per group): log p so far
        for t in range(max_len):
            logp = F.log_softmax(self._ban(stepper.logits()), dim=-1)  # (rows, V)
            groups, k_now, V = len(alive), scores.shape[1], logp.shape[-1]
            cand = (scores[:, :, None] + logp.view(groups, k_now, V)).view(groups, k_now * V)
            top_scores, top_index = cand.topk(min(2 * beam, k_now * V), dim=1)  # (groups, 2 * beam)
            top_scores, top_index = top_scores.tolist(), top_index.tolist()
            lp = length_penalty(t + 1, alpha)
            rows, new_tokens, new_scores, new_hyps, kept = [], [], [], [], []
            for g, src in enumerate(alive):
                picked: list[tuple[int, int, float]] = []  # (row, token, score)
                for rank, (score, index) in enumerate(zip(top_scores[g], top_index[g])):
                    if score == float("-inf") or len(picked) == beam:
                        break
                    row, token = g * k_now + index // V, index % V
                    if token == self.eos_id:
                        if rank < beam:
                            finished[src].append((score / lp, hyps[row]))
                    else:
                        picked.append((row, token, score))
                if t + 1 == max_len:  # out of length: the live hypotheses are as finished as they get
                    finished[src].extend((score / lp, hyps[row] + [token]) for row, token, score in picked)
                if t + 1 == max_len or not picked:
                    continue
                if len(finished[src]) >= beam:  # done when no live hypothesis would enter the best `beam`
                    kth = sorted((s for s, _ in finished[src]), reverse=True)[beam - 1]
                    if kth >= picked[0][2] / lp:  # picked[0] is the best live hypothesis
                        continue
                while len(picked) < beam:  # fewer usable tokens than beams (a tiny vocabulary): dead copies
                    picked.append((picked[0][0], picked[0][1], float("-inf")))
                kept.append(src)
                for row, token, score in picked:
                    rows.append(row)
                    new_tokens.append(token)
                    new_scores.append(score)
                    new_hyps.append(hyps[row] + [token])
            if not kept:
                break
            device = src_ids.device
            stepper.select(torch.tensor(rows, device=device))
            stepper.push(torch.tensor(new_tokens, device=device))
            alive, hyps = kept, new_hyps
            scores = torch.tensor(new_scores, device=device).view(len(kept), beam)
        best = [max(f, key=lambda item: item[0]) if f else (float("-inf"), []) for f in finished]
        out = [ids for _, ids in best]
        return (out, [score for score, _ in best]) if return_scores else out

    @torch.no_grad()
    def translate(self, sources: Sequence[str], beam: int = 4, alpha: float = 0.6, max_len: int | None = None,
                  batch_size: int = 256, use_cache: bool = True) -> list[str]:
        """Source strings -> target strings; ``beam=1`` is greedy. Sources go ``batch_size`` at a time,
        sorted by length so that a batch pads little; the results come back in the input order."""
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        out: list[str] = [""] * len(sources)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            src, mask = self.encode_sources([sources[i] for i in chunk])
            ids = self.greedy(src, mask, max_len, use_cache) if beam == 1 else \
                self.beam_search(src, mask, beam, alpha, max_len, use_cache)
            for i, row in zip(chunk, ids):
                out[i] = self.tgt_tokenizer.decode(row)
        return out

    @torch.no_grad()
    def sample(self, n: int, **kwargs: Any) -> Any:
        raise NotImplementedError("a sequence-to-sequence model translates sources: use translate()")
