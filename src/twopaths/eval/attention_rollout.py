"""Attention rollout: which input patches a ViT's class token draws on, through all its layers.

Abnar & Zuidema 2020 ("Quantifying Attention Flow in Transformers", sec. 3, eq. 1). One layer's
attention weights say how a token mixes the previous layer's tokens, but the residual connection
carries each token's own state past the attention too, and the layers compose. Rollout models both:

1. average the heads: A_l = mean_h W_l^h, (T, T) per image;
2. add the identity for the residual and renormalise the rows: A_l <- (0.5 A_l + 0.5 I), rows / row sums;
3. multiply across layers, the first layer rightmost: R = A_L A_{L-1} ... A_1 (eq. 1,
   A~(l_i) = A(l_i) A~(l_{i-1})).

Row 0 of R (the class token) over the patch columns 1..N, laid out on the g x g patch grid, is the
heat map. The weights come from the shared attention through ``MultiHeadAttention(need_weights=True)``
(the written-out softmax(QK^T / sqrt(d)) of :func:`twopaths.nn.attention.attention_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["attention_rollout", "class_token_heatmaps", "save_rollout_figure"]


def attention_rollout(weights: Sequence[torch.Tensor], residual: bool = True) -> torch.Tensor:
    """L per-layer attention weights, each (B, H, T, T) with rows summing to 1 -> rollout (B, T, T), float32.

    ``residual=False`` multiplies the head-averaged maps alone (no identity term).
    """
    if not weights:
        raise ValueError("attention rollout needs the weights of at least one layer")
    rollout: torch.Tensor | None = None
    for w in weights:  # first layer first
        a = w.float().mean(dim=1)  # (B, T, T): heads averaged
        if residual:
            eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)  # (T, T): the residual path
            a = 0.5 * a + 0.5 * eye  # (B, T, T)
        a = a / a.sum(dim=-1, keepdim=True)  # (B, T, T): each row a distribution again
        rollout = a if rollout is None else a @ rollout  # (B, T, T): A_l times the rollout below it
    return rollout


@torch.no_grad()
def class_token_heatmaps(vit: torch.nn.Module, images: torch.Tensor, size: int | None = None,
                         residual: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Rollout heat maps of a :class:`twopaths.backbones.vit.ViT` and its logits.

    images (B, C, R, R) -> (heat maps (B, g, g), or (B, size, size) bilinearly upsampled, each scaled
    to max 1; logits (B, K)). g = R / patch_size.
    """
    was_training = vit.training
    vit.eval()
    try:
        logits, weights = vit(images, return_attention=True)  # (B, K), L x (B, H, 1 + N, 1 + N)
    finally:
        vit.train(was_training)
    rollout = attention_rollout(weights, residual)  # (B, 1 + N, 1 + N)
    g = vit.cfg.grid
    maps = rollout[:, 0, 1:].reshape(-1, g, g)  # (B, g, g): what the class token gathers from each patch
    if size is not None:
        maps = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    maps = maps / maps.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]  # (B, g|size, g|size), max 1
    return maps, logits


def save_rollout_figure(images: torch.Tensor, maps: torch.Tensor, predicted: Sequence[int], true: Sequence[int],
                        class_names: Sequence[str], path: str | Path, title: str = "", columns: int = 8) -> Path:
    """For each image (B, C, R, R) in [-1, 1]: the image, and below it its heat map (B, h, w) overlaid,
    titled predicted vs true class (green when right, red when wrong). ``columns`` images per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twopaths.viz import to_uint8

    n = len(images)
    cols = min(columns, n)
    rows = -(-n // cols)  # ceil
    pictures = to_uint8(images)  # (B, R, R, C)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.45 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    R = images.shape[-1]
    for i in range(n):
        r, c = divmod(i, cols)
        pic = pictures[i][..., 0] if pictures.shape[-1] == 1 else pictures[i]
        cmap = "gray" if pic.ndim == 2 else None
        top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
        top.imshow(pic, cmap=cmap, vmin=0, vmax=255)
        right = int(predicted[i]) == int(true[i])
        top.set_title(f"pred {class_names[int(predicted[i])]}\ntrue {class_names[int(true[i])]}", fontsize=7,
                      color="tab:green" if right else "tab:red")
        bottom.imshow(pic, cmap=cmap, vmin=0, vmax=255)
        heat = maps[i].float().cpu().numpy()
        bottom.imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=1, interpolation="bilinear",
                      extent=(-0.5, R - 0.5, R - 0.5, -0.5))
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

