"""The seeds' comparison table, filled from measurements: one row per aspect, evidence and verdict.

Every verdict is computed from the numbers in ``results.json`` by a rule written here, never
typed in: change the numbers and the verdicts change (tests feed contrived results). A row whose
evidence is missing says so.

Conventions: a quality difference counts only when it exceeds both 10% of the better value and
the real-vs-real floor at that sample count (differences inside the metric's own noise are
ties); a speed or cost difference counts when the ratio exceeds 1.2.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

SPEED_RATIO = 1.2  # below this, "about the same"
QUALITY_MARGIN = 0.10  # relative FID difference needed, on top of the floor


@dataclass
class Row:
    aspect: str
    evidence: str
    verdict: str
    missing: bool = False


def _missing(aspect: str, why: str) -> Row:
    return Row(aspect, "—", f"evidence missing: {why}", missing=True)


# ----------------------------------------------------------------------------- reading results


def contenders(results: dict[str, Any], suite: str) -> dict[str, dict[str, Any]]:
    return results.get("suites", {}).get(suite, {}).get("contenders", {})


def main_quality(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of a contender at its main setting (middle NFE for diffusion, else its only one)."""
    q = entry.get("quality")
    if not q or not q.get("by_nfe"):
        return None
    return q["by_nfe"].get(q.get("main_nfe", "single")) or next(iter(q["by_nfe"].values()))


def best_fid(entry: dict[str, Any]) -> tuple[float, float | None, str] | None:
    """(FID, its floor, the setting) at the contender's best NFE."""
    q = entry.get("quality") or {}
    best = None
    for nfe, m in (q.get("by_nfe") or {}).items():
        if m.get("fid") is not None and (best is None or m["fid"] < best[0]):
            best = (float(m["fid"]), m.get("fid_floor"), nfe)
    return best


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




def _ratio_phrase(a_name: str, a: float, b_name: str, b: float, what: str, higher_better: bool = True) -> str:
    if a <= 0 or b <= 0:
        return f"cannot compare {what} (a zero measurement)"
    ratio = a / b if a >= b else b / a
    if ratio < SPEED_RATIO:
        return f"{a_name} and {b_name} are about the same on {what} (ratio {ratio:.2f})"
    winner = (a_name if a > b else b_name) if higher_better else (a_name if a < b else b_name)
    return f"{winner} is {ratio:.1f}x better on {what}"


def _quality_compare(named: list[tuple[str, float, float | None]]) -> str:
    """named: (name, fid, floor). The best, and whether its lead is outside the noise."""
    named = sorted(named, key=lambda t: t[1])
    (b_name, b_fid, b_floor), (r_name, r_fid, _) = named[0], named[1]
    margin = max(QUALITY_MARGIN * b_fid, b_floor or 0.0)
    rest = "" if len(named) == 2 else "; then " + ", ".join(f"{n} ({fmt(f)})" for n, f, _ in named[2:])
    if r_fid - b_fid <= margin:
        return (f"tie: {b_name} (FID {fmt(b_fid)}) and {r_name} ({fmt(r_fid)}) differ by less than the noise "
                f"margin {fmt(margin)}{rest}")
    return f"{b_name} generates better images (FID {fmt(b_fid)} vs {fmt(r_fid)} for {r_name}{rest})"


# ----------------------------------------------------------------------------- rows


def _family_rep(results: dict[str, Any], suite: str, family: str) -> tuple[str, dict[str, Any]] | None:
    """The family's contender with the best main-setting FID (or the first one without FID)."""
    members = by_family(results, suite, family)
    if not members:
        return None
    scored = [(best_fid(e)[0] if best_fid(e) else math.inf, name, e) for name, e in members]
    _, name, e = min(scored, key=lambda t: t[0])
    return name, e


def _sampled_image_pair(results: dict[str, Any]) -> tuple[tuple[str, dict], tuple[str, dict]] | None:
    """(diffusion, autoregressive) representatives on fashion-mnist, both with samples; else None."""
    diff, ar = _family_rep(results, "fashion-mnist", "diffusion"), _family_rep(results, "fashion-mnist", "autoregressive")
    if not diff or not ar or not main_quality(diff[1]) or not main_quality(ar[1]):
        return None
    return diff, ar


