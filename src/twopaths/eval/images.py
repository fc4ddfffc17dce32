"""Every sample-based image metric from one feature pass, always beside its real-vs-real floor.

FID and friends are biased at finite n and meaningful only relative to a reference, so
:func:`evaluate_images` computes each metric twice with the same feature network and the same
n: generated images against ``real_eval`` (n images of the test split), and ``real_floor``
(n *other* real images, from the train split) against the same ``real_eval``. The second number
is the best any generator can score at this n (Heusel et al. 2017 note FID's bias; Chong &
Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them", quantify it).

Metric groups (``metrics=``):

=========  ==================================================================================
fid        Fréchet distance of feature Gaussians (:mod:`twopaths.eval.fid`)
kid        kernel inception distance, mean and std over subsets
pr         precision, recall (k = 3) and density, coverage (k = 5)
           (:mod:`twopaths.eval.precision_recall`)
classes    predicted-class entropy (normalised to [0, 1]) and the classifier Inception Score
=========  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from twopaths.errors import TwopathsError
from twopaths.eval.features import FeatureNet, extract
from twopaths.eval.fid import fid_bootstrap_std, fid_from_features, kid
from twopaths.eval.precision_recall import class_statistics, knn_radii, manifold_metrics

__all__ = ["IMAGE_METRICS", "evaluate_images", "prepare_images", "sample_model"]

IMAGE_METRICS: tuple[str, ...] = ("fid", "kid", "pr", "classes")


def prepare_images(images: torch.Tensor, net: FeatureNet) -> torch.Tensor:
    """Check and adapt (N, C, H, W) float images in [-1, 1] for ``net``; resize bilinearly (with
    antialiasing) to the net's resolution if it differs.

    Images in another convention are refused, not clamped: integers (0..255), values outside [-1, 1],
    or a set that never goes below 0 (0..1 images, which would score as a washed-out data set).
    """
    images = torch.as_tensor(images)
    c, r = net.arch["in_channels"], net.arch["resolution"]
    if images.ndim != 4 or images.shape[1] != c:
        raise TwopathsError(f"feature net {net.identity} takes {c}-channel images (N, {c}, H, W), "
                            f"got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TwopathsError(f"the images are {images.dtype}; the evaluator takes floats in [-1, 1] "
                            f"(from 0..255 integers: x / 127.5 - 1)")
    if not torch.isfinite(images).all():
        raise TwopathsError("the images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 or hi > 1.0:
        raise TwopathsError(f"the images range over [{lo:.4g}, {hi:.4g}]; the evaluator takes [-1, 1]"
                            + (" (from 0..255: x / 127.5 - 1)" if hi > 2 else " (clamp a sampler's overshoot first)"))
    if lo >= 0.0 and len(images) > 1:
        raise TwopathsError(f"the images range over [{lo:.4g}, {hi:.4g}], never below 0: images in [0, 1]? "
                            f"the evaluator takes [-1, 1] (x * 2 - 1)")
    images = images.float()
    if tuple(images.shape[2:]) != (r, r):
        images = F.interpolate(images, size=(r, r), mode="bilinear", antialias=True, align_corners=False)
    return images


def _features(images: torch.Tensor, net: FeatureNet, batch_size: int, progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return extract(net, prepare_images(images, net), batch_size, with_logits=True, progress=progress)


def evaluate_images(fake: torch.Tensor | None, real_eval: torch.Tensor, real_floor: torch.Tensor, net: FeatureNet,
                    metrics: Sequence[str] = IMAGE_METRICS, batch_size: int = 500, kid_subsets: int = 100,
                    kid_subset_size: int = 1000, k_pr: int = 3, k_dc: int = 5,
                    progress: bool = True, fid_rounds: int = 0) -> dict[str, Any]:
    """Score ``fake`` images against ``real_eval``, and ``real_floor`` against ``real_eval`` as the floor.

    All three are (n, C, H, W) in [-1, 1] with the same n (the floor is only a floor at equal n);
    ``fake=None`` computes the floor alone. Returns ``{"n", "feature_net", "metrics": {name: value},
    "floor": {name: value}, "class_histogram", "real_class_histogram"}``; metric names are ``fid``,
    ``kid``, ``kid_std``, ``precision``, ``recall``, ``density``, ``coverage``,
    ``class_entropy_norm`` and ``inception_score``; with ``fid_rounds`` > 1 also ``fid_std``, the
    bootstrap spread of the FID (:func:`twopaths.eval.fid.fid_bootstrap_std`).
    """
    unknown = sorted(set(metrics) - set(IMAGE_METRICS))
    if unknown:
        raise TwopathsError(f"unknown image metric(s) {', '.join(unknown)}; available: {', '.join(IMAGE_METRICS)}")
    n = len(real_eval)
    if len(real_floor) != n or (fake is not None and len(fake) != n):
        raise TwopathsError(f"fake, real_eval and real_floor must hold the same number of images (the floor is "
                            f"a floor only at equal n), got {None if fake is None else len(fake)}, {n}, "
                            f"{len(real_floor)}")
    f_real, _ = _features(real_eval, net, batch_size, progress)  # (n, D)
    f_floor, l_floor = _features(real_floor, net, batch_size, progress)  # (n, D), (n, classes)
    rows = {"floor": (f_floor, l_floor)}
    if fake is not None:
        rows["metrics"] = _features(fake, net, batch_size, progress)

    out: dict[str, Any] = {"n": n, "feature_net": net.identity, "metrics": {}, "floor": {}}
    radii = knn_radii(f_real, (k_pr, k_dc)) if "pr" in metrics else None  # shared by both rows
    for row, (f, logits) in rows.items():
        values = out[row]
        if "fid" in metrics:
            values["fid"] = fid_from_features(f, f_real)
            if fid_rounds > 1:
                values["fid_std"] = fid_bootstrap_std(f, f_real, fid_rounds)
        if "kid" in metrics:
            values["kid"], values["kid_std"] = kid(f, f_real, kid_subsets, kid_subset_size)
        if "pr" in metrics:
            values.update(manifold_metrics(f_real, f, k_pr, k_dc, radii))
        if "classes" in metrics:
            stats = class_statistics(logits)
            values["class_entropy_norm"], values["inception_score"] = stats["class_entropy_norm"], stats["inception_score"]
            out["class_histogram" if row == "metrics" else "real_class_histogram"] = stats["histogram"]
    return out


def balanced_labels(model: Any, n: int) -> torch.Tensor | None:
    """The classes :func:`sample_model` asks a class-conditional model for, every class in turn (so the
    class histogram matches a balanced test split); None for an unconditional model."""
    classes = int(getattr(model, "num_classes", 0) or 0)
    return torch.arange(n) % classes if classes else None


@torch.no_grad()
def sample_model(model: Any, n: int, batch_size: int = 500, sampler: str | None = None, steps: int | None = None,
                 guidance: float = 1.0, seed: int = 0, progress: bool = True, spacing: str = "leading",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` samples from a trained model, in batches, with a progress bar; (n, ...) on the CPU.

    Diffusion models (:class:`~twopaths.paradigms.gaussian.GaussianDiffusion`, and
    :class:`~twopaths.paradigms.latent.LatentDiffusion` and
    :class:`~twopaths.paradigms.frame_autoregressive.FrameAutoregressive` with its signature) take the
    sampler, steps and guidance; every model takes ``model.sample(b, cond=labels, generator=...)`` (the paradigm contract).
    Class-conditional models get every class in turn, so the class histogram matches a balanced
    test split. One generator seeded with ``seed`` (or the given ``generator``) drives every batch:
    same seed, same samples. ``spacing`` places a diffusion sampler's steps among the timesteps.
    """
    from tqdm.auto import tqdm

    from twopaths.paradigms.frame_autoregressive import FrameAutoregressive
    from twopaths.paradigms.gaussian import GaussianDiffusion
    from twopaths.paradigms.latent import LatentDiffusion

    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    labels = balanced_labels(model, n)
    out = []
    with tqdm(total=n, desc="sampling", unit="sample", disable=not progress, leave=False) as bar:
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            y = labels[i:i + b] if labels is not None else None
            diffusion = dict(sampler=sampler, steps=steps, guidance=guidance, spacing=spacing) \
                if isinstance(model, (GaussianDiffusion, LatentDiffusion, FrameAutoregressive)) else {}
            x = model.sample(b, cond=y, generator=gen, **diffusion)
            x = torch.as_tensor(x).float().cpu()
            # an image or a clip holds [-1, 1], as its PNG; points (n, 2) are data coordinates and keep their values
            out.append(x.clamp(-1.0, 1.0) if x.ndim in (4, 5) else x)
            bar.update(b)
    return torch.cat(out)
