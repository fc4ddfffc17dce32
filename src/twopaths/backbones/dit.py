"""The Diffusion Transformer (DiT): a plain vision transformer over image patches, conditioned by adaLN-Zero.

Peebles & Xie 2023 ("Scalable Diffusion Models with Transformers", sec. 3.2) replace the U-Net of a
diffusion model with a ViT (Dosovitskiy et al. 2021) and change almost nothing else:

- **patchify**: the (C, H, W) input is cut into T = (H/p)(W/p) patches of p x p pixels, each
  flattened and embedded linearly to width d (the paper's Conv2d with kernel = stride = p is the
  same map), plus fixed 2-D sine-cosine positions (as in MAE, He et al. 2022). Halving p
  quadruples T and the Gflops at an almost unchanged parameter count — the paper's main knob;
- **conditioning** c = embed(t) + embed(y): the timestep's sinusoidal features (256 of them)
  through a two-layer SiLU MLP, plus a class vector with a null row for classifier-free guidance
  (Ho & Salimans 2022) — :class:`twopaths.nn.embeddings.TimestepClassEmbedding`, shared with the U-Net;
- **N DiT blocks** with *adaLN-Zero* (sec. 3.2, "adaLN-Zero block", fig. 3): every sub-layer
  (self-attention, MLP) sees its input through a LayerNorm *without* learned affine parameters,
  then scaled and shifted per channel by values regressed from c — ``LN(x) * (1 + scale) + shift``,
  adaptive normalisation as in FiLM (Perez et al. 2018) and ADM's AdaGN — and its output is
  multiplied by a per-channel *gate* alpha, also regressed from c, before the residual add::

      shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = Linear(SiLU(c))            (B, 6d)
      x = x + gate_a * Attention(LN(x) * (1 + scale_a) + shift_a)
      x = x + gate_m * MLP(LN(x) * (1 + scale_m) + shift_m)

  The regressing Linear starts at zero, so every gate is 0 and every block is exactly the
  identity at initialisation (the "Zero": Goyal et al. 2017's zero-gamma, which the paper found
  clearly better than adaLN without it, cross-attention or in-context conditioning, fig. 5);
- **final layer**: adaLN (shift, scale) then a Linear to p * p * C_out values per token, both
  zero-initialised so the network outputs exactly 0 at init; **unpatchify** puts the tokens back
  into (C_out, H, W). With a learned variance (Nichol & Dhariwal 2021) C_out = 2C.

**Cross-attention** (``context_dim > 0``, for text-to-image) is our addition in the paper's spirit:
the paper's "cross-attention block" variant (sec. 3.2) adds a cross-attention sub-layer after
self-attention; PixArt-alpha (Chen et al. 2023, sec. 2.3) puts one there to attend to text tokens.
Here it is modulated and gated by three more adaLN-Zero values like the other sub-layers, so it
too starts as the identity. The context (B, S, context_dim) is projected to d once and each block's
cross-attention projects it to its own keys and values; a key mask (B, S), True = real token,
hides padding.

**Gflops** (:meth:`DiT.gflops`, :func:`dit_gflops`) count a multiply-add as 2 FLOPs, the usual
hardware convention and what :func:`twopaths.nn.flops.forward_gflops` measures. The paper's tables
(fvcore) count a multiply-add as *one*: their 118.6 Gflops for DiT-XL/2 at 256x256 (a 32x32x4
latent) is 237 Gflops here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from twopaths.backbones.transformer import MLP, TransformerConfig
from twopaths.errors import ConfigError
from twopaths.nn.attention import AttentionConfig, MultiHeadAttention
from twopaths.nn.embeddings import TimestepClassEmbedding
from twopaths.nn.positional import sinusoidal


@dataclass
class DiTConfig:
    image_size: int = 28  # side of the training images (H = W); must divide by patch_size
    in_channels: int = 1  # image channels (1 for Fashion-MNIST, 3 for RGB, 4 for an SD latent)
    out_channels: int | None = None  # None = in_channels; pass 2 * in_channels for a learned variance
    patch_size: int = 4  # p: each token is a p x p patch, T = (image_size / p)^2 tokens
    d_model: int = 192  # width of the token stream (hidden size)
    n_layer: int = 6  # DiT blocks
    n_head: int = 4  # attention heads per block (d_model must divide by it)
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * d_model (the paper: 4)
    positions: Literal["sincos", "learned"] = "sincos"  # fixed 2-D sine-cosine (the paper) or a trained table
    num_classes: int = 0  # 0 = unconditional; else a table of num_classes + 1 rows, the last the null label
    context_dim: int = 0  # 0 = no text; > 0 adds cross-attention to a (B, S, context_dim) context in every block
    dropout: float = 0.0  # on attention weights and residual branches (the paper: none)
    freq_dim: int = 256  # sinusoidal features of the timestep before its MLP (the paper: 256)

    @property
    def tokens(self) -> int:
        """T, the number of patches of an image_size x image_size input."""
        return (self.image_size // self.patch_size) ** 2

    def check(self) -> None:
        """Raise :class:`ConfigError` for a size that cannot be built, saying what would fit."""
        for key in ("image_size", "in_channels", "patch_size", "d_model", "n_layer", "n_head", "freq_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(f"DiT {key} must be >= 1, got {getattr(self, key)}")
        if self.image_size % self.patch_size:
            fits = [p for p in range(1, self.image_size + 1) if self.image_size % p == 0 and p < self.image_size]
            raise ConfigError(f"DiT patch size {self.patch_size} does not divide the {self.image_size}x"
                              f"{self.image_size} images into whole patches; patch sizes that fit: "
                              + ", ".join(map(str, fits)))
        if self.positions not in ("sincos", "learned"):
            raise ConfigError(f"DiT positions must be 'sincos' or 'learned', got {self.positions!r}")
        if self.d_model % self.n_head:
            raise ConfigError(f"DiT d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.num_classes < 0 or self.context_dim < 0:
            raise ConfigError(f"DiT num_classes and context_dim must be >= 0, got {self.num_classes} "
                              f"and {self.context_dim}")
        if self.out_channels is not None and self.out_channels < 1:
            raise ConfigError(f"DiT out_channels must be >= 1 (or null), got {self.out_channels}")


#: Named sizes: "DiT-{size}/{patch}". S, B, L and XL are the paper's (table 1: hidden size d,
#: layers N, heads; ViT-S/B/L widths and depths, XL its own), each with patch 2, 4 or 8 (the
#: twelve models of its fig. 2). On the paper's 32x32x4 latents with 1,000 classes and a learned
#: variance they have its 33M / 130M / 458M / 675M parameters and, at patch 2, its
#: 6.06 / 23.01 / 80.7 / 118.6 Gflops (a multiply-add counted once; twice that here).
#: ``dit_preset(name, **overrides)`` copies one with the image fields set.
DIT_SIZES: dict[str, DiTConfig] = {
    **{f"DiT-{size}/{p}": DiTConfig(patch_size=p, d_model=d, n_layer=n, n_head=h)
       for size, (d, n, h) in (("S", (384, 12, 6)), ("B", (768, 12, 12)), ("L", (1024, 24, 16)),
                               ("XL", (1152, 28, 16)))
       for p in (2, 4, 8)},
    # Ours, not the paper's: "T" (tiny, DeiT-Ti's width) sizes that train on a CPU in minutes.
    # On 28x28 Fashion-MNIST T/4 sees 49 tokens, T/2 196; on 32x32 images 64 and 256.
    "DiT-T/2": DiTConfig(patch_size=2, d_model=192, n_layer=6, n_head=4),
    "DiT-T/4": DiTConfig(patch_size=4, d_model=192, n_layer=6, n_head=4),
}

#: The DiTConfig fields a named size fixes; everything else (image, classes, context...) is the caller's.
SIZE_FIELDS = ("patch_size", "d_model", "n_layer", "n_head")


def dit_preset(name: str, **overrides) -> DiTConfig:
    """A copy of ``DIT_SIZES[name]`` with ``overrides`` applied (image_size, in_channels, num_classes...)."""
    if name not in DIT_SIZES:
        raise ConfigError(f"unknown DiT size '{name}'; choose one of: {', '.join(DIT_SIZES)}")
    return dataclasses.replace(DIT_SIZES[name], **overrides)


def sized_dit(cfg: DiTConfig, size: str, resolution: int, key: str = "arch") -> DiTConfig:
    """``cfg`` with the shape fields (:data:`SIZE_FIELDS`) of the named ``size`` (``"custom"``: ``cfg``'s
    own), checked to tile ``resolution`` x ``resolution`` images with its patches. A shape field of ``cfg``
    changed from both the default and the size's value is an error rather than silently overruled;
    ``key`` is where the config holds ``dit_size`` and ``dit``, for the messages."""
    if size != "custom":
        if size not in DIT_SIZES:
            raise ConfigError(f"config key '{key}.dit_size': unknown DiT size {size!r}; choose one of: "
                              + ", ".join(DIT_SIZES) + f", custom ({key}.dit's own fields)")
        named, default = DIT_SIZES[size], DiTConfig()
        for field in SIZE_FIELDS:
            value = getattr(cfg, field)
            if value not in (getattr(default, field), getattr(named, field)):
                raise ConfigError(f"config key '{key}.dit.{field}' is {value}, but {key}.dit_size={size} sets it "
                                  f"to {getattr(named, field)}; add --set {key}.dit_size=custom to size the DiT "
                                  f"from {key}.dit alone")
        cfg = dataclasses.replace(cfg, **{field: getattr(named, field) for field in SIZE_FIELDS})
    if resolution % cfg.patch_size:
        fits = [name for name, named in DIT_SIZES.items() if resolution % named.patch_size == 0]
        raise ConfigError(f"{size if size != 'custom' else key + '.dit'} cuts images into "
                          f"{cfg.patch_size}x{cfg.patch_size} patches, which do not tile this data's "
                          f"{resolution}x{resolution} images; choose {key}.dit_size from: {', '.join(fits)} "
                          f"(or {key}.dit.patch_size dividing {resolution} with {key}.dit_size=custom)")
    return cfg


# ----------------------------------------------------------------------------- patches and positions


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Images (B, C, H, W) -> tokens (B, (H/p)(W/p), p*p*C): patches in row-major order, each
    flattened as (row in patch, column in patch, channel). :func:`unpatchify` inverts it exactly."""
    B, C, H, W = x.shape
    p = patch_size
    if H % p or W % p:
        raise ValueError(f"input size {H}x{W} does not divide into {p}x{p} patches")
    x = x.reshape(B, C, H // p, p, W // p, p)  # (B, C, h, p, w, p)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, p, C)
    return x.reshape(B, (H // p) * (W // p), p * p * C)  # (B, T, p*p*C)


def unpatchify(tokens: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """Tokens (B, T, p*p*C) -> images (B, C, height, width), T = (height/p)(width/p): the inverse of
    :func:`patchify` (DiT's ``unpatchify``, einsum ``nhwpqc -> nchpwq``)."""
    B, T, D = tokens.shape
    p = patch_size
    h, w = height // p, width // p
    if h * w != T or D % (p * p):
        raise ValueError(f"{T} tokens of width {D} are not the {p}x{p} patches of a {height}x{width} image")
    C = D // (p * p)
    x = tokens.reshape(B, h, w, p, p, C)  # (B, h, w, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, p)
    return x.reshape(B, C, h * p, w * p)  # (B, C, H, W)


def sincos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2-D positions (h*w, dim) for an h x w grid in row-major order: the first half of the
    channels encodes the patch's row, the second half its column, each with the 1-D sinusoidal
    encoding of Vaswani et al. 2017, sec. 3.5 (MAE's ``get_2d_sincos_pos_embed``, which DiT uses)."""
    rows = torch.arange(h).repeat_interleave(w)  # (h*w,) row of each patch
    cols = torch.arange(w).repeat(h)  # (h*w,) column of each patch
    return torch.cat([sinusoidal(rows, dim // 2), sinusoidal(cols, dim - dim // 2)], dim=-1)  # (h*w, dim)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Adaptive LayerNorm's affine part: x (B, T, d) * (1 + scale) + shift, scale and shift (B, 1, d)."""
    return x * (1 + scale) + shift


# ----------------------------------------------------------------------------- blocks


class DiTBlock(nn.Module):
    """Self-attention [, cross-attention], MLP, each an adaLN-Zero residual branch (see the module doc)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.d_model
        # LayerNorms without learned scale and bias: adaLN supplies them, per sample, from c
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = MultiHeadAttention(AttentionConfig(d, cfg.n_head, bias=True, dropout=cfg.dropout))
        self.cross = cfg.context_dim > 0
        if self.cross:
            self.norm_cross = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
            self.cross_attn = MultiHeadAttention(AttentionConfig(d, cfg.n_head, bias=True, dropout=cfg.dropout,
                                                                 fused_qkv=False, cross=True))
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(TransformerConfig(d_model=d, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout,
                                         activation="gelu-tanh"))  # DiT's MLP: GELU, tanh approximation
        self.n_mod = 9 if self.cross else 6  # shift, scale, gate per sub-layer
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, self.n_mod * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d), c (B, d) [, context (B, S, d), context_mask bool broadcastable to (B, H, T, S)] -> (B, T, d)."""
        mod = self.adaLN_modulation(c).unsqueeze(1).chunk(self.n_mod, dim=-1)  # n_mod x (B, 1, d)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod[:6]  # DiT's order
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))  # (B, T, d)
        if self.cross:
            shift_ca, scale_ca, gate_ca = mod[6:]  # (B, 1, d) each
            h = modulate(self.norm_cross(x), shift_ca, scale_ca)  # (B, T, d)
            x = x + gate_ca * self.cross_attn(h, context=context, mask=context_mask)  # (B, T, d): queries see the text
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))  # (B, T, d)


class FinalLayer(nn.Module):
    """adaLN (shift, scale from c) then a Linear from d to the p*p*C_out values of each patch."""

    def __init__(self, d: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(d, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, d) each
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (B, T, p*p*C_out)


# ----------------------------------------------------------------------------- the network


class DiT(nn.Module):
    """Noisy images x_t (B, C, H, W), timesteps t (B,) float in [0, T-1], labels y (B,) or None
    [, context (B, S, context_dim) and context_mask (B, S) True = real token] -> (B, C_out, H, W).

    The same contract as :class:`twopaths.backbones.unet.UNet`: ``y == num_classes`` (or ``y=None``
    on a class-conditional net) is the null label of classifier-free guidance. H and W must divide
    by the patch size; with sin-cos positions any such size works, learned positions need image_size.
    """

    def __init__(self, cfg: DiTConfig, name: str = "DiT"):
        super().__init__()
        cfg.check()
        self.cfg, self.name = cfg, name
        self.out_channels = cfg.out_channels or cfg.in_channels
        d, p, grid = cfg.d_model, cfg.patch_size, cfg.image_size // cfg.patch_size
        self.x_embedder = nn.Linear(p * p * cfg.in_channels, d)  # patch embedding = Conv2d(k=p, stride=p)
        if cfg.positions == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, d))
        else:
            self.register_buffer("pos_embed", sincos_2d(grid, grid, d)[None], persistent=False)  # (1, T, d)
        self.cond = TimestepClassEmbedding(cfg.freq_dim, d, cfg.num_classes, owner="DiT")
        self.context_proj = nn.Linear(cfg.context_dim, d) if cfg.context_dim else None
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.n_layer))
        self.final_layer = FinalLayer(d, p, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation (``initialize_weights`` in the paper's code), then adaLN-Zero."""
        for m in self.modules():  # every Linear, including the patch embedding: Xavier-uniform, bias 0 (ViT)
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.cfg.positions == "learned":
            nn.init.normal_(self.pos_embed, std=0.02)
        # the timestep MLP and the class table: N(0, 0.02), as DiT (and GPT-2) do
        nn.init.normal_(self.cond.time_embed[0].weight, std=0.02)
        nn.init.normal_(self.cond.time_embed[2].weight, std=0.02)
        if self.cond.class_embed is not None:
            nn.init.normal_(self.cond.class_embed.weight, std=0.02)
        # adaLN-Zero. The Linear that regresses each block's shift, scale and gate from c starts at
        # zero (weight and bias), so at init shift = scale = 0 (plain LayerNorm) and every gate is 0:
        # x + 0 * branch(...) = x, each block is exactly the identity and the first steps train a
        # shallow network that deepens as the gates open. The gradient still reaches these layers
        # (d loss / d gate = branch output, which is not zero), so they start learning at once.
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        # The final layer's modulation and output Linear start at zero too: the network predicts
        # exactly 0 at init (for eps-prediction, the mean of the target) and only the output
        # Linear gets a gradient on the first step.
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def positions(self, h: int, w: int) -> torch.Tensor:
        """Position encodings (1, h*w, d) for an h x w grid of patches."""
        if self.pos_embed.shape[1] == h * w and h == w:
            return self.pos_embed
        if self.cfg.positions == "learned":
            grid = self.cfg.image_size // self.cfg.patch_size
            raise ValueError(f"a {h}x{w} grid of patches, but learned positions exist for {grid}x{grid} "
                             f"(image_size {self.cfg.image_size}); use positions='sincos' for other sizes")
        return sincos_2d(h, w, self.cfg.d_model)[None].to(self.pos_embed.device)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        p = self.cfg.patch_size
        if H % p or W % p:
            raise ValueError(f"input size {H}x{W} does not divide into {p}x{p} patches; pad or resize the images "
                             f"or choose another patch size")
        if (context is not None) != (self.context_proj is not None):
            raise ValueError("this DiT has cross-attention (context_dim > 0) and needs a context" if context is None
                             else "this DiT has no cross-attention (context_dim = 0) but was given a context")
        if context is not None and context.shape[-1] != self.cfg.context_dim:
            raise ValueError(f"context width {context.shape[-1]} does not match context_dim {self.cfg.context_dim}")
        if t.ndim == 0:
            t = t.expand(B)  # (B,)
        tokens = self.x_embedder(patchify(x, p))  # (B, T, d): one token per p x p patch
        tokens = tokens + self.positions(H // p, W // p).to(tokens.dtype)  # (B, T, d)
        c = self.cond(t, y)  # (B, d): timestep + class embedding
        mask = None
        if context is not None:
            context = self.context_proj(context)  # (B, S, d)
            mask = context_mask[:, None, None, :].bool() if context_mask is not None else None  # (B, 1, 1, S)
        for block in self.blocks:
            tokens = block(tokens, c, context, mask)  # (B, T, d)
        out = self.final_layer(tokens, c)  # (B, T, p*p*C_out)
        return unpatchify(out, p, H, W)  # (B, C_out, H, W)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def gflops(self, height: int | None = None, width: int | None = None, context_len: int = 0) -> float:
        """Analytic Gflops of one forward pass of one image (see :func:`dit_gflops`)."""
        return dit_gflops(self.cfg, height, width, context_len)


def dit_gflops(cfg: DiTConfig, height: int | None = None, width: int | None = None, context_len: int = 0) -> float:
    """Gflops of one forward pass of one image (a multiply-add = 2 FLOPs): the matmuls with weights
    plus attention's scores and weighted values; norms, activations and additions are left out (they
    are O(T d), under 1%). ``height``/``width`` default to image_size; ``context_len`` is S, the text
    tokens of a cross-attention model. :func:`twopaths.nn.flops.forward_gflops` counts the same ops."""
    H, W = height or cfg.image_size, width or cfg.image_size
    p, d, C = cfg.patch_size, cfg.d_model, cfg.in_channels
    C_out = cfg.out_channels or C
    T, S, hidden = (H // p) * (W // p), context_len, int(cfg.mlp_ratio * d)
    macs = T * p * p * C * d  # patch embedding
    macs += cfg.freq_dim * d + d * d  # timestep MLP (class embedding: a lookup)
    block = 6 * d * d  # adaLN modulation, once per image
    block += T * 3 * d * d + T * d * d  # q, k, v and output projections
    block += 2 * T * T * d  # scores Q K^T and the weighted sum of values, over all heads
    block += 2 * T * d * hidden  # MLP
    if cfg.context_dim and S:
        block += 3 * d * d  # the cross-attention's adaLN values
        block += 2 * T * d * d + 2 * S * d * d  # q and output from the image, k and v from the text
        block += 2 * T * S * d  # scores and values
        macs += S * cfg.context_dim * d  # the context projection
    macs += cfg.n_layer * block
    macs += 2 * d * d + T * d * p * p * C_out  # final adaLN and the output Linear
    return 2 * macs / 1e9
