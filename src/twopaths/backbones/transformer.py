"""The transformer stack: token embeddings, pre-LN blocks of attention + MLP, a final norm, a head.

Causal it is GPT (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners");
bidirectional it is a BERT-style encoder; with ``cross=True`` blocks it is a decoder that
attends to an encoder. Pre-LN (the norm *inside* the residual branch, Xiong et al. 2020) keeps
gradients well-scaled at depth without warmup tricks: ``x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))``.

Parameter names match Hugging Face's GPT-2 (``transformer.wte``, ``transformer.h.0.attn.c_attn``,
``lm_head``...) so :mod:`twopaths.interop.hf` can move weights across by transposing GPT-2's
Conv1D matrices, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.nn.attention import AttentionConfig, KVCache, MultiHeadAttention, combine_masks
from twopaths.nn.positional import LearnedPositions, RotaryEmbedding, sinusoidal


@dataclass
class TransformerConfig:
    n_layer: int = 4  # blocks
    n_head: int = 4  # attention heads per block
    d_model: int = 128  # residual stream width
    context: int = 128  # longest sequence (size of the learned position table)
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0  # on embeddings, attention weights and residual branches
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2: yes)
    activation: Literal["gelu", "gelu-tanh"] = "gelu-tanh"  # GPT-2 uses the tanh approximation
    positional: Literal["learned", "sinusoidal", "rope", "none"] = "learned"
    tie_weights: bool = True  # the output head reuses the token embedding matrix (Press & Wolf 2017)
    causal: bool = True  # False: every token sees every other (BERT-style encoder)
    fused_qkv: bool = True  # one q/k/v projection (faster) or three
    norm_eps: float = 1e-5


class MLP(nn.Module):
    """Position-wise feed-forward network (Vaswani et al. 2017, eq. 2) with GELU (Hendrycks & Gimpel 2016)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        hidden = int(cfg.mlp_ratio * cfg.d_model)
        self.c_fc = nn.Linear(cfg.d_model, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.d_model, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)
        self.approximate = "tanh" if cfg.activation == "gelu-tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


@dataclass(frozen=True)
class Pass:
    """What every block of one forward pass shares, built once by :meth:`Transformer.hidden`.

    ``mask``: combined causal/padding mask or None; ``cache``: the KV cache (each block reads and
    extends its own layer); ``rope``/``positions``: rotary embedding and each token's position;
    ``context``/``context_mask``: what cross-attention blocks attend to; ``reference``: use the
    explicit softmax attention instead of SDPA (for checks against other implementations)."""

    causal: bool = False
    mask: torch.Tensor | None = None
    cache: KVCache | None = None
    rope: nn.Module | None = None
    positions: torch.Tensor | None = None
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    reference: bool = False


class Block(nn.Module):
    """Pre-LN block: self-attention, optional cross-attention, MLP, each inside a residual branch."""

    def __init__(self, cfg: TransformerConfig, cross: bool = False):
        super().__init__()
        attn = AttentionConfig(cfg.d_model, cfg.n_head, cfg.bias, cfg.dropout, cfg.fused_qkv)
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = MultiHeadAttention(attn)
        if cross:
            self.ln_cross = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
            self.cross_attn = MultiHeadAttention(AttentionConfig(cfg.d_model, cfg.n_head, cfg.bias, cfg.dropout,
                                                                 fused_qkv=False, cross=True))
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, p: Pass = Pass(), layer: int = 0) -> torch.Tensor:
        # x: (B, T, d); ``layer`` is this block's index (its slot in the KV cache)
        x = x + self.attn(self.ln_1(x), mask=p.mask, causal=p.causal, cache=p.cache, layer=layer, rope=p.rope,
                          positions=p.positions, reference=p.reference)  # (B, T, d)
        if p.context is not None:
            # with a cache the context's keys/values are projected on the first step only
            x = x + self.cross_attn(self.ln_cross(x), context=p.context, mask=p.context_mask, cache=p.cache,
                                    layer=layer, reference=p.reference)  # (B, T, d)
        return x + self.mlp(self.ln_2(x))  # (B, T, d)