def core_mechanism(results: dict[str, Any]) -> Row:
    aspect = "Core mechanism"
    pair = _sampled_image_pair(results)
    if pair is None:
        return _missing(aspect, "needs a diffusion and an autoregressive image contender with samples")
    diff, ar = pair
    dq, aq = main_quality(diff[1]), main_quality(ar[1])
    d_calls, a_calls = dq.get("sequential_calls", 0), aq.get("sequential_calls", 0)
    evidence = (f"{diff[0]}: denoises the whole image {d_calls} times (NFE {diff[1]['quality'].get('main_nfe')}); "
                f"{ar[0]}: predicts one token per network call, {a_calls} calls per image")
    if d_calls and a_calls:
        verdict = (f"iterative refinement vs sequential generation: the diffusion model needs "
                   f"{a_calls / d_calls:.0f}x fewer sequential network calls per image" if a_calls >= d_calls else
                   f"the autoregressive model needs {d_calls / a_calls:.1f}x fewer sequential calls per image")
    else:
        verdict = "evidence missing: network calls were not counted"
    return Row(aspect, evidence, verdict, missing=not (d_calls and a_calls))


def generation_quality(results: dict[str, Any]) -> Row:
    aspect = "Generation quality"
    named = []
    for family in ("diffusion", "autoregressive"):
        rep = _family_rep(results, "fashion-mnist", family)
        if rep and best_fid(rep[1]):
            fid, floor, nfe = best_fid(rep[1])
            named.append((f"{rep[0]} ({family}{', NFE ' + nfe if nfe != 'single' else ''})", fid, floor))
    if len(named) < 2:
        return _missing(aspect, "needs FID for a diffusion and an autoregressive image contender")
    floor = named[0][2]
    evidence = "; ".join(f"{n}: FID {fmt(f)}" for n, f, _ in named) + f" (real-vs-real floor {fmt(floor)})"
    return Row(aspect, evidence, _quality_compare(named))


def _stability(results: dict[str, Any], family: str) -> tuple[float, int, int] | None:
    """(worst relative spread of final loss over seeds, diverged runs, runs) for a family's contenders
    that ran with at least 2 seeds, over every suite."""
    spreads, diverged, runs = [], 0, 0
    for suite in results.get("suites", {}).values():
        for entry in suite.get("contenders", {}).values():
            if entry.get("family") != family or len(entry.get("runs", [])) < 2:
                continue
            finals = [r["final_train_loss"] for r in entry["runs"] if r.get("final_train_loss") is not None]
            diverged += sum(1 for r in entry["runs"] if r.get("diverged"))
            runs += len(entry["runs"])
            if len(finals) >= 2:
                mean = statistics.fmean(finals)
                spreads.append(statistics.stdev(finals) / abs(mean) if mean else math.inf)
    if runs == 0:
        return None
    return (max(spreads) if spreads else math.inf), diverged, runs


def training_stability(results: dict[str, Any], families: tuple[str, ...] = ("diffusion", "autoregressive"),
                       aspect: str = "Training stability") -> Row:
    stats = {f: _stability(results, f) for f in families}
    have = {f: s for f, s in stats.items() if s is not None}
    if len(have) < 2:
        return _missing(aspect, "needs at least 2 seeds per contender for two families (--seeds 3)")
    evidence = "; ".join(f"{f}: final-loss spread {100 * s[0]:.1f}% over seeds, {s[1]}/{s[2]} runs diverged"
                         for f, s in have.items())
    ranked = sorted(have.items(), key=lambda kv: (kv[1][1] / kv[1][2], kv[1][0]))
    (best, bs), (_, ws) = ranked[0], ranked[-1]
    if bs[1] == ws[1] and ws[0] - bs[0] < 0.02:
        verdict = "equally stable: no divergences and final losses within 2% across seeds" if bs[1] == 0 else \
            "equally unstable"
    elif bs[1] < ws[1]:
        verdict = f"{best} is more stable: fewer diverged runs"
    else:
        verdict = f"{best} is more stable: final loss varies less across seeds"
    return Row(aspect, evidence, verdict)


def sampling_speed(results: dict[str, Any]) -> Row:
    aspect = "Sampling speed"
    pair = _sampled_image_pair(results)
    if pair is None:
        return _missing(aspect, "needs sampled diffusion and autoregressive image contenders")
    diff, ar = pair
    dq, aq = main_quality(diff[1]), main_quality(ar[1])
    evidence = (f"{diff[0]} (NFE {diff[1]['quality'].get('main_nfe')}): {fmt(dq['samples_per_s'])} images/s, "
                f"{fmt(dq['latency_s'])} s per image alone; {ar[0]}: {fmt(aq['samples_per_s'])} images/s, "
                f"{fmt(aq['latency_s'])} s per image alone")
    return Row(aspect, evidence, _ratio_phrase(diff[0], dq["samples_per_s"], ar[0], aq["samples_per_s"],
                                               "images per second"))


