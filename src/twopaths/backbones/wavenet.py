"""The WaveNet/DiffWave residual stack on raw audio: one gated dilated block, causal or not.

WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"): dilated convolutions
whose dilation doubles layer by layer and restarts every ``dilation_cycle`` layers (sec. 2.1), gated
activation units ``z = tanh(W_f * x) ⊙ sigmoid(W_g * x)`` (eq. 2), residual and skip connections
(sec. 2.4, fig. 4), a global condition (a class) added inside every gate (eq. 3). DiffWave (Kong et
al. 2021, "DiffWave: A Versatile Diffusion Model for Audio Synthesis", fig. 2) uses the same block
without causality as a denoiser: the diffusion step's embedding and the class are added to each
layer's input, and every output position sees both sides.

So there is one block (:class:`GatedResidualLayer`, shared with the text model
:class:`~twopaths.backbones.causal_conv.CausalConvLM`) and a flag:

* :class:`WaveNet` (``causal``): mu-law class ids (B, T) -> next-sample logits (B, T, 256). With
  :meth:`WaveNet.new_cache` it generates incrementally, as "Fast Wavenet Generation" (Paine et al.
  2016): each layer keeps the last ``(kernel - 1) * dilation`` inputs it has seen, so one new sample
  costs one column of every layer instead of a pass over the receptive field.
* :class:`WaveNetDenoiser` (non-causal): a noisy waveform (B, 1, L), a timestep and a class ->
  a tensor shaped like it (noise, x0 or v) for :class:`~twopaths.paradigms.gaussian.GaussianDiffusion`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from twopaths.nn.embeddings import TimestepClassEmbedding


@dataclass
class WaveNetConfig:
    channels: int = 64  # residual width
    kernel_size: int = 2  # taps per dilated convolution (WaveNet: 2; DiffWave: 3)
    n_layers: int = 20  # gated residual layers
    dilation_cycle: int = 10  # layer l has dilation 2 ** (l mod dilation_cycle): 1 .. 512
    num_classes: int = 0  # a global class condition (0: none); the id num_classes is "no class" (CFG)
    dropout: float = 0.0

    def dilations(self) -> list[int]:
        return [2 ** (layer % self.dilation_cycle) for layer in range(self.n_layers)]

    def receptive_field(self) -> int:
        """Output t sees inputs t - R + 1 .. t (causal) or t - (R-1)/2 .. t + (R-1)/2 (centred)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations())


