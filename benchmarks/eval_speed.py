#!/usr/bin/env python
"""Evaluation speed: every image metric for 10,000 "generated" Fashion-MNIST images, sampling excluded.

The goal: ``twopaths eval RUN --metrics fid,kid,pr,classes --n 10000`` spends under a minute on
two CPU cores outside the model's own sampling. Real images stand in for the generated ones
(speed does not depend on the pixels), so this measures exactly what
:func:`twopaths.eval.images.evaluate_images` does: features and logits of 3 x n images (the
"generated" set, n test images, n train images for the real-vs-real floor), then FID, KID
(100 subsets of 1,000), precision/recall/density/coverage (chunked k-NN over n x n distances)
and class statistics, each for the samples and for the floor. Loading the real images is timed
separately (the CLI does it once per call).

    PYTHONPATH=src python benchmarks/eval_speed.py                # n = 10,000, 2 threads
    PYTHONPATH=src python benchmarks/eval_speed.py --n 2000 --json speed.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

import torch

from twopaths.eval import fid as fid_mod
from twopaths.data.registry import real_images
from twopaths.eval import images as ev
from twopaths.eval import precision_recall as pr
from twopaths.eval.features import extract, load_feature_net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images per set (default 10,000)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--feature-net", default="fashion-mnist",
                        help="shipped name or .safetensors path (default fashion-mnist)")
    parser.add_argument("--json", help="also write the timings to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    net = load_feature_net(args.feature_net)
    real_eval, _ = real_images("fashion-mnist", args.n, "test")
    real_floor, _ = real_images("fashion-mnist", args.n, "train", seed=1)
    fake, _ = real_images("fashion-mnist", args.n, "train", seed=2)  # stand-in for generated images
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = ev.evaluate_images(fake, real_eval, real_floor, net, progress=False)
    total_s = time.perf_counter() - t0

    # The parts, once more, for where the time goes (features of one set; each metric for one row).
    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    f_real, _ = extract(net, real_eval, with_logits=True, progress=False)
    parts["features, one set of n"] = time.perf_counter() - t0
    f_fake = extract(net, fake, progress=False)
    for name, fn in (("fid", lambda: fid_mod.fid_from_features(f_fake, f_real)),
                     ("kid (100 x 1000)", lambda: fid_mod.kid(f_fake, f_real)),
                     ("pr + density/coverage", lambda: pr.manifold_metrics(f_real, f_fake))):
        t0 = time.perf_counter()
        fn()
        parts[name] = time.perf_counter() - t0

    print(f"eval speed, n = {args.n:,}, {torch.get_num_threads()} threads, feature net {net.identity}")
    print(f"  load real images (3 sets)           {load_s:7.2f} s   (not counted)")
    print(f"  evaluate_images, all metrics + floor {total_s:7.2f} s   <- the number (goal < 60 s at n = 10,000)")
    for name, seconds in parts.items():
        print(f"    {name:<34} {seconds:7.2f} s")
    print("  values:", {k: round(v, 4) for k, v in out["metrics"].items()})
    print("  floor: ", {k: round(v, 4) for k, v in out["floor"].items()})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "threads": torch.get_num_threads(), "seconds": total_s, "load_seconds": load_s,
                       "parts": parts, "feature_net": net.identity, "date": datetime.date.today().isoformat(),
                       "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
