"""Image files and pictures: reading images and masks, writing images, sample grids, denoising
trajectories, point clouds and confusion matrices.

Images are expected in [-1, 1] as (N, C, H, W) tensors (one image: (C, H, W)). Image files are read
with Pillow. Masks follow image editors: **white = the region to fill**, black = keep; :func:`read_mask`
returns the keep-mask of :func:`~twopaths.restore.inpaint.inpaint` (1 = keep).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from twopaths.errors import DataError, TwopathsError


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


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating folders) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


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
    return save_figure(fig, path, dpi=100 * scale // 2)


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
    return save_figure(fig, path, dpi=120)


# ----------------------------------------------------------------------------- image files


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as float32 (channels, H, W) in [-1, 1]: grey (L) for 1 channel, RGB for 3;
    transparent pixels are composited onto black (the background of the training data)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                img.alpha_composite(rgba)
            arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(np.ascontiguousarray(arr)) / 127.5 - 1


def check_image_size(image: torch.Tensor, path: str | Path, size: int, what: str) -> None:
    """A clear error unless ``image`` (read from ``path``) is ``size`` x ``size`` pixels; ``what`` takes it."""
    h, w = image.shape[-2:]
    if (h, w) != (size, size):
        raise DataError(f"{path} is {w}x{h} pixels; {what} takes {size}x{size} images (resize it first)")


def read_mask(path: str | Path, size: int) -> torch.Tensor:
    """A mask file as the keep-mask (1, H, W): **white (>= 128 grey) = fill** -> 0, darker = keep -> 1."""
    grey = read_image(path, 1)  # (1, H, W) in [-1, 1]; 128 -> ~0.004
    h, w = grey.shape[-2:]
    if (h, w) != (size, size):
        raise DataError(f"mask {path} is {w}x{h} pixels but the image is {size}x{size}; they must match")
    return (grey < 0).float()


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """One (C, H, W) image in [-1, 1] as a PNG at its own resolution (no padding, no scaling)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image_grid(image[None], nrow=1, pad=0)
    Image.fromarray(arr[..., 0] if image.shape[0] == 1 else arr).save(path)
    return path


# ----------------------------------------------------------------------------- samples, grids, figures


def write_samples(samples: torch.Tensor, labels: torch.Tensor | None, out: Path, meta: dict[str, Any],
                  nrow: int | None = None) -> Path:
    """PNG (a grid for images, a scatter plot for points) or NPZ arrays, chosen by the suffix."""
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"samples": samples.cpu().numpy().astype(np.float32)}
        if labels is not None:
            arrays["labels"] = labels.cpu().numpy()
        np.savez_compressed(out, **arrays)
        return out
    if out.suffix != ".png":
        raise TwopathsError(f"--out must end in .png (a picture) or .npz (arrays), got {out}")
    if samples.ndim == 2:
        modes = meta.get("modes")
        return save_points(samples, out, modes=modes, title=f"{len(samples)} samples")
    return save_grid(samples, out, nrow=nrow)


def write_captions(prompts: list[str], out: Path) -> Path:
    """The samples' captions beside their grid or arrays (``grid.png`` -> ``grid.txt``), one per line in order."""
    path = out.with_suffix(".txt")
    path.write_text("".join(p + "\n" for p in prompts), encoding="utf-8")
    return path


