#!/usr/bin/env python
"""Equal-effort hyper-parameter sweep of an arena suite's contenders, at the suite's own budget.

Issue 14, item 4: "no family loses by neglect". Every contender of the chosen suites gets the **same
number of configurations**, each trained with the suite's training FLOPs and scored by the suite's
curve metric at the full budget (images: FID at ``n_curve``; points: high-quality fraction; text and
recall: validation loss, for a masked diffusion LM its bound):

    preset        the contender as the suite defines it
    lr/3, lr*3    its learning rate divided / multiplied by 3 (a half-decade either side)
    batch/2, *2   its batch halved / doubled; the FLOP budget is fixed, so the step count doubles / halves

Width is not swept: it changes the parameter count, and a suite keeps its contenders within a stated
factor of one another (``PARAM_MATCH_FACTOR``) so the comparison is between families, not sizes.

The sweep is an arena run: each configuration is a contender of a suite made for the purpose, so it is
cached and resumable like any arena run (a rerun continues where it stopped) and its full report lies
in ``OUT/report.md``. One seed; quality at the middle NFE of the contender's list.

    python benchmarks/sweep.py --suite quick --out sweep-quick                 # every quick suite
    python benchmarks/sweep.py --suite standard --only fashion-mnist --out sweep-std --md docs/sweeps.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from twopaths.arena.runner import CURVE_METRIC, contender_config, run_arena
from twopaths.arena.suites import Suite, parse_flops, select
from twopaths.errors import TwopathsError

#: (label, learning-rate factor, batch factor) of every configuration, the same for every contender
CONFIGS = (("preset", 1.0, 1.0), ("lr/3", 1 / 3, 1.0), ("lr*3", 3.0, 1.0), ("batch/2", 1.0, 0.5), ("batch*2", 1.0, 2.0))


def _slug(label: str) -> str:
    return label.replace("/", "-div").replace("*", "-x")


def variants(suite: Suite) -> tuple[Suite, dict[str, dict]]:
    """The sweep suite: every contender of ``suite`` in every configuration of :data:`CONFIGS`."""
    contenders, plan = [], {}
    for c in suite.contenders:
        cfg = contender_config(suite, c, 0, "cpu")
        lr, batch = cfg.optim.lr, cfg.train.batch_size
        nfe = (c.nfe[len(c.nfe) // 2],) if c.nfe else ()
        for label, lr_factor, batch_factor in CONFIGS:
            name = f"{c.name}@{_slug(label)}"
            extra = (f"optim.lr={lr * lr_factor:.4g}", f"train.batch_size={max(1, round(batch * batch_factor))}")
            contenders.append(replace(c, name=name, overrides=(*c.overrides, *extra), nfe=nfe))
            plan[name] = {"contender": c.name, "family": c.family, "config": label,
                          "lr": lr * lr_factor, "batch": max(1, round(batch * batch_factor))}
    sweep = replace(suite, contenders=tuple(contenders), seeds=1, n_eval=min(suite.n_eval, suite.n_curve))
    return sweep, plan


def score(results: dict, suite: Suite, plan: dict[str, dict]) -> list[dict]:
    """One row per configuration: the curve metric at the full budget, and which is best per contender."""
    metric = CURVE_METRIC[suite.kind]
    entry = results["suites"].get(suite.name, {})
    rows = []
    for name, p in plan.items():
        c = entry.get("contenders", {}).get(name, {})
        curve = c.get("quality", {}).get("curve") or [{}]
        runs = c.get("runs") or [{}]
        rows.append({**p, "name": name, "metric": metric, "value": curve[-1].get(metric),
                     "steps": runs[0].get("steps"), "diverged": bool(runs[0].get("diverged"))})
    higher_better = metric == "high_quality"
    for contender in {r["contender"] for r in rows}:
        mine = [r for r in rows if r["contender"] == contender and r["value"] is not None]
        if mine:
            best = (max if higher_better else min)(mine, key=lambda r: r["value"])
            best["best"] = True
    return rows


def markdown(tables: dict[str, list[dict]], command: str, seconds: float) -> str:
    lines = ["# Hyper-parameter sweeps of the arena contenders", "",
             "Written by `benchmarks/sweep.py` (issue 14, item 4): every contender of a suite gets the same "
             "five configurations (its preset, learning rate /3 and x3, batch /2 and x2), each trained with "
             "the suite's training FLOPs and scored by the suite's curve metric at the full budget; one seed. "
             "**bold** is the best configuration of each contender.", "",
             f"Command: `{command}`  ", f"Machine: {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}; "
             f"date {time.strftime('%Y-%m-%d')}; the sweep ran for {seconds / 60:.0f} min.", ""]
    for suite_name, rows in tables.items():
        metric = rows[0]["metric"] if rows else "?"
        arrow = "higher is better" if metric == "high_quality" else "lower is better"
        lines += [f"## {suite_name}", "", f"| contender | family | configuration | lr | batch | steps | {metric} ({arrow}) |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            value = "diverged" if r["diverged"] else ("—" if r["value"] is None else f"{r['value']:.4g}")
            if r.get("best"):
                value = f"**{value}**"
            lines.append(f"| {r['contender']} | {r['family']} | {r['config']} | {r['lr']:.3g} | {r['batch']} | "
                         f"{r['steps'] if r['steps'] is not None else '—'} | {value} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="quick", help="suite size: quick, standard, full, sequence (default: quick)")
    p.add_argument("--only", action="append", default=None, metavar="SUITE[/CONTENDER]",
                   help="sweep only these suites or contenders (repeatable)")
    p.add_argument("--budget", default=None, metavar="FLOPS",
                   help="training FLOPs per configuration instead of the suite's (e.g. 2T; for a smoke run)")
    p.add_argument("--out", type=Path, required=True, help="arena output folder of the sweep (resumable)")
    p.add_argument("--md", type=Path, default=None, help="also write the tables as markdown here (docs/sweeps.md)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    args = p.parse_args(argv)
    try:
        started = time.perf_counter()
        tables = {}
        budget = parse_flops(args.budget) if args.budget else None
        for suite in select(args.suite, args.only, budget_flops=budget):
            sweep, plan = variants(suite)
            results = run_arena([sweep], args.out / suite.name, f"sweep-{args.suite}", device=args.device)
            tables[suite.name] = score(results, suite, plan)
        (args.out / "sweep.json").write_text(json.dumps(tables, indent=1), encoding="utf-8")
        text = markdown(tables, "python benchmarks/sweep.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                        time.perf_counter() - started)
        print(text)
        if args.md:
            args.md.write_text(text + "\n", encoding="utf-8")
    except TwopathsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
