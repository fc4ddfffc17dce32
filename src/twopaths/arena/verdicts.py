"""The seeds' comparison table, filled from measurements: one row per aspect, evidence and verdict.

Every verdict is computed from the numbers in ``results.json`` by a rule written here, never
typed in: change the numbers and the verdicts change (tests feed contrived results and curves).
A verdict is a record (:class:`Row`: status, winner, metric, ratio, interval, qualifier) rendered
to one sentence. A row whose evidence is missing says so.

A row names a winner only when both hold:

1. **The contenders it ranks have learned the data**, by a stated rule per kind of data
   (:func:`learned`): images, FID within ``LEARNED_FID_MULTIPLE`` x the real-vs-real floor at
   the same n; points, every mixture mode found; text, perplexity (or MDLM's bound) at most
   ``LEARNED_PPL_FRACTION`` of the unigram perplexity; recall, accuracy above chance (95% Wilson
   interval) at some distance; molecules, at least ``LEARNED_VALIDITY`` of the sampled SMILES valid; audio,
   the digit classifier names the asked digit of at least ``LEARNED_AUDIO_ACCURACY`` of the class-conditional
   clips; video, the frame FID within ``LEARNED_FID_MULTIPLE`` x its floor. Comparing models that learned
   nothing compares initialisations.
2. **The gap exceeds the uncertainty**: 95% intervals (z = 1.96) from the FID's bootstrap spread,
   binomial intervals for accuracies, the min-max range of repeated latencies, and for stability
   an F-test of the spread over >= 3 seeds. Exact counts (FLOPs, network calls) have no noise.

Otherwise the row says *inconclusive* and why. A winner at a budget where the quality curves still
fall gets a qualifier ("at 25 TFLOP; ddpm still improving 30% per doubling").
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

SPEED_RATIO = 1.2  # exact-count ratios below this are "about the same"
Z = 1.96  # two-sided 95% normal interval
LEARNED_FID_MULTIPLE = 5.0  # images: learned when FID <= this x the real-vs-real floor at the same n
LEARNED_PPL_FRACTION = 0.5  # text: learned when perplexity <= this x the unigram perplexity
LEARNED_VALIDITY = 0.8  # molecules: learned when this fraction of sampled SMILES is valid (MOSES baselines: 0.9-1)
LEARNED_AUDIO_ACCURACY = 0.5  # audio: learned when the classifier names the asked digit this often (chance: 0.1)
STILL_IMPROVING = 0.10  # a curve that improved more than this over its last doubling of FLOPs still falls
MIN_STABILITY_SEEDS = 3


@dataclass
class Row:
    """One verdict as a record. ``status``: winner, inconclusive, measured (a description, no ranking)
    or missing. ``ratio`` is loser/winner on the metric (>= 1), ``interval`` the 95% interval of the
    gap it rests on, ``qualifier`` what limits the claim."""

    aspect: str
    evidence: str
    verdict: str
    missing: bool = False
    status: str = "measured"
    winner: str | None = None
    metric: str | None = None
    ratio: float | None = None
    interval: tuple[float, float] | None = None
    qualifier: str = ""


def _missing(aspect: str, why: str) -> Row:
    return Row(aspect, "—", f"evidence missing: {why}", missing=True, status="missing")


def _inconclusive(aspect: str, evidence: str, why: str) -> Row:
    return Row(aspect, evidence, f"inconclusive: {why}", status="inconclusive")


def _winner(aspect: str, evidence: str, sentence: str, winner: str, metric: str, ratio: float | None,
            interval: tuple[float, float] | None, qualifier: str = "") -> Row:
    return Row(aspect, evidence, sentence + (f" ({qualifier})" if qualifier else ""), status="winner", winner=winner,
               metric=metric, ratio=ratio, interval=interval, qualifier=qualifier)


# ----------------------------------------------------------------------------- reading results


def contenders(results: dict[str, Any], suite: str) -> dict[str, dict[str, Any]]:
    return results.get("suites", {}).get(suite, {}).get("contenders", {})


def paradigm_pair(results: dict[str, Any], suite: str) -> tuple[tuple[str, dict[str, Any]],
                                                                 tuple[str, dict[str, Any]]] | None:
    """(the first sampled diffusion contender, the first sampled autoregressive one) of a suite, or None."""
    entries = contenders(results, suite).items()
    diffusion = [(n, e) for n, e in entries if e.get("family") == "diffusion" and main_quality(e)]
    autoregressive = [(n, e) for n, e in entries if e.get("family") == "autoregressive" and main_quality(e)]
    return (diffusion[0], autoregressive[0]) if diffusion and autoregressive else None


def by_steps(entry: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """A diffusion contender's measurements at each step count, fewest steps first."""
    return sorted(((int(k), m) for k, m in entry["quality"]["by_nfe"].items() if k.isdigit()), key=lambda t: t[0])


def main_quality(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of a contender at its main setting (middle NFE for diffusion, else its only one)."""
    q = entry.get("quality")
    if not q or not q.get("by_nfe"):
        return None
    return q["by_nfe"].get(q.get("main_nfe", "single")) or next(iter(q["by_nfe"].values()))


def best_fid(entry: dict[str, Any], key: str = "fid") -> tuple[float, float | None, str, float] | None:
    """(FID, its floor, the setting, its bootstrap spread or 0) at the contender's best NFE; ``key`` names
    the FID (``frame_fid`` for video), its floor ``KEY_floor`` and its spread ``KEY_std``."""
    q = entry.get("quality") or {}
    best = None
    for nfe, m in (q.get("by_nfe") or {}).items():
        if m.get(key) is not None and (best is None or m[key] < best[0]):
            best = (float(m[key]), m.get(f"{key}_floor"), nfe, float(m.get(f"{key}_std") or 0.0))
    return best


#: the FID each kind of sampled data is judged by: images whole, video frame by frame
FID_KEY = {"image": "fid", "video": "frame_fid"}


def by_family(results: dict[str, Any], suite: str, family: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, e) for name, e in contenders(results, suite).items() if e.get("family") == family]


def fmt(x: Any, digits: int = 3, missing: str = "n/a") -> str:
    """A number as the report prints it: thousands separated, else ``digits`` significant digits;
    ``missing`` for None, NaN and infinities. (The report's tables and these verdicts share it.)"""
    if x is None:
        return missing
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return "n/a"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}g}"
    return str(x)


