"""Masked language modelling: BERT's pre-training task (Devlin et al. 2019, "BERT: Pre-training of
Deep Bidirectional Transformers for Language Understanding", sec. 3.1, "Task #1: Masked LM").

A bidirectional encoder reads a sequence in which some tokens were corrupted and predicts the
original token at those positions only. The recipe, per sequence:

1. choose 15% of the token positions at random (``mask_prob``), never padding or special tokens
   (the ``<|endoftext|>`` separators play the part of BERT's [CLS]/[SEP]). As in BERT's
   ``create_pretraining_data.py`` the count is exact per sequence, ``max(1, round(0.15 * n))``
   of its ``n`` candidate positions, not a coin flip per token;
2. of the chosen positions, 80% become [MASK] (``mask_token_prob``), 10% a uniformly random real
   token (``random_token_prob``; it may by chance equal the original), 10% keep their token;
3. loss = mean cross-entropy of the original token over the chosen positions::

       L = -(1 / |S|) * sum_{i in S} log p_theta(x_i | x~)         S: chosen positions, x~: corrupted input

The random and unchanged 10% keep the encoder from learning that only [MASK] positions matter,
since [MASK] never occurs when the encoder is later used on real text (BERT sec. 3.1 and
appendix C.2). exp(L) is the *masked-token perplexity*; it is not a sequence likelihood (BERT
defines no joint distribution), so it is not comparable to a GPT's perplexity.

The [MASK] id is ``vocab_size`` (as in :mod:`twopaths.paradigms.mdlm`, MDLM): the backbone has
``vocab_size + 1`` embedding rows and logits, and the [MASK] column is dropped before any softmax,
so [MASK] is never predicted. The output head runs on the chosen positions only (BERT's
``gather_indexes``), about 15% of the head's cost.

Randomness: each ``loss`` call seeds a private ``torch.Generator`` with one draw from the global
torch RNG and draws every mask decision from it on the CPU. The trainer checkpoints the global
RNG, so a resumed run sees exactly the masks it would have seen, and a run masks the same way on
any device.

Training batches are :class:`~twopaths.data.text.TokenWindows`' ``{"tokens": (B, T + 1)}`` (built
for next-token prediction): the model reads ``tokens[:, :T]``, so every token of the stream is
modelled once and a window fits a context of T positions (as in MDLM). An optional ``key_mask``
of the same shape, True for real tokens, marks padding.

The encoder is reusable as a text encoder for conditioning: :meth:`MaskedLM.encode` gives the
hidden states (B, T, d) and a pooled vector (B, d) (mean over real tokens); load a trained run and
call it::

    from twopaths.runs import load_run
    bert = load_run("runs/bert").model                   # EMA weights, eval mode
    hidden, key_mask, pooled = bert.encode_texts(["a cat", "the heart of the matter"])
    # or, with your own ids:  hidden, pooled = bert.encode(ids, key_mask)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.errors import TwopathsError
from twopaths.paradigms.base import Paradigm

MASK_TEXT = "[MASK]"  # how a user writes the mask token in text given to fill()


@dataclass
class PredictionTally:
    """Running count of masked-token predictions scored in eval mode (accuracy = correct / total)."""

    correct: int = 0
    total: int = 0

    def take(self) -> float | None:
        """The accuracy since the last ``take`` (None if nothing was scored), and start counting afresh."""
        accuracy = self.correct / self.total if self.total else None
        self.correct = self.total = 0
        return accuracy


@dataclass
class Fill:
    """What :meth:`MaskedLM.fill` returns: the text with each [MASK] replaced by its most likely
    token, and for each [MASK], in order, the top-k (token text, probability) pairs."""

    text: str
    candidates: list[list[tuple[str, float]]] = field(default_factory=list)


def split_masked_text(text: str, tokenizer: Any, mask_id: int) -> tuple[list[int], list[bool]]:
    """Token ids for ``text`` with every literal ``[MASK]`` as ``mask_id``, and for each [MASK]
    whether it took over a space before it.

    Byte-level BPE (GPT-2 style) attaches a space to the *following* word (" heart"), so a single
    space right before [MASK] belongs to the token to be predicted: "the [MASK] of" encodes as
    ``the``, [MASK], `` of``, exactly as "the heart of" would around the gap. Character tokenizers
    keep the space as its own token.
    """
    pieces = text.split(MASK_TEXT)
    if len(pieces) == 1:
        raise TwopathsError(f"no {MASK_TEXT} in the text: write {MASK_TEXT} where a token should be predicted, "
                            f"e.g. \"the {MASK_TEXT} of the matter\"")
    space_joins_word = getattr(tokenizer, "kind", None) == "bpe"
    ids: list[int] = []
    took_space: list[bool] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        took = not last and space_joins_word and piece.endswith(" ")
        if took:
            piece = piece[:-1]
        if piece:
            ids += tokenizer.encode(piece)
        if not last:
            ids.append(mask_id)
            took_space.append(took)
    return ids, took_space


class MaskedLM(Paradigm):
    """BERT's masked LM on a bidirectional backbone: ids (B, T) -> logits (B, T, vocab_size + 1), [MASK] included.

    Args:
        net: a :class:`~twopaths.backbones.transformer.Transformer` with ``causal=False`` (anything
            with ``hidden(ids, key_mask=...)`` and ``lm_head``); id ``vocab_size`` is [MASK].
        vocab_size: real tokens (the [MASK] id comes after them).
        context: the longest sequence the backbone takes.
        special_ids: token ids never chosen for prediction nor drawn as random replacements
            (the tokenizer's ``<|endoftext|>``, ``<unk>``).
        mask_prob: fraction of candidate positions chosen per sequence (BERT: 0.15).
        mask_token_prob: of the chosen, the fraction replaced by [MASK] (BERT: 0.8).
        random_token_prob: of the chosen, the fraction replaced by a random token (BERT: 0.1);
            the rest keep their token.
        tokenizer: used by :meth:`fill` and :meth:`encode_texts` (text in, text out); optional.
    """

    item_name = "tokens"

    def __init__(self, net: nn.Module, vocab_size: int, context: int, special_ids: Iterable[int] = (),
                 mask_prob: float = 0.15, mask_token_prob: float = 0.8, random_token_prob: float = 0.1,
                 tokenizer: Any = None):
        super().__init__()
        if not 0 < mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
        if mask_token_prob < 0 or random_token_prob < 0 or mask_token_prob + random_token_prob > 1:
            raise ValueError(f"mask_token_prob ({mask_token_prob}) and random_token_prob ({random_token_prob}) "
                             f"must be >= 0 and add up to at most 1")
        self.net = net
        self.vocab_size = vocab_size
        self.mask_id = vocab_size
        self.context = context
        self.mask_prob, self.mask_token_prob, self.random_token_prob = mask_prob, mask_token_prob, random_token_prob
        self.tokenizer = tokenizer
        special = sorted({int(i) for i in special_ids} | {self.mask_id})
        pool = [i for i in range(vocab_size) if i not in set(special)]
        if not pool:
            raise ValueError("every token id is special: nothing to predict")
        # not persistent: derived from the arguments, so checkpoints hold only the network
        self.register_buffer("special_ids", torch.tensor(special, dtype=torch.long), persistent=False)
        self.register_buffer("random_pool", torch.tensor(pool, dtype=torch.long), persistent=False)  # (P,)
        self.tally = PredictionTally()  # masked-token accuracy of eval-mode loss() calls

    # ------------------------------------------------------------------ the masking recipe

    def corrupt(self, ids: torch.Tensor, key_mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT's corruption of ids (B, T): returns (inputs (B, T), selected (B, T) bool).

        ``key_mask`` (B, T), True for real tokens; padding and special tokens are never selected.
        Every random number comes from ``generator`` (a CPU generator; default the global RNG), and
        the same numbers are drawn whatever the data, so the RNG advances by a fixed amount per batch.
        """
        B, T = ids.shape
        candidates = ~torch.isin(ids, self.special_ids)  # (B, T)
        if key_mask is not None:
            candidates &= key_mask.bool()
        n = candidates.sum(1)  # (B,) candidate positions per row
        k = torch.minimum((n * self.mask_prob).round().long().clamp(min=1), n)  # (B,) exact count, BERT's rounding
        score = torch.rand(B, T, generator=generator).to(ids.device)  # (B, T) in [0, 1)
        score = score.masked_fill(~candidates, 2.0)  # non-candidates sort last
        rank = score.argsort(1).argsort(1)  # (B, T): 0 = smallest score in its row
        selected = rank < k[:, None]  # (B, T): k random candidates per row

        u = torch.rand(B, T, generator=generator).to(ids.device)  # (B, T) which of the three fates
        pick = torch.randint(len(self.random_pool), (B, T), generator=generator).to(ids.device)  # (B, T)
        random_ids = self.random_pool[pick]  # (B, T) uniform over the non-special tokens
        to_mask = selected & (u < self.mask_token_prob)
        to_random = selected & (u >= self.mask_token_prob) & (u < self.mask_token_prob + self.random_token_prob)
        inputs = torch.where(to_mask, torch.full_like(ids, self.mask_id), ids)
        inputs = torch.where(to_random, random_ids, inputs)  # (B, T)
        return inputs, selected

    # ------------------------------------------------------------------ training

    @staticmethod
    def _window(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ids (B, T), key_mask (B, T) or None) from a TokenWindows batch (B, T + 1): see the module docstring."""
        key_mask = batch.get("key_mask")
        return batch["tokens"][:, :-1], key_mask[:, :-1] if key_mask is not None else None

    def loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean cross-entropy (nats) of the original token over the chosen positions (BERT sec. 3.1).

        Without ``generator``, one is seeded from the global torch RNG (see the module docstring).
        In eval mode the argmax predictions are also counted in :attr:`tally`.
        """
        ids, key_mask = self._window(batch)  # (B, T)
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        inputs, selected = self.corrupt(ids, key_mask, generator)  # (B, T), (B, T)
        h = self.net.hidden(inputs, key_mask=key_mask)  # (B, T, d)
        logits = self.net.lm_head(h[selected])[:, : self.vocab_size]  # (N, V): the chosen positions only
        targets = ids[selected]  # (N,)
        if targets.numel() == 0:  # nothing to predict (all padding): a zero that keeps the graph
            return h.sum() * 0.0
        if not self.training:
            self.tally.correct += int((logits.argmax(-1) == targets).sum())
            self.tally.total += targets.numel()
        return F.cross_entropy(logits.float(), targets)

    def items_in(self, batch: dict[str, Any]) -> int:
        tokens = batch["tokens"]
        return int(tokens.shape[0] * (tokens.shape[1] - 1))

    # ------------------------------------------------------------------ the encoder

    def logits(self, ids: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) over the real vocabulary for ids (B, T) (the [MASK] column dropped)."""
        return self.net.lm_head(self.net.hidden(ids, key_mask=key_mask))[..., : self.vocab_size]

    def encode(self, ids: torch.Tensor, key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Contextual token states and one vector per sequence, for conditioning other models.

        ids (B, T), key_mask (B, T) True for real tokens (default: all real) -> hidden (B, T, d)
        (the final, normed states the masked-LM head reads) and pooled (B, d), the mean of the
        hidden states over real tokens. Padding positions of ``hidden`` carry no meaning.
        """
        if ids.shape[1] > self.context:
            raise ValueError(f"{ids.shape[1]} tokens is beyond the model's context of {self.context}")
        hidden = self.net.hidden(ids, key_mask=key_mask)  # (B, T, d)
        weight = torch.ones_like(ids, dtype=hidden.dtype) if key_mask is None else key_mask.to(hidden.dtype)
        pooled = (hidden * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp(min=1)  # (B, d)
        return hidden, pooled

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`encode` for strings: each text is tokenized, cut to the context, right-padded.

        Returns hidden (B, T, d), key_mask (B, T) (True for real tokens) and pooled (B, d), T the
        longest text's token count.
        """
        tokenizer = self._need_tokenizer()
        rows = [tokenizer.encode(t)[: self.context] or [tokenizer.eot_id] for t in texts]
        device = self.random_pool.device
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), tokenizer.eot_id, dtype=torch.long, device=device)
        key_mask = torch.zeros(len(rows), T, dtype=torch.bool, device=device)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=device)
            key_mask[i, : len(r)] = True
        hidden, pooled = self.encode(ids, key_mask)
        return hidden, key_mask, pooled

    # ------------------------------------------------------------------ filling in [MASK]

    def _need_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ValueError("this MaskedLM was built without a tokenizer; pass tokenizer= to work on text")
        return self.tokenizer

    @torch.no_grad()
    def fill_ids(self, ids: torch.Tensor, top_k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k predictions at every [MASK] of ids (T,): (probs (M, k), token ids (M, k)), M the
        number of masks in order. One forward pass; each [MASK] is predicted independently given
        the visible tokens (BERT defines no joint distribution over several masks). Special tokens
        are never proposed; probabilities are the model's softmax over the real vocabulary.
        """
        if ids.ndim != 1:
            raise ValueError(f"fill_ids takes one sequence (T,), got shape {tuple(ids.shape)}")
        if ids.numel() > self.context:
            raise TwopathsError(f"the text is {ids.numel()} tokens; the model's context is {self.context}")
        at = (ids == self.mask_id).nonzero().squeeze(1)  # (M,)
        probs = torch.softmax(self.logits(ids[None].to(self.random_pool.device))[0, at].float(), -1)  # (M, V)
        probs[:, self.special_ids[self.special_ids < self.vocab_size]] = 0.0  # listed, never proposed
        top = probs.topk(min(top_k, len(self.random_pool)), dim=-1)
        return top.values.cpu(), top.indices.cpu()

    @torch.no_grad()
    def fill(self, text: str, top_k: int = 5) -> Fill:
        """For each literal ``[MASK]`` in ``text``, the ``top_k`` most likely tokens with their
        probabilities, and the text with every [MASK] replaced by its most likely token.

        Each [MASK] stands for exactly one token; see :func:`split_masked_text` for spaces.
        """
        if top_k < 1:
            raise TwopathsError(f"--top-k must be >= 1, got {top_k}")
        tokenizer = self._need_tokenizer()
        ids, took_space = split_masked_text(text, tokenizer, self.mask_id)
        probs, top = self.fill_ids(torch.tensor(ids), top_k)  # (M, k), (M, k)
        candidates, best = [], []
        for m, took in enumerate(took_space):
            words = [tokenizer.decode([i]) for i in top[m].tolist()]
            best.append(words[0])
            shown = [w[1:] if took and w.startswith(" ") and w.strip() else w for w in words]  # " heart" -> "heart"
            candidates.append(list(zip(shown, probs[m].tolist())))
        pieces = text.split(MASK_TEXT)
        out = pieces[0]
        for m, piece in enumerate(pieces[1:]):
            out = (out[:-1] if took_space[m] else out) + best[m] + piece
        return Fill(out, candidates)