def computational_cost(results: dict[str, Any]) -> Row:
    aspect = "Computational cost"
    pair = _sampled_image_pair(results)
    if pair is None:
        return _missing(aspect, "needs trained and sampled diffusion and autoregressive image contenders")
    diff, ar = pair
    d_run, a_run = diff[1]["runs"][0], ar[1]["runs"][0]
    dq, aq = main_quality(diff[1]), main_quality(ar[1])
    evidence = (f"training FLOPs in the budget: {diff[0]} {fmt(d_run['total_flops'] / 1e12)} TFLOP, "
                f"{ar[0]} {fmt(a_run['total_flops'] / 1e12)} TFLOP; sampling: {fmt(dq['flops_per_sample'] / 1e9)} vs "
                f"{fmt(aq['flops_per_sample'] / 1e9)} GFLOP per image")
    verdict = _ratio_phrase(diff[0], dq["flops_per_sample"], ar[0], aq["flops_per_sample"],
                            "FLOPs per generated image", higher_better=False)
    return Row(aspect, evidence, verdict)


def parallel_processing(results: dict[str, Any]) -> Row:
    aspect = "Parallel processing"
    pair = _sampled_image_pair(results)
    if pair is None:
        return _missing(aspect, "needs trained and sampled diffusion and autoregressive image contenders")
    diff, ar = pair
    d_run, a_run = diff[1]["runs"][0], ar[1]["runs"][0]
    d_calls, a_calls = main_quality(diff[1])["sequential_calls"], main_quality(ar[1])["sequential_calls"]
    evidence = (f"training (all positions at once for both): {diff[0]} {fmt(d_run['items_per_s'])} "
                f"{d_run['item_name']}/s, {ar[0]} {fmt(a_run['items_per_s'])} {a_run['item_name']}/s; "
                f"sampling depth: {d_calls} vs {a_calls} sequential calls per image")
    if not d_calls or not a_calls:
        return Row(aspect, evidence, "evidence missing: network calls were not counted", missing=True)
    deeper, shallower = (ar[0], diff[0]) if a_calls > d_calls else (diff[0], ar[0])
    ratio = max(a_calls, d_calls) / min(a_calls, d_calls)
    verdict = ("both parallelise equally at sampling time" if ratio < SPEED_RATIO else
               f"both train in parallel; at sampling {shallower} parallelises over the whole image while "
               f"{deeper} is {ratio:.0f}x deeper in sequential steps")
    return Row(aspect, evidence, verdict)


def text_generation(results: dict[str, Any]) -> Row:
    """The seeds' claim that diffusion LMs can generate faster: the fewest denoising steps at which the
    diffusion LM's gen-PPL is within 20% of the autoregressive model's at no less than 90% of its
    sample entropy, and who is faster there."""
    aspect = "Text generation: speed at equal quality"
    text = contenders(results, "fortunes")
    ar = [(n, e) for n, e in text.items() if e.get("family") == "autoregressive" and main_quality(e)]
    dl = [(n, e) for n, e in text.items() if e.get("family") == "diffusion" and main_quality(e)]
    if not ar or not dl:
        return _missing(aspect, "needs an autoregressive and a diffusion language model on the same text")
    (a_name, a), (d_name, d) = ar[0], dl[0]
    am = main_quality(a)
    steps = sorted(((int(k), m) for k, m in d["quality"]["by_nfe"].items() if k.isdigit()), key=lambda t: t[0])
    evidence = (f"{a_name}: gen-PPL {fmt(am.get('gen_ppl'))}, entropy {fmt(am.get('entropy_per_sample'))}, "
                f"{fmt(am.get('tokens_per_s'))} tokens/s; {d_name} at T = "
                + ", ".join(f"{k}: {fmt(m.get('gen_ppl'))} / {fmt(m.get('entropy_per_sample'))} / "
                            f"{fmt(m.get('tokens_per_s'))} tok/s" for k, m in steps))
    matched = [(k, m) for k, m in steps if m.get("gen_ppl") is not None and am.get("gen_ppl") is not None
               and m["gen_ppl"] <= 1.2 * am["gen_ppl"]
               and (m.get("entropy_per_sample") or 0) >= 0.9 * (am.get("entropy_per_sample") or 0)]
    if not matched:
        return Row(aspect, evidence, f"{a_name} wins: at no measured step count does {d_name} come within 20% of "
                                     f"its gen-PPL at similar entropy")
    k, m = matched[0]
    return Row(aspect, evidence, f"{d_name} matches {a_name}'s quality from T = {k}; there "
               + _ratio_phrase(d_name, m["tokens_per_s"], a_name, am["tokens_per_s"], "tokens per second"))


