"""Networks, named by the contract a paradigm relies on; any backbone of a contract fits any paradigm
that asks for it. This is the row index of the paradigm x backbone matrix (``twopaths models``).

Each entry is data (no import of torch here): the contract, the module, one line. A new backbone is
one module in this folder plus one line in :data:`BACKBONES`; the models that use it name it in
their :class:`~twopaths.models.spec.ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: what a paradigm may call a backbone of each contract with, and what it gets back
CONTRACTS: dict[str, str] = {
    "denoiser": "net(x, t, y=None, context=None) -> a tensor shaped like x (noise, x0 or v)",
    "token model": "net(tokens (B, T), ...) -> logits (B, T, V); causal or bidirectional",
    "encoder-decoder": "net(source (B, S), target (B, T)) -> logits (B, T, V), with a cross-attention KV cache",
    "image classifier": "net(images (B, C, H, W)) -> logits (B, classes)",
    "generator/critic": "up(z (B, d)) -> x and down(x) -> (B, d'): image <-> vector, or point <-> vector",
    "autoencoder": "encode(x) -> a diagonal Gaussian over latents; decode(z) -> x",
}


@dataclass(frozen=True)
class Backbone:
    contract: str  # a key of CONTRACTS
    module: str  # where it lives, under twopaths.backbones
    summary: str


BACKBONES: dict[str, Backbone] = {
    "unet": Backbone("denoiser", "unet", "U-Net with timestep/class embeddings, self- and cross-attention (DDPM, ADM)"),
    "video-unet": Backbone("denoiser", "video_unet", "space-time U-Net: 2-D layers per frame, temporal attention "
                                                     "with a relative position bias (Ho et al. 2022)"),
    "dit": Backbone("denoiser", "dit", "Diffusion Transformer: patches as tokens, adaLN-Zero (Peebles & Xie 2023)"),
    "mlp": Backbone("denoiser", "mlp", "residual MLP denoiser for 2-D points"),
    "transformer": Backbone("token model", "transformer", "the GPT block stack, causal or bidirectional, KV cache"),
    "window-mlp": Backbone("token model", "window_mlp", "fixed-window MLP language model (Bengio et al. 2003)"),
    "wavenet": Backbone("token model", "wavenet", "WaveNet's causal gated dilated stack on audio samples, "
                                                  "incremental generation"),
    "wavenet-denoiser": Backbone("denoiser", "wavenet", "the same block non-causal, timestep/class in every layer "
                                                        "(DiffWave)"),
    "causal-conv": Backbone("token model", "causal_conv", "dilated causal convolutions (WaveNet/ByteNet)"),
    "seq2seq": Backbone("encoder-decoder", "seq2seq", "encoder-decoder transformer (Vaswani et al. 2017)"),
    "vit": Backbone("image classifier", "vit", "Vision Transformer on patch tokens (Dosovitskiy et al. 2021)"),
    "conv": Backbone("generator/critic", "conv", "DCGAN up/down conv nets, MLPs for points"),
    "autoencoder": Backbone("autoencoder", "autoencoder", "KL-regularised conv autoencoder (Rombach et al. 2022)"),
}

__all__ = ["BACKBONES", "CONTRACTS", "Backbone"]
