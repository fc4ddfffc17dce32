"""The sample metrics of a trained run, always beside the real-vs-real floor (``twopaths eval``).

:func:`sample_metrics` draws samples from a run and scores them against real items: FID, KID,
precision/recall and class statistics for images (:mod:`twopaths.eval.images`), mode coverage for
2-D mixtures (:func:`mode_metrics`, :mod:`twopaths.eval.coverage`). How a run is sampled follows
its model spec's ``evaluation``: a "diffusion" run with ``sampler`` and ``steps`` (default: its own
sampler and its model's ``default_steps``, the one rule), any other in one go.
"""

from __future__ import annotations

import sys
from typing import Any

from twopaths.config import DataConfig
from twopaths.data.registry import real_images
from twopaths.data.registry import load_splits
from twopaths.data.toy import sample_mixture
from twopaths.errors import TwopathsError
from twopaths.eval.coverage import mode_coverage
from twopaths.eval.features import SHIPPED, load_feature_net
from twopaths.eval.images import evaluate_images, sample_model

__all__ = ["mode_metrics", "sample_metrics", "sampling_steps"]


def sampling_steps(run: Any, sampler: str | None, steps: int | None) -> tuple[int | None, str]:
    """The steps to sample ``run`` with and a description: a diffusion run defaults to its own sampler
    (``arch.sampler``) and its model's ``default_steps`` ("ddim, 50 steps"); any other run samples in
    one go (its model name)."""
    if run.spec.evaluation != "diffusion":
        return steps, run.cfg.model
    sampler, steps = run.model.sampling_plan(sampler, steps)
    return steps, f"{sampler}, {steps} steps"


def sample_metrics(run: Any, data_cfg: DataConfig, kind: str, metrics: list[str], *, split: str | None = None,
                   n: int | None = None, seed: int = 0, sampler: str | None = None, steps: int | None = None,
                   guidance: float = 1.0, batch_size: int = 500, feature_net: str | None = None) -> dict[str, Any]:
    """Sample metrics of ``run`` (or, with ``run=None``, the real-vs-real floor alone) from ``n`` samples
    (default 10,000, or what ``split`` holds) against ``n`` real items of ``split`` (default test): the image
    metrics of :func:`~twopaths.eval.images.evaluate_images` for image data (``kind``), or :func:`mode_metrics`
    for 2-D points. ``sampler``, ``steps`` and ``guidance`` apply to diffusion runs."""
    split = split or "test"
    floor_split = "train" if split != "train" else "val"
    if kind == "points":
        return mode_metrics(run, data_cfg, split=split, n=n, seed=seed, sampler=sampler, steps=steps,
                            guidance=guidance, batch_size=batch_size)
    if n is None:  # 10,000, or what the split holds
        n = 10_000 if data_cfg.name in ("shapes",) else min(10_000, len(getattr(load_splits(data_cfg), split)))
    net_name = feature_net or data_cfg.name
    if feature_net is None and net_name not in SHIPPED:
        raise TwopathsError(f"no shipped feature net for dataset '{data_cfg.name}' (shipped: {', '.join(SHIPPED)}); "
                            f"pass --feature-net PATH.safetensors")
    real_eval, _ = real_images(data_cfg, n, split, seed=seed)  # data errors (--n too large) first
    real_floor, _ = real_images(data_cfg, n, floor_split, seed=seed + 1)
    net = load_feature_net(net_name)
    if real_eval.shape[-1] != net.arch["resolution"]:
        print(f"note: {real_eval.shape[-1]}x{real_eval.shape[-1]} images are resized to the feature net's "
              f"{net.arch['resolution']}x{net.arch['resolution']}; compare these numbers only with runs at the "
              f"same resolution", file=sys.stderr)
    fake, sampling = None, None
    if run is not None:
        steps, sampling = sampling_steps(run, sampler, steps)
        if run.spec.evaluation == "diffusion" and getattr(run.model, "num_classes", 0):
            sampling += f", guidance {guidance:g}"
        fake = sample_model(run.model, n, batch_size, sampler, steps, guidance, seed)
    result = evaluate_images(fake, real_eval, real_floor, net, metrics)
    result.update({"real_split": split, "floor_split": floor_split})
    if sampling:
        result["sampling"] = sampling
    return result


def mode_metrics(run: Any, data_cfg: DataConfig, *, split: str = "test", n: int | None = None, seed: int = 0,
                 sampler: str | None = None, steps: int | None = None, guidance: float = 1.0,
                 batch_size: int = 500) -> dict[str, Any]:
    """Mode coverage of ``n`` samples (default 10,000) of a 2-D mixture run, and of ``n`` fresh draws from
    the mixture as the floor (``run=None``: the floor alone). ``split`` is not used: the mixture is drawn afresh."""
    meta = run.meta if run is not None else load_splits(data_cfg).meta
    n = n or 10_000
    real, _ = sample_mixture(meta["variant"], n, seed=10_000 + seed)
    result: dict = {"n": n, "feature_net": "-", "real_split": "fresh mixture", "floor_split": "fresh mixture",
                    "metrics": {}, "floor": {}}
    rows = [("floor", real)]
    if run is not None:
        steps, sampling = sampling_steps(run, sampler, steps)
        rows.append(("metrics", sample_model(run.model, n, batch_size, sampler, steps, guidance, seed)))
        result["sampling"] = sampling
    for row, points in rows:
        cov = mode_coverage(points, meta["modes"], meta["std"])
        result[row].update({"modes_covered": cov["modes_covered"], "high_quality": cov["high_quality"]})
        result["per_mode" if row == "metrics" else "real_per_mode"] = cov["per_mode"]
    result["modes"] = len(meta["modes"])
    return result