def wilson(successes: float, n: int, z: float = Z) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (Wilson 1927); (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ----------------------------------------------------------------------------- learned?


def learned(kind: str, entry: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether a contender has learned its data by the rule for ``kind`` (see the module docstring),
    and the evidence in words; (None, why) when the numbers are missing."""
    q = entry.get("quality") or {}
    if kind in FID_KEY:
        best = best_fid(entry, FID_KEY[kind])
        what = "FID" if kind == "image" else "frame FID"
        if best is None or not best[1]:
            return None, f"no {what} with a floor"
        fid, floor = best[0], float(best[1])
        return fid <= LEARNED_FID_MULTIPLE * floor, (f"{what} {fmt(fid)} = {fmt(fid / floor, 2)}x the floor "
                                                     f"{fmt(floor)} (rule: <= {LEARNED_FID_MULTIPLE:g}x)")
    if kind == "points":
        m = main_quality(entry)
        if not m or m.get("modes_covered") is None:
            return None, "no mode coverage"
        return m["modes_covered"] >= m["modes"], f"{m['modes_covered']}/{m['modes']} modes (rule: all)"
    if kind == "text":
        val, unigram = q.get("val") or {}, q.get("unigram_perplexity")
        ppl = val.get("perplexity", val.get("perplexity_bound"))
        if ppl is None or not unigram:
            return None, "no perplexity or unigram perplexity"
        return ppl <= LEARNED_PPL_FRACTION * unigram, (f"perplexity {fmt(ppl)} vs unigram {fmt(unigram)} "
                                                       f"(rule: <= {LEARNED_PPL_FRACTION:g}x)")
    if kind == "sequence":
        rec = q.get("recall") or {}
        if not rec.get("accuracy"):
            return None, "no recall accuracy"
        n, chance = int(rec.get("n_per_distance") or 0), float(rec.get("chance") or 0.0)
        above = [d for d, a in rec["accuracy"].items() if wilson(a * n, n)[0] > chance]
        return bool(above), (f"above chance at d = {', '.join(above)}" if above else
                             f"at chance ({fmt(chance)}) at every distance") + " (rule: 95% interval above chance)"
    if kind == "molecules":  # at the contender's best setting (a masked diffusion model: its best NFE)
        valid = [m["valid"] for m in (q.get("by_nfe") or {}).values() if m.get("valid") is not None]
        if not valid:
            return None, "no validity"
        return max(valid) >= LEARNED_VALIDITY, f"valid {fmt(max(valid))} (rule: >= {LEARNED_VALIDITY:g})"
    if kind == "audio":  # at the contender's best setting
        acc = [m["accuracy"] for m in (q.get("by_nfe") or {}).values() if m.get("accuracy") is not None]
        if not acc:
            return None, "no digit accuracy (an unconditional model, or classes other than the ten digits)"
        return max(acc) >= LEARNED_AUDIO_ACCURACY, (f"digit accuracy {fmt(max(acc))} "
                                                    f"(rule: >= {LEARNED_AUDIO_ACCURACY:g}; chance 0.1)")
    return None, f"no rule for {kind}"


def learned_table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(suite, contender, learned yes/no/unknown, the evidence) for every evaluated contender."""
    rows = []
    for s_name, suite in results.get("suites", {}).items():
        for name, e in suite.get("contenders", {}).items():
            ok, why = learned(suite.get("kind", ""), e)
            rows.append((s_name, name, "unknown" if ok is None else ("yes" if ok else "no"), why))
    return rows


def _not_learned(kind: str, named: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """'name (evidence)' of every named contender that has not learned the data."""
    out = []
    for name, e in named:
        ok, why = learned(kind, e)
        if not ok:
            out.append(f"{name} ({why})")
    return out


def _curve_trend(entry: dict[str, Any], metric: str) -> float | None:
    """Relative improvement of the quality curve over its last doubling of training FLOPs (positive:
    still improving), for lower-is-better metrics; None without two points a doubling apart."""
    curve = [p for p in (entry.get("quality") or {}).get("curve") or [] if p.get(metric) is not None]
    if len(curve) < 2 or not curve[-2][metric]:
        return None
    before, last = float(curve[-2][metric]), float(curve[-1][metric])
    return (before - last) / before


def _still_improving(named: list[tuple[str, dict[str, Any]]], metric: str, budget: str) -> str:
    falling = [(n, t) for n, e in named if (t := _curve_trend(e, metric)) is not None and t > STILL_IMPROVING]
    if not falling:
        return ""
    return f"at {budget}; " + ", ".join(f"{n} still improving {100 * t:.0f}% per doubling" for n, t in falling)


def _budget(results: dict[str, Any], suite: str) -> str:
    s = results.get("suites", {}).get(suite, {})
    if s.get("budget_s") is not None:
        return f"{fmt(s['budget_s'])} s"
    return f"{fmt((s.get('budget_flops') or 0) / 1e12)} TFLOP" if s.get("budget_flops") else "this budget"


# ----------------------------------------------------------------------------- shared comparisons


def _fid_compare(aspect: str, evidence: str, results: dict[str, Any],
                 named: list[tuple[str, dict[str, Any]]], what: str = "generates better images",
                 kind: str = "image", suite: str = "fashion-mnist") -> Row:
    """Rank image (or video) contenders by their best FID (a video's: per frame): the best learned one wins
    only when its gap to the next learned one exceeds 1.96 x the combined bootstrap spread."""
    key = FID_KEY[kind]
    not_learned = _not_learned(kind, named)
    ranked = sorted(((best_fid(e, key), n, e) for n, e in named if learned(kind, e)[0]), key=lambda t: t[0][0])
    if len(ranked) < 2:
        if not ranked:
            floor = next((best_fid(e, key)[1] for _, e in named if best_fid(e, key)), None)
            return _inconclusive(aspect, evidence, f"no {kind} model within {LEARNED_FID_MULTIPLE:g}x of the floor "
                                                   f"({fmt(floor)}) at this budget: " + "; ".join(not_learned))
        return _inconclusive(aspect, evidence, f"only {ranked[0][1]} has learned the data; not learned: "
                                               + "; ".join(not_learned))
    (b, b_name, b_e), (r, r_name, r_e) = ranked[0], ranked[1]
    gap, sigma = r[0] - b[0], math.hypot(b[3], r[3])
    interval = (gap - Z * sigma, gap + Z * sigma)
    tail = ("; not learned: " + "; ".join(not_learned)) if not_learned else ""
    if interval[0] <= 0:
        return _inconclusive(aspect, evidence, f"{b_name} (FID {fmt(b[0])}) and {r_name} ({fmt(r[0])}) differ by "
                                               f"{fmt(gap)} ± {fmt(Z * sigma)} (95%), an interval that includes 0"
                             + tail)
    qualifier = _still_improving([(b_name, b_e), (r_name, r_e)], key, _budget(results, suite))
    return _winner(aspect, evidence, f"{b_name} {what} (FID {fmt(b[0])} vs {fmt(r[0])} for {r_name}, gap "
                                     f"{fmt(gap)} ± {fmt(Z * sigma)} at 95%){tail}", b_name, "FID" if kind == "image" else "frame FID",
                   r[0] / b[0] if b[0] > 0 else None, interval, qualifier)


def _count_compare(aspect: str, evidence: str, a_name: str, a: float, b_name: str, b: float, what: str,
                   kind: str, named: list[tuple[str, dict[str, Any]]]) -> Row:
    """An exact count (FLOPs, network calls; lower is better) between two contenders that learned."""
    not_learned = _not_learned(kind, named)
    if not_learned:
        return _inconclusive(aspect, evidence, f"{what} at equal quality needs models that learned the data; "
                                               "not learned: " + "; ".join(not_learned))
    if a <= 0 or b <= 0:
        return _missing(aspect, f"a zero measurement of {what}")
    ratio = max(a, b) / min(a, b)
    if ratio < SPEED_RATIO:
        return Row(aspect, evidence, f"{a_name} and {b_name} are about the same on {what} (ratio {ratio:.2f}, "
                                     f"exact counts)", status="measured", metric=what, ratio=ratio)
    win = a_name if a < b else b_name
    fewer = "fewer" if "calls" in what else "less"
    return _winner(aspect, evidence, f"{win} needs {ratio:.1f}x {fewer} {what} (exact counts)", win, what, ratio,
                   (ratio, ratio))


def _latency_compare(aspect: str, evidence: str, a_name: str, a: dict[str, Any], b_name: str, b: dict[str, Any],
                     kind: str, named: list[tuple[str, dict[str, Any]]]) -> Row:
    """Latency of one sample alone, repeated: a winner only when the ratio of the ranges excludes 1."""
    not_learned = _not_learned(kind, named)
    if not_learned:
        return _inconclusive(aspect, evidence, "speed at equal quality needs models that learned the data; "
                                               "not learned: " + "; ".join(not_learned))
    a_lo, a_hi = a.get("latency_min", a.get("latency_s")), a.get("latency_max", a.get("latency_s"))
    b_lo, b_hi = b.get("latency_min", b.get("latency_s")), b.get("latency_max", b.get("latency_s"))
    if not all(v and v > 0 for v in (a_lo, a_hi, b_lo, b_hi)):
        return _missing(aspect, "latencies were not measured")
    lo, hi = b_lo / a_hi, b_hi / a_lo  # how many times faster a is: its range over the repeats
    if lo <= 1 <= hi:
        return _inconclusive(aspect, evidence, f"the latency ratio {b_name}/{a_name} ranges {lo:.2f}-{hi:.2f} over "
                                               f"the repeats, which includes 1")
    win, lose, interval = (a_name, b_name, (lo, hi)) if lo > 1 else (b_name, a_name, (1 / hi, 1 / lo))
    ratio = math.sqrt(interval[0] * interval[1])
    return _winner(aspect, evidence, f"{win} is {ratio:.1f}x faster per sample than {lose} (range "
                                     f"{interval[0]:.1f}-{interval[1]:.1f}x over repeated timings)",
                   win, "latency per sample", ratio, interval)


# ----------------------------------------------------------------------------- rows


def _family_rep(results: dict[str, Any], suite: str, family: str) -> tuple[str, dict[str, Any]] | None:
    """The family's contender with the best main-setting FID (or the first one without FID)."""
    members = by_family(results, suite, family)
    if not members:
        return None
    scored = [(best_fid(e)[0] if best_fid(e) else math.inf, name, e) for name, e in members]
    _, name, e = min(scored, key=lambda t: t[0])
    return name, e


#: what the image-pair rows say when they have no pair to compare
NEEDS_IMAGE_PAIR = "needs trained and sampled diffusion and autoregressive image contenders"


class Side(NamedTuple):
    """One contender of the image pair: its name, its results entry and the quality of its main setting."""
    name: str
    entry: dict
    quality: dict

    @property
    def named(self) -> tuple[str, dict]:
        """(name, entry), as the learned-data rules take it."""
        return self.name, self.entry


def _sampled_image_pair(results: dict[str, Any]) -> tuple[Side, Side] | None:
    """The diffusion and the autoregressive representative on fashion-mnist, both with samples; else None."""
    diff, ar = _family_rep(results, "fashion-mnist", "diffusion"), _family_rep(results, "fashion-mnist", "autoregressive")
    if not diff or not ar or not main_quality(diff[1]) or not main_quality(ar[1]):
        return None
    return Side(*diff, main_quality(diff[1])), Side(*ar, main_quality(ar[1]))


def _image_pair_rule(aspect: str) -> Callable[[Callable[[str, Side, Side], Row]], Callable[[dict[str, Any]], Row]]:
    """A row rule over the image pair of :func:`_sampled_image_pair`: the decorated ``body(aspect,
    diffusion, autoregressive)`` runs when both exist, else the row says what is missing."""
    def wrap(body: Callable[[str, Side, Side], Row]) -> Callable[[dict[str, Any]], Row]:
        @functools.wraps(body)
        def rule(results: dict[str, Any]) -> Row:
            if (pair := _sampled_image_pair(results)) is None:
                return _missing(aspect, NEEDS_IMAGE_PAIR)
            return body(aspect, *pair)
        return rule
    return wrap


@_image_pair_rule("Core mechanism")
def core_mechanism(aspect: str, d: Side, a: Side) -> Row:
    d_calls, a_calls = d.quality.get("sequential_calls", 0), a.quality.get("sequential_calls", 0)
    evidence = (f"{d.name}: denoises the whole image {d_calls} times (NFE {d.entry['quality'].get('main_nfe')}); "
                f"{a.name}: predicts one token per network call, {a_calls} calls per image")
    if not (d_calls and a_calls):
        return _missing(aspect, "network calls were not counted")
    verdict = (f"iterative refinement vs sequential generation: the diffusion model makes "
               f"{a_calls / d_calls:.0f}x fewer sequential network calls per image (exact counts)"
               if a_calls >= d_calls else
               f"the autoregressive model makes {d_calls / a_calls:.1f}x fewer sequential calls per image")
    return Row(aspect, evidence, verdict, status="measured", metric="sequential calls")


def generation_quality(results: dict[str, Any]) -> Row:
    aspect = "Generation quality"
    named, parts = [], []
    for family in ("diffusion", "autoregressive"):
        rep = _family_rep(results, "fashion-mnist", family)
        if rep and best_fid(rep[1]):
            fid, floor, nfe, std = best_fid(rep[1])
            named.append(rep)
            parts.append(f"{rep[0]} ({family}{', NFE ' + nfe if nfe != 'single' else ''}): FID {fmt(fid)} ± "
                         f"{fmt(Z * std)}")
    if len(named) < 2:
        return _missing(aspect, "needs FID for a diffusion and an autoregressive image contender")
    evidence = "; ".join(parts) + f" (real-vs-real floor {fmt(best_fid(named[0][1])[1])})"
    return _fid_compare(aspect, evidence, results, named)


def _stability(results: dict[str, Any], family: str) -> dict[str, Any] | None:
    """Over every suite, a family's contenders run with >= 2 seeds: relative final losses (each run's
    final loss over its contender's mean), diverged runs, runs, and the contenders themselves."""
    rel, diverged, runs, members = [], 0, 0, []
    for suite in results.get("suites", {}).values():
        for name, entry in suite.get("contenders", {}).items():
            if entry.get("family") != family or len(entry.get("runs", [])) < 2:
                continue
            finals = [r["final_train_loss"] for r in entry["runs"] if r.get("final_train_loss") is not None]
            diverged += sum(1 for r in entry["runs"] if r.get("diverged"))
            runs += len(entry["runs"])
            members.append((suite.get("kind", ""), name, entry))
            mean = statistics.fmean(finals) if finals else 0.0
            rel += [f / mean for f in finals] if mean else []
    if runs == 0:
        return None
    spread = statistics.stdev(rel) if len(rel) >= 2 else math.inf
    return {"spread": spread, "diverged": diverged, "runs": runs, "n": len(rel), "members": members}


def training_stability(results: dict[str, Any], families: tuple[str, ...] = ("diffusion", "autoregressive"),
                       aspect: str = "Training stability") -> Row:
    """Diverged runs (Fisher's exact test) and the spread of relative final losses over seeds (F-test
    of the variance ratio), both at 95%, between two families whose contenders learned their data."""
    from scipy import stats

    have = {f: s for f in families if (s := _stability(results, f)) is not None}
    if len(have) < 2 or any(s["runs"] < MIN_STABILITY_SEEDS for s in have.values()):
        return _missing(aspect, f"needs at least {MIN_STABILITY_SEEDS} seeds per contender for two families "
                                f"(--seeds {MIN_STABILITY_SEEDS})")
    evidence = "; ".join(f"{f}: final-loss spread {100 * s['spread']:.1f}% over seeds, {s['diverged']}/{s['runs']} "
                         f"runs diverged" for f, s in have.items())
    not_learned = [x for s in have.values() for kind, n, e in s["members"] for x in _not_learned(kind, [(n, e)])]
    if not_learned:
        return _inconclusive(aspect, evidence, "stability of models that have not learned the data says little; "
                                               "not learned: " + "; ".join(not_learned))
    ranked = sorted(have.items(), key=lambda kv: (kv[1]["diverged"] / kv[1]["runs"], kv[1]["spread"]))
    (best, bs), (worst, ws) = ranked[0], ranked[-1]
    if bs["diverged"] != ws["diverged"]:
        table = [[bs["diverged"], bs["runs"] - bs["diverged"]], [ws["diverged"], ws["runs"] - ws["diverged"]]]
        p = stats.fisher_exact(table)[1]
        if p < 0.05:
            return _winner(aspect, evidence, f"{best} is more stable: fewer diverged runs (Fisher's exact test "
                                             f"p = {p:.2g})", best, "diverged runs", None, None)
        return _inconclusive(aspect, evidence, f"{bs['diverged']}/{bs['runs']} vs {ws['diverged']}/{ws['runs']} "
                                               f"diverged runs is within chance (Fisher's exact test p = {p:.2g})")
    if bs["n"] < 2 or ws["n"] < 2 or not bs["spread"] or not math.isfinite(ws["spread"]):
        return _inconclusive(aspect, evidence, "too few finished runs to compare spreads")
    ratio = (ws["spread"] / bs["spread"]) ** 2
    critical = stats.f.ppf(0.975, ws["n"] - 1, bs["n"] - 1)
    if ratio <= critical:
        return _inconclusive(aspect, evidence, f"variance ratio {ratio:.2g} of the final losses is within the 95% "
                                               f"F bound {critical:.2g} for {ws['n']} and {bs['n']} runs")
    return _winner(aspect, evidence, f"{best} is more stable: its final loss varies less across seeds (variance "
                                     f"ratio {ratio:.2g} > 95% F bound {critical:.2g})", best, "final-loss spread",
                   ratio, (critical, math.inf))


@_image_pair_rule("Sampling speed")
def sampling_speed(aspect: str, d: Side, a: Side) -> Row:
    nfe = f" (NFE {d.entry['quality'].get('main_nfe')})"
    evidence = "; ".join(f"{s.name}{nfe if s is d else ''}: {fmt(s.quality['samples_per_s'])} images/s, "
                         f"{fmt(s.quality['latency_s'])} s per image alone" for s in (d, a))
    return _latency_compare(aspect, evidence, d.name, d.quality, a.name, a.quality, "image", [d.named, a.named])


@_image_pair_rule("Computational cost")
def computational_cost(aspect: str, d: Side, a: Side) -> Row:
    training = ", ".join(f"{s.name} {fmt(s.entry['runs'][0]['total_flops'] / 1e12)} TFLOP" for s in (d, a))
    d_flops, a_flops = d.quality["flops_per_sample"], a.quality["flops_per_sample"]
    evidence = (f"training FLOPs in the budget: {training}; sampling: {fmt(d_flops / 1e9)} vs "
                f"{fmt(a_flops / 1e9)} GFLOP per image")
    return _count_compare(aspect, evidence, d.name, d_flops, a.name, a_flops, "FLOPs per generated image", "image",
                          [d.named, a.named])


@_image_pair_rule("Parallel processing")
def parallel_processing(aspect: str, d: Side, a: Side) -> Row:
    d_run, a_run = d.entry["runs"][0], a.entry["runs"][0]
    d_calls, a_calls = d.quality["sequential_calls"], a.quality["sequential_calls"]
    evidence = (f"training (all positions at once for both): {d.name} {fmt(d_run['items_per_s'])} "
                f"{d_run['item_name']}/s, {a.name} {fmt(a_run['items_per_s'])} {a_run['item_name']}/s; "
                f"sampling depth: {d_calls} vs {a_calls} sequential calls per image")
    if not d_calls or not a_calls:
        return _missing(aspect, "network calls were not counted")
    deeper, shallower = (a.name, d.name) if a_calls > d_calls else (d.name, a.name)
    ratio = max(a_calls, d_calls) / min(a_calls, d_calls)
    verdict = ("both parallelise equally at sampling time" if ratio < SPEED_RATIO else
               f"both train in parallel; at sampling {shallower} parallelises over the whole image while "
               f"{deeper} is {ratio:.0f}x deeper in sequential steps (exact counts)")
    return Row(aspect, evidence, verdict, status="measured", metric="sequential calls", ratio=ratio)


def _speed_at_equal_quality(aspect: str, results: dict[str, Any], suite: str, kind: str, *, needs: str,
                            evidence: Callable[[str, dict, str, list[tuple[Any, dict]]], str],
                            matches: Callable[[dict, dict], bool], learners: str, quality: str, short_of: str,
                            compare: Callable[[str, str, Any, dict, str, dict, str, dict], Row]) -> Row:
    """The frame of the speed-at-equal-quality rows: the diffusion and autoregressive contenders of
    ``suite`` (else missing: ``needs``), both learned (else inconclusive), then the fewest diffusion steps
    ``k`` whose quality ``matches(m_k, m_ar)``; where none does the AR model wins on ``quality`` (the
    diffusion model falls ``short_of`` it), else ``compare(evidence, d_name, k, m_k, a_name, m_ar, aspect,
    context)`` names the faster one there."""
    pair = paradigm_pair(results, suite)
    if pair is None:
        return _missing(aspect, needs)
    (d_name, d), (a_name, a) = pair
    am, steps = main_quality(a), by_steps(d)
    text = evidence(a_name, am, d_name, steps)
    not_learned = _not_learned(kind, [(a_name, a), (d_name, d)])
    if not_learned:
        return _inconclusive(aspect, text, f"speed at equal quality needs {learners}; not learned: "
                                           + "; ".join(not_learned))
    matched = [(k, m) for k, m in steps if matches(m, am)]
    if not matched:
        return _winner(aspect, text, f"{a_name} wins: at no measured step count does {d_name} {short_of}", a_name,
                       quality, None, None)
    k, m = matched[0]
    return compare(text, d_name, k, m, a_name, am, aspect, {"pair": [(a_name, a), (d_name, d)]})


def text_generation(results: dict[str, Any]) -> Row:
    """The seeds' claim that diffusion LMs can generate faster: the fewest denoising steps at which the
    diffusion LM's gen-PPL is within 20% of the autoregressive model's at no less than 90% of its
    sample entropy, and whether it makes fewer sequential network calls there. Both must have learned
    the text (perplexity well below the unigram perplexity)."""
    def evidence(a_name: str, am: dict, d_name: str, steps: list[tuple[Any, dict]]) -> str:
        return (f"{a_name}: gen-PPL {fmt(am.get('gen_ppl'))}, entropy {fmt(am.get('entropy_per_sample'))}, "
                f"{fmt(am.get('tokens_per_s'))} tokens/s; {d_name} at T = "
                + ", ".join(f"{k}: {fmt(m.get('gen_ppl'))} / {fmt(m.get('entropy_per_sample'))} / "
                            f"{fmt(m.get('tokens_per_s'))} tok/s" for k, m in steps))

    def matches(m: dict, am: dict) -> bool:
        return (m.get("gen_ppl") is not None and am.get("gen_ppl") is not None and m["gen_ppl"] <= 1.2 * am["gen_ppl"]
                and (m.get("entropy_per_sample") or 0) >= 0.9 * (am.get("entropy_per_sample") or 0))

    def fewer_calls(text: str, d_name: str, k: Any, m: dict, a_name: str, am: dict, aspect: str, _: dict) -> Row:
        calls_a, calls_d = am.get("sequential_calls") or 0, m.get("sequential_calls") or 0
        if not calls_a or not calls_d:
            return Row(aspect, text, f"{d_name} matches {a_name}'s quality from T = {k}", status="measured")
        ratio = max(calls_a, calls_d) / min(calls_a, calls_d)
        faster = d_name if calls_d < calls_a else a_name
        return _winner(aspect, text, f"{d_name} matches {a_name}'s quality from T = {k}; there {faster} makes "
                                     f"{ratio:.1f}x fewer sequential network calls (exact counts)", faster,
                       "sequential calls at equal quality", ratio, (ratio, ratio))

    return _speed_at_equal_quality(
        "Text generation: speed at equal quality", results, "fortunes", "text",
        needs="needs an autoregressive and a diffusion language model on the same text", evidence=evidence,
        matches=matches, learners="language models that learned the text", quality="gen-PPL",
        short_of="come within 20% of its gen-PPL at similar entropy", compare=fewer_calls)


def _rank_by_proportion(aspect: str, results: dict[str, Any], suite: str, kind: str, metric: str,
                        details: Callable[[dict[str, Any]], str], sentence: str, failures: str) -> Row:
    """Rank a suite's contenders by a proportion (``metric``: validity, classifier accuracy), each at its
    setting where it is highest, with 95% Wilson intervals: a winner only among contenders that learned
    (:func:`learned` for ``kind``) and only when its interval lies above every other's. ``details`` adds
    evidence per setting; ``sentence`` says what the winner does ("makes the most valid molecules"),
    ``failures`` what the loser makes more of ("invalid ones")."""
    entries = [(n, e) for n, e in contenders(results, suite).items() if main_quality(e)]
    if len(entries) < 2:
        return _missing(aspect, f"needs two or more sampled contenders on the {suite} suite")
    best: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
    for name, e in entries:
        nfe, m = max(e["quality"]["by_nfe"].items(), key=lambda kv: kv[1].get(metric) or 0.0)
        best.append((name, e, nfe, m))
    intervals = {name: wilson(m[metric] * m["n"], int(m["n"])) for name, _, _, m in best if m.get(metric) is not None}
    evidence = "; ".join(f"{name}{'' if nfe == 'single' else f' @ {nfe} steps'}: {metric} {fmt(m.get(metric))} "
                         + (f"[{intervals[name][0]:.3f}, {intervals[name][1]:.3f}], " if name in intervals else "")
                         + details(m) for name, _, nfe, m in best)
    not_learned = _not_learned(kind, [(name, e) for name, e, _, _ in best])
    if not_learned:
        return _inconclusive(aspect, evidence, "ranking needs contenders that learned the data; not learned: "
                                               + "; ".join(not_learned))
    ranked = sorted(best, key=lambda t: -t[3][metric])
    (w_name, _, _, w), (r_name, _, _, r) = ranked[0], ranked[1]
    if intervals[w_name][0] <= max(intervals[name][1] for name, _, _, _ in ranked[1:]):
        return _inconclusive(aspect, evidence, f"the 95% intervals of {w_name} and {r_name} overlap")
    ratio = (1 - r[metric]) / max(1 - w[metric], 1e-9)
    return _winner(aspect, evidence, f"{w_name} {sentence} ({fmt(w[metric])} vs {fmt(r[metric])}: {ratio:.1f}x fewer "
                                     f"{failures})", w_name, metric, ratio, intervals[w_name],
                   f"at {_budget(results, suite)}")


def molecule_generation(results: dict[str, Any]) -> Row:
    """Which family makes valid molecules (MOSES): validity of each contender at its best setting with its 95%
    Wilson interval; a winner only among contenders that learned (validity rule) and only when its interval
    lies above every other's. FCD/Test, novelty and molecules/s are printed beside as evidence."""
    return _rank_by_proportion("Molecules (MOSES): valid SMILES", results, "moses", "molecules", "valid",
                               lambda m: f"FCD {fmt(m.get('FCD/Test'))}, novelty {fmt(m.get('Novelty'))}, "
                                         f"{fmt(m.get('samples_per_s'))} mol/s",
                               "makes the most valid molecules", "invalid ones")


#: the arena's audio suite (spoken digits)
AUDIO_SUITE = "spoken-digits"


def _audio_details(m: dict[str, Any]) -> str:
    return (f"FD {fmt(m.get('fd'))} (floor {fmt(m.get('fd_floor'))}), real-time factor "
            f"{fmt(m.get('real_time_factor'))} in {fmt(m.get('sequential_calls'))} sequential calls")


def audio_quality(results: dict[str, Any]) -> Row:
    """Which family says the asked digit (spoken digits): the in-project classifier's accuracy on each
    contender's class-conditional clips at its best setting, with 95% Wilson intervals (as for molecules)."""
    return _rank_by_proportion("Audio (spoken digits): recognisable words", results, AUDIO_SUITE, "audio",
                               "accuracy", _audio_details, "says the asked digit most often", "misheard clips")


def audio_speed(results: dict[str, Any]) -> Row:
    """The seeds' claim that diffusion generates audio faster than waveform autoregression: the fewest
    denoising steps at which the diffusion model's digit accuracy is not below the autoregressive model's
    beyond the noise (its 95% interval reaches that accuracy), and which is faster there, by the latency of
    one clip alone over repeated timings (its real-time factor; exact network-call counts beside)."""
    def evidence(a_name: str, am: dict, d_name: str, steps: list[tuple[Any, dict]]) -> str:
        return (f"{a_name}: accuracy {fmt(am.get('accuracy'))}, real-time factor {fmt(am.get('real_time_factor'))} "
                f"({fmt(am.get('sequential_calls'))} calls); {d_name} at "
                + ", ".join(f"{k} steps: {fmt(m.get('accuracy'))}, {fmt(m.get('real_time_factor'))}" for k, m in steps))

    def matches(m: dict, am: dict) -> bool:
        return (m.get("accuracy") is not None and am.get("accuracy") is not None
                and wilson(m["accuracy"] * m["n"], int(m["n"]))[1] >= am["accuracy"])

    def faster(text: str, d_name: str, k: Any, m: dict, a_name: str, am: dict, aspect: str, ctx: dict) -> Row:
        row = _latency_compare(aspect, text, d_name, m, a_name, am, "audio", ctx["pair"])
        if not row.missing:
            row.verdict = f"{d_name} matches {a_name}'s accuracy from {k} steps; there " + row.verdict
        return row

    return _speed_at_equal_quality(
        "Audio: generation speed at equal quality", results, AUDIO_SUITE, "audio",
        needs="needs an autoregressive and a diffusion audio model on spoken digits", evidence=evidence,
        matches=matches, learners="audio models that learned the digits", quality="accuracy",
        short_of="reach its accuracy", compare=faster)


#: the arena's video suite (moving objects)
VIDEO_SUITE = "moving-fashion"


def video_frame_quality(results: dict[str, Any]) -> Row:
    """Which way of tying frames together makes better frames: the frame FID (frames pooled) at each
    contender's best setting, compared as images are (learned rule and block-bootstrap interval)."""
    aspect = "Video: frame quality (joint vs frame by frame)"
    pair = paradigm_pair(results, VIDEO_SUITE)
    if pair is None:
        return _missing(aspect, "needs a joint video diffusion and a frame-by-frame contender on moving-fashion")
    named = list(pair)
    evidence = "; ".join(f"{n}: frame FID {fmt(b[0])} ± {fmt(Z * b[3])} at {b[2]} steps" for n, e in named
                         if (b := best_fid(e, "frame_fid"))) + \
        f" (floor {fmt((best_fid(named[0][1], 'frame_fid') or (0, None))[1])})"
    return _fid_compare(aspect, evidence, results, named, "makes better frames", "video", VIDEO_SUITE)


def _px_compare(aspect: str, results: dict[str, Any], values: Callable[[dict[str, Any]], tuple[float, float] | None],
                reference: str, sentence: str, metric: str) -> Row:
    """Rank the video suite's two contenders by a mean in pixels (lower is better) with its standard
    error: ``values(entry)`` -> (mean, se) or None; a winner only between contenders that learned the
    frames and only when the 95% interval of the gap excludes 0. ``reference`` is what real clips score,
    ``sentence`` what the winner does ("moves objects more consistently")."""
    pair = paradigm_pair(results, VIDEO_SUITE)
    if pair is None:
        return _missing(aspect, "needs a joint video diffusion and a frame-by-frame contender on moving-fashion")
    (a_name, a), (b_name, b) = pair
    va, vb = values(a), values(b)
    if va is None or vb is None:
        return _missing(aspect, f"{metric} was not measured")
    evidence = f"{a_name}: {fmt(va[0])} ± {fmt(Z * va[1])} px; {b_name}: {fmt(vb[0])} ± {fmt(Z * vb[1])} px ({reference})"
    not_learned = _not_learned("video", list(pair))
    if not_learned:
        return _inconclusive(aspect, evidence, "this compares models that learned the frames; not learned: "
                                               + "; ".join(not_learned))
    gap, sigma = vb[0] - va[0], math.hypot(va[1], vb[1])
    if abs(gap) <= Z * sigma:
        return _inconclusive(aspect, evidence, f"the gap {fmt(gap)} ± {fmt(Z * sigma)} px (95%) includes 0")
    (w, w_v), l_v = ((a_name, va), vb) if gap > 0 else ((b_name, vb), va)
    return _winner(aspect, evidence, f"{w} {sentence} ({fmt(w_v[0])} vs {fmt(l_v[0])} px)", w, metric,
                   l_v[0] / max(w_v[0], 1e-9), (abs(gap) - Z * sigma, abs(gap) + Z * sigma),
                   f"at {_budget(results, VIDEO_SUITE)}")


def video_motion(results: dict[str, Any]) -> Row:
    """Which way moves objects as physics does: the tracked positions' RMS deviation from the best
    constant-velocity-with-bounce motion (px per clip, lower is better) at each contender's main setting,
    with the per-clip standard error; real clips' value beside (what the tracker reads on true motion)."""
    def motion(e: dict[str, Any]) -> tuple[float, float] | None:
        m = main_quality(e) or {}
        return None if m.get("temporal_consistency_px") is None else \
            (m["temporal_consistency_px"], m.get("temporal_consistency_se") or 0.0)

    m = main_quality(next(iter(contenders(results, VIDEO_SUITE).values()), {})) or {}
    return _px_compare("Video: temporal consistency (motion as physics has it)", results, motion,
                       f"real clips {fmt(m.get('temporal_consistency_px_floor'))} px",
                       "moves objects more consistently, from constant velocity with bounces", "motion residual px")


def video_prediction(results: dict[str, Any]) -> Row:
    """Which way continues held-out clips as physics would: the distance between the tracked object in
    each continued frame and its true position (px, mean over clips with its standard error)."""
    def error(e: dict[str, Any]) -> tuple[float, float] | None:
        p = (e.get("quality") or {}).get("prediction")
        return None if not p else (p["position_error_px"], p["position_error_se"])

    p = next((q["prediction"] for e in contenders(results, VIDEO_SUITE).values()
              if (q := e.get("quality") or {}).get("prediction")), {})
    return _px_compare(f"Video: prediction from {p.get('context_frames', 'the first')} given frames", results, error,
                       f"the tracker's own error on the true frames {fmt(p.get('tracker_error_px'))} px",
                       "continues held-out clips closer to the true trajectory", "position error px")


def video_cost(results: dict[str, Any]) -> Row:
    """Sampling cost per clip: sequential network calls (exact counts) of each contender at its main
    setting; joint diffusion makes one call per step for all frames, frame by frame one per step per frame."""
    aspect = "Video: sampling cost per clip"
    pair = paradigm_pair(results, VIDEO_SUITE)
    if pair is None:
        return _missing(aspect, "needs a joint video diffusion and a frame-by-frame contender on moving-fashion")
    (a_name, a), (b_name, b) = pair
    ma, mb = main_quality(a), main_quality(b)
    evidence = "; ".join(f"{n}: {fmt(m.get('sequential_calls'))} sequential calls, {fmt(m.get('latency_s'))} s, "
                         f"{fmt((m.get('flops_per_sample') or 0) / 1e9)} GFLOP per clip"
                         for n, m in ((a_name, ma), (b_name, mb)))
    return _count_compare(aspect, evidence, a_name, ma.get("sequential_calls") or 0, b_name,
                          mb.get("sequential_calls") or 0, "sequential network calls per clip", "video", list(pair))


RECALL_THRESHOLD = 0.5  # accuracy whose 95% interval lies above this counts as recalled (chance is 0.1)


def _recall_entries(results: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[int, float], int]]:
    """(name, contender entry, {distance: accuracy}, items per distance) of every ``sequence`` contender."""
    out = []
    for suite in results.get("suites", {}).values():
        if suite.get("kind") != "sequence":
            continue
        for name, e in suite.get("contenders", {}).items():
            rec = (e.get("quality") or {}).get("recall") or {}
            if rec.get("accuracy"):
                out.append((name, e, {int(d): float(a) for d, a in rec["accuracy"].items()},
                            int(rec.get("n_per_distance") or 0)))
    return out


def long_range(results: dict[str, Any]) -> Row:
    """Associative recall at growing distance (the ``sequence`` suite): the longest distance each
    transformer recalls (the 95% Wilson interval of its accuracy above RECALL_THRESHOLD), then the
    mean accuracy over the grid with its binomial interval; the convolution baseline's accuracy beyond
    its receptive field shows what a finite reach costs."""
    aspect = "Long-range dependencies"
    entries = _recall_entries(results)
    ar = [t for t in entries if t[1].get("family") == "autoregressive"
          and not t[1]["quality"]["recall"].get("receptive_field")]
    dl = [t for t in entries if t[1].get("family") == "diffusion"]
    if not (ar and dl):
        text = contenders(results, "fortunes")
        if not any(e.get("family") == "diffusion" for e in text.values()):
            return _missing(aspect, "no diffusion language model on the same text in this run (and no long-context "
                                    "probe)")
        return _missing(aspect, "needs the sequence suite (twopaths arena --suite sequence): recall accuracy of an "
                                "autoregressive and a diffusion language model")
    evidence = "; ".join(f"{n}" + (f" (receptive field {e['quality']['recall']['receptive_field']})"
                                   if e["quality"]["recall"].get("receptive_field") else "")
                         + ": " + ", ".join(f"d={d} {fmt(a, 2)}" for d, a in sorted(acc.items()))
                         for n, e, acc, _ in entries)
    evidence += (f" (answer accuracy over {entries[0][3]} items per distance; chance "
                 f"{fmt(entries[0][1]['quality']['recall'].get('chance'))})")
    (a_name, _, a_acc, a_n), (d_name, _, d_acc, d_n) = ar[0], dl[0]

    def longest(acc: dict[int, float], n: int) -> int:
        return max((d for d, a in acc.items() if wilson(a * n, n)[0] > RECALL_THRESHOLD), default=0)

    def mean_and_se(acc: dict[int, float], n: int) -> tuple[float, float]:
        k = len(acc)
        return statistics.fmean(acc.values()), math.sqrt(sum(a * (1 - a) / max(n, 1) for a in acc.values())) / k

    a_far, d_far = longest(a_acc, a_n), longest(d_acc, d_n)
    (a_mean, a_se), (d_mean, d_se) = mean_and_se(a_acc, a_n), mean_and_se(d_acc, d_n)
    gap, half = abs(a_mean - d_mean), Z * math.hypot(a_se, d_se)
    beyond = ""
    for n, e, acc, _ in entries:
        rf = e["quality"]["recall"].get("receptive_field")
        out = [a for d, a in acc.items() if rf and d + 1 >= rf]
        if out:
            beyond += (f"; {n} beyond its receptive field of {rf}: mean accuracy {fmt(statistics.fmean(out), 2)}"
                       f" (chance {fmt(e['quality']['recall'].get('chance'))})")
    if not a_far and not d_far:
        return _inconclusive(aspect, evidence, f"neither {a_name} nor {d_name} recalls above {RECALL_THRESHOLD} "
                                               f"(95% interval) at any distance within this budget" + beyond)
    if a_far != d_far:
        win, lose = (a_name, d_name) if a_far > d_far else (d_name, a_name)
        return _winner(aspect, evidence, f"{win} recalls further: up to d = {max(a_far, d_far)} vs "
                       + (f"d = {min(a_far, d_far)}" if min(a_far, d_far) else "no distance") + f" for {lose}" + beyond,
                       win, "longest distance recalled", max(a_far, d_far) / max(min(a_far, d_far), 1), None)
    if gap <= half:
        return _inconclusive(aspect, evidence, f"both recall up to d = {a_far}; mean accuracy {fmt(a_mean, 2)} vs "
                                               f"{fmt(d_mean, 2)} differ by less than the 95% interval ±{fmt(half, 2)}"
                             + beyond)
    win = a_name if a_mean > d_mean else d_name
    return _winner(aspect, evidence, f"both recall up to d = {a_far}; {win} is more accurate over the grid (mean "
                                     f"{fmt(max(a_mean, d_mean), 2)} vs {fmt(min(a_mean, d_mean), 2)}, ±{fmt(half, 2)} "
                                     f"at 95%)" + beyond, win, "mean recall accuracy",
                   max(a_mean, d_mean) / max(min(a_mean, d_mean), 1e-9), (gap - half, gap + half))


def interpretability(results: dict[str, Any]) -> Row:
    return _missing("Interpretability", "no quantitative measure; see the denoising trajectory and samples")


def vs_baselines_quality(results: dict[str, Any]) -> Row:
    aspect = "Quality: diffusion vs GAN vs VAE"
    named = [rep for family in ("diffusion", "gan", "vae")
             if (rep := _family_rep(results, "fashion-mnist", family)) and best_fid(rep[1])]
    if len(named) < 2:
        return _missing(aspect, "needs FID for diffusion and at least one of GAN/VAE")
    evidence = ("; ".join(f"{n}: FID {fmt(best_fid(e)[0])} ± {fmt(Z * best_fid(e)[3])}" for n, e in named)
                + f" (floor {fmt(best_fid(named[0][1])[1])})")
    return _fid_compare(aspect, evidence, results, named)


def denoiser_backbones(results: dict[str, Any]) -> Row:
    """U-Net vs DiT vs latent diffusion under the same objective, budget and data: best FID of each,
    beside what one network call costs (GFLOP per call = sampling FLOPs / sequential calls)."""
    aspect = "Denoiser: U-Net vs DiT vs latent (same diffusion objective)"
    named, parts = [], []
    for name, e in by_family(results, "fashion-mnist", "diffusion"):
        best, m = best_fid(e), main_quality(e)
        if best is None or not m:
            continue
        named.append((name, e))
        per_call = m["flops_per_sample"] / m["sequential_calls"] if m.get("sequential_calls") else None
        parts.append(f"{name}: FID {fmt(best[0])} at {best[2]} steps, "
                     f"{fmt(per_call / 1e9 if per_call else None)} GFLOP per call, {fmt(e['runs'][0]['params'])} params")
    if len(named) < 2:
        return _missing(aspect, "needs FID for at least two diffusion denoisers (ddpm, dit, ldm)")
    return _fid_compare(aspect, "; ".join(parts) + f" (floor {fmt(best_fid(named[0][1])[1])})", results, named)


def mode_collapse(results: dict[str, Any]) -> Row:
    """Collapse = fewer mixture modes covered than exist, or a class histogram with normalised entropy
    < 0.9, judged only for contenders that learned their data (an untrained model's odd histogram is
    not collapse)."""
    aspect = "Mode collapse"
    parts, collapsed, unjudged, seen = [], [], [], 0
    for name, e in contenders(results, "mixture2d").items():
        m = main_quality(e)
        if m and m.get("modes_covered") is not None:
            seen += 1
            parts.append(f"{name}: {m['modes_covered']}/{m.get('modes', '?')} modes")
            if m.get("modes") and m["modes_covered"] < m["modes"]:
                collapsed.append(f"{name} (mixture2d)")
    for name, e in contenders(results, "fashion-mnist").items():
        m = main_quality(e)
        if m and m.get("class_entropy_norm") is not None:
            seen += 1
            parts.append(f"{name}: class entropy {m['class_entropy_norm']:.2f}, recall {fmt(m.get('recall'))}")
            if not learned("image", e)[0]:
                unjudged.append(name)
            elif m["class_entropy_norm"] < 0.9:
                collapsed.append(f"{name} (fashion-mnist)")
    if seen < 2:
        return _missing(aspect, "needs mode coverage or class histograms for at least two contenders")
    tail = (f"; not judged on fashion-mnist (not learned): {', '.join(unjudged)}" if unjudged else "")
    verdict = ("no collapse detected among the contenders judged" if not collapsed else
               "collapse detected in " + ", ".join(collapsed))
    return Row(aspect, "; ".join(parts), verdict + tail, status="measured")


def single_pass_speed(results: dict[str, Any]) -> Row:
    aspect = "Single-pass speed (GAN/VAE vs diffusion)"
    diff = _family_rep(results, "fashion-mnist", "diffusion")
    fast = [(n, e) for f in ("gan", "vae") for n, e in by_family(results, "fashion-mnist", f) if main_quality(e)]
    if not diff or not main_quality(diff[1]) or not fast:
        return _missing(aspect, "needs a sampled diffusion contender and a GAN or VAE")
    q = diff[1]["quality"]["by_nfe"]
    lowest = min(q, key=lambda k: int(k) if k.isdigit() else 10**9)
    d = q[lowest]
    name, e = max(fast, key=lambda t: main_quality(t[1])["samples_per_s"])
    f = main_quality(e)
    evidence = (f"{name}: {fmt(f['samples_per_s'])} images/s in {f.get('sequential_calls', 1)} call; "
                f"{diff[0]} at its fewest steps (NFE {lowest}): {fmt(d['samples_per_s'])} images/s")
    return _latency_compare(aspect, evidence, name, f, diff[0], d, "image", [(name, e), diff])


SEEDS_TABLE = (core_mechanism, generation_quality, training_stability, sampling_speed, computational_cost,
               parallel_processing, text_generation, long_range, molecule_generation, audio_quality, audio_speed,
               video_frame_quality, video_motion, video_prediction, video_cost, interpretability)
#: rows about one domain's suite: in the table only when that suite was run (else they would only say "missing")
DOMAIN_ROWS = {molecule_generation: "moses", audio_quality: AUDIO_SUITE, audio_speed: AUDIO_SUITE,
               video_frame_quality: VIDEO_SUITE, video_motion: VIDEO_SUITE, video_prediction: VIDEO_SUITE,
               video_cost: VIDEO_SUITE}
BASELINES_TABLE = (vs_baselines_quality, mode_collapse, single_pass_speed, denoiser_backbones)


def comparison_rows(results: dict[str, Any]) -> tuple[list[Row], list[Row]]:
    """(diffusion vs transformers rows, diffusion vs GAN/VAE and denoiser-backbone rows)."""
    baselines = [rule(results) for rule in BASELINES_TABLE]
    baselines.insert(2, training_stability(results, ("diffusion", "gan", "vae"), "Training stability (vs GAN/VAE)"))
    ran = set(results.get("suites", {}))
    return [rule(results) for rule in SEEDS_TABLE if rule not in DOMAIN_ROWS or DOMAIN_ROWS[rule] in ran], baselines
