"""The Vision Transformer: an image as a sequence of patch tokens, classified from a class token.

Dosovitskiy et al. 2021 ("An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", sec. 3.1, eqs. 1-4) treat image patches as sequences of tokens:

- eq. 1: cut the (C, H, W) image into N = HW / p^2 patches of p x p pixels, flatten each and map it
  linearly to width d (done here as a Conv2d with kernel = stride = p, the same linear map applied
  to every non-overlapping patch); prepend a learned class token x_class; add learned positions E_pos;
- eqs. 2-3: L pre-LN transformer blocks, bidirectional (every token sees every token). These are
  :class:`twopaths.backbones.transformer.Block` with ``TransformerConfig(causal=False)``: the same
  blocks, attention and MLP as the project's GPT, not a second implementation;
- eq. 4: a final LayerNorm, and the class token's state is the image representation, mapped to
  class logits by a linear head.

At Fashion-MNIST's 28x28, patch 4 gives a 7x7 grid of 49 tokens (+1 class token), patch 7 a 4x4
grid of 16. :meth:`ViT.forward` can also return every block's attention weights (through
``MultiHeadAttention(need_weights=True)``), which :mod:`twopaths.eval.attention_rollout` turns
into heat maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from twopaths.backbones.transformer import Block, TransformerConfig
from twopaths.errors import ConfigError
from twopaths.nn.positional import LearnedPositions


@dataclass
class ViTConfig:
    image_size: int = 28  # input height = width (models.vit sets it from the data)
    in_channels: int = 1  # input channels (models.vit sets it from the data)
    num_classes: int = 10  # classes of the head (models.vit sets it from the data)
    # The defaults are a CPU-sized ViT for 28x28 images (0.8M parameters, 49 patch tokens); ViT-Ti
    # (Touvron et al. 2021) is d_model=192, n_layer=12, n_head=3, mlp_ratio=4 at patch 16 on 224x224.
    patch_size: int = 4  # p: p x p pixel patches, one token each; image_size must be divisible by it
    d_model: int = 128  # token width d
    n_layer: int = 6  # transformer blocks L
    n_head: int = 4  # attention heads per block (32 channels each)
    mlp_ratio: float = 2.0  # MLP hidden width = mlp_ratio * d_model (ViT: 4; 2 halves the MLP cost)
    dropout: float = 0.0  # on embeddings, attention weights and residual branches (ViT: 0.1 on small data)
    activation: Literal["gelu", "gelu-tanh"] = "gelu"  # ViT uses exact GELU
    bias: bool = True  # biases in Linear layers and LayerNorms
    norm_eps: float = 1e-6  # LayerNorm epsilon (ViT's reference code: 1e-6)

    def block_config(self) -> TransformerConfig:
        """The shared transformer stack's config for these blocks: bidirectional, no positions of its own."""
        return TransformerConfig(n_layer=self.n_layer, n_head=self.n_head, d_model=self.d_model,
                                 context=self.num_tokens + 1, mlp_ratio=self.mlp_ratio, dropout=self.dropout,
                                 bias=self.bias, activation=self.activation, positional="none",
                                 tie_weights=False, causal=False, norm_eps=self.norm_eps)

    @property
    def grid(self) -> int:
        """Patches per side: image_size / patch_size."""
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        """Patch tokens N = grid^2 (the sequence has one more: the class token)."""
        return self.grid ** 2

    def check(self) -> None:
        """One clear line for a config that cannot build (each names the key to change)."""
        if self.patch_size < 1 or self.image_size % self.patch_size:
            divisors = [p for p in range(1, self.image_size + 1) if self.image_size % p == 0]
            raise ConfigError(f"config key 'arch.vit.patch_size' ({self.patch_size}) must divide the image "
                              f"resolution {self.image_size}; choose one of {', '.join(map(str, divisors))}")
        if self.d_model % self.n_head:
            raise ConfigError(f"config key 'arch.vit.d_model' ({self.d_model}) must be divisible by "
                              f"'arch.vit.n_head' ({self.n_head})")
        for key in ("d_model", "n_layer", "n_head", "num_classes", "in_channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key 'arch.vit.{key}' must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"config key 'arch.vit.dropout' must be in [0, 1), got {self.dropout}")


class ViT(nn.Module):
    """Images (B, C, R, R) -> class logits (B, num_classes). ``features()`` gives the class token's state."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        block_cfg = cfg.block_config()
        d = cfg.d_model
        # eq. 1: one linear map E of every flattened p x p patch; kernel = stride = p applies it per patch
        self.patch_embed = nn.Conv2d(cfg.in_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        # 1-D (not decayed by AdamW, see twopaths.training.optim), broadcast over the batch
        self.cls_token = nn.Parameter(torch.zeros(d))
        # E_pos: one learned vector per sequence position, class token first (an nn.Embedding, so not decayed)
        self.pos_embed = LearnedPositions(cfg.num_tokens + 1, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(block_cfg) for _ in range(cfg.n_layer))
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps, bias=cfg.bias)
        self.head = nn.Linear(d, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # ViT's reference code (Dosovitskiy et al., vit_jax): Xavier-uniform linear maps (q, k and v each
        # on its own, as separate projections would be), zero biases, LeCun-normal patch embedding (a linear
        # map of p*p*C pixels), a zero class token and a zero head (every class starts equally likely).
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            if block.attn.fused:  # (3d, d): three (d, d) projections stacked
                for w in block.attn.c_attn.weight.chunk(3, dim=0):
                    nn.init.xavier_uniform_(w)
        fan_in = self.cfg.in_channels * self.cfg.patch_size ** 2
        nn.init.normal_(self.patch_embed.weight, mean=0.0, std=1 / math.sqrt(fan_in))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.zeros_(self.cls_token)
        nn.init.zeros_(self.head.weight)
        # Positions at the scale of the patch tokens (N(0, 1), nn.Embedding's default) rather than the
        # reference's N(0, 0.02): in short Fashion-MNIST runs (400 steps of 64, patch 7, d 128, 6 layers)
        # that took validation accuracy from 66% to 74%; every token is told apart by position from step 0.
        nn.init.normal_(self.pos_embed.weight, mean=0.0, std=1.0)

    # ------------------------------------------------------------------ forward

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Eq. 1: images (B, C, R, R) -> tokens (B, 1 + N, d): [x_class; x_p^1 E; ...; x_p^N E] + E_pos."""
        c, r = self.cfg.in_channels, self.cfg.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (c, r, r):
            raise ValueError(f"ViT takes images of shape (B, {c}, {r}, {r}), got {tuple(images.shape)}")
        B = images.shape[0]
        x = self.patch_embed(images)  # (B, d, g, g): one d-vector per patch, g = R / p
        x = x.flatten(2).transpose(1, 2)  # (B, N, d): patches in raster order, N = g * g
        cls = self.cls_token.expand(B, 1, -1)  # (B, 1, d)
        x = torch.cat([cls, x], dim=1)  # (B, 1 + N, d): the class token is position 0
        positions = torch.arange(x.shape[1], device=x.device)  # (1 + N,)
        x = x + self.pos_embed(positions)  # (B, 1 + N, d)
        return self.drop(x)  # (B, 1 + N, d)

    def features(self, images: torch.Tensor, return_attention: bool = False
                 ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Eqs. 2-4: the class token's final state (B, d); with ``return_attention`` also every block's
        attention weights, a list of L tensors (B, H, 1 + N, 1 + N)."""
        x = self.embed(images)  # (B, 1 + N, d)
        weights: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if return_attention:
                # Block.forward's two residual branches, with the attention weights kept (SDPA drops them);
                # a test checks this path gives the same logits as the plain one.
                a, w = block.attn(block.ln_1(x), need_weights=True)  # (B, 1 + N, d), (B, H, 1 + N, 1 + N)
                x = x + a  # (B, 1 + N, d)
                x = x + block.mlp(block.ln_2(x))  # (B, 1 + N, d)
                weights.append(w)
            else:
                x = block(x)  # (B, 1 + N, d): bidirectional, no mask
        x = self.norm(x[:, 0])  # (B, d): eq. 4, y = LN(z_L^0), the class token only
        return (x, weights) if return_attention else x

    def forward(self, images: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """images (B, C, R, R) -> logits (B, num_classes) [, attention weights per block]."""
        if return_attention:
            z, weights = self.features(images, return_attention=True)  # (B, d), L x (B, H, 1 + N, 1 + N)
            return self.head(z), weights  # (B, num_classes)
        return self.head(self.features(images))  # (B, num_classes)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_image(self) -> float:
        """Training FLOPs per image: 6 per weight per token for the token-wise matmuls (forward and
        backward), plus 12 * L * d * T for attention scores and values (Kaplan et al. 2020, table 1)."""
        T = self.cfg.num_tokens + 1
        token_params = sum(p.numel() for p in self.blocks.parameters()) + self.patch_embed.weight.numel()
        return 6 * token_params * T + 12 * self.cfg.n_layer * self.cfg.d_model * T * T
