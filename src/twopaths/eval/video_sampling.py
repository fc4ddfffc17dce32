"""Sample metrics of a video run: clips drawn from the model, scored frame by frame, in motion and identity.

``twopaths eval RUN`` on a ``video-ddpm`` or ``video-ar`` run (its default metrics). The model draws ``n``
clips, timed, and :func:`twopaths.eval.video.video_scores` scores them against ``n`` real clips of the
run's data (the test split by default: items never trained on) with the floor of ``n`` other real clips
(the train split): per-frame FID, temporal consistency in pixels (the tracked motion against the best
constant-velocity-with-bounces fit) and identity drift (the item's features, first frame against last).

Beside them, what one clip costs to sample, where the two families differ most: the *sequential*
network calls per clip (the joint model: its steps; frame by frame: frames x steps), the FLOPs of
generating one clip (counted by :func:`twopaths.nn.flops.flops_of` on a real sampling run of one clip)
and the measured seconds per clip in batches.
"""

from __future__ import annotations

import time
from typing import Any

from twopaths.errors import TwopathsError

__all__ = ["VIDEO_SAMPLE_METRICS", "sampling_cost", "video_sample_report"]

#: ``--metrics`` names of a video run -> the rows of :func:`twopaths.eval.video.video_scores` (no torch at import)
VIDEO_SAMPLE_METRICS: dict[str, str] = {"fid": "frame_fid", "motion": "temporal_consistency_px",
                                        "identity": "identity_drift"}
DEFAULT_CLIPS = 1000  # --n for a video run: 8,000 frames for the per-frame FID at 8 frames


def sampling_cost(model: Any, *, sampler: str, steps: int, guidance: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Network calls (of the main network, :func:`~twopaths.nn.flops.count_network_calls`) and FLOPs of
    sampling one clip, counted on a real run (batch of one)."""
    import torch

    from twopaths.nn.flops import count_network_calls, flops_of

    gen = torch.Generator().manual_seed(seed)
    cond = torch.zeros(1, dtype=torch.long) if getattr(model, "num_classes", 0) else None  # guidance: 2 passes
    with count_network_calls(model) as calls:
        flops = flops_of(lambda: model.sample(1, cond=cond, sampler=sampler, steps=steps, generator=gen,
                                              guidance=guidance))
    return {"network_calls_per_clip": calls.get("calls", 0), "flops_per_clip": float(flops)}


def video_sample_report(run: Any, metrics: list[str] | None = None, *, n: int | None = None, split: str | None = None,
                        sampler: str | None = None, steps: int | None = None, seed: int = 0, guidance: float = 1.0,
                        batch_size: int = 250) -> dict[str, Any]:
    """The asked ``metrics`` (names of :data:`VIDEO_SAMPLE_METRICS`; default all) of ``n`` clips (default
    1,000) sampled from ``run`` with ``sampler`` and ``steps`` (default: the run's own), against ``n`` clips of
    ``split`` (default test) and the floor of ``n`` train clips, plus the cost of one clip.

    Returns ``{"metrics": {row: value}, "floor": {row: value}, "n", "real_split", "feature_net", "tracker",
    "sampling": "dpmpp, 20 steps", "cost": {"network_calls_per_clip", "flops_per_clip", "seconds_per_clip"}}``.
    """
    from twopaths.eval.images import sample_model
    from twopaths.eval.video import video_scores
    from twopaths.models.video import held_out_clips
    from twopaths.paradigms.frame_autoregressive import FrameAutoregressive

    metrics = list(metrics or VIDEO_SAMPLE_METRICS)
    unknown = [m for m in metrics if m not in VIDEO_SAMPLE_METRICS]
    if unknown:
        raise TwopathsError(f"unknown video metric(s) {', '.join(unknown)}; available: "
                            f"{', '.join(VIDEO_SAMPLE_METRICS)}")
    if int(run.meta.get("objects", 1)) != 1:
        raise TwopathsError(f"the video metrics track one object per clip; this run's clips have {run.meta['objects']} "
                            f"(data.objects)")
    real_split = split or "test"
    if real_split == "train":
        raise TwopathsError("the video metrics' floor is drawn from the train split; compare against val or test")
    n = n or DEFAULT_CLIPS
    real = held_out_clips(run.cfg, n, real_split)[0]  # (n, T, 1, R, R): data errors (n too large) first
    model = run.model
    sampler, steps = model.sampling_plan(sampler, steps)
    start = time.perf_counter()
    fake = sample_model(model, n, batch_size=batch_size, sampler=sampler, steps=steps, guidance=guidance, seed=seed)
    seconds = time.perf_counter() - start
    scores = video_scores(fake, real, progress=False)
    rows = [VIDEO_SAMPLE_METRICS[m] for m in metrics]
    per_frame = model.frames if isinstance(model, FrameAutoregressive) else None
    cost = {**sampling_cost(model, sampler=sampler, steps=steps, guidance=guidance, seed=seed),
            "seconds_per_clip": seconds / n}
    return {"metrics": {r: scores["metrics"][r] for r in rows}, "floor": {r: scores["floor"][r] for r in rows},
            "n": n, "frames": scores["frames"], "real_split": real_split, "feature_net": scores["feature_net"],
            "tracker": scores["tracker"], "cost": cost, "sampling_seconds": seconds,
            "sampling": f"{sampler}, {steps} steps" + (f" per frame x {per_frame} frames" if per_frame else "")}