class GatedResidualLayer(nn.Module):
    """One WaveNet layer (fig. 4): x (B, C, T) [, condition (B, C)] -> (x + residual, skip), both (B, C, T).

    ``causal``: output t reads inputs t - (k-1)d .. t (left padding); otherwise the taps are centred
    (odd kernels). ``cond_dim`` > 0 adds a linear map of a per-item condition vector to the input of the
    dilated convolution (DiffWave's diffusion-step and class embeddings; WaveNet eq. 3's global condition).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float = 0.0, causal: bool = True,
                 cond_dim: int = 0):
        super().__init__()
        if not causal and kernel_size % 2 == 0:
            raise ValueError(f"a non-causal layer centres its taps, which needs an odd kernel, got {kernel_size}")
        self.causal, self.dilation, self.kernel_size = causal, dilation, kernel_size
        self.pad = (kernel_size - 1) * dilation  # inputs before t that output t reads (causal)
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation)  # filter and gate
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)
        self.cond = nn.Linear(cond_dim, channels) if cond_dim else None

    def _gate(self, h: torch.Tensor) -> torch.Tensor:
        f, g = h.chunk(2, dim=1)  # (B, C, T) each
        return self.drop(torch.tanh(f) * torch.sigmoid(g))  # (B, C, T), WaveNet eq. 2

    def _input(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return x if self.cond is None or cond is None else x + self.cond(cond)[:, :, None]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        padding = (self.pad, 0) if self.causal else (self.pad // 2, self.pad // 2)
        z = self._gate(self.conv(F.pad(self._input(x, cond), padding)))  # (B, C, T)
        return x + self.res(z), self.skip(z)

    def step_weights(self) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The weights :meth:`step` multiplies by, as contiguous (C_in, C_out) matrices made once per
        generation (slicing the (2C, C, k) kernel at every sample costs more than the product): the k
        taps of the dilated convolution, and the residual and skip 1x1 convolutions side by side."""
        w = self.conv.weight  # (2C, C, k): tap j reads the input of time t - (k - 1 - j) * dilation
        taps = [w[:, :, j].T.contiguous() for j in range(self.kernel_size)]  # (C, 2C) each
        out_w = torch.cat([self.res.weight[:, :, 0], self.skip.weight[:, :, 0]]).T.contiguous()  # (C, 2C)
        return taps, out_w, torch.cat([self.res.bias, self.skip.bias])

    def step(self, x: torch.Tensor, past: torch.Tensor, t: int, cond: torch.Tensor | None = None,
             weights: tuple[list[torch.Tensor], torch.Tensor, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One new column at time ``t`` (causal only): x (B, C) -> (x + residual, skip), exactly
        :meth:`forward`'s column t, in O(layer) work. ``past`` (pad, B, C) is a ring buffer of this
        layer's last ``pad`` inputs: slot ``t mod pad`` holds the input of time t - pad (zeros before
        the start, as the causal padding), and is overwritten by time t's input here. ``weights``:
        :meth:`step_weights`, made once by the caller (made here when not given)."""
        taps, out_w, out_b = weights if weights is not None else self.step_weights()
        h = x if self.cond is None or cond is None else x + self.cond(cond)  # (B, C)
        out = torch.addmm(self.conv.bias, h, taps[-1])  # (B, 2C): the tap on time t itself
        for j in range(self.kernel_size - 1):
            out = torch.addmm(out, past[(t + j * self.dilation) % self.pad], taps[j])
        past[t % self.pad] = h
        f, g = out.chunk(2, dim=1)
        z = self.drop(torch.tanh(f) * torch.sigmoid(g))  # (B, C), WaveNet eq. 2
        res, skip = torch.addmm(out_b, z, out_w).chunk(2, dim=1)  # (B, C) each
        return x + res, skip


class ConvCache:
    """Fast WaveNet generation's queues: per layer, the last ``pad`` inputs it has seen (zeros at first,
    as the causal padding). ``length`` counts the positions processed (the KV cache's interface)."""

    def __init__(self, layers: nn.ModuleList, batch: int, channels: int, device: torch.device, dtype: torch.dtype):
        self.past = [torch.zeros(layer.pad, batch, channels, device=device, dtype=dtype) for layer in layers]
        self.weights = [layer.step_weights() for layer in layers]  # the weights are fixed while generating
        self.length = 0


class WaveNet(nn.Module):
    """Causal WaveNet over quantised samples: ids (B, T) [+ class (B,)] -> next-sample logits (B, T, classes)."""

    def __init__(self, cfg: WaveNetConfig, quantization: int = 256):
        super().__init__()
        if cfg.kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2 (a kernel of 1 sees no past), got {cfg.kernel_size}")
        self.cfg, self.vocab_size = cfg, quantization
        self.receptive_field = cfg.receptive_field()
        C = cfg.channels
        self.embed = nn.Embedding(quantization, C)
        self.class_embed = nn.Embedding(cfg.num_classes + 1, C) if cfg.num_classes else None
        self.layers = nn.ModuleList(GatedResidualLayer(C, cfg.kernel_size, d, cfg.dropout, True, C if cfg.num_classes
                                                       else 0) for d in cfg.dilations())
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(C, C, 1), nn.ReLU(), nn.Conv1d(C, quantization, 1))
        self.labels: torch.Tensor | None = None  # the class of each row while generating (set by the paradigm)

    def _out_column(self, skips: torch.Tensor) -> torch.Tensor:
        """The output stack (ReLU, 1x1, ReLU, 1x1) on one column (B, C) -> (B, classes), as linear maps."""
        first, last = self.out[1], self.out[3]
        h = F.relu(F.linear(F.relu(skips), first.weight[:, :, 0], first.bias))
        return F.linear(h, last.weight[:, :, 0], last.bias)

    def new_cache(self, batch: int, max_len: int, device: torch.device | None = None,
                  dtype: torch.dtype | None = None) -> ConvCache:
        w = self.embed.weight
        return ConvCache(self.layers, batch, self.cfg.channels, device or w.device, dtype or w.dtype)

    def _cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return self.class_embed(y) if self.class_embed is not None and y is not None else None

    def forward(self, ids: torch.Tensor, y: torch.Tensor | None = None, cache: ConvCache | None = None,
                positions: torch.Tensor | None = None, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, classes). With a ``cache`` the T new ids continue what it has seen (one at a time
        inside); ``positions`` are implied by order, and a ``key_mask`` must be all real tokens."""
        if key_mask is not None and not bool(key_mask.all()):
            raise ValueError("a convolution cannot mask padding: generate rows of equal length")
        y = y if y is not None else self.labels
        cond = self._cond(y)  # (B, C) or None
        if cache is None:
            x = self.embed(ids).transpose(1, 2)  # (B, C, T)
            skips = torch.zeros_like(x)
            for layer in self.layers:
                x, s = layer(x, cond)
                skips = skips + s
            return self.out(skips).transpose(1, 2)  # (B, T, classes)
        columns = []
        for t in range(ids.shape[1]):
            x = self.embed(ids[:, t])  # (B, C)
            skips = torch.zeros_like(x)
            for layer, past, weights in zip(self.layers, cache.past, cache.weights):
                x, s = layer.step(x, past, cache.length, cond, weights)
                skips = skips + s
            columns.append(self._out_column(skips))  # (B, classes)
            cache.length += 1
        return torch.stack(columns, dim=1)  # (B, T, classes)


class WaveNetDenoiser(nn.Module):
    """Non-causal WaveNet as a diffusion denoiser (DiffWave, fig. 2): x (B, 1, L), t (B,), y (B,) -> (B, 1, L).

    The diffusion step is a sinusoidal embedding through a two-layer MLP (DiffWave sec. 3: 128 -> 512);
    the class vector (the null label for classifier-free guidance) is added to it
    (:class:`~twopaths.nn.embeddings.TimestepClassEmbedding`). Each layer adds its own linear map of that
    vector to its input. The output stack is zero-initialised, so the untrained denoiser predicts 0."""

    def __init__(self, cfg: WaveNetConfig, in_channels: int = 1, out_channels: int = 1, emb_dim: int = 512):
        super().__init__()
        C = cfg.channels
        self.cfg = cfg
        self.inp = nn.Conv1d(in_channels, C, 1)
        self.emb = TimestepClassEmbedding(128, emb_dim, cfg.num_classes, owner="diffwave")
        self.layers = nn.ModuleList(GatedResidualLayer(C, cfg.kernel_size, d, cfg.dropout, False, emb_dim)
                                    for d in cfg.dilations())
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(C, C, 1), nn.ReLU(), nn.Conv1d(C, out_channels, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, context=None,
                context_mask=None) -> torch.Tensor:
        cond = torch.nn.functional.silu(self.emb(t, y))  # (B, E)
        h = self.inp(x)  # (B, C, L)
        skips = torch.zeros_like(h)
        for layer in self.layers:
            h, s = layer(h, cond)
            skips = skips + s
        return self.out(skips / math.sqrt(len(self.layers)))  # (B, out, L)


__all__ = ["ConvCache", "GatedResidualLayer", "WaveNet", "WaveNetConfig", "WaveNetDenoiser"]
