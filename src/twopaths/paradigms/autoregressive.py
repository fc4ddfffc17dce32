"""Next-token prediction: the autoregressive paradigm.

Training maximises ``log p(x) = sum_t log p(x_t | x_<t)`` (the chain rule of probability), i.e.
minimises the mean next-token cross-entropy; sampling draws one token at a time and feeds it
back. Any backbone that maps token ids (B, T) to causal logits (B, T, V) fits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.paradigms.base import Paradigm


class Autoregressive(Paradigm):
    item_name = "tokens"

    def __init__(self, net: nn.Module, context: int):
        super().__init__()
        self.net = net
        self.context = context  # the longest sequence the backbone is trained on

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        tokens = batch["tokens"]  # (B, T + 1)
        logits = self.net(tokens[:, :-1])  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())

    def items_in(self, batch: dict[str, Any]) -> int:
        tokens = batch["tokens"]
        return int(tokens.shape[0] * (tokens.shape[1] - 1))

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, max_new_tokens: int = 100,
               temperature: float = 1.0, top_k: int | None = None, stop_id: int | None = None,
               generator: torch.Generator | None = None,
               on_token: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        """Draw ``max_new_tokens`` after ``prompt`` (B, T0 >= 1) by recomputing the context each step.

        To sample from scratch, prompt with the end-of-text token: documents are separated by it
        in training, so it is what "the start of a document" looks like to the model.

        ``temperature`` 0 is greedy. ``on_token`` receives each new column (B,) as it is drawn,
        for streaming. Generation stops early when every row has produced ``stop_id``.
        """
        device = next(self.parameters()).device
        if prompt.ndim != 2 or prompt.shape[1] == 0:
            raise ValueError(f"prompt must be (batch, length >= 1) token ids, got shape {tuple(prompt.shape)}")
        ids = prompt.to(device)
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            logits = self.net(ids[:, -self.context:])[:, -1]  # (B, V)
            nxt = sample_logits(logits.float(), temperature, top_k, generator)  # (B,)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            if on_token is not None:
                on_token(nxt)
            if stop_id is not None:
                done |= nxt == stop_id
                if bool(done.all()):
                    break
        return ids


def sample_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from logits (B, V): greedy at temperature 0, else softmax(logits / T) within top-k."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def generate_text(model: Autoregressive, tokenizer: Any, prompt: str = "", max_new_tokens: int = 200,
                  temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None,
                  on_text: Callable[[str], None] | None = None) -> str:
    """Continue ``prompt`` (default: a new document) and return the new text, stopping at end-of-text.

    ``tokenizer`` needs ``encode``, ``decode`` and ``eot_id``. ``on_text`` receives each new piece
    of text as soon as it decodes (a BPE token can end in the middle of a UTF-8 character; the
    piece then arrives with the next token).
    """
    ids = tokenizer.encode(prompt) if prompt else []
    prompt_ids = torch.tensor([ids or [tokenizer.eot_id]])
    generated: list[int] = []
    shown = ""

    def stream(token: torch.Tensor) -> None:
        nonlocal shown
        if int(token[0]) == tokenizer.eot_id:
            return
        generated.append(int(token[0]))
        text = tokenizer.decode(generated)
        if on_text is not None and len(text) > len(shown) and not text.endswith("\ufffd"):
            on_text(text[len(shown):])
            shown = text

    model.sample(prompt_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                 stop_id=tokenizer.eot_id, generator=generator, on_token=stream)
    text = tokenizer.decode(generated)
    if on_text is not None and len(text) > len(shown):
        on_text(text[len(shown):])
    return text
