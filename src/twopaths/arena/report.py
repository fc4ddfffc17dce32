"""The arena's report: ``report.md``, a self-contained ``report.html`` and the plots, from results.json.

The report is a list of blocks (headings, paragraphs, tables, images) rendered twice: to
Markdown with relative image links, and to HTML with every image embedded as base64 so the one
file can be mailed or attached. Nothing here measures anything; it only reads ``results.json``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twopaths.arena.suites import CURVE_FRACTIONS
from twopaths.arena.verdicts import (LEARNED_AUDIO_ACCURACY, LEARNED_FID_MULTIPLE, LEARNED_PPL_FRACTION,
                                     LEARNED_VALIDITY, Row, comparison_rows, fmt, learned_table, main_quality)


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: str  # relative to the report's folder
    caption: str


@dataclass
class Clips:
    """Playable audio: WAV files (relative to the report's folder) with one label each."""
    paths: list[str]
    labels: list[str]
    caption: str


Block = Heading | Para | Table | Image | Clips


def _fmt(x: Any, digits: int = 3) -> str:
    return fmt(x, digits, missing="—")


def _bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


# ----------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: what the quality-vs-NFE plot shows per kind of suite: (metric, axis label, what one sample is)
_NFE_PLOT = {"image": ("fid", "FID", "image"), "molecules": ("valid", "valid fraction", "molecule"),
             "audio": ("fd", "FD (digit classifier features)", "clip"),
             "video": ("frame_fid", "frame FID", "clip")}


def plot_quality_vs_nfe(suite: dict[str, Any], path: Path) -> bool:
    """Quality (FID for images, validity for molecules) against NFE for diffusion contenders; single-pass
    and autoregressive contenders as points at their own number of sequential calls."""
    if suite["kind"] not in _NFE_PLOT:
        return False
    metric, label, item = _NFE_PLOT[suite["kind"]]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    floor = None
    for name, e in suite["contenders"].items():
        by_nfe = (e.get("quality") or {}).get("by_nfe") or {}
        pts = sorted((m.get("sequential_calls") or (int(k) if k.isdigit() else 1), m[metric])
                     for k, m in by_nfe.items() if m.get(metric) is not None)
        floor = next((m.get(f"{metric}_floor") for m in by_nfe.values() if m.get(f"{metric}_floor") is not None),
                     floor)
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if floor is not None:
        ax.axhline(floor, color="grey", ls="--", label="real-vs-real floor")
    ax.set_xscale("log")
    ax.set_xlabel(f"sequential network calls per {item} (NFE)")
    ax.set_ylabel(f"{label} (n={suite['n_eval']})")
    ax.set_title("Quality vs sampling steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


_CURVE_LABEL = {"fid": "FID ↓", "high_quality": "high-quality fraction ↑", "val_loss": "validation loss ↓",
                "fd": "FD (digit classifier) ↓", "frame_fid": "frame FID ↓"}


def plot_quality_curves(suite: dict[str, Any], path: Path) -> bool:
    """Quality at the checkpoints along the budget for every contender: against training FLOPs (left,
    what the budget is made of) and against training seconds (right, this machine's clock)."""
    metric = suite.get("curve_metric", "fid")
    curves = {n: [p for p in (e.get("quality") or {}).get("curve") or [] if p.get(metric) is not None]
              for n, e in suite["contenders"].items()}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    floor = None
    for name, curve in curves.items():
        axes[0].plot([p["flops"] for p in curve], [p[metric] for p in curve], marker="o", label=name)
        timed = [p for p in curve if p.get("train_seconds") is not None]
        axes[1].plot([p["train_seconds"] for p in timed], [p[metric] for p in timed], marker="o", label=name)
        floor = next((p[f"{metric}_floor"] for p in curve if p.get(f"{metric}_floor") is not None), floor)
    for ax, label in zip(axes, ("training FLOPs", "training seconds (this machine)")):
        if floor is not None:
            ax.axhline(floor, color="grey", ls="--", label="real-vs-real floor")
        ax.set_xscale("log")
        ax.set_xlabel(label)
    if metric in ("fid", "frame_fid"):
        axes[0].set_yscale("log")
    n = f" (n={suite.get('n_curve')})" if metric != "val_loss" else ""
    axes[0].set_ylabel(_CURVE_LABEL.get(metric, metric) + n)
    axes[0].set_title("Quality vs training FLOPs")
    axes[1].set_title("Quality vs training time")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_loss_curves(suite: dict[str, Any], path: Path) -> bool:
    """Training loss against training FLOPs for every contender and seed; each family's loss is in its
    own units, so each contender gets its own panel."""
    plt = _plt()
    names = [n for n, e in suite["contenders"].items() if any(r.get("loss_curve") for r in e["runs"])]
    if not names:
        return False
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        for run in suite["contenders"][name]["runs"]:
            curve = run.get("loss_curve") or []
            if curve:
                per_step = run.get("flops_per_step") or 0
                ax.plot([c[0] * per_step if per_step else c[1] for c in curve], [c[2] for c in curve], lw=1,
                        label=f"seed {run['seed']}" + (" (diverged)" if run.get("diverged") else ""))
        ax.set_title(name)
        ax.set_xlabel("training FLOPs")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _recall_curves(suite: dict[str, Any]) -> dict[str, dict[int, float]]:
    """{contender: {distance: accuracy}} of a sequence suite's evaluated contenders."""
    out = {}
    for name, e in suite["contenders"].items():
        acc = ((e.get("quality") or {}).get("recall") or {}).get("accuracy")
        if acc:
            out[name] = {int(d): a for d, a in acc.items()}
    return out


def plot_recall_vs_distance(suite: dict[str, Any], path: Path) -> bool:
    """Answer accuracy against the distance to the queried fact (log2 axis), with chance and each
    finite receptive field marked."""
    curves = _recall_curves(suite)
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    chance = None
    for name, acc in curves.items():
        ds = sorted(acc)
        line = ax.plot(ds, [acc[d] for d in ds], marker="o", label=name)[0]
        rec = suite["contenders"][name]["quality"]["recall"]
        chance = rec.get("chance", chance)
        if rec.get("receptive_field"):
            ax.axvline(rec["receptive_field"], color=line.get_color(), ls=":", lw=1,
                       label=f"{name} receptive field ({rec['receptive_field']})")
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("distance from the query back to the queried value (tokens)")
    ax.set_ylabel("answer accuracy")
    ax.set_title("Associative recall: accuracy vs distance")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _recall_blocks(suite: dict[str, Any], plot_path: Path) -> list[Block]:
    curves = _recall_curves(suite)
    if not curves:
        return []
    distances = sorted({d for acc in curves.values() for d in acc})
    rows = []
    for name, acc in curves.items():
        rec = suite["contenders"][name]["quality"]["recall"]
        reach = f"receptive field {rec['receptive_field']}" if rec.get("receptive_field") else "whole context"
        rows.append([name, reach] + [_fmt(acc.get(d)) for d in distances])
    first = next(iter(suite["contenders"][n]["quality"]["recall"] for n in curves))
    blocks: list[Block] = [
        Heading("Accuracy vs distance", 3),
        Para(f"Associative recall (twopaths/data/recall.py): the answer is the value of the queried key, "
             f"d tokens before the query. Accuracy of the answer token on {first['n_per_distance']} held-out items "
             f"per distance (autoregressive: greedy next token; masked diffusion: the masked answer filled in one "
             f"step at temperature 0); chance is {_fmt(first['chance'])}."),
        Table(["contender", "sees"] + [f"d = {d}" for d in distances], rows)]
    if plot_recall_vs_distance(suite, plot_path):
        blocks.append(Image(f"images/{plot_path.name}", "accuracy vs distance"))
    return blocks


# ----------------------------------------------------------------------------- blocks


def _comparison_table(rows: list[Row]) -> Table:
    return Table(["aspect", "measured evidence", "verdict (from the numbers)"],
                 [[r.aspect, r.evidence, ("⚠ " if r.missing else "") + r.verdict] for r in rows])


def _learned_table(results: dict[str, Any]) -> Table:
    return Table(["suite", "contender", "learned the data?", "evidence (rule)"],
                 [list(row) for row in learned_table(results)])


def _quality_table(suite: dict[str, Any]) -> Table | None:
    kind = suite["kind"]
    rows = []
    for name, e in suite["contenders"].items():
        q = e.get("quality") or {}
        for nfe, m in (q.get("by_nfe") or {}).items():
            label = name if nfe == "single" else f"{name} @ {nfe} steps"
            if kind == "image":
                rows.append([label, _fmt(m.get("fid")), _fmt(m.get("fid_floor")), _fmt(m.get("kid")),
                             _fmt(m.get("precision")), _fmt(m.get("recall")), _fmt(m.get("density")),
                             _fmt(m.get("coverage")), _fmt(m.get("class_entropy_norm")),
                             _fmt(m.get("samples_per_s")), _fmt(m.get("latency_s")), _fmt(m.get("sequential_calls")),
                             _fmt(m["flops_per_sample"] / m["sequential_calls"] / 1e9)
                             if m.get("flops_per_sample") and m.get("sequential_calls") else "n/a"])
            elif kind == "points":
                rows.append([label, f"{m.get('modes_covered')}/{m.get('modes')}",
                             _fmt(m.get("high_quality")), _fmt(m.get("samples_per_s")),
                             _fmt(m.get("latency_s")), _fmt(m.get("sequential_calls"))])
            elif kind == "audio":
                rows.append([label, _fmt(m.get("accuracy")), _fmt(m.get("fd")), _fmt(m.get("fd_floor")),
                             _fmt(m.get("is")), _fmt(m.get("mis")), _fmt(m.get("samples_per_s")),
                             _fmt(m.get("latency_s")), _fmt(m.get("real_time_factor")),
                             _fmt(m.get("real_time_factor_batched")), _fmt(m.get("sequential_calls")),
                             _fmt(m["flops_per_sample"] / 1e9) if m.get("flops_per_sample") else "n/a"])
            elif kind == "video":
                rows.append([label, _fmt(m.get("frame_fid")), _fmt(m.get("frame_fid_floor")),
                             _fmt(m.get("temporal_consistency_px")), _fmt(m.get("temporal_consistency_px_floor")),
                             _fmt(m.get("identity_drift")), _fmt(m.get("identity_drift_floor")),
                             _fmt(m.get("samples_per_s")), _fmt(m.get("latency_s")), _fmt(m.get("sequential_calls")),
                             _fmt(m["flops_per_sample"] / 1e9) if m.get("flops_per_sample") else "n/a"])
            elif kind == "text":
                val = q.get("val", {})
                ppl = val.get("perplexity", val.get("perplexity_bound"))
                rows.append([label, _fmt(ppl) + ("" if "perplexity" in val else " (bound)"), _fmt(m.get("gen_ppl")),
                             _fmt(m.get("real_gen_ppl")), _fmt(m.get("entropy_per_sample")),
                             _fmt(m.get("real_entropy_per_sample")), _fmt(m.get("distinct_2")),
                             _fmt(m.get("self_bleu")), _fmt(m.get("tokens_per_s")), _fmt(m.get("sequential_calls"))])
        if kind == "molecules":
            rows += _molecule_rows(name, q)
    if not rows:
        return None
    if kind == "molecules":
        return Table(["contender", *_MOSES_COLUMNS, "molecules/s", "latency s", "sequential calls"], rows)
    header = {"image": ["contender", "FID ↓", "floor", "KID ↓", "precision", "recall", "density", "coverage",
                        "class entropy (norm.)", "images/s", "latency s", "sequential calls", "GFLOP per call"],
              "points": ["contender", "modes covered", "high-quality fraction", "samples/s", "latency s",
                         "sequential calls"],
              "video": ["contender", "frame FID ↓", "floor", "motion residual px ↓", "real clips",
                        "identity drift ↓", "real clips", "clips/s", "latency s", "sequential calls", "GFLOP per clip"],
              "audio": ["contender", "digit accuracy ↑", "FD ↓", "floor", "IS ↑", "mIS ↑", "clips/s", "latency s",
                        "real-time factor (alone)", "real-time factor (batched)", "sequential calls",
                        "GFLOP per clip"],
              "text": ["contender", "val perplexity", "gen-PPL (5-gram judge, per char)", "gen-PPL of real text",
                       "sample entropy", "real-text entropy", "distinct-2", "self-BLEU", "tokens/s generated",
                       "sequential calls"]}[kind]
    return Table(header, rows)


#: the MOSES metrics the molecule tables show, in MOSES' order (README table of Polykovskiy et al. 2020)
_MOSES_COLUMNS = ("valid", "unique@1000", "unique@10000", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv",
                  "IntDiv2", "Filters", "Novelty")


def _molecule_rows(name: str, q: dict[str, Any]) -> list[list[str]]:
    rows = []
    for nfe, m in (q.get("by_nfe") or {}).items():
        label = name if nfe == "single" else f"{name} @ {nfe} steps"
        rows.append([label, *(_fmt(m.get(c)) for c in _MOSES_COLUMNS), _fmt(m.get("samples_per_s")),
                     _fmt(m.get("latency_s")), _fmt(m.get("sequential_calls"))])
    return rows


def _published_table() -> Table:
    """The published MOSES baselines (:mod:`twopaths.eval.moses_published`) in the same columns."""
    from twopaths.eval.moses_published import PUBLISHED

    return Table(["published (Polykovskiy et al. 2020)", *_MOSES_COLUMNS],
                 [[model, *(_fmt(row.get(c)) for c in _MOSES_COLUMNS)] for model, row in PUBLISHED.items()])


def _curve_table(suite: dict[str, Any]) -> Table | None:
    """The quality curve's numbers: one row per contender, one column per checkpoint (fraction of the budget)."""
    metric = suite.get("curve_metric", "fid")
    curves = {n: (e.get("quality") or {}).get("curve") or [] for n, e in suite["contenders"].items()}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return None
    def column(point: dict[str, Any], curve: list[dict[str, Any]]) -> int:  # the nearest fraction of the budget
        return min(range(len(CURVE_FRACTIONS)), key=lambda i: abs(CURVE_FRACTIONS[i] - point["step"] / curve[-1]["step"]))

    rows = []
    for n, c in curves.items():  # a checkpoint that was not kept leaves its column empty
        cells = ["—"] * len(CURVE_FRACTIONS)
        for p in c:
            cells[column(p, c)] = _fmt(p.get(metric))
        rows.append([n, _fmt(c[-1]["flops"] / 1e12), *cells])
    return Table(["contender", "budget TFLOP", *(f"{f:g} of the budget" for f in CURVE_FRACTIONS)], rows)


def _throughput_table(suite: dict[str, Any]) -> Table:
    rows = []
    for name, e in suite["contenders"].items():
        for r in e["runs"]:
            rows.append([name, str(r["seed"]), _fmt(r["params"]), _fmt(r["steps"]), _fmt(r["train_seconds"]),
                         f"{_fmt(r['items_per_s'])} {r['item_name']}/s", _fmt(r["total_flops"] / 1e12),
                         _bytes(r.get("peak_memory_bytes")), _fmt(r.get("final_train_loss")),
                         "yes" if r.get("diverged") else "no"])
    kinds = {r.get("memory_kind") for e in suite["contenders"].values() for r in e["runs"]} - {None}
    return Table(["contender", "seed", "params", "steps", "train s", "throughput", "train TFLOP",
                  "peak memory (" + "; ".join(sorted(kinds)) + ")", "final loss", "diverged"], rows)


def _param_note(suite: dict[str, Any]) -> str:
    params = {n: e["runs"][0]["params"] for n, e in suite["contenders"].items() if e["runs"]}
    if len(params) < 2:
        return ""
    ratio = max(params.values()) / max(min(params.values()), 1)
    ok = "within" if ratio <= suite.get("param_match_factor", 2.0) else "OUTSIDE"
    return ("Parameter counts: " + ", ".join(f"{n} {_fmt(p)}" for n, p in params.items())
            + f" (largest/smallest {ratio:.2f}, {ok} the suite's match factor {suite.get('param_match_factor')}).")


def _duration(results: dict[str, Any]) -> str:
    """How long the arena ran; when it reused cached contenders, also their training time, which the last
    invocation alone does not show."""
    ran = results.get("arena_seconds")
    trained = sum(run.get("train_seconds") or 0 for suite in results.get("suites", {}).values()
                  for entry in suite.get("contenders", {}).values() for run in entry.get("runs", []))
    if ran is not None and trained > ran:
        return (f"this invocation ran for {_fmt(ran)} s and reused contenders finished before it (cached; "
                f"their training alone took {_fmt(trained)} s, on the machine and load of their own runs)")
    return f"the arena ran for {_fmt(ran)} s"


def build_blocks(results: dict[str, Any], out: Path) -> list[Block]:
    env = results.get("environment", {})
    blocks: list[Block] = [Heading(f"twopaths arena — suite '{results.get('suite')}'", 1),
                           Para(f"Created {results.get('created')}; {_duration(results)}.")]
    seeds_rows, base_rows = comparison_rows(results)
    blocks += [Heading("Diffusion vs transformers: the seeds' comparison, measured"),
               Para("Every verdict is computed from the measurements beside it by a fixed rule "
                    "(twopaths/arena/verdicts.py): a winner is named only between contenders that learned the data "
                    "and only when the gap exceeds its 95% interval; otherwise the row says inconclusive and why. "
                    "⚠ marks a row without evidence."),
               _comparison_table(seeds_rows),
               Heading("Diffusion vs GANs and VAEs, and diffusion backbones"), _comparison_table(base_rows),
               Heading("Which contenders learned the data"),
               Para(f"Rules: images, FID within {LEARNED_FID_MULTIPLE:g}x the real-vs-real floor at the same n; "
                    f"points, every mode found; text, perplexity (MDLM: its bound) at most "
                    f"{LEARNED_PPL_FRACTION:g}x the unigram perplexity; recall, accuracy above chance (95% "
                    f"interval) at some distance; molecules, at least {LEARNED_VALIDITY:g} of the sampled SMILES valid; "
                    f"audio, the digit classifier names the asked digit of at least {LEARNED_AUDIO_ACCURACY:g} of the "
                    f"class-conditional clips (chance 0.1); video, the frame FID within {LEARNED_FID_MULTIPLE:g}x its "
                    f"floor (molecules, audio and video at the best sampling setting)."),
               _learned_table(results)]
    plots = out / "images"
    plots.mkdir(parents=True, exist_ok=True)
    for name, suite in results.get("suites", {}).items():
        blocks.append(Heading(f"Suite {name} ({suite['data']}, {suite['kind']})"))
        if suite.get("skipped"):
            blocks.append(Para(f"Skipped: {suite['skipped']}"))
            continue
        blocks.append(Para(f"Budget: {suite['budget_kind']}, {suite['seeds']} seed(s); "
                           f"quality from seed 0 with n = {suite['n_eval']} samples"
                           + {"image": " (image metrics against n test images; the floor is n training images against "
                                       "the same test images; feature network: " + _feature_identity(suite) + ").",
                              "audio": " (scored by the in-project spoken-digit classifier, " + _feature_identity(suite)
                                       + ": accuracy of the asked digit, every digit in turn; FD against n test clips "
                                       "of unseen voices, the floor n training clips against the same test clips; "
                                       "real-time factor: seconds of compute per second of audio, one clip alone "
                                       "or a batch of 100)."}.get(suite["kind"], ".")
                           + " " + _param_note(suite)))
        table = _quality_table(suite)
        if table:
            blocks += [Heading("Quality and sampling", 3), table]
        if suite["kind"] == "sequence":
            blocks += _recall_blocks(suite, plots / f"{name}-recall-vs-distance.png")
        if suite["kind"] == "video":
            blocks += _prediction_blocks(suite)
        if suite["kind"] == "molecules":
            blocks += [Para("Our rows are scored against this run's own splits (for moses-small: a sample of MOSES' "
                            "train and test sets); the published rows were trained on all 1.58M training molecules "
                            "on a GPU, sampled 30,000 times and scored against the whole test set (means of 3 runs). "
                            "unique@10000 needs n >= 10,000 valid molecules."), _published_table()]
        curve = _curve_table(suite)
        if curve:
            blocks += [Heading(f"Quality along the budget ({_CURVE_LABEL.get(suite.get('curve_metric'), '')})", 3),
                       curve]
        blocks += [Heading("Training throughput and cost", 3), _throughput_table(suite)]
        for plot, title in ((plot_quality_vs_nfe, "quality-vs-nfe"), (plot_quality_curves, "quality-vs-budget"),
                            (plot_loss_curves, "loss-curves")):
            path = plots / f"{name}-{title}.png"
            if plot(suite, path):
                blocks.append(Image(f"images/{path.name}", f"{name}: {title.replace('-', ' ')}"))
        grids = [(n, (e.get("quality") or {}).get("grid")) for n, e in suite["contenders"].items()]
        grids = [(n, g) for n, g in grids if g]
        if grids:
            blocks.append(Heading("Samples", 3))
            for n, g in grids:
                if g.endswith(".txt"):
                    text = (out / g).read_text(encoding="utf-8") if (out / g).is_file() else ""
                    blocks.append(Para(f"**{n}** samples:\n\n```\n{text[:1500]}\n```"))
                else:
                    blocks.append(Image(g, f"{n} samples" + (" (animated)" if g.endswith(".gif") else "")))
                q = suite["contenders"][n].get("quality") or {}
                if q.get("strip"):
                    blocks.append(Image(q["strip"], f"{n}: the same clips frame by frame (one row per clip)"))
                if q.get("clips"):
                    labels = [Path(c).stem.partition("_")[2] or Path(c).stem for c in q["clips"]]
                    setting = "" if q.get("main_nfe") in (None, "single") else f" at {q['main_nfe']} steps"
                    blocks.append(Clips(q["clips"], labels, f"{n}: {len(q['clips'])} clips{setting} (play them)"))
    blocks += [Heading("Hardware and versions"),
               Table(["what", "value"], [[k, _fmt(v)] for k, v in env.items()])]
    return blocks


def _prediction_blocks(suite: dict[str, Any]) -> list[Block]:
    """Video prediction: each contender continues held-out test clips from their first frames; the tracked
    positions of the continued frames against the true trajectory, and the strips (truth over continuation)."""
    preds = {n: (e.get("quality") or {}).get("prediction") for n, e in suite["contenders"].items()}
    preds = {n: p for n, p in preds.items() if p}
    if not preds:
        return []
    k = next(iter(preds.values()))["context_frames"]
    rows = [[n, str(p["n"]), f"{_fmt(p['position_error_px'])} ± {_fmt(1.96 * p['position_error_se'])}",
             _fmt(p["tracker_error_px"]), _fmt(p["mse"])] for n, p in preds.items()]
    blocks: list[Block] = [
        Heading(f"Prediction: continuing held-out clips from their first {k} frames", 3),
        Para("Each model continues test clips (items never trained on) from their first frames; the tracker reads "
             "the object in every continued frame, and the distance to where physics puts it is the position "
             "error (95% interval over clips). The tracker's own error on the true frames is the floor."),
        Table(["contender", "clips", "position error px ↓", "tracker on true frames px", "pixel MSE ↓"], rows)]
    for n, p in preds.items():
        blocks.append(Image(p["strip"], f"{n}: ground truth (odd rows) and its continuation (even rows); the "
                                        f"given frames framed in green"))
    return blocks


def _feature_identity(suite: dict[str, Any]) -> str:
    for e in suite["contenders"].values():
        m = main_quality(e)
        if m and m.get("feature_net"):
            return str(m["feature_net"])
    return "unknown"


# ----------------------------------------------------------------------------- renderers


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(map(_md_cell, b.header)) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Image):
            lines += [f"![{b.caption}]({b.path})", ""]
        elif isinstance(b, Clips):
            lines += [f"{b.caption}: " + " · ".join(f"[{label}]({path})" for path, label in zip(b.paths, b.labels)), ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd}
figure{margin:1em 0}.clip{display:inline-block;margin:0 6px 6px 0;font-size:0.85em}
audio{width:190px;height:32px}figcaption{font-size:0.85em;color:#555}pre{background:#f7f7f7;padding:8px;overflow:auto}"""


def _para_html(text: str) -> str:
    if "```" in text:
        head, _, rest = text.partition("```")
        code, _, tail = rest.partition("```")
        return _para_html(head) + f"<pre>{html.escape(code.strip())}</pre>" + (_para_html(tail) if tail.strip() else "")
    escaped = html.escape(text.strip())
    while "**" in escaped:
        escaped = escaped.replace("**", "<b>", 1).replace("**", "</b>", 1)
    return f"<p>{escaped}</p>" if escaped else ""


def to_html(blocks: list[Block], root: Path) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>twopaths arena</title>",
             f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(_para_html(b.text))
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            path = root / b.path
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                mime = "image/gif" if path.suffix == ".gif" else "image/png"
                parts.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:{mime};base64,{data}'>"
                             f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
            else:
                parts.append(f"<p>(image missing: {html.escape(b.path)})</p>")
        elif isinstance(b, Clips):
            players = []
            for path, label in zip(b.paths, b.labels):
                wav = root / path
                src = f"data:audio/wav;base64,{base64.b64encode(wav.read_bytes()).decode('ascii')}" \
                    if wav.is_file() else html.escape(path)
                players.append(f"<span class='clip'>{html.escape(label)}<br><audio controls preload='auto' "
                               f"src='{src}'></audio></span>")
            parts.append(f"<figure>{''.join(players)}<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    # After loading, the page records how many images decoded and how many tables it has, and each audio
    # clip once its header is decoded adds its duration: a test (and anyone curious) reads them from the
    # DOM of a headless browser.
    parts.append("<script>window.addEventListener('load',function(){var im=Array.from(document.images);"
                 "document.body.setAttribute('data-images-loaded',im.filter(function(i){return i.complete&&"
                 "i.naturalWidth>0}).length+'/'+im.length);document.body.setAttribute('data-tables',"
                 "document.querySelectorAll('table').length);});"
                 "var au=Array.from(document.querySelectorAll('audio')),ready=[];"
                 "document.documentElement.setAttribute('data-audio-ready','0/'+au.length);"
                 "au.forEach(function(a){function done(){ready.push(a.duration.toFixed(3));"
                 "document.documentElement.setAttribute('data-audio-ready',ready.length+'/'+au.length);"
                 "document.documentElement.setAttribute('data-audio-durations',ready.join(' '));}"
                 "if(a.readyState>=1){done();}else{a.addEventListener('loadedmetadata',done);}});</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out``; returns their paths."""
    blocks = build_blocks(results, out)
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    page.write_text(to_html(blocks, out), encoding="utf-8")
    return md, page


__all__ = ["write_report", "build_blocks", "to_markdown", "to_html"]
