"""``twopaths arena``: train contenders head to head on equal budgets and write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twopaths.arena.suites import SUITES
from twopaths.cli.options import command, count, positive


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "arena", cmd_arena)
    p.add_argument("--suite", choices=list(SUITES), default="quick", help="which suite (default quick)")
    p.add_argument("--out", type=Path, required=True, help="output directory (runs, results.json, report.*)")
    p.add_argument("--only", action="append", default=[], metavar="SUITE[/CONTENDER]",
                   help="run only this suite or contender; repeatable")
    p.add_argument("--budget", metavar="FLOPS", help="training FLOPs per contender and seed, e.g. 2.5T, 300G, 1e13 "
                                                     "(default: the suite's)")
    p.add_argument("--budget-seconds", type=positive, metavar="SECONDS",
                   help="train each contender for this many wall-clock seconds instead (load-dependent: a busy "
                        "machine trains every model less, and the report says so)")
    p.add_argument("--seeds", type=count, help="runs per contender (stability is the spread over seeds)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train and sample")
    p.add_argument("--report-only", action="store_true", help="rebuild report.md/html from OUT/results.json")


def cmd_arena(args: argparse.Namespace) -> int:
    """train diffusion, transformers, GANs and VAEs head to head; write a report

    Train every contender of a suite on the same data with the same training FLOPs (counted per optimizer
    step and turned into a step count before training, so the same command trains the same models on any
    machine and under any load), measure quality along the budget (FID/KID/precision/recall with the
    real-vs-real floor, mode coverage, perplexity, recall accuracy), sampling speed per NFE, training cost
    (FLOPs, throughput, peak memory) and stability across seeds, and write report.md, a self-contained
    report.html and results.json into --out. A verdict names a winner only between contenders that learned
    the data and only when the gap exceeds its interval; otherwise it says inconclusive and why. Finished
    contenders are cached: re-running the same command resumes where it stopped.

    suites:
      quick     mixture2d (ddpm, gan, vae, coord-gpt; 3 seeds), fashion-mnist (ddpm, dit, ldm,
                pixel-gpt, vae, gan), fortunes (gpt, mdlm): about 10 minutes on 2 CPU cores
      standard  the same contenders with about 10x the FLOPs, n = 1,000 image metrics, and
                recall: about 90 minutes on 2 idle CPU cores (resumable)
      full      larger models and budgets, 3 seeds, plus recall, MOSES, audio and video: one GPU
      sequence  recall (gpt, mdlm, conv-lm): associative-recall accuracy vs distance 4..128,
                about 10 minutes on 2 CPU cores
      molecules moses (gpt, mdlm, seq-vae on SMILES; 30,000 molecules each, all MOSES metrics
                next to the published baselines): 5-6 hours on 2 idle CPU cores (resumable)
      audio     spoken-digits (diffwave at 6/12/50 steps, wavenet; class-conditional 1 s clips
                scored by the digit classifier, real-time factors, playable clips in
                report.html): about an hour on 2 CPU cores
      video     moving-fashion (video-ddpm: joint space-time diffusion, video-ar: frame by
                frame; frame FID, motion, identity drift, cost per clip, prediction from
                held-out clips, animated samples): about an hour on 2 CPU cores

    examples:
      twopaths arena --suite quick --out arena-quick
      twopaths arena --suite standard --out arena-standard
      twopaths arena --suite full --out arena-full --device cuda
      twopaths arena --only fashion-mnist/ddpm --only fashion-mnist/gan --budget 10T --out a
      twopaths arena --suite quick --only mixture2d --seeds 5 --out a   # stability study
      twopaths arena --suite sequence --budget 4T --out arena-seq   # long-range dependencies
      twopaths arena --suite molecules --out arena-molecules   # MOSES: gpt vs mdlm vs VAE
      twopaths arena --suite audio --out arena-audio   # DiffWave vs WaveNet on spoken digits
      twopaths arena --suite video --out arena-video   # joint vs frame-by-frame video
      twopaths arena --report-only --out arena-quick   # rebuild the report from results.json
    """
    from twopaths.arena.report import write_report
    from twopaths.arena.runner import load_results, run_arena
    from twopaths.arena.suites import select

    if args.report_only:
        results = load_results(args.out / "results.json")
    else:
        from twopaths.arena.suites import parse_flops

        budget = parse_flops(args.budget) if args.budget is not None else None
        suites = select(args.suite, args.only, budget, args.seeds, args.budget_seconds)
        results = run_arena(suites, args.out, args.suite, args.device, log=lambda m: print(m, file=sys.stderr))
    md, page = write_report(results, args.out)
    print(f"report: {page.resolve()}\n        {md.resolve()}")
    return 0
