"""A position tracker for single-object moving-fashion frames: where is the item's centre?

Temporal metrics of generated video (:mod:`twopaths.eval.video`) need the object's path through a
clip, and a generated clip has no recorded trajectory, so a network reads it back frame by frame:
one grey frame ``(1, R, R)`` -> the centre ``(x, y)`` of the item's 12x12 box in pixels (the
convention of :mod:`twopaths.data.video`: x to the right, y downwards, the canvas spans [0, R]).

Network: a fully convolutional heat-map net read out by a differentiable spatial soft-argmax,
DSNT (Nibali et al. 2018, "Numerical Coordinate Regression with Convolutional Neural Networks";
the spatial soft-argmax of Levine et al. 2016, sec. 4.1): a conv3x3 stem at full resolution, one
stride-2 conv3x3 to a grid of 2x2-pixel cells, ``len(dilations)`` dilated conv3x3 layers (Yu &
Koltun 2016) that widen the receptive field to about 30 pixels (an item is 12) without pooling,
and a 1x1 conv to one logit per cell. The softmax of the logits is a distribution over the
cells, and the centre is its mean over the cells' centres:

    p = softmax(logits)   (R/2 x R/2)      x = sum_ij p_ij (2 j + 1),   y = sum_ij p_ij (2 i + 1)

so the output is sub-pixel, translation-equivariant up to the border, and trained directly on the
distance to the true centre (:meth:`VideoTracker.loss`, the mean Euclidean error in pixels). The
input is shifted from [-1, 1] to [0, 2] so that the black background is 0, the value the
convolutions' zero padding puts beyond the walls.

Weights ship like the feature networks (:mod:`twopaths.eval.features`): ``video-tracker
.safetensors`` and a JSON card (arch, test error in pixels, recipe, date, torch version, SHA-256)
in ``eval/weights``, made by ``scripts/train_video_tracker.py``; the hash is checked on load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from twopaths.errors import TwopathsError
from twopaths.eval.features import load_verified

__all__ = ["SHIPPED_TRACKER", "VideoTracker", "load_video_tracker", "track", "tracking_error"]

#: the tracker that ships with the package (``eval/weights/video-tracker.safetensors`` + ``.json``)
SHIPPED_TRACKER = "video-tracker"
_WHERE = {"shipped": (SHIPPED_TRACKER,), "kind": "video tracker", "script": "scripts/train_video_tracker.py"}


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class VideoTracker(nn.Module):
    """Frames (N, 1, R, R) in [-1, 1] -> centres (N, 2) = (x, y) in pixels (see the module docstring).

    Any even R works (the net is fully convolutional); the shipped weights are measured at R = 32.
    BatchNorm (Ioffe & Szegedy 2015) makes training quick; in :meth:`eval` mode the tracker is a
    fixed deterministic function, as a metric must be.
    """

    def __init__(self, stem: int = 16, width: int = 32, dilations: Sequence[int] = (2, 4)) -> None:
        super().__init__()
        # constructor arguments, saved in the card so the weights can be rebuilt
        self.arch = {"stem": stem, "width": width, "dilations": list(dilations)}
        layers = _conv(1, stem) + _conv(stem, width, stride=2)  # (N, width, R/2, R/2)
        for d in dilations:
            layers += _conv(width, width, dilation=d)
        self.body = nn.Sequential(*layers)
        self.heat = nn.Conv2d(width, 1, 1)  # one logit per 2x2-pixel cell
        self.identity = "VideoTracker (untrained)"  # set by load_video_tracker

    def heatmap(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, R, R) in [-1, 1] -> (N, R/2, R/2) probabilities of the centre's cell (each map sums to 1)."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3] or x.shape[-1] % 2:
            raise TwopathsError(f"video tracker {self.identity} takes grey square frames (N, 1, R, R) with R even, "
                                f"got {tuple(x.shape)}")
        logits = self.heat(self.body(x + 1.0))[:, 0]  # (N, R/2, R/2); background 0 like the zero padding
        return logits.flatten(1).softmax(-1).view_as(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, R, R) in [-1, 1] -> (N, 2) centres (x, y) in pixels."""
        p = self.heatmap(x)  # (N, G, G), G = R/2
        centres = 2.0 * torch.arange(p.shape[-1], device=x.device, dtype=p.dtype) + 1.0  # (G,) cell centres, px
        cx = (p.sum(1) * centres).sum(-1)  # (N,): marginal over columns
        cy = (p.sum(2) * centres).sum(-1)  # (N,): marginal over rows
        return torch.stack([cx, cy], dim=-1)

    def loss(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Mean Euclidean distance in pixels between the read centres of frames x (N, 1, R, R) and the
        true ``centres`` (N, 2)."""
        return (self(x) - centres).square().sum(-1).add(1e-8).sqrt().mean()


def _as_frames(video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Clips (N, T, 1, R, R) or frames (N, 1, R, R), float in [-1, 1] -> frames (M, 1, R, R) and the
    leading shape to give the centres back in ((N, T) or (N,))."""
    if not isinstance(video, torch.Tensor) or video.ndim not in (4, 5) or video.shape[-3] != 1:
        got = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise TwopathsError(f"the tracker reads grey clips (N, T, 1, R, R) or frames (N, 1, R, R), got {got}")
    if not video.is_floating_point():
        raise TwopathsError(f"the clips are {video.dtype}; the tracker takes floats in [-1, 1]")
    if not torch.isfinite(video).all():
        raise TwopathsError("the clips to track contain NaN or infinite values")
    lead = tuple(video.shape[:-3])
    return video.reshape(-1, *video.shape[-3:]).float().clamp(-1.0, 1.0), lead


@torch.no_grad()
def track(video: torch.Tensor, tracker: VideoTracker | None = None, batch_size: int = 1000) -> torch.Tensor:
    """The object's centre in every frame: clips (N, T, 1, R, R) -> (N, T, 2), or frames (N, 1, R, R)
    -> (N, 2); (x, y) in pixels, float32 on the CPU. ``tracker`` defaults to the shipped one."""
    tracker = load_video_tracker() if tracker is None else tracker
    tracker.eval()
    device = next(tracker.parameters()).device
    frames, lead = _as_frames(video)
    if len(frames) == 0:
        raise TwopathsError("no frames to track")
    out = torch.cat([tracker(frames[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(frames), batch_size)])
    return out.view(*lead, 2)


def tracking_error(predicted: torch.Tensor, true: torch.Tensor) -> float:
    """Mean Euclidean distance in pixels between read and true centres (..., 2)."""
    return float((predicted - true).norm(dim=-1).mean())


def load_video_tracker(name_or_path: str | Path = SHIPPED_TRACKER, device: torch.device | str = "cpu") -> VideoTracker:
    """A trained :class:`VideoTracker` in eval mode: the shipped one (``"video-tracker"``) or a
    ``.safetensors`` file with a ``.json`` card beside it. The weights' SHA-256 must match the card.
    ``tracker.identity`` reads e.g. ``"video-tracker@1a2b3c4d (test error 0.31 px)"``.
    """
    tracker, name, digest = load_verified(name_or_path, lambda arch: VideoTracker(**arch), **_WHERE)
    error = tracker.card.get("test_error_px")
    tracker.identity = f"{name}@{digest[:8]}" + (f" (test error {error:.2f} px)" if error is not None else "")
    return tracker.to(device)

