"""The encoder-decoder transformer (Vaswani et al. 2017, "Attention Is All You Need", sec. 3.1).

An *encoder* stack reads the whole source at once (bidirectional self-attention, padding masked
out) and returns one vector per source token, the *memory*. A *decoder* stack writes the target
left to right: each block has causal self-attention over the target so far, cross-attention from
the target to the memory ("encoder-decoder attention", sec. 3.2.3) and an MLP. Both stacks are the
project's one :class:`~twopaths.backbones.transformer.Transformer` (``causal=False`` for the
encoder, ``cross=True`` blocks for the decoder); there is no second attention implementation.

Pre-LN, not the paper's post-LN. The paper normalises *after* each residual addition,
``x = LN(x + sublayer(x))``. Xiong et al. 2020 ("On Layer Normalization in the Transformer
Architecture") show that post-LN's gradients near the output are large at initialisation, which is
why the paper needs its learning-rate warmup (sec. 5.3) to train at all; putting the norm inside the
branch, ``x = x + sublayer(LN(x))``, keeps the residual path an identity, trains without careful
warmup, and is what the shared stack (and GPT-2 onwards) does. The price is one extra final
LayerNorm on each stack, which ``Transformer.hidden`` already applies.

Vocabularies (sec. 3.4): with ``shared_vocab`` one vocabulary serves both languages and the
source embedding, the target embedding and the pre-softmax projection are one matrix, as in the
paper; otherwise each side has its own embedding and only the decoder's input and output
matrices may be tied (``tie_weights``, Press & Wolf 2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from twopaths.backbones.transformer import Transformer, TransformerConfig
from twopaths.nn.attention import KVCache


@dataclass
class Seq2SeqConfig:
    encoder_layers: int = 3  # blocks in the encoder stack (the paper's base model: 6)
    decoder_layers: int = 3  # blocks in the decoder stack (the paper's base model: 6)
    n_head: int = 4  # attention heads per block (self- and cross-attention)
    d_model: int = 128  # residual stream width of both stacks
    context: int = 128  # longest source and longest target sequence, special tokens included
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * d_model (the paper: 2048 / 512)
    dropout: float = 0.1  # on embeddings, attention weights and residual branches (the paper: 0.1)
    bias: bool = True  # biases in Linear layers and LayerNorms
    activation: Literal["gelu", "gelu-tanh"] = "gelu-tanh"  # MLP non-linearity (the paper: ReLU)
    positional: Literal["learned", "sinusoidal", "rope", "none"] = "learned"  # the paper: sinusoidal
    shared_vocab: bool = True  # one vocabulary for source and target, embeddings and head tied (sec. 3.4)
    tie_weights: bool = True  # the decoder's output head reuses its token embedding matrix
    fused_qkv: bool = True  # one q/k/v projection in self-attention (cross-attention always has separate ones)
    norm_eps: float = 1e-5


def stack_config(cfg: Seq2SeqConfig, layers: int, causal: bool, tie: bool) -> TransformerConfig:
    """The shared transformer's config for one of the two stacks."""
    return TransformerConfig(n_layer=layers, n_head=cfg.n_head, d_model=cfg.d_model, context=cfg.context,
                             mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout, bias=cfg.bias, activation=cfg.activation,
                             positional=cfg.positional, tie_weights=tie, causal=causal, fused_qkv=cfg.fused_qkv,
                             norm_eps=cfg.norm_eps)


class Seq2Seq(nn.Module):
    """Source ids (B, S) and target ids (B, T) -> next-target-token logits (B, T, tgt_vocab).

    ``encode`` runs once per source; ``decode`` runs the decoder over target ids given the memory,
    optionally one step at a time with a :class:`~twopaths.nn.attention.KVCache` from :meth:`new_cache`
    (self-attention keys/values appended per step, the memory's cross-attention keys/values
    projected on the first step and reused).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, cfg: Seq2SeqConfig):
        super().__init__()
        if cfg.shared_vocab and src_vocab != tgt_vocab:
            raise ValueError(f"shared_vocab needs one vocabulary; got {src_vocab} source and {tgt_vocab} target ids")
        self.cfg, self.src_vocab, self.tgt_vocab = cfg, src_vocab, tgt_vocab
        # The encoder needs no output head: tying it to the embedding makes it parameter-free, and
        # removing it keeps state dicts free of a module that is never called.
        self.encoder = Transformer(src_vocab, stack_config(cfg, cfg.encoder_layers, causal=False, tie=True))
        self.encoder.lm_head = None
        self.decoder = Transformer(tgt_vocab, stack_config(cfg, cfg.decoder_layers, causal=True,
                                                           tie=cfg.tie_weights or cfg.shared_vocab), cross=True)
        if cfg.shared_vocab:  # one matrix: source embedding, target embedding, pre-softmax projection (sec. 3.4)
            self.decoder.transformer.wte = self.encoder.transformer.wte
            self.decoder.lm_head.weight = self.encoder.transformer.wte.weight

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """src_ids (B, S), src_mask (B, S) True for real tokens -> memory (B, S, d).

        Sources are right-padded, so positions 0..S-1 are each row's own; padding keys are masked
        out of every row's attention (padding *queries* produce vectors that the decoder never reads,
        because the same mask hides them from cross-attention).
        """
        return self.encoder.hidden(src_ids, key_mask=src_mask)  # (B, S, d)

    def decode(self, tgt_ids: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
               cache: KVCache | None = None, reference: bool = False) -> torch.Tensor:
        """tgt_ids (B, T) (BOS first), memory (B, S, d), memory_mask (B, S) -> logits (B, T, tgt_vocab).

        Target padding sits at the right end, after every real token, so causal self-attention
        already keeps it out of the real positions: no target mask is needed (its logits are
        ignored by the loss). With ``cache``, ``tgt_ids`` are the next tokens after those cached.
        """
        h = self.decoder.hidden(tgt_ids, cache=cache, context=memory, context_mask=memory_mask,
                                reference=reference)  # (B, T, d)
        return self.decoder.lm_head(h)  # (B, T, tgt_vocab)

    def forward(self, src_ids: torch.Tensor, src_mask: torch.Tensor, tgt_ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: every target position at once -> logits (B, T, tgt_vocab)."""
        return self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask)

    def new_cache(self, batch: int, max_len: int, device: torch.device | None = None,
                  dtype: torch.dtype | None = None) -> KVCache:
        """A decoder KV cache for ``batch`` rows and up to ``max_len`` target positions."""
        return self.decoder.new_cache(batch, max_len, device, dtype)

    def num_params(self) -> int:
        """Parameters, each shared (tied) tensor counted once."""
        return sum(p.numel() for p in self.parameters())
