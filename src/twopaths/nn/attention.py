"""Scaled dot-product attention, multi-head attention and the KV cache.

Attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

:func:`attention_reference` writes that out step by step and is the readable definition;
:func:`attention` is the same computation through ``torch.nn.functional.scaled_dot_product_attention``
(flash / memory-efficient kernels on GPU). Tests check they agree to 1e-5 in fp32 for causal,
padding and cross-attention masks.

Masks are boolean with True = "may attend", broadcastable to (B, H, Tq, Tk); a floating-point mask
is instead an additive bias on the scores (a relative position bias, e.g. the temporal attention of
:mod:`twopaths.backbones.video_unet`). Causality is
**bottom-right aligned**: the Tq queries are the *last* Tq of the Tk positions, which is what a
KV-cache decoding step needs (PyTorch's ``is_causal`` is top-left aligned, which is only right
when Tq == Tk, so we only use it then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(t_q: int, t_k: int, device: torch.device | None = None) -> torch.Tensor:
    """(Tq, Tk) bool, True where query i (the (Tk - Tq + i)-th position) may see key j <= its position."""
    offset = t_k - t_q
    q = torch.arange(t_q, device=device)[:, None] + offset
    k = torch.arange(t_k, device=device)[None, :]
    return k <= q


def combine_masks(t_q: int, t_k: int, causal: bool, key_mask: torch.Tensor | None,
                  device: torch.device) -> torch.Tensor | None:
    """One boolean mask (B|1, 1, Tq, Tk) from causality and a key-padding mask (B, Tk) (True = real token)."""
    mask = causal_mask(t_q, t_k, device)[None, None] if causal else None
    if key_mask is not None:
        pad = key_mask[:, None, None, :].bool()  # (B, 1, 1, Tk)
        mask = pad if mask is None else mask & pad
    return mask


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                        causal: bool = False, dropout_p: float = 0.0,
                        return_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d) + mask) V, written out. q (B, H, Tq, D), k and v (B, H, Tk, D) -> (B, H, Tq, D).

    A query whose keys are all masked out (e.g. a padding query) gets zeros, not NaN.
    ``return_weights``: also return the attention weights (B, H, Tq, Tk), as they are before dropout
    (what attention-map tools such as ViT attention rollout read).
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, H, Tq, Tk): similarity of each query to each key
    if causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    if mask is not None and mask.dtype != torch.bool:  # an additive bias (B|1, H|1, Tq, Tk)
        scores = scores + mask.to(scores.dtype)
    elif mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # each row sums to 1 over the keys
    weights = torch.nan_to_num(weights, nan=0.0)  # rows with every key masked
    probs = weights
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    out = weights @ v  # (B, H, Tq, D): weighted sum of values
    return (out, probs) if return_weights else out


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              causal: bool = False, dropout_p: float = 0.0) -> torch.Tensor:
    """Same as :func:`attention_reference`, through PyTorch's fused SDPA kernels."""
    t_q, t_k = q.shape[-2], k.shape[-2]
    if causal and mask is None and t_q == t_k:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    if mask is not None and mask.dtype != torch.bool:  # an additive bias on the scores
        if causal:
            mask = mask.to(q.dtype).masked_fill(~causal_mask(t_q, t_k, q.device), float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=dropout_p)
    if causal:
        c = causal_mask(t_q, t_k, q.device)
        mask = c if mask is None else mask & c
    if mask is not None:
        # Rows with no visible key would be NaN in SDPA; let them see everything, then zero them.
        empty = ~mask.any(dim=-1, keepdim=True)  # (B|1, H|1, Tq, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty, dropout_p=dropout_p)
        return out.masked_fill(empty, 0.0)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


# ----------------------------------------------------------------------------- KV cache


