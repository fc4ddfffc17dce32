#!/usr/bin/env python
"""Translation benchmark: the ``seq2seq`` encoder-decoder on ``numbers-fr`` (digits -> French words).

Three parts, in one process:

1. ``train``   trains the ``seq2seq`` preset exactly as ``twopaths train seq2seq`` does (same config,
               same trainer) and reports wall time and the process's CPU time.
2. ``quality`` translates every number of the test split (5,000 numbers the model never saw) greedily
               and with beam search (4 beams, length penalty 0.6): exact match (goal: >= 95%),
               corpus BLEU and chrF (sacrebleu, 0-100), the seconds each took, and exact match by
               source length (the split is uniform over 0..99,999: 90% of it has 5 digits, ~1% fewer than 4).
3. ``decode``  tokens/s of greedy decoding with the decoder's KV cache against recomputing the whole
               prefix every step (``use_cache=False``), at batch 1 and batch 256; both must produce the
               same tokens, and the report says whether they did.

Nothing is downloaded: the pairs come from num2words. On a shared machine the CPU time is the steadier
number; the load average and the CPU count are printed with the results.

    python benchmarks/translate.py                         # train the preset, then measure it
    python benchmarks/translate.py --set train.max_steps=500   # the fastest recipe past 95% (short numbers wrong)
    python benchmarks/translate.py --run runs/fr           # measure a trained run, no training
    python benchmarks/translate.py --set train.max_steps=300 --out /tmp/fr --json translate.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

try:  # run from a checkout without installing: python benchmarks/translate.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, device_name, new_report, pick_device, print_load, run_parts  # noqa: E402
from twopaths.eval.text import bleu, chrf  # noqa: E402
from twopaths.models import resolve_config  # noqa: E402
from twopaths.runs import build_trainer, load_run  # noqa: E402

PARTS = ("train", "quality", "decode")
GOAL = 95.0  # % exact match on unseen test numbers


def bench_train(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    overrides = [*args.set, f"train.device={device.type}", "train.progress=false"]
    cfg = resolve_config("seq2seq", overrides=overrides, data=args.data)
    trainer = build_trainer(cfg, args.out)
    params = sum(p.numel() for p in trainer.model.parameters())
    print(f"training seq2seq on {cfg.data.name}: {params:,} parameters, {cfg.train.max_steps} steps of "
          f"{cfg.train.batch_size} pairs -> {args.out}", flush=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = trainer.fit()
    return {"steps": result["step"], "final_loss": result["loss"], "params": params,
            "wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            "arch": {k: v for k, v in vars(cfg.arch).items()}, "optim": vars(cfg.optim),
            "batch_size": cfg.train.batch_size}


def _run(args: argparse.Namespace, device: torch.device):
    return load_run(args.out, device=device, with_data=True)


def bench_quality(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    run = _run(args, device)
    test = run.splits.test
    n = len(test) if args.n is None else min(args.n, len(test))
    pairs = [test[i] for i in range(n)]
    sources, refs = [p["src"] for p in pairs], [p["tgt"] for p in pairs]
    out: dict[str, Any] = {"pairs": n, "step": run.checkpoint.step, "decoders": {}}
    for name, beam in (("greedy", 1), (f"beam {args.beam}", args.beam)):
        cpu0 = time.process_time()
        with Timer(device) as t:
            hyps = run.model.translate(sources, beam, args.length_penalty, batch_size=args.batch_size)
        exact = 100.0 * sum(h == r for h, r in zip(hyps, refs)) / n
        by_length: dict[int, list[int]] = {}  # source characters (digits) -> [right, total]
        for s, h, r in zip(sources, hyps, refs):
            by_length.setdefault(len(s), [0, 0])
            by_length[len(s)][0] += h == r
            by_length[len(s)][1] += 1
        out["decoders"][name] = {"exact": exact, "bleu": bleu(hyps, refs), "chrf": chrf(hyps, refs),
                                 "exact_by_source_length": {k: v for k, v in sorted(by_length.items())},
                                 "seconds": t.seconds, "cpu_s": time.process_time() - cpu0,
                                 "wrong": [(s, h, r) for s, h, r in zip(sources, hyps, refs) if h != r][:5]}
        print(f"  {name}: exact {exact:.2f}% in {t.seconds:.1f}s", flush=True)
    return out


def bench_decode(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    run = _run(args, device)
    model = run.model
    test = run.splits.test
    rows: dict[str, Any] = {}
    for batch in (1, 256):
        count = 32 if batch == 1 else min(256, len(test))
        sources = [test[i]["src"] for i in range(count)]
        result = {}
        for cached in (True, False):
            ids_all, tokens, seconds = [], 0, 0.0
            for start in range(0, count, batch):
                src, mask = model.encode_sources(sources[start:start + batch])
                with Timer(device) as t:
                    ids = model.greedy(src, mask, use_cache=cached)
                seconds += t.seconds
                ids_all += ids
                tokens += sum(len(row) + 1 for row in ids)  # + the end-of-sequence token
            result["cache" if cached else "recompute"] = {"tokens": tokens, "seconds": seconds,
                                                          "tokens_per_s": tokens / seconds, "ids": ids_all}
        same = result["cache"].pop("ids") == result["recompute"].pop("ids")
        rows[str(batch)] = {**result, "same_tokens": same, "sources": count,
                            "speedup": result["cache"]["tokens_per_s"] / result["recompute"]["tokens_per_s"]}
        print(f"  batch {batch}: cache {result['cache']['tokens_per_s']:,.0f} tok/s, recompute "
              f"{result['recompute']['tokens_per_s']:,.0f} tok/s, same tokens: {same}", flush=True)
    return rows


def print_table(report: dict[str, Any]) -> None:
    print("\n" + "=" * 78)
    print(f"Translation benchmark  {report['date']}")
    print(f"device   {report['device']} ({report['device_type']}), torch {report['torch']}, "
          f"threads {report['threads']}")
    print(f"run      {report['settings']['out']}")
    print_load(report)
    tr = report.get("train")
    if tr:
        a = tr["arch"]
        print(f"\nTraining: {tr['steps']} steps x {tr['batch_size']} pairs, {tr['params']:,} parameters "
              f"({a['encoder_layers']}+{a['decoder_layers']} layers, d_model {a['d_model']}, dropout {a['dropout']}), "
              f"lr {tr['optim']['lr']:g}")
        print(f"  wall {tr['wall_s']:.0f} s ({tr['wall_s'] / 60:.1f} min), CPU {tr['cpu_s']:.0f} s, "
              f"final training loss {tr['final_loss']:.4f} (label-smoothed)")
    q = report.get("quality")
    if q:
        print(f"\nQuality on {q['pairs']:,} unseen test numbers (checkpoint step {q['step']}; "
              f"goal: >= {GOAL:.0f}% exact)")
        print(f"  {'decoder':<10} {'exact %':>8} {'BLEU':>7} {'chrF':>7} {'seconds':>8}")
        for name, r in q["decoders"].items():
            mark = "" if r["exact"] >= GOAL else "  below the goal"
            print(f"  {name:<10} {r['exact']:8.2f} {r['bleu']:7.2f} {r['chrf']:7.2f} {r['seconds']:8.1f}{mark}")
        for name, r in q["decoders"].items():
            parts = ", ".join(f"{k} chars {right}/{total}" for k, (right, total) in r["exact_by_source_length"].items())
            print(f"  {name} exact by source length: {parts}")
        for name, r in q["decoders"].items():
            for src, hyp, ref in r["wrong"][:3]:
                print(f"  {name} error: {src} -> {hyp!r} (reference {ref!r})")
    d = report.get("decode")
    if d:
        print("\nGreedy decoding speed, tokens/s (end-of-sequence included)")
        print(f"  {'batch':>5} {'KV cache':>10} {'recompute':>10} {'speedup':>8} {'same tokens':>12}")
        for batch, r in d.items():
            print(f"  {batch:>5} {r['cache']['tokens_per_s']:10,.0f} {r['recompute']['tokens_per_s']:10,.0f} "
                  f"{r['speedup']:7.2f}x {str(r['same_tokens']):>12}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None)
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts to run, from: {', '.join(PARTS)} (default: all)")
    p.add_argument("--run", type=Path, default=None, help="measure this trained run instead of training one")
    p.add_argument("--out", type=Path, default=None, help="where to train (default: a fresh temporary directory)")
    p.add_argument("--data", default="numbers-fr", help="pair dataset (default: numbers-fr)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for training, as in 'twopaths train --set'; repeatable")
    p.add_argument("--n", type=int, default=None, help="quality: only the first N test pairs (default: all)")
    p.add_argument("--beam", type=int, default=4, help="beam width of the beam-search row (default: 4)")
    p.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha (default: 0.6)")
    p.add_argument("--batch-size", type=int, default=500, help="sources decoded together (default: 500)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="(default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in args.parts if x not in PARTS]
    if bad:
        p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    if args.run is not None:
        if "train" in args.parts:
            args.parts.remove("train")
        args.out = args.run
    elif "train" not in args.parts:
        p.error("without 'train' in --only, name a trained run with --run")
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="twopaths-translate-")) / "run"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = pick_device(args)
    report = new_report(args, argv, device, device_name(device), {})
    print(f"device {report['device']} ({device.type}), torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"parts: {', '.join(args.parts)}", flush=True)
    parts = {"train": lambda: bench_train(args, device), "quality": lambda: bench_quality(args, device),
             "decode": lambda: bench_decode(args, device)}
    return run_parts(report, device, {k: v for k, v in parts.items() if k in args.parts}, print_table, args.json)


if __name__ == "__main__":
    main()