def side_by_side(originals: torch.Tensor, reconstructions: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Interleave rows of ``nrow`` originals with the rows of their reconstructions, for one grid:
    (N, C, H, W) twice -> (2N', C, H, W), N' = N rounded up to a whole row (blank images pad)."""
    n = originals.shape[0]
    pad = (-n) % nrow
    if pad:
        blank = torch.full((pad, *originals.shape[1:]), -1.0)
        originals, reconstructions = torch.cat([originals, blank]), torch.cat([reconstructions, blank])
    rows = [t.view(-1, nrow, *t.shape[1:]) for t in (originals.cpu(), reconstructions.cpu())]  # (rows, nrow, ...)
    return torch.stack(rows, dim=1).reshape(-1, *originals.shape[1:])  # original row, its reconstruction row, ...


def save_confusion(counts: torch.Tensor, class_names: list[str], path: Path, title: str) -> Path:
    """A confusion-matrix PNG: rows the true class, columns the predicted one, each row as fractions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = counts.float() / counts.sum(1, keepdim=True).clamp(min=1).float()  # (K, K): each row sums to 1
    K = len(class_names)
    fig, ax = plt.subplots(figsize=(0.55 * K + 2.5, 0.55 * K + 1.8))
    ax.imshow(rows.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(K):
        for j in range(K):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=6,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(K), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(K), class_names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=8)
    return save_figure(fig, path, dpi=110)


def log_spectrogram(clip: torch.Tensor, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """log(1 + |STFT|) of a mono clip (L,) or (1, L) with a Hann window: (n_fft // 2 + 1, frames)."""
    x = clip.detach().float().reshape(-1).cpu()
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return torch.log1p(spec)


def save_spectrograms(clips: torch.Tensor, path: str | Path, rate: int, titles: list[str] | None = None,
                      ncol: int = 4) -> Path:
    """One log-magnitude spectrogram per clip of (N, 1, L), in a grid with frequency up to rate/2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(clips)
    ncol = min(ncol, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.0 * nrow), squeeze=False)
    seconds = clips.shape[-1] / rate
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(log_spectrogram(clips[i]).numpy(), origin="lower", aspect="auto", cmap="magma",
                      extent=(0, seconds, 0, rate / 2000))
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.suptitle(f"log spectrograms (0-{rate / 2000:g} kHz, {seconds:g} s)", fontsize=9)
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- video clips

#: the colour of the border around given (context) frames in a clip strip
CONTEXT_COLOUR = (0, 160, 0)


def clip_strip(clips: torch.Tensor, context: int = 0, pad: int = 2, scale: int = 2) -> np.ndarray:
    """Clips (N, T, C, H, W) in [-1, 1] -> one (rows, cols, 3) uint8 picture: a row per clip, a column
    per frame, white gaps, and the first ``context`` frames of each row framed in :data:`CONTEXT_COLOUR`."""
    n, t, _, h, w = clips.shape
    grid = image_grid(clips.flatten(0, 1), nrow=t, pad=pad)  # (n (h + pad) + pad, t (w + pad) + pad, 3)
    for col in range(min(context, t)):  # colour the gap around each given frame
        x = col * (w + pad)
        for row in range(n):
            y = row * (h + pad)
            cell = grid[y:y + h + 2 * pad, x:x + w + 2 * pad]
            inner = cell[pad:pad + h, pad:pad + w].copy()
            cell[:] = CONTEXT_COLOUR
            cell[pad:pad + h, pad:pad + w] = inner
    return grid.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else grid


def save_clips(clips: torch.Tensor, path: str | Path, *, context: int = 0, scale: int = 4,
               fps: float = 4.0) -> list[Path]:
    """Write video clips (N, T, C, H, W) in [-1, 1]: ``X.gif`` gives an animated GIF (the N clips side by
    side, each frame ``scale`` times larger, looping at ``fps`` frames per second) and the frame strip
    ``X.png`` beside it (:func:`clip_strip`); ``X.png`` gives the strip alone. ``context``: the first frames
    are given, not generated (framed in green in the strip, white in the GIF). Returns the files written."""
    path = Path(path)
    if path.suffix not in (".gif", ".png"):
        raise TwopathsError(f"video clips are written as .gif (animation + frame strip) or .png (frame strip), "
                            f"not {path.name}")
    if clips.ndim != 5:
        raise TwopathsError(f"clips must be (N, T, C, H, W), got {tuple(clips.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    strip = path.with_suffix(".png")
    Image.fromarray(clip_strip(clips, context, scale=max(1, scale // 2))).save(strip)
    if path.suffix == ".png":
        return [strip]
    n, t, c = clips.shape[:3]
    pictures = []
    for f in range(t):  # one GIF frame: frame f of every clip in a row, white gaps for given frames
        row = image_grid(clips[:, f], nrow=n, pad=2, scale=scale)  # (H', W', 3), white gaps
        if f >= context:  # a generated frame: grey gaps
            row[_gap_mask(row.shape[:2], n, clips.shape[-2:], 2 * scale, scale)] = 96
        pictures.append(Image.fromarray(row[..., 0] if c == 1 else row))
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
    return [path, strip]


def _gap_mask(shape: tuple[int, int], n: int, size: tuple[int, int], pad: int, scale: int) -> np.ndarray:
    """True on the gaps between the n pictures of one :func:`image_grid` row (scaled), False on the pictures."""
    mask = np.ones(shape, dtype=bool)
    h, w = size[0] * scale, size[1] * scale
    for i in range(n):
        x = pad + i * (w + pad)
        mask[pad:pad + h, x:x + w] = False
    return mask
