"""Metrics of single-object moving-fashion clips: frame quality, motion, identity, each beside its floor.

A generated clip can fail in three separate ways, and one number each says how much:

- **frames** (:func:`frame_features`, FID): every frame on its own should look like a real frame.
  Frames of all clips are pooled and scored by the Fréchet distance (Heusel et al. 2017) of the
  in-project Fashion-MNIST feature net (:mod:`twopaths.eval.features`), each frame resized from
  R x R to the net's 28 x 28 (bilinear, antialiased: :func:`twopaths.eval.images.prepare_images`).
- **motion** (:func:`temporal_consistency`): the object's tracked path should be the path of a
  real one, constant velocity with elastic bounces. Per clip, the best such motion is fitted to
  the tracked centres by least squares and the RMS residual is reported in pixels. A real clip
  scores at most about the tracker's own error (0.08 px on the test split, with the fit absorbing
  part of it); a clip whose frames are shuffled, or whose object jumps, scores pixels.
- **identity** (:func:`identity_drift`): the object should stay the same item. The item is cropped
  around its tracked centre in the first and the last frame, both crops are read by the feature
  net, and the distance between the two feature vectors is averaged over clips (the way subject
  fidelity compares embeddings of one subject across images, e.g. DINO and CLIP-I in DreamBooth,
  Ruiz et al. 2023, here between the ends of a clip and with the project's own feature net).

Tracking is done by the shipped :mod:`twopaths.eval.video_tracker` (a real frame within about 0.2
pixel). :func:`video_scores` computes all three for generated clips against real ones and the same
three for *other* real clips, the floor: the best any generator can score at this n with this
tracker and this feature net (as :func:`twopaths.eval.images.evaluate_images` does for images).

The motion fit (:func:`fit_bounce_motion`). The box walls are axis-aligned, so x and y bounce
independently and each axis is fitted on its own: positions ``p_t = fold(a + b t)`` with
:func:`~twopaths.data.video.bounce` folding onto [lo, hi] = [item/2, R - item/2]. ``fold`` is
piecewise linear with slope +1 or -1, so the least-squares problem is a sum of linear problems,
one per assignment of the frames to the pieces. It is solved in two stages: (1) an exhaustive grid
over start ``a`` in [lo, hi] (0.25 px) and velocity ``b`` in [-max_speed, max_speed] (0.125 px per
frame) -- every (a, b) with the start folded into [lo, hi] and both signs of b covers every motion,
and the sum of squares of all grid motions against all clips is one matrix product; (2) from the best
grid point, Gauss-Newton steps: with the pieces fixed the model is linear in (a, b), its Jacobian
``[s_t, s_t t]`` (s_t = +-1 the slope at frame t) gives the normal matrix ``[[T, sum t], [sum t, sum
t^2]]`` whatever the pieces, and a step is kept only when it lowers the sum of squares. The grid is
fine enough in practice for the best grid point to lie in the optimum's basin: true trajectories
are recovered to 1e-6 px, and a Gaussian jitter of sigma per axis leaves sqrt((T - 2) / T) sqrt(2) sigma,
what a two-parameter fit per axis should.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from twopaths.data.video import ITEM_SIZE, MAX_SPEED, bounce, position_range
from twopaths.errors import TwopathsError
from twopaths.eval.features import FeatureNet, extract, load_feature_net
from twopaths.eval.fid import fid_bootstrap_std, fid_from_features
from twopaths.eval.images import prepare_images
from twopaths.eval.video_tracker import VideoTracker, load_video_tracker, track

__all__ = ["VIDEO_METRICS", "clip_motion_residuals", "crop_objects", "fit_bounce_motion", "frame_features",
           "identity_drift", "temporal_consistency", "video_scores"]

#: the names :func:`video_scores` reports, in each of its rows
VIDEO_METRICS: tuple[str, ...] = ("frame_fid", "temporal_consistency_px", "identity_drift")
_GRID_START_STEP = 0.25  # px
_GRID_SPEED_STEP = 0.125  # px per frame
_NEWTON_STEPS = 20
_CHUNK = 512  # clips per grid evaluation


def _check_positions(positions: torch.Tensor) -> torch.Tensor:
    if not isinstance(positions, torch.Tensor) or positions.ndim != 3 or positions.shape[-1] != 2 \
            or positions.shape[1] < 2:
        got = tuple(positions.shape) if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise TwopathsError(f"positions must be (N, T, 2) centres (x, y) of one object per clip with T >= 2, got {got}")
    if not torch.isfinite(positions).all():
        raise TwopathsError("the positions contain NaN or infinite values")
    return positions.double()


def _sum_of_squares(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Per clip, sum over frames of (y - fold(a + b t))^2: y (N, T), a and b (N,) -> (N,)."""
    t = torch.arange(y.shape[1], dtype=y.dtype)
    return (y - bounce(a[:, None] + b[:, None] * t, lo, hi)).square().sum(1)