class KVCache:
    """Keys and values of every layer for the tokens decoded so far, preallocated to ``max_len``.

    Decoding one token then costs attention over the cache instead of re-running the whole
    prefix through every layer: O(T) per token instead of O(T^2). Buffers are (B, H, max_len, D)
    per layer; ``length`` is how many positions are filled (shared by the batch; left-padded
    prompts keep their padding masked out by the key mask).

    An encoder-decoder's cross-attention attends to a context (the encoder output) that does not
    change while decoding, so its keys and values are projected once, on the first step, and kept
    in ``context_k`` / ``context_v`` (per layer, (B, H, S, D)); a cache therefore belongs to one
    context. :meth:`reorder` keeps chosen rows of everything (beam search).
    """

    def __init__(self, n_layers: int, batch: int, n_heads: int, head_dim: int, max_len: int,
                 device: torch.device, dtype: torch.dtype):
        shape = (batch, n_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.context_k: list[torch.Tensor | None] = [None] * n_layers  # cross-attention, filled on first use
        self.context_v: list[torch.Tensor | None] = [None] * n_layers
        self.max_len = max_len
        self.length = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's k, v (B, H, T, D) after the filled part; return all keys/values so far."""
        start, end = self.length, self.length + k.shape[-2]
        if end > self.max_len:
            raise ValueError(f"KV cache is full: {end} positions needed, {self.max_len} allocated")
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n: int) -> None:
        """Called once per forward pass, after every layer has appended its ``n`` new positions."""
        self.length += n

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the batch rows ``index`` (B',) of every buffer, in that order; B' may differ from B
        (beam search: copy each source's row to its beams, follow the surviving beams, drop finished ones).
        Only the filled positions are copied: a step of beam search then costs O(length), not O(max_len)."""
        n = self.length

        def pick(t: torch.Tensor) -> torch.Tensor:
            rows = t[:, :, :n].index_select(0, index)  # (B', H, length, D)
            if len(index) == t.shape[0]:
                t[:, :, :n] = rows  # same batch size: reuse the buffer
                return t
            out = t.new_empty((len(index), *t.shape[1:]))  # positions past `length` are never read
            out[:, :, :n] = rows
            return out

        self.k, self.v = [pick(t) for t in self.k], [pick(t) for t in self.v]
        self.context_k = [None if t is None else t.index_select(0, index) for t in self.context_k]
        self.context_v = [None if t is None else t.index_select(0, index) for t in self.context_v]


# ----------------------------------------------------------------------------- multi-head attention


@dataclass
class AttentionConfig:
    d_model: int
    n_heads: int
    bias: bool = True
    dropout: float = 0.0
    fused_qkv: bool = True  # one (d, 3d) projection (GPT-2's c_attn) or separate q/k/v projections
    cross: bool = False  # keys and values come from a context sequence (encoder-decoder attention)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, sec. 3.2.2): h heads of width d/h attend in parallel.

    Self-attention projects x to q, k, v; cross-attention projects x to q and the context to k, v.
    Parameter names follow GPT-2 (``c_attn``, ``c_proj``) so weights move to and from HF.
    """

    def __init__(self, cfg: AttentionConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        self.n_heads, self.head_dim = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.dropout, self.cross, self.fused = cfg.dropout, cfg.cross, cfg.fused_qkv and not cfg.cross
        d = cfg.d_model
        if self.fused:
            self.c_attn = nn.Linear(d, 3 * d, bias=cfg.bias)
        else:
            self.q_proj = nn.Linear(d, d, bias=cfg.bias)
            self.k_proj = nn.Linear(d, d, bias=cfg.bias)
            self.v_proj = nn.Linear(d, d, bias=cfg.bias)
        self.c_proj = nn.Linear(d, d, bias=cfg.bias)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False, cache: KVCache | None = None, layer: int = 0,
                rope: nn.Module | None = None, positions: torch.Tensor | None = None,
                reference: bool = False,
                need_weights: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, d) [context (B, S, d)] -> (B, T, d).

        ``mask`` (bool, broadcastable to (B, H, T, T_keys)) is combined with ``causal``; with a
        ``cache``, the new keys/values are appended and attention covers everything cached
        (cross-attention instead projects the context's keys/values on the first call only and reuses them).
        ``rope`` rotates q and k by ``positions`` (B, T) before caching. ``reference`` uses the
        written-out attention instead of SDPA (for tests and teaching). ``need_weights`` uses it too
        and returns ``(y, weights)``, the weights (B, H, T, T_keys) before dropout (fused SDPA never
        materialises them).
        """
        B, T, d = x.shape
        reuse = self.cross and cache is not None and cache.context_k[layer] is not None
        if self.fused:
            q, k, v = self.c_attn(x).split(d, dim=2)  # each (B, T, d)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)  # (B, H, T, Dh)
        elif reuse:  # cross-attention while decoding: the context's k/v were projected on the first step
            q, k, v = self._heads(self.q_proj(x)), cache.context_k[layer], cache.context_v[layer]
        else:
            source = context if self.cross else x
            if source is None:
                raise ValueError("cross-attention needs a context")
            q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(source)), self._heads(self.v_proj(source))
        if rope is not None:
            q, k = rope(q, positions), rope(k, positions)
        if cache is not None and self.cross:
            cache.context_k[layer], cache.context_v[layer] = k, v  # (B, H, S, Dh), kept for later steps
        elif cache is not None:
            k, v = cache.append(layer, k, v)  # (B, H, T_cached + T, Dh)
        causal, dropout_p = causal and not self.cross, self.dropout if self.training else 0.0
        if need_weights:  # y (B, H, T, Dh), weights (B, H, T, T_keys)
            y, weights = attention_reference(q, k, v, mask=mask, causal=causal, dropout_p=dropout_p,
                                             return_weights=True)
        else:
            attend = attention_reference if reference else attention
            y = attend(q, k, v, mask=mask, causal=causal, dropout_p=dropout_p)  # (B, H, T, Dh)
        y = y.transpose(1, 2).contiguous().view(B, T, d)  # re-assemble heads side by side
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if need_weights else y
