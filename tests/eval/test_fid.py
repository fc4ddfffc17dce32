"""FID and KID against independent float64 computations and the cases with known answers."""

import numpy as np
import pytest
import torch

from twopaths.errors import TwopathsError
from twopaths.eval.fid import feature_statistics, fid_from_features, frechet_distance, kid


def _fid_by_eigh(f1: np.ndarray, f2: np.ndarray) -> float:
    """Oracle: Tr (S1 S2)^1/2 = sum sqrt(eig(S1^1/2 S2 S1^1/2)), a symmetric PSD matrix, via eigh."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def test_fid_matches_an_independent_eigendecomposition():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    f2 = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) + 0.5
    assert fid_from_features(f1, f2) == pytest.approx(_fid_by_eigh(f1, f2), rel=1e-6)
    assert fid_from_features(torch.from_numpy(f1).float(), torch.from_numpy(f2).float()) == pytest.approx(
        _fid_by_eigh(f1, f2), rel=1e-4)


def test_identical_gaussians_give_zero_and_shifted_means_the_squared_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    sigma = a @ a.T + np.eye(8)
    mu = rng.normal(size=8)
    shift = np.arange(8) / 4.0
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_singular_covariances_are_handled_and_bad_shapes_refused():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(5, 10))  # 5 points in 10-D: rank-deficient covariance
    sigma = np.cov(f, rowvar=False)
    value = frechet_distance(f.mean(0), sigma, f.mean(0) + 1.0, sigma)
    assert np.isfinite(value) and value == pytest.approx(10.0, abs=1e-2)
    with pytest.raises(TwopathsError, match="shapes do not fit"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(TwopathsError, match="N >= 2"):
        feature_statistics(np.zeros((1, 3)))


def _mmd2_oracle(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * k(x, y).mean())


def test_kid_is_the_unbiased_polynomial_mmd_and_near_zero_for_one_distribution():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 12)), rng.normal(size=(200, 12)) + 0.3
    mean, std = kid(x, y, subsets=1, subset_size=200)  # one subset = the whole sets
    assert mean == pytest.approx(_mmd2_oracle(x, y), rel=1e-4) and std == 0.0
    same_a, same_b = rng.normal(size=(2000, 12)), rng.normal(size=(2000, 12))
    near, spread = kid(same_a, same_b, subsets=20, subset_size=500)
    far, _ = kid(same_a, same_b + 0.3, subsets=20, subset_size=500)
    assert abs(near) < 3 * spread + 1e-3 and far > 20 * abs(near) and far > 0


def test_fid_bootstrap_spread_covers_the_spread_over_fresh_samples():
    from twopaths.eval.fid import fid_bootstrap_std

    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 16))
    fresh = [fid_from_features(rng.normal(0.3, 1.0, size=(500, 16)), real) for _ in range(40)]
    boot = fid_bootstrap_std(rng.normal(0.3, 1.0, size=(500, 16)), real, rounds=200)
    # a verdict may rely on it: it is no smaller than the true sampling spread (it is conservative) ...
    assert np.std(fresh, ddof=1) * 0.8 <= boot <= np.std(fresh, ddof=1) * 4
    # ... and it shrinks as the sample grows
    assert fid_bootstrap_std(rng.normal(0.3, 1.0, size=(4000, 16)), real, rounds=100) < boot / 2
    with pytest.raises(TwopathsError, match="at least 2 rounds"):
        fid_bootstrap_std(real, real, rounds=1)


def test_fid_block_bootstrap_sees_correlated_rows():
    """Frames of one clip are near copies: resampled one by one they look like 8x more data than they are;
    resampled as blocks (``group``) the spread is that of the clips."""
    from twopaths.eval.fid import fid_bootstrap_std

    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 8))
    clips = rng.normal(0.3, 1.0, size=(250, 1, 8))
    frames = (clips + 0.01 * rng.normal(size=(250, 8, 8))).reshape(2000, 8)  # 8 near-identical frames per clip
    naive, blocks = (fid_bootstrap_std(frames, real, rounds=100, group=g) for g in (1, 8))
    assert blocks > 2 * naive
    with pytest.raises(TwopathsError, match="groups of 3 rows do not divide its 2000 rows"):
        fid_bootstrap_std(frames, real, group=3)