def fit_bounce_motion(coords: torch.Tensor, lo: float, hi: float, max_speed: float = 2 * MAX_SPEED) \
        -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares constant-velocity-with-bounce motion of one axis (see the module docstring).

    coords (N, T) observed positions -> (start a (N,), velocity b (N,), fitted fold(a + b t) (N, T)),
    float64; the start is an unfolded position in [lo, hi] and |b| <= max_speed (pixels per frame).
    """
    y = coords.double()
    n, t_len = y.shape
    t = torch.arange(t_len, dtype=torch.float64)
    starts = torch.linspace(lo, hi, max(2, round((hi - lo) / _GRID_START_STEP) + 1), dtype=torch.float64)
    speeds = torch.linspace(-max_speed, max_speed, max(3, 2 * round(max_speed / _GRID_SPEED_STEP) + 1),
                            dtype=torch.float64)
    a_grid, b_grid = (g.reshape(-1) for g in torch.meshgrid(starts, speeds, indexing="ij"))  # (G,)
    motions = bounce(a_grid[:, None] + b_grid[:, None] * t, lo, hi)  # (G, T)
    # ||y - m||^2 = ||y||^2 - 2 y.m + ||m||^2: every clip against every grid motion is one product
    best = torch.cat([((motions.square().sum(1)) - 2 * y[i:i + _CHUNK] @ motions.T).argmin(1)
                      for i in range(0, n, _CHUNK)]) if n else torch.zeros(0, dtype=torch.long)
    a, b = a_grid[best], b_grid[best]
    sse = _sum_of_squares(y, a, b, lo, hi)
    normal_inv = torch.linalg.inv(torch.tensor([[t_len, t.sum()], [t.sum(), t.square().sum()]], dtype=torch.float64))
    span = hi - lo
    for _ in range(_NEWTON_STEPS):
        u = a[:, None] + b[:, None] * t  # (N, T) free-flight positions
        slope = torch.where((u - lo) % (2 * span) < span, 1.0, -1.0).double()  # (N, T): d fold / du
        residual = y - bounce(u, lo, hi)
        grad = torch.stack([(slope * residual).sum(1), (slope * residual * t).sum(1)], 1)  # (N, 2) = J^T r
        step = grad @ normal_inv.T  # (N, 2): the Gauss-Newton step, J^T J the same for every clip
        new_a, new_b = a + step[:, 0], (b + step[:, 1]).clamp(-max_speed, max_speed)
        new_sse = _sum_of_squares(y, new_a, new_b, lo, hi)
        better = new_sse < sse
        if not better.any():
            break
        a, b, sse = torch.where(better, new_a, a), torch.where(better, new_b, b), torch.where(better, new_sse, sse)
    return a, b, bounce(a[:, None] + b[:, None] * t, lo, hi)


def clip_motion_residuals(positions: torch.Tensor, image_size: int, item_size: int = ITEM_SIZE,
                          max_speed: float = 2 * MAX_SPEED) -> torch.Tensor:
    """Per clip, the RMS over frames of the Euclidean distance between the centres ``positions``
    (N, T, 2) and the best constant-velocity-with-bounce motion (:func:`fit_bounce_motion` per axis,
    the centre's reachable interval [item/2, image_size - item/2]) -> (N,) pixels, float32."""
    p = _check_positions(positions)
    lo, hi = position_range(image_size, item_size)
    fitted = torch.stack([fit_bounce_motion(p[..., axis], lo, hi, max_speed)[2] for axis in (0, 1)], -1)  # (N, T, 2)
    return (p - fitted).square().sum(-1).mean(1).sqrt().float()


def temporal_consistency(positions: torch.Tensor, image_size: int, item_size: int = ITEM_SIZE,
                         max_speed: float = 2 * MAX_SPEED) -> float:
    """Mean over clips of :func:`clip_motion_residuals`: how far, in pixels (RMS over frames), the
    tracked centres (N, T, 2) of each clip are from the best constant-velocity motion with bounces.
    About 0 for true trajectories, about the tracker's error for tracked real clips; per-axis
    speeds above ``max_speed`` pixels per frame (default twice the dataset's fastest) are not fitted."""
    return float(clip_motion_residuals(positions, image_size, item_size, max_speed).mean())


def crop_objects(frames: torch.Tensor, centres: torch.Tensor, item_size: int = ITEM_SIZE,
                 out_size: int = 28) -> torch.Tensor:
    """The item_size x item_size window around each centre, bilinearly sampled at sub-pixel positions
    (the black background beyond the walls), then resized to out_size (bilinear):
    frames (M, 1, R, R) in [-1, 1], centres (M, 2) (x, y) in pixels -> (M, 1, out_size, out_size)."""
    m, _, h, w = frames.shape
    offsets = torch.arange(item_size, dtype=torch.float32) + 0.5 - item_size / 2  # (S,) pixel centres, from the middle
    xs = centres[:, 0, None].float() + offsets  # (M, S) canvas x of each crop column
    ys = centres[:, 1, None].float() + offsets  # (M, S)
    # grid_sample with align_corners=False: -1 is the canvas' left/top edge (0 px), +1 its right/bottom edge
    grid = torch.stack([(2 * xs / w - 1)[:, None, :].expand(m, item_size, item_size),
                        (2 * ys / h - 1)[:, :, None].expand(m, item_size, item_size)], -1)  # (M, S, S, 2)
    crops = F.grid_sample(frames.float() + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    return F.interpolate(crops, size=(out_size, out_size), mode="bilinear", align_corners=False)


def _check_clips(clips: torch.Tensor, what: str = "clips") -> None:
    if not isinstance(clips, torch.Tensor) or clips.ndim != 5 or clips.shape[2] != 1 or clips.shape[1] < 2:
        got = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise TwopathsError(f"{what} must be grey clips (N, T, 1, R, R) with T >= 2, got {got}")


@torch.no_grad()
def identity_drift(clips: torch.Tensor, positions: torch.Tensor, feature_net: FeatureNet | None = None,
                   item_size: int = ITEM_SIZE, batch_size: int = 500) -> float:
    """Mean over clips of the L2 distance between the feature-net features (the Fashion-MNIST net by
    default) of the object cropped around its centre in the first and in the last frame.

    clips (N, T, 1, R, R) in [-1, 1]; positions (N, T, 2): the object's centres (tracked, or true).
    Compare with the same number for real clips: a real item keeps its looks, so only resampling
    and tracking make its two crops differ.
    """
    _check_clips(clips)
    positions = _check_positions(positions)
    if positions.shape[:2] != clips.shape[:2]:
        raise TwopathsError(f"positions {tuple(positions.shape)} do not fit clips {tuple(clips.shape)}")
    net = load_feature_net("fashion-mnist") if feature_net is None else feature_net
    r = net.arch["resolution"]
    first = crop_objects(clips[:, 0], positions[:, 0], item_size, r)  # (N, 1, r, r)
    last = crop_objects(clips[:, -1], positions[:, -1], item_size, r)
    f0 = extract(net, first, batch_size, progress=False)  # (N, D)
    f1 = extract(net, last, batch_size, progress=False)
    return float((f0 - f1).norm(dim=-1).mean())


def frame_features(clips: torch.Tensor, feature_net: FeatureNet, batch_size: int = 500,
                   progress: bool = False) -> torch.Tensor:
    """Features of every frame: clips (N, T, 1, R, R) in [-1, 1] -> (N T, D), frames resized to the net's input."""
    _check_clips(clips)
    return extract(feature_net, prepare_images(clips.flatten(0, 1), feature_net), batch_size, progress=progress)


def _row(clips: torch.Tensor, f_real: torch.Tensor, tracker: VideoTracker, net: FeatureNet, batch_size: int,
         progress: bool, fid_rounds: int = 0) -> dict[str, float]:
    positions = track(clips, tracker, batch_size)  # (N, T, 2)
    features = frame_features(clips, net, batch_size, progress)  # (N T, D)
    residuals = clip_motion_residuals(positions, clips.shape[-1])  # (N,)
    out = {"frame_fid": fid_from_features(features, f_real),
           "temporal_consistency_px": float(residuals.mean()),
           "temporal_consistency_se": float(residuals.std() / len(residuals) ** 0.5) if len(residuals) > 1 else 0.0,
           "identity_drift": identity_drift(clips, positions, net, batch_size=batch_size)}
    if fid_rounds:  # the spread of the frame FID over clips resampled with their frames (a block bootstrap)
        out["frame_fid_std"] = fid_bootstrap_std(features, f_real, fid_rounds, group=clips.shape[1])
    return out


def _floor_clips(n: int, frames: int, resolution: int) -> torch.Tensor:
    """n real single-object clips from the moving-fashion train split (Fashion-MNIST train items)."""
    from twopaths.config import DataConfig
    from twopaths.data.registry import load_splits

    cfg = DataConfig(name="moving-fashion", size=n, frames=frames, resolution=resolution, objects=1)
    return load_splits(cfg).train.video


def video_scores(clips: torch.Tensor | None, real_clips: torch.Tensor, floor_clips: torch.Tensor | None = None, *,
                 tracker: VideoTracker | None = None, feature_net: FeatureNet | None = None, batch_size: int = 500,
                 progress: bool = False, fid_rounds: int = 0) -> dict[str, Any]:
    """Score generated single-object ``clips`` against ``real_clips``, and other real clips the same
    way as the floor.

    All are float (N, T, 1, R, R) in [-1, 1] with the same N, T and R (the FID floor is a floor only
    at equal n); ``real_clips`` is the reference (e.g. the moving-fashion test split), ``floor_clips``
    defaults to N clips of the moving-fashion train split made at this T and R. ``clips=None`` gives
    the floor alone. Returns ``{"n", "frames", "tracker", "feature_net", "metrics": {...}, "floor":
    {...}}`` where each row holds ``frame_fid`` (frames pooled, N T of them, against the real clips'
    frames), ``temporal_consistency_px`` (:func:`temporal_consistency` of the tracked centres) and
    ``identity_drift`` (:func:`identity_drift` at the tracked centres), with ``temporal_consistency_se`` (the
    standard error of the per-clip residuals) and, for ``fid_rounds`` > 0, ``frame_fid_std`` (the generated
    clips' block-bootstrap spread of the frame FID).
    """
    _check_clips(real_clips, "real_clips")
    n, t, _, r, _ = real_clips.shape
    floor_clips = _floor_clips(n, t, r) if floor_clips is None else floor_clips
    for name, x in (("clips", clips), ("floor_clips", floor_clips)):
        if x is None:
            continue
        _check_clips(x, name)
        if tuple(x.shape) != tuple(real_clips.shape):
            raise TwopathsError(f"{name} {tuple(x.shape)} and real_clips {tuple(real_clips.shape)} must have the same "
                                f"shape (the floor is a floor only at equal n)")
    tracker = load_video_tracker() if tracker is None else tracker
    net = load_feature_net("fashion-mnist") if feature_net is None else feature_net
    f_real = frame_features(real_clips, net, batch_size, progress)  # (N T, D)
    out: dict[str, Any] = {"n": n, "frames": n * t, "tracker": tracker.identity, "feature_net": net.identity}
    if clips is not None:
        out["metrics"] = _row(clips, f_real, tracker, net, batch_size, progress, fid_rounds)
    out["floor"] = _row(floor_clips, f_real, tracker, net, batch_size, progress)
    return out