class Transformer(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab). ``hidden()`` gives the final states (B, T, d)."""

    def __init__(self, vocab_size: int, cfg: TransformerConfig, cross: bool = False):
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        layers = {
            "wte": nn.Embedding(vocab_size, cfg.d_model),
            "drop": nn.Dropout(cfg.dropout),
            "h": nn.ModuleList(Block(cfg, cross) for _ in range(cfg.n_layer)),
            "ln_f": nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias),
        }
        if cfg.positional == "learned":
            layers["wpe"] = LearnedPositions(cfg.context, cfg.d_model)
        self.transformer = nn.ModuleDict(layers)
        self.rope = RotaryEmbedding(cfg.d_model // cfg.n_head) if cfg.positional == "rope" else None
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2 (sec. 2.3): scale the residual projections by 1/sqrt(2 * n_layer) so the residual
        # stream's variance does not grow with depth (two residual branches per block).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    # ------------------------------------------------------------------ forward

    def hidden(self, ids: torch.Tensor, positions: torch.Tensor | None = None, key_mask: torch.Tensor | None = None,
               cache: KVCache | None = None, context: torch.Tensor | None = None,
               context_mask: torch.Tensor | None = None, reference: bool = False) -> torch.Tensor:
        """Final hidden states (B, T, d).

        ``positions`` (B, T): each token's position (default: ``cache.length + arange(T)``; left-padded
        batches pass their own so every row starts at 0). ``key_mask`` (B, T_keys), True for real
        tokens, covers the cached keys too. ``context`` (B, S, d) feeds cross-attention blocks.
        """
        B, T = ids.shape
        start = cache.length if cache is not None else 0
        if self.cfg.positional == "learned":
            # Known on the host without positions; reading a CUDA tensor's max would sync every step
            # (and break torch.compile's graph), and there the embedding lookup asserts on its own.
            last = start + T - 1 if positions is None else \
                int(positions.max()) if positions.device.type == "cpu" and not torch.compiler.is_compiling() else -1
            if last >= self.cfg.context:
                raise ValueError(f"position {last} is beyond the model's context of {self.cfg.context}")
        if positions is None:
            positions = torch.arange(start, start + T, device=ids.device).expand(B, T)
        x = self.transformer.wte(ids)  # (B, T, d)
        if self.cfg.positional == "learned":
            x = x + self.transformer.wpe(positions)
        elif self.cfg.positional == "sinusoidal":
            x = x + sinusoidal(positions, self.cfg.d_model).to(x.dtype)
        x = self.transformer.drop(x)
        mask = combine_masks(T, start + T, self.cfg.causal, key_mask, ids.device) if key_mask is not None else None
        p = Pass(causal=self.cfg.causal, mask=mask, cache=cache, rope=self.rope, positions=positions, context=context,
                 context_mask=context_mask[:, None, None, :].bool() if context_mask is not None else None,
                 reference=reference)
        for i, block in enumerate(self.transformer.h):
            x = block(x, p, i)  # (B, T, d)
        if cache is not None:
            cache.advance(T)
        return self.transformer.ln_f(x)

    def forward(self, ids: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.lm_head(self.hidden(ids, **kwargs))  # (B, T, vocab)

    # ------------------------------------------------------------------ helpers

    def new_cache(self, batch: int, max_len: int, device: torch.device | None = None,
                  dtype: torch.dtype | None = None) -> KVCache:
        w = self.transformer.wte.weight
        return KVCache(self.cfg.n_layer, batch, self.cfg.n_head, self.cfg.d_model // self.cfg.n_head, max_len,
                       device or w.device, dtype or w.dtype)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without position embeddings (as nanoGPT reports it)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6N for the matmuls with weights (forward + backward) plus
        12 * L * d * T for attention scores and values (Kaplan et al. 2020, table 1; PaLM appendix B)."""
        return 6 * self.num_params() + 12 * self.cfg.n_layer * self.cfg.d_model * seq_len
