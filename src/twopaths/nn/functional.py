"""Pure tensor functions shared by several layers (no parameters, no state)."""

from __future__ import annotations

import torch


def psnr(x: torch.Tensor, y: torch.Tensor, peak_to_peak: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, (N,), for (N, ...) images whose values span
    ``peak_to_peak`` (2 for images in [-1, 1])::

        PSNR = 10 log10(peak_to_peak^2 / MSE),   MSE = mean over each image of (x - y)^2

    Symmetric in ``x`` and ``y``; the MSE is floored at 1e-10 so identical images give a finite value."""
    mse = (y.float() - x.float()).pow(2).flatten(1).mean(1)  # (N,)
    return 10 * torch.log10(peak_to_peak**2 / mse.clamp(min=1e-10))
