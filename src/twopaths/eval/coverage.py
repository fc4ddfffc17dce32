"""Mode coverage on 2-D Gaussian mixtures, where every mode is known.

The protocol of the GAN mode-collapse benchmarks (Metz et al. 2017, "Unrolled Generative
Adversarial Networks", sec. 3.1; Srivastava et al. 2017, "VEEGAN", sec. 5.1): a sample is
*high quality* when it lies within 3 standard deviations of some mode, and a mode is *covered*
when at least 1% of the samples are high-quality samples of that mode (nearest to it).
"""

from __future__ import annotations

import torch

from twopaths.errors import TwopathsError

__all__ = ["mode_coverage"]


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, std: float, n_sigma: float = 3.0,
                  min_fraction: float = 0.01) -> dict[str, object]:
    """Score 2-D ``samples`` (N, 2) against the mixture's ``modes`` (K, 2) of common ``std``.

    Returns ``modes_covered`` (int), ``modes`` (K), ``high_quality`` (fraction of samples within
    ``n_sigma * std`` of their nearest mode), ``per_mode`` (K,) counts of such samples per mode,
    and ``n``. A mode counts as covered with at least ``min_fraction`` of all samples near it.
    """
    samples = torch.as_tensor(samples).float().cpu()
    modes = torch.as_tensor(modes).float().cpu()
    if samples.ndim != 2 or modes.ndim != 2 or samples.shape[1] != modes.shape[1] or len(samples) == 0:
        raise TwopathsError(f"mode coverage needs (N, D) samples and (K, D) modes, got {tuple(samples.shape)} "
                            f"and {tuple(modes.shape)}")
    if not torch.isfinite(samples).all():
        raise TwopathsError("mode coverage: the samples contain NaN or infinite values")
    dist = torch.cdist(samples, modes)  # (N, K)
    nearest_d, nearest = dist.min(1)  # (N,), (N,)
    good = nearest_d <= n_sigma * std  # (N,)
    per_mode = torch.bincount(nearest[good], minlength=len(modes))  # (K,)
    covered = int((per_mode >= min_fraction * len(samples)).sum())
    return {"modes_covered": covered, "modes": len(modes), "high_quality": float(good.float().mean()),
            "per_mode": per_mode.tolist(), "n": len(samples)}
