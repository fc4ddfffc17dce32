"""How well an autoencoder reconstructs: pixel error, PSNR, and FID of reconstructions beside the floor.

The first stage of latent diffusion bounds the whole model's quality: samples can be no better
than what the decoder can draw (Rombach et al. 2022, sec. 4.1 and table 8 report reconstruction
FID, PSNR and the like for each autoencoder). :func:`reconstruction_metrics` takes 2n real
images of one split and uses them twice:

- n of them (*held*) are encoded and decoded (from the posterior mean); MSE and PSNR compare each
  reconstruction with its original;
- the other n (*reference*) are what FID compares against. ``fid`` is FID(reconstructions of
  held, reference); ``fid_floor`` is FID(held, reference), the same real images before the round
  trip, scored with the same feature network at the same n. Their difference is exactly what
  the autoencoder loses (FID is biased at finite n, so only a floor at equal n makes it readable;
  see :mod:`twopaths.eval.images`). Pairing held against reference from the same split keeps the
  floor free of any train/test difference.

MSE is in the images' [-1, 1] units (divide by 4 for [0, 1] units); PSNR is per image,
10 log10(peak-to-peak^2 / MSE) with peak-to-peak 2 (the same number as for [0, 1] data), averaged.
"""

from __future__ import annotations

from typing import Any

import torch

from twopaths.config import DataConfig
from twopaths.errors import DataError, TwopathsError
from twopaths.eval.features import FeatureNet
from twopaths.nn.functional import psnr

__all__ = ["reconstruct_in_batches", "reconstruction_metrics", "reconstruction_report"]


@torch.no_grad()
def reconstruct_in_batches(model: Any, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``model.reconstruct`` over (N, C, H, W) images in batches on the model's device; (N, C, H, W) on the CPU."""
    device = next(model.parameters()).device
    return torch.cat([model.reconstruct(images[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def reconstruction_metrics(model: Any, data: DataConfig, n: int, net: FeatureNet, split: str = "test",
                           seed: int = 0, batch_size: int = 500, progress: bool = True) -> dict[str, Any]:
    """MSE, PSNR and FID (with its floor) of ``model.reconstruct`` on ``n`` images of ``split``,
    FID against ``n`` other images of the same split (see the module docstring)."""
    from twopaths.data.registry import real_images
    from twopaths.eval.images import evaluate_images

    if not hasattr(model, "reconstruct"):
        raise TwopathsError("this model has no autoencoder to reconstruct with; --metrics recon is for "
                            "autoencoder and ldm runs")
    real, _ = real_images(data, 2 * n, split, seed=seed)  # (2n, C, H, W) in [-1, 1], a fixed random subset
    held, reference = real[:n], real[n:]
    recon = reconstruct_in_batches(model, held, batch_size)  # (n, C, H, W)
    per_image = psnr(held, recon)
    scored = evaluate_images(recon, reference, held, net, ("fid",), batch_size=batch_size, progress=progress)
    return {"n": n, "split": split, "feature_net": scored["feature_net"],
            "mse": float((recon - held).pow(2).mean()), "psnr": float(per_image.mean()),
            "fid": scored["metrics"]["fid"], "fid_floor": scored["floor"]["fid"]}


def reconstruction_report(run: Any, *, split: str | None = None, n: int | None = None,
                          feature_net: str | None = None, seed: int = 0, batch_size: int = 500) -> dict[str, Any]:
    """``twopaths eval RUN --metrics recon`` (``run`` loaded with its data): :func:`reconstruction_metrics`
    of ``n`` images of ``split`` (default test, n = min(5000, half the split)) with ``feature_net`` (a
    shipped name or a .safetensors file; default the run's data set), printed as a table; returns the numbers."""
    from twopaths.eval.features import SHIPPED, load_feature_net

    split = split or "test"
    net_name = feature_net or run.cfg.data.name
    if feature_net is None and net_name not in SHIPPED:
        raise TwopathsError(f"no shipped feature net for dataset '{run.cfg.data.name}' (shipped: "
                            f"{', '.join(SHIPPED)}); pass --feature-net PATH.safetensors")
    size = len(getattr(run.splits, split))
    n = n if n is not None else min(5000, size // 2)
    if 2 * n > size and run.cfg.data.name != "shapes":  # shapes draws more images when asked
        raise DataError(f"--metrics recon uses 2 x --n {split} images (n reconstructed, n as the FID reference); "
                        f"the {split} split of '{run.cfg.data.name}' has {size:,}: use --n {size // 2:,} or fewer")
    result = reconstruction_metrics(run.model, run.cfg.data, n, load_feature_net(net_name), split, seed,
                                    batch_size)
    print(f"{run.cfg.model} on {run.cfg.data.name}, checkpoint step {run.checkpoint.step}: reconstructions of "
          f"{n:,} {split} images (posterior mean), FID against {n:,} other {split} images")
    print(f"  {'metric':<20} {'value':>12} {'real-vs-real':>14} {'n':>8}  feature net")
    print(f"  {'mse':<20} {result['mse']:>12.4g} {'0':>14} {n:>8,}")
    print(f"  {'psnr_db':<20} {result['psnr']:>12.2f} {'inf':>14} {n:>8,}")
    print(f"  {'fid':<20} {result['fid']:>12.4g} {result['fid_floor']:>14.4g} {n:>8,}  {result['feature_net']}")
    return result
