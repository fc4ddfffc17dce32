"""A causal dilated 1-D convolution language model: WaveNet's stack on token embeddings.

WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"): causal
convolutions (sec. 2.1) whose dilation doubles layer by layer (sec. 2.1, fig. 3), gated
activation units ``z = tanh(W_f * x) ⊙ sigmoid(W_g * x)`` (sec. 2.2, eq. 2), and residual plus
parameterised skip connections (sec. 2.4, fig. 4); the dilation pattern restarts every
``dilation_cycle`` layers (1, 2, ..., 512, 1, 2, ... in the paper). ByteNet (Kalchbrenner et al.
2016) uses the same causal dilated stack as a character-level language model, as here: token
embeddings in, next-token logits out.

The point of it in twopaths: its **receptive field is finite**. Output ``t`` depends on tokens
``t - R + 1 .. t`` and on nothing earlier, with

    R = 1 + (kernel_size - 1) * sum_l dilation_l,   dilation_l = 2 ** (l mod dilation_cycle)

(each layer of kernel k and dilation d reaches (k - 1) * d further back). The defaults (kernel
2, 6 layers, dilations 1..32) give R = 64. A dependency longer than R is out of its reach by
construction, where attention reaches the whole context: the ``sequence`` arena suite measures
exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from twopaths.backbones.wavenet import GatedResidualLayer  # the one WaveNet block, causal here


@dataclass
class CausalConvConfig:
    channels: int = 128  # residual width (embedding size and every layer's output)
    kernel_size: int = 2  # taps per dilated convolution (WaveNet and ByteNet's decoder use 2)
    n_layers: int = 6  # gated residual layers
    dilation_cycle: int = 6  # layer l has dilation 2 ** (l mod dilation_cycle)
    dropout: float = 0.0  # on the gated activations

    def dilations(self) -> list[int]:
        return [2 ** (layer % self.dilation_cycle) for layer in range(self.n_layers)]

    def receptive_field(self) -> int:
        """R: output t sees tokens t - R + 1 .. t (see the module docstring)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations())


class CausalConvLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab); position t sees tokens t - R + 1 .. t."""

    def __init__(self, vocab_size: int, cfg: CausalConvConfig):
        super().__init__()
        if cfg.kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2 (a kernel of 1 sees no past), got {cfg.kernel_size}")
        if cfg.n_layers < 1 or cfg.dilation_cycle < 1 or cfg.channels < 1:
            raise ValueError("n_layers, dilation_cycle and channels must be >= 1")
        self.vocab_size = vocab_size
        self.receptive_field = cfg.receptive_field()
        self.embed = nn.Embedding(vocab_size, cfg.channels)
        self.layers = nn.ModuleList(GatedResidualLayer(cfg.channels, cfg.kernel_size, d, cfg.dropout)
                                    for d in cfg.dilations())
        # WaveNet's output stack (fig. 4): ReLU, 1x1, ReLU, 1x1 over the summed skips
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(cfg.channels, cfg.channels, 1), nn.ReLU(),
                                 nn.Conv1d(cfg.channels, vocab_size, 1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids).transpose(1, 2)  # (B, C, T)
        skips = torch.zeros_like(x)  # (B, C, T)
        for layer in self.layers:
            x, s = layer(x)  # (B, C, T) each
            skips = skips + s
        return self.out(skips).transpose(1, 2)  # (B, T, vocab)


__all__ = ["CausalConvConfig", "CausalConvLM"]
