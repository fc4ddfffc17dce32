"""Fidelity and diversity as separate numbers: precision, recall, density, coverage, class statistics.

FID mixes "are the samples realistic?" with "do they cover the data?". These metrics separate them:

- **Improved precision and recall** (Kynkäänniemi et al. 2019, "Improved Precision and Recall
  Metric for Assessing Generative Models", eqs. 1-3): each set's manifold is the union of balls
  around its points, with radius the distance to the k-th nearest neighbour in the same set
  (k = 3). Precision = fraction of fakes inside the real manifold; recall = fraction of reals
  inside the fake manifold. Mode collapse lowers recall; blur or noise lowers precision (up to
  a point: very noisy images can collapse into one dense blob of features that falls inside a
  few outlier-inflated real balls, and precision rises again; density does not).
- **Density and coverage** (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models", eqs. 3-4; k = 5): density = (1 / kM) sum_j sum_i 1[fake_j in B(real_i,
  r_i)], which counts how many real balls hold each fake (robust to real outliers, can exceed 1);
  coverage = fraction of real points whose ball holds at least one fake.
- **Class statistics**: the histogram of a classifier's predicted classes, its entropy, and the
  Inception Score analogue exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, sec. 4), with the
  in-project feature network as the classifier.

Distances are computed in row chunks (squared Euclidean through one matrix product per chunk),
so 10k x 10k feature sets need ~40 MB at a time and no N x N matrix is ever stored.
"""

from __future__ import annotations

import math

import torch

from twopaths.errors import TwopathsError

__all__ = ["class_statistics", "knn_radii", "manifold_metrics", "precision_recall"]

_CHUNK = 1024  # rows of the distance matrix held at once


def _sq_dists(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (A, B) between rows of a (A, D) and b (B, D); b_sq = |b|^2 (B,)."""
    d2 = (a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * (a @ b.T)  # (A, B)
    return d2.clamp_min_(0.0)


def _check(*sets: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.as_tensor(s).float().cpu() for s in sets]
    if any(s.ndim != 2 for s in out) or len({s.shape[1] for s in out}) != 1:
        raise TwopathsError(f"need (N, D) feature sets of one D, got {[tuple(s.shape) for s in out]}")
    return out


def knn_radii(features: torch.Tensor, ks: tuple[int, ...] = (3,)) -> dict[int, torch.Tensor]:
    """Squared distance from each point to its k-th nearest neighbour in the same set (itself
    excluded), for every k in ``ks``: ``{k: (N,)}``."""
    (f,) = _check(features)
    kmax = max(ks)
    if len(f) <= kmax:
        raise TwopathsError(f"k-NN radii with k = {kmax} need more than {kmax} points, got {len(f)}")
    f_sq = (f * f).sum(1)  # (N,)
    kth = []
    for i in range(0, len(f), _CHUNK):
        d2 = _sq_dists(f[i:i + _CHUNK], f, f_sq)  # (c, N)
        rows = torch.arange(i, min(i + _CHUNK, len(f)))
        d2[rows - i, rows] = float("inf")  # exclude the point itself (round-off leaves it near, not at, 0)
        kth.append(torch.topk(d2, kmax, dim=1, largest=False).values)  # (c, kmax), ascending
    nearest = torch.cat(kth)  # (N, kmax)
    return {k: nearest[:, k - 1] for k in ks}


def manifold_metrics(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5,
                     real_radii: dict[int, torch.Tensor] | None = None) -> dict[str, float]:
    """Precision and recall (k = ``k_pr``) and density and coverage (k = ``k_dc``) of ``fake``
    (M, D) against ``real`` (N, D), in one chunked pass over the fake-real distances.

    ``real_radii`` (from :func:`knn_radii` with both ks) may be passed to reuse them across calls.
    """
    real, fake = _check(real, fake)
    r_real = real_radii or knn_radii(real, (k_pr, k_dc))  # {k: (N,)} squared radii
    r_fake = knn_radii(fake, (k_pr,))[k_pr]  # (M,)
    real_sq = (real * real).sum(1)  # (N,)
    inside_real = 0  # fakes inside the real manifold (precision)
    in_balls = 0  # sum over fakes of the number of real k_dc-balls holding them (density)
    recalled = torch.zeros(len(real), dtype=torch.bool)  # reals inside the fake manifold
    nearest_fake = torch.full((len(real),), float("inf"))  # (N,) squared distance to the closest fake
    for i in range(0, len(fake), _CHUNK):
        d2 = _sq_dists(fake[i:i + _CHUNK], real, real_sq)  # (c, N)
        inside_real += int((d2 <= r_real[k_pr][None, :]).any(1).sum())
        in_balls += int((d2 <= r_real[k_dc][None, :]).sum())
        recalled |= (d2 <= r_fake[i:i + _CHUNK, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d2.min(0).values)
    return {"precision": inside_real / len(fake), "recall": int(recalled.sum()) / len(real),
            "density": in_balls / (k_dc * len(fake)),
            "coverage": int((nearest_fake <= r_real[k_dc]).sum()) / len(real)}


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real``."""
    m = manifold_metrics(real, fake, k_pr=k, k_dc=k)
    return m["precision"], m["recall"]


def class_statistics(logits: torch.Tensor) -> dict[str, object]:
    """Predicted-class histogram, its entropy and the classifier-based Inception Score.

    logits: (N, C). Returns ``histogram`` (C,) fractions of argmax predictions, ``class_entropy``
    in nats, ``class_entropy_norm`` = entropy / log C (1 = uniform over classes, 0 = one class),
    and ``inception_score`` = exp(mean_x KL(p(y|x) || p(y))) with p(y) the mean prediction
    (Salimans et al. 2016, sec. 4); it lies in [1, C].
    """
    logits = torch.as_tensor(logits).detach().double()
    if logits.ndim != 2 or logits.shape[1] < 2 or len(logits) == 0:
        raise TwopathsError(f"class statistics need (N, C) logits with C >= 2, got {tuple(logits.shape)}")
    n, c = logits.shape
    hist = torch.bincount(logits.argmax(1), minlength=c).double() / n  # (C,)
    nz = hist[hist > 0]
    entropy = float(-(nz * nz.log()).sum()) + 0.0  # + 0.0: no -0.0
    log_p = torch.log_softmax(logits, dim=1)  # (N, C) log p(y|x)
    log_py = torch.logsumexp(log_p, dim=0) - math.log(n)  # (C,) log p(y)
    kl = (log_p.exp() * (log_p - log_py[None, :])).sum(1)  # (N,)
    return {"histogram": hist.tolist(), "class_entropy": entropy, "class_entropy_norm": entropy / math.log(c),
            "inception_score": float(kl.mean().exp())}
