"""Next-token prediction: the autoregressive paradigm.

Training maximises ``log p(x) = sum_t log p(x_t | x_<t)`` (the chain rule of probability), i.e.
minimises the mean next-token cross-entropy; generation draws one token at a time and feeds it
back. Any backbone that maps token ids (B, T) to causal logits (B, T, V) fits. Backbones that
also take ``positions``, ``key_mask`` and a ``cache`` (the :class:`~twopaths.backbones.transformer.Transformer`)
decode with a KV cache and batch prompts of different lengths; others recompute each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.paradigms.base import Paradigm, unconditional


def sample_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from logits (B, V).

    Temperature 0 is greedy (argmax). Otherwise softmax(logits / T), restricted to the ``top_k``
    most likely tokens and/or to the smallest set whose probability reaches ``top_p`` (nucleus
    sampling, Holtzman et al. 2020, eq. 3).
    """
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass *before* a token already reaches p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))  # the most likely token always stays
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class Autoregressive(Paradigm):
    item_name = "tokens"

    def __init__(self, net: nn.Module, context: int):
        super().__init__()
        self.net = net
        self.context = context  # the longest sequence the backbone can attend over

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        tokens = batch["tokens"]  # (B, T + 1)
        logits = self.net(tokens[:, :-1])  # (B, T, V): position t predicts token t + 1
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())

    def items_in(self, batch: dict[str, Any]) -> int:
        tokens = batch["tokens"]
        return int(tokens.shape[0] * (tokens.shape[1] - 1))

    @property
    def can_cache(self) -> bool:
        return hasattr(self.net, "new_cache")

    # ------------------------------------------------------------------ generation

    def _logits(self, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, V) by recomputing over the last ``context`` tokens."""
        seq, mask = seq[:, -self.context:], mask[:, -self.context:]
        if self.can_cache:
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            return self.net(seq, positions=positions, key_mask=mask)[:, -1]
        return self.net(seq)[:, -1]  # backbones without masks only see equal-length rows (see generate)

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int = 100, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, stop_id: int | None = None,
                 stop: Callable[[int, list[int]], bool] | None = None, generator: torch.Generator | None = None,
                 on_token: Callable[[torch.Tensor], None] | None = None, use_cache: bool = True,
                 return_logits: bool = False) -> list[list[int]] | tuple[list[list[int]], torch.Tensor]:
        """Continue each prompt (a list of token ids, lengths may differ) by up to ``max_new_tokens``.

        Prompts are left-padded into one batch; padding is masked out of attention and every row's
        positions start at 0 at its first real token, so a row's output does not depend on what
        it was batched with. A row stops at ``stop_id`` (not included in its output) or when
        ``stop(row, new_ids)`` returns True. ``on_token`` receives each step's tokens (B,) for
        streaming. With a KV cache each step runs the network on one token per row; when the
        cache reaches the context length it is rebuilt from the newest half-context of tokens.
        ``return_logits`` also returns the logits of every step, (B, steps, V).
        """
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token (use the end-of-text id to start fresh)")
        if not self.can_cache and len({len(p) for p in prompts}) > 1:
            # no attention mask in this backbone: generate rows of different lengths separately
            results = [self.generate([p], max_new_tokens, temperature, top_k, top_p, stop_id,
                                     (lambda _, ids, i=i: stop(i, ids)) if stop else None, generator,
                                     None, use_cache, return_logits) for i, p in enumerate(prompts)]
            if return_logits:
                return [r[0][0] for r in results], [r[1][0] for r in results]  # ragged: a list per row
            return [r[0] for r in results]
        device = next(self.parameters()).device
        B, L = len(prompts), max(len(p) for p in prompts)
        seq = torch.zeros(B, L, dtype=torch.long, device=device)
        mask = torch.zeros(B, L, dtype=torch.bool, device=device)
        for i, p in enumerate(prompts):  # left padding: real tokens end at the right edge
            seq[i, L - len(p):] = torch.as_tensor(list(p), device=device)
            mask[i, L - len(p):] = True

        cached = use_cache and self.can_cache
        cache = None
        out: list[list[int]] = [[] for _ in range(B)]
        done = [False] * B  # on the host: the stop checks run there anyway
        all_logits = []

        def prefill() -> torch.Tensor:
            nonlocal cache, seq, mask
            seq, mask = seq[:, -(self.context // 2 if cache is not None else self.context):], \
                mask[:, -(self.context // 2 if cache is not None else self.context):]
            cache = self.net.new_cache(B, self.context, device=device)
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            return self.net(seq, positions=positions, key_mask=mask, cache=cache)[:, -1]

        logits = prefill() if cached else self._logits(seq, mask)
        for _ in range(max_new_tokens):
            if return_logits:
                all_logits.append(logits.float())
            nxt = sample_logits(logits, temperature, top_k, top_p, generator)  # (B,)
            if on_token is not None:
                on_token(nxt)
            for i, token in enumerate(nxt.tolist()):  # one device->host copy per step, not one per row
                if done[i]:
                    continue
                if stop_id is not None and token == stop_id:
                    done[i] = True
                    continue
                out[i].append(token)
                if stop is not None and stop(i, out[i]):
                    done[i] = True
            if all(done):
                break
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones(B, 1, dtype=torch.bool, device=device)], dim=1)
            if not cached:
                logits = self._logits(seq, mask)
            elif cache.length >= self.context:
                logits = prefill()
            else:
                positions = mask.long().sum(-1, keepdim=True) - 1  # (B, 1): each row's next position
                logits = self.net(nxt[:, None], positions=positions, key_mask=mask, cache=cache)[:, -1]
        if return_logits:
            return out, torch.stack(all_logits, dim=1)
        return out

    @torch.no_grad()
    def generate_batch(self, prompt: torch.Tensor, steps: int, temperature: float = 1.0, top_k: int | None = None,
                       top_p: float | None = None, generator: torch.Generator | None = None,
                       use_cache: bool = True, vocab_limit: int | None = None) -> torch.Tensor:
        """Continue equal-length prompts (B, T0) by exactly ``steps`` tokens each -> (B, steps).

        The fixed-length fast path (images, coordinates): no padding, no stop tokens and no
        per-row Python work, so a step costs one network call on (B, 1) tokens with the KV cache.
        ``vocab_limit`` samples only ids below it (a vocabulary whose control tokens come last).
        Without a cache (or past the context) each step recomputes over the newest ``context`` tokens.
        """
        B, T0 = prompt.shape
        out = prompt.new_empty(B, steps)
        cached = use_cache and self.can_cache and T0 + steps - 1 <= self.context
        cache = self.net.new_cache(B, T0 + steps - 1, device=prompt.device) if cached else None
        logits = self.net(prompt[:, -self.context:], cache=cache)[:, -1] if cached \
            else self.net(prompt[:, -self.context:])[:, -1]  # (B, V)
        for i in range(steps):
            nxt = sample_logits(logits[:, :vocab_limit], temperature, top_k, top_p, generator)  # (B,)
            out[:, i] = nxt
            if i + 1 == steps:
                break
            if cached:
                logits = self.net(nxt[:, None], cache=cache)[:, -1]
            else:
                logits = self.net(torch.cat([prompt, out[:, :i + 1]], dim=1)[:, -self.context:])[:, -1]
        return out

    @torch.no_grad()
    def sample(self, n: int, *, cond: Any = None, generator: torch.Generator | None = None,
               prompt: Sequence[int] | None = None, max_new_tokens: int = 100, **options: Any) -> list[list[int]]:
        """Paradigm interface: ``n`` continuations of ``prompt`` (token ids; a new document starts from
        the tokenizer's end-of-text id); ``options`` as :meth:`generate`."""
        unconditional(self, cond)
        if not prompt:
            raise ValueError("an autoregressive model continues a prompt: pass prompt=[ids] (for a new document, "
                             "[tokenizer.eot_id])")
        return self.generate([list(prompt)] * n, max_new_tokens, generator=generator, **options)


def generate_text(model: Autoregressive, tokenizer: Any, prompt: str = "", max_new_tokens: int = 200,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  stop_strings: Sequence[str] = (), generator: torch.Generator | None = None,
                  on_text: Callable[[str], None] | None = None) -> str:
    """Continue ``prompt`` (default: a new document) and return the new text.

    Stops at end-of-text, at ``max_new_tokens``, or once the text contains one of ``stop_strings``
    (the returned text ends just before it). ``tokenizer`` needs ``encode``, ``decode`` and
    ``eot_id``. ``on_text`` receives each new piece of text as soon as it decodes (a BPE token can
    end inside a UTF-8 character; the piece then arrives with the next token).
    """
    ids = tokenizer.encode(prompt) if prompt else []
    stops = [s for s in stop_strings if s]
    state = {"shown": "", "text": ""}

    def held_back(text: str) -> int:
        """Length of the longest suffix of ``text`` that could still grow into a stop string."""
        for k in range(min(len(text), max((len(s) for s in stops), default=1) - 1), 0, -1):
            if any(s.startswith(text[-k:]) for s in stops):
                return k
        return 0

    def check(_: int, new_ids: list[int]) -> bool:
        text = tokenizer.decode(new_ids)
        hits = [text.find(s) for s in stops if s in text]
        if hits:
            text = text[:min(hits)]
        state["text"] = text
        safe = text if hits else text[:len(text) - held_back(text)]
        if on_text is not None and len(safe) > len(state["shown"]) and not safe.endswith("\ufffd"):
            on_text(safe[len(state["shown"]):])
            state["shown"] = safe
        return bool(hits)

    model.generate([ids or [tokenizer.eot_id]], max_new_tokens, temperature, top_k, top_p,
                   stop_id=tokenizer.eot_id, stop=check, generator=generator)
    text = state["text"]
    if on_text is not None and len(text) > len(state["shown"]):
        on_text(text[len(state["shown"]):])
    return text
