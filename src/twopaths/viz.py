"""Pictures people would rather look at than read: image grids, denoising trajectories, point clouds.

Everything writes PNG files; images are expected in [-1, 1] as (N, C, H, W) tensors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images into one (rows*H, cols*W, 3) uint8 picture with ``pad`` pixel gaps."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    if c == 1:
        arr = np.repeat(arr, 3, axis=-1)
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Write a PNG grid of ``images`` (scaled up ``scale`` times so 28x28 samples are visible)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow, scale=scale)).save(path)
    return path


def save_trajectory(xs: list[torch.Tensor], x0s: list[torch.Tensor], timesteps: list[float], path: str | Path,
                    columns: int = 8, scale: int = 2) -> Path:
    """A denoising trajectory: for a few samples, x_t (top rows) and the predicted x0 (bottom rows)
    at ``columns`` evenly chosen steps, labelled with their timestep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.unique(np.linspace(0, len(xs) - 1, min(columns, len(xs))).round().astype(int))
    n = xs[0].shape[0]
    fig, axes = plt.subplots(2, len(picks), figsize=(1.6 * len(picks), 1.8 * 2 * max(1, n / 4)), squeeze=False)
    for j, k in enumerate(picks):
        for row, (series, name) in enumerate(((xs, "x_t"), (x0s, "predicted x0"))):
            ax = axes[row, j]
            ax.imshow(image_grid(series[k], nrow=1, pad=1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t={timesteps[k]:.0f}", fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("denoising trajectory: noise (left) to sample (right)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100 * scale // 2)
    plt.close(fig)
    return path


def save_points(samples: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None,
                modes: torch.Tensor | None = None, title: str = "") -> Path:
    """Scatter plot of 2-D samples (and optionally real data and the true mode centres)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if reference is not None:
        ref = reference.cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.3, label="data", color="tab:gray")
    pts = samples.detach().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.6, label="samples", color="tab:blue")
    if modes is not None:
        m = modes.cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], marker="x", s=40, color="tab:red", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
