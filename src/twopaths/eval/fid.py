"""Fréchet distance (FID) and kernel inception distance (KID) between two sets of features.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", eq. 6) fits a Gaussian to each feature set and reports the squared 2-Wasserstein
distance between them (Dowson & Landau 1982):

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

It is biased for finite samples (it depends on n), which is why twopaths always prints the
real-vs-real floor at the same n. KID (Binkowski et al. 2018, "Demystifying MMD GANs", sec. 4
and eq. 4) is the unbiased estimate of the squared maximum mean discrepancy with the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets; its expectation is 0
when both sets come from one distribution, whatever n.

How far one FID is from another that was measured against the same real set is a question about
the generated sample: :func:`fid_bootstrap_std` resamples the generated features with replacement
(Efron & Tibshirani 1993, ch. 6) and reports the spread of the FID, so a verdict can ask whether a
gap exceeds it.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from twopaths.errors import TwopathsError

__all__ = ["feature_statistics", "fid_bootstrap_std", "fid_from_features", "frechet_distance", "kid", "polynomial_mmd2"]


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64, of (N, D) features."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise TwopathsError(f"need (N, D) features with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy's matrix square root without its singular-matrix warning (the caller checks the result)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return scipy.linalg.sqrtm(a)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, max_imag: float = 1e-3) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, eq. 6).

    The matrix square root of S1 S2 comes from ``scipy.linalg.sqrtm``. Safeguards (as in the
    reference implementations): when the product is singular and the root is not finite, ``eps``
    is added to both diagonals and the root is taken again; a negligible imaginary part (from
    round-off, the exact root is real for PSD S1, S2) is dropped; one larger than ``max_imag``
    on the diagonal raises an error, since the result would be meaningless.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise TwopathsError(f"Fréchet distance: shapes do not fit: mu {mu1.shape}, {mu2.shape}; "
                            f"sigma {sigma1.shape}, {sigma2.shape}")
    diff = mu1 - mu2  # (D,)
    covmean = _sqrtm(sigma1 @ sigma2)  # (D, D), possibly complex
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise TwopathsError("Fréchet distance: the matrix square root is not finite even after adding "
                                f"{eps} to the diagonals; are the features finite?")
    if np.iscomplexobj(covmean):
        worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if worst > max_imag:
            raise TwopathsError(f"Fréchet distance: the square root of S1 S2 has an imaginary part of {worst:.3g} "
                                f"on its diagonal (> {max_imag}); the covariances are not positive semi-definite")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray) -> float:
    """FID between two (N, D) feature sets (N may differ between them)."""
    return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))


def _sym_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by its eigendecomposition."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def fid_bootstrap_std(fake: torch.Tensor | np.ndarray, real: torch.Tensor | np.ndarray, rounds: int = 100,
                      seed: int = 0, group: int = 1) -> float:
    """Standard deviation of the FID of ``fake`` (N, D) against ``real`` (M, D) over ``rounds``
    bootstrap resamples of ``fake`` (with replacement, N each; the real set stays fixed, since the
    contenders of one comparison share it). Rows that are not independent come in consecutive runs of
    ``group`` (the frames of one video clip) and are resampled together, a block bootstrap.

    Each round needs Tr((S_f S_r)^(1/2)) = Tr((R S_f R)^(1/2)) with R = S_r^(1/2): the eigenvalues
    of one symmetric matrix, so a round costs one ``eigvalsh`` instead of a general ``sqrtm``.
    """
    f = np.asarray(fake.detach().cpu() if isinstance(fake, torch.Tensor) else fake, dtype=np.float64)
    if rounds < 2:
        raise TwopathsError(f"the FID bootstrap needs at least 2 rounds, got {rounds}")
    mu_r, sigma_r = feature_statistics(real)
    root = _sym_sqrt(sigma_r)  # (D, D)
    if group < 1 or len(f) % group:
        raise TwopathsError(f"the FID bootstrap's groups of {group} rows do not divide its {len(f)} rows")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        rows = (rng.integers(0, len(f) // group, len(f) // group)[:, None] * group + np.arange(group)).ravel()
        mu, sigma = feature_statistics(f[rows])
        inner = np.linalg.eigvalsh(root @ sigma @ root)  # (D,) eigenvalues of a PSD matrix
        diff = mu - mu_r
        values.append(diff @ diff + np.trace(sigma) + np.trace(sigma_r) - 2.0 * np.sqrt(np.clip(inner, 0, None)).sum())
    return float(np.std(values, ddof=1))


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between samples x (m, D) and y (n, D) with k(a, b) = (a.b / D + 1)^3
    (Binkowski et al. 2018, eq. 4; Gretton et al. 2012, eq. 3).

    The Gram matrices are products in float32 (what dominates the cost); the cube and the sums
    run in float64, since MMD^2 is a small difference of large sums.
    """
    m, n, d = len(x), len(y), x.shape[1]
    k_xx = (x @ x.T).double().div_(d).add_(1).pow_(3)  # (m, m)
    k_yy = (y @ y.T).double().div_(d).add_(1).pow_(3)  # (n, n)
    k_xy = (x @ y.T).double().div_(d).add_(1).pow_(3)  # (m, n)
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))  # off-diagonal mean: unbiased
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(xx + yy - 2 * k_xy.mean())


def kid(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance: (mean, std) of the unbiased polynomial-kernel MMD^2 over
    ``subsets`` random subsets of ``min(subset_size, N1 // 2, N2 // 2)`` items from each set, drawn
    without replacement within a subset (Binkowski et al. 2018, sec. 4; their defaults 100 x 1000).
    With several subsets at most half of each set goes into one: subsets as large as the set
    would all be the same set, and their spread (the reported std) would be zero whatever the data.
    """
    x, y = (torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f).float().cpu() for f in (f1, f2))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise TwopathsError(f"KID needs two (N, D) feature sets of one D, got {tuple(x.shape)} and {tuple(y.shape)}")
    share = 1 if subsets == 1 else 2  # one subset may be the whole set; several must differ
    size = min(subset_size, len(x) // share, len(y) // share)
    if size < 2:
        raise TwopathsError(f"KID needs at least {2 * share} items in each set, got {len(x)} and {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    values = np.array([polynomial_mmd2(x[torch.randperm(len(x), generator=gen)[:size]],
                                       y[torch.randperm(len(y), generator=gen)[:size]]) for _ in range(subsets)])
    return float(values.mean()), float(values.std())