RECALL_THRESHOLD = 0.5  # accuracy at which a distance counts as recalled (chance is 0.1)
RECALL_MARGIN = 0.05  # mean accuracies closer than this are a tie


def _recall_entries(results: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[int, float]]]:
    """(name, contender entry, {distance: accuracy}) of every contender of a ``sequence`` suite."""
    out = []
    for suite in results.get("suites", {}).values():
        if suite.get("kind") != "sequence":
            continue
        for name, e in suite.get("contenders", {}).items():
            acc = ((e.get("quality") or {}).get("recall") or {}).get("accuracy")
            if acc:
                out.append((name, e, {int(d): float(a) for d, a in acc.items()}))
    return out


def long_range(results: dict[str, Any]) -> Row:
    """Associative recall at growing distance (the ``sequence`` suite): the longest distance each
    transformer recalls (accuracy >= RECALL_THRESHOLD), then the mean accuracy over the grid; the
    convolution baseline's accuracy beyond its receptive field shows what a finite reach costs."""
    aspect = "Long-range dependencies"
    entries = _recall_entries(results)
    ar = [t for t in entries if t[1].get("family") == "autoregressive"
          and not t[1]["quality"]["recall"].get("receptive_field")]
    dl = [t for t in entries if t[1].get("family") == "diffusion"]
    if ar and dl:
        def longest(acc: dict[int, float]) -> int:
            return max((d for d, a in acc.items() if a >= RECALL_THRESHOLD), default=0)

        evidence = "; ".join(f"{n}" + (f" (receptive field {e['quality']['recall']['receptive_field']})"
                                       if e["quality"]["recall"].get("receptive_field") else "")
                             + ": " + ", ".join(f"d={d} {fmt(a, 2)}" for d, a in sorted(acc.items()))
                             for n, e, acc in entries)
        evidence += f" (answer accuracy; chance {fmt(entries[0][1]['quality']['recall'].get('chance'))})"
        (a_name, _, a_acc), (d_name, _, d_acc) = ar[0], dl[0]
        a_far, d_far = longest(a_acc), longest(d_acc)
        a_mean, d_mean = statistics.fmean(a_acc.values()), statistics.fmean(d_acc.values())
        if not a_far and not d_far:
            verdict = (f"neither {a_name} nor {d_name} reaches accuracy {RECALL_THRESHOLD} at any distance within "
                       f"this budget: no evidence either way")
        elif a_far != d_far:
            win, lose = (a_name, d_name) if a_far > d_far else (d_name, a_name)
            verdict = (f"{win} recalls further: up to d = {max(a_far, d_far)} vs "
                       + (f"d = {min(a_far, d_far)}" if min(a_far, d_far) else "no distance") + f" for {lose}")
        elif abs(a_mean - d_mean) < RECALL_MARGIN:
            verdict = f"tie: both recall up to d = {a_far}, mean accuracy {fmt(a_mean, 2)} vs {fmt(d_mean, 2)}"
        else:
            win = a_name if a_mean > d_mean else d_name
            verdict = (f"both recall up to d = {a_far}; {win} is more accurate over the grid "
                       f"(mean {fmt(max(a_mean, d_mean), 2)} vs {fmt(min(a_mean, d_mean), 2)})")
        for n, e, acc in entries:
            rf = e["quality"]["recall"].get("receptive_field")
            beyond = [a for d, a in acc.items() if rf and d + 1 >= rf]
            if beyond:
                verdict += (f"; {n} beyond its receptive field of {rf}: mean accuracy {fmt(statistics.fmean(beyond), 2)}"
                            f" (chance {fmt(e['quality']['recall'].get('chance'))})")
        return Row(aspect, evidence, verdict)
    text = contenders(results, "fortunes")
    if not any(e.get("family") == "diffusion" for e in text.values()):
        return _missing(aspect, "no diffusion language model on the same text in this run (and no long-context probe)")
    return _missing(aspect, "needs the sequence suite (twopaths arena --suite sequence): recall accuracy of an "
                            "autoregressive and a diffusion language model")


