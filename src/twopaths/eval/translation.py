"""How well a sequence-to-sequence run translates: BLEU, chrF and exact match on a split.

``twopaths eval RUN --metrics bleu,chrf,exact`` prints :func:`translation_metrics`; BLEU and chrF
are corpus-level sacrebleu scores (:mod:`twopaths.eval.text`), 0-100.
"""

from __future__ import annotations

import time
from typing import Any

from twopaths.errors import DataError, TwopathsError
from twopaths.eval.text import bleu, chrf
from twopaths.paradigms.seq2seq import Transduction

__all__ = ["check_translation_run", "decoding", "translation_metrics"]


def decoding(run: Any, beam: int | None = None, length_penalty: float | None = None,
             greedy: bool = False) -> tuple[int, float]:
    """The beam width and alpha to use: the flags, else the run's arch.beam and arch.length_penalty."""
    arch = run.cfg.arch
    beam = 1 if greedy else (beam if beam is not None else arch.beam)
    alpha = length_penalty if length_penalty is not None else arch.length_penalty
    if beam < 1:
        raise TwopathsError("--beam must be >= 1")
    if alpha < 0:
        raise TwopathsError("--length-penalty must be >= 0")
    return beam, alpha


def check_translation_run(run: Any) -> Transduction:
    """The seq2seq model of ``run``, or a clear error."""
    if not isinstance(run.model, Transduction):
        raise TwopathsError(f"{run.run_dir} is a '{run.cfg.model}' run; translate and the bleu/chrf/exact metrics "
                            f"need a sequence-to-sequence run (twopaths train seq2seq)")
    return run.model


def translation_metrics(run: Any, metrics: list[str], *, split: str | None = None, n: int | None = None,
                        beam: int | None = None, length_penalty: float | None = None, greedy: bool = False,
                        batch_size: int = 256, weights: str = "EMA") -> dict[str, Any]:
    """BLEU, chrF (corpus level, sacrebleu, 0-100) and exact match (%) of the run's translations of
    ``split`` (default: test, numbers never seen in training; the first ``n`` pairs), decoded as
    :func:`decoding` says, printed as a table; returns the numbers. ``weights`` names the loaded weights."""
    model = check_translation_run(run)
    beam, alpha = decoding(run, beam, length_penalty, greedy)
    split = split or "test"
    data = getattr(run.splits, split)
    n = len(data) if n is None else min(n, len(data))
    if n == 0:
        raise DataError(f"the {split} split of {run.cfg.data.name} is empty")
    pairs = [data[i] for i in range(n)]
    refs = [p["tgt"] for p in pairs]
    start = time.perf_counter()
    hyps = model.translate([p["src"] for p in pairs], beam, alpha, batch_size=batch_size)
    seconds = time.perf_counter() - start
    scores = {"exact": 100.0 * sum(h == r for h, r in zip(hyps, refs)) / n}
    if "bleu" in metrics:
        scores["bleu"] = bleu(hyps, refs)
    if "chrf" in metrics:
        scores["chrf"] = chrf(hyps, refs)
    scores = {m: scores[m] for m in metrics}
    how = "greedy" if beam == 1 else f"beam {beam}, length penalty {alpha:g}"
    print(f"{run.cfg.model} on {run.cfg.data.name}/{split}, checkpoint step {run.checkpoint.step} ({weights} weights), "
          f"{n:,} pairs, {how}, {seconds:.1f}s")
    for key, value in scores.items():
        print(f"  {key:<20} {value:.2f}" + ("  (% of pairs)" if key == "exact" else "  (0-100)"))
    wrong = [(p["src"], h, r) for p, h, r in zip(pairs, hyps, refs) if h != r][:3]
    for src, hyp, ref in wrong:
        print(f"  e.g. {src!r} -> {hyp!r}, reference {ref!r}")
    return {"split": split, "pairs": n, "decoding": how, "seconds": seconds, **scores}
