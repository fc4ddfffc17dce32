"""Sample metrics of an audio run: clips drawn from the model, scored by the spoken-digit classifier.

``twopaths eval RUN --metrics fd,is,accuracy`` on a ``wavenet`` or ``diffwave`` run. The model draws
``n`` clips (a class-conditional model: every digit in turn, so the classes are balanced like the test
split), timed, and :func:`twopaths.eval.audio_features.audio_scores` compares them with ``n`` real clips
of the run's data (the test split by default). Reported with the real-vs-real floor, the classifier's
identity, samples/s and the real-time factor (seconds of compute per second of audio), which is where
the two families differ most: a waveform autoregression makes one network call per sample.
"""

from __future__ import annotations

import time
from typing import Any

from twopaths.errors import TwopathsError

__all__ = ["AUDIO_SAMPLE_METRICS", "audio_sample_report"]

AUDIO_SAMPLE_METRICS = ("fd", "is", "accuracy")  # no torch at import: the CLI's parser reads this


def audio_sample_report(run: Any, metrics: list[str], *, n: int | None = None, split: str | None = None,
                        seed: int = 0, sampler: str | None = None, steps: int | None = None,
                        guidance: float = 1.0, batch_size: int = 250, classifier: str = "spoken-digits"
                        ) -> dict[str, Any]:
    """The asked ``metrics`` (of :data:`AUDIO_SAMPLE_METRICS`) of ``n`` clips sampled from ``run``, with
    the floor, n, the classifier's identity and the sampling speed. ``accuracy`` needs a
    class-conditional run; ``sampler``/``steps``/``guidance`` apply to diffusion runs."""
    from twopaths.data.registry import load_splits
    from twopaths.eval.audio_features import audio_scores, load_audio_feature_net
    from twopaths.eval.images import balanced_labels, sample_model

    classes = int(getattr(run.model, "num_classes", 0) or 0)
    if "accuracy" in metrics and not classes:
        raise TwopathsError("--metrics accuracy scores class-conditional samples; this run is unconditional "
                            "(train it with arch.conditioning=class)")
    net = load_audio_feature_net(classifier)
    names = list(run.meta.get("class_names") or [])
    if "accuracy" in metrics and names != list(net.card.get("classes") or []):
        raise TwopathsError(f"--metrics accuracy needs the classifier's classes ({', '.join(net.card['classes'])}); "
                            f"this run's are {', '.join(names) or 'none'} (fd and is still apply)")
    real_split = split or "test"
    real = getattr(load_splits(run.cfg.data), real_split).audio  # (M, 1, L)
    n = n or len(real)
    start = time.perf_counter()
    fake = sample_model(run.model, n, batch_size=batch_size, sampler=sampler, steps=steps, guidance=guidance,
                        seed=seed)  # (n, 1, L)
    seconds = time.perf_counter() - start
    labels = balanced_labels(run.model, n)  # sample_model's order
    scores = audio_scores(net, fake, real[:n], labels=labels)
    keep = {"fd": ("fd",), "is": ("is", "mis"), "accuracy": ("accuracy",)}
    out = {key: scores[key] for m in metrics for key in keep[m]}
    return {"metrics": out, "floor": {"fd": scores["fd_floor"]} if "fd" in metrics else {}, "n": n,
            "real": min(n, len(real)), "real_split": real_split, "feature_net": net.identity,
            "samples_per_s": n * fake.shape[-1] / seconds,
            "real_time_factor": seconds / (n * fake.shape[-1] / int(run.meta.get("sample_rate", 8000))),
            "sampling_seconds": seconds}