def interpretability(results: dict[str, Any]) -> Row:
    return _missing("Interpretability", "no quantitative measure; see the denoising trajectory and samples")


def vs_baselines_quality(results: dict[str, Any]) -> Row:
    aspect = "Quality: diffusion vs GAN vs VAE"
    named = []
    for family in ("diffusion", "gan", "vae"):
        rep = _family_rep(results, "fashion-mnist", family)
        if rep and best_fid(rep[1]):
            fid, floor, nfe = best_fid(rep[1])
            named.append((rep[0], fid, floor))
    if len(named) < 2:
        return _missing(aspect, "needs FID for diffusion and at least one of GAN/VAE")
    evidence = "; ".join(f"{n}: FID {fmt(f)}" for n, f, _ in named) + f" (floor {fmt(named[0][2])})"
    return Row(aspect, evidence, _quality_compare(named))


def denoiser_backbones(results: dict[str, Any]) -> Row:
    """U-Net vs DiT vs latent diffusion under the same objective, budget and data: best FID of each,
    beside what one network call costs (GFLOP per call = sampling FLOPs / sequential calls)."""
    aspect = "Denoiser: U-Net vs DiT vs latent (same diffusion objective)"
    named, parts = [], []
    for name, e in by_family(results, "fashion-mnist", "diffusion"):
        best, m = best_fid(e), main_quality(e)
        if best is None or not m:
            continue
        named.append((name, best[0], best[1]))
        per_call = m["flops_per_sample"] / m["sequential_calls"] if m.get("sequential_calls") else None
        parts.append(f"{name}: FID {fmt(best[0])} at {best[2]} steps, "
                     f"{fmt(per_call / 1e9 if per_call else None)} GFLOP per call, {fmt(e['runs'][0]['params'])} params")
    if len(named) < 2:
        return _missing(aspect, "needs FID for at least two diffusion denoisers (ddpm, dit, ldm)")
    return Row(aspect, "; ".join(parts) + f" (floor {fmt(named[0][2])})", _quality_compare(named))


def mode_collapse(results: dict[str, Any]) -> Row:
    """Collapse = fewer mixture modes covered than exist, or a class histogram with normalised entropy < 0.9."""
    aspect = "Mode collapse"
    parts, collapsed, seen = [], [], 0
    modes_total = None
    for name, e in contenders(results, "mixture2d").items():
        m = main_quality(e)
        if m and m.get("modes_covered") is not None:
            seen += 1
            modes_total = m.get("modes", modes_total)
            parts.append(f"{name}: {m['modes_covered']}/{m.get('modes', '?')} modes")
            if modes_total and m["modes_covered"] < modes_total:
                collapsed.append(f"{name} (mixture2d)")
    for name, e in contenders(results, "fashion-mnist").items():
        m = main_quality(e)
        if m and m.get("class_entropy_norm") is not None:
            seen += 1
            parts.append(f"{name}: class entropy {m['class_entropy_norm']:.2f}, recall {fmt(m.get('recall'))}")
            if m["class_entropy_norm"] < 0.9:
                collapsed.append(f"{name} (fashion-mnist)")
    if seen < 2:
        return _missing(aspect, "needs mode coverage or class histograms for at least two contenders")
    verdict = ("no collapse detected: every contender covers every mode and class" if not collapsed else
               "collapse detected in " + ", ".join(collapsed))
    return Row(aspect, "; ".join(parts), verdict)


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
    return Row(aspect, evidence, _ratio_phrase(name, f["samples_per_s"], diff[0], d["samples_per_s"],
                                               "images per second"))


SEEDS_TABLE = (core_mechanism, generation_quality, training_stability, sampling_speed, computational_cost,
               parallel_processing, text_generation, long_range, interpretability)
BASELINES_TABLE = (vs_baselines_quality, mode_collapse, single_pass_speed, denoiser_backbones)


def comparison_rows(results: dict[str, Any]) -> tuple[list[Row], list[Row]]:
    """(diffusion vs transformers rows, diffusion vs GAN/VAE and denoiser-backbone rows)."""
    baselines = [rule(results) for rule in BASELINES_TABLE]
    baselines.insert(2, training_stability(results, ("diffusion", "gan", "vae"), "Training stability (vs GAN/VAE)"))
    return [rule(results) for rule in SEEDS_TABLE], baselines
