#!/usr/bin/env python
"""WaveNet generation: the incremental sampler (Fast WaveNet, Paine et al. 2016: every layer keeps its
last inputs) against recomputing the network over the receptive field at every sample, in the same run.

Both draw the same clips (same seed; the test suite checks they are equal, and this script checks it
again on the first samples). Reported: seconds per clip and samples/s of each, their ratio, and the
real-time factor (seconds of compute per second of 8 kHz audio). The network is ``wavenet``'s preset
(64 channels, 20 layers, dilations 1..512 twice: a receptive field of 2,047 samples) with random
weights; ``--cpu-preset`` takes the CPU preset (32 channels, 10 layers, receptive field 1,024).

    python benchmarks/wavenet.py                      # 8,000 samples (one second), batch 1
    python benchmarks/wavenet.py --cpu-preset --json wavenet.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

try:  # run from a checkout without installing: python benchmarks/wavenet.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, device_name, new_report, pick_device, print_load, run_parts  # noqa: E402
from twopaths.backbones.wavenet import WaveNet, WaveNetConfig  # noqa: E402
from twopaths.paradigms.sample_autoregressive import SampleAutoregressive  # noqa: E402

PARTS = ("speedup",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--samples", type=int, default=8000, help="samples per clip (default 8,000: one second)")
    p.add_argument("--batch", type=int, default=1, help="clips drawn together (default 1)")
    p.add_argument("--cpu-preset", action="store_true", help="the CPU preset's network instead of the full one")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="(default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    return p.parse_args(argv)


def bench_speedup(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    torch.manual_seed(0)
    cfg = WaveNetConfig(channels=32, n_layers=10) if args.cpu_preset else WaveNetConfig(channels=64, n_layers=20)
    model = SampleAutoregressive(WaveNet(cfg), length=args.samples).to(device).eval()
    out: dict[str, Any] = {"receptive_field": cfg.receptive_field(), "channels": cfg.channels,
                           "layers": cfg.n_layers, "samples": args.samples, "batch": args.batch}
    check = 200  # the two samplers agree (same seed) on the first samples
    a = model.sample(args.batch, generator=torch.Generator(device=device).manual_seed(1), length=check)
    b = model.sample(args.batch, generator=torch.Generator(device=device).manual_seed(1), length=check,
                     use_cache=False)
    out["same_samples"] = bool(torch.equal(a, b))
    for name, cached in (("incremental", True), ("recompute", False)):
        with Timer(device) as t:
            model.sample(args.batch, generator=torch.Generator(device=device).manual_seed(2), use_cache=cached)
        out[f"{name}_s"] = t.seconds
        out[f"{name}_samples_per_s"] = args.batch * args.samples / t.seconds
        out[f"{name}_real_time_factor"] = t.seconds / (args.batch * args.samples / 8000)
    out["speedup"] = out["recompute_s"] / out["incremental_s"]
    return out


def print_table(report: dict[str, Any]) -> None:
    r = report["speedup"]
    print("=" * 78)
    print(f"WaveNet generation, {r['samples']:,} samples x batch {r['batch']}, {r['layers']} layers x "
          f"{r['channels']} channels, receptive field {r['receptive_field']:,}; {report['device']}")
    for name in ("incremental", "recompute"):
        print(f"  {name:<12} {r[name + '_s']:8.1f} s  {r[name + '_samples_per_s']:9,.0f} samples/s  "
              f"real-time factor {r[name + '_real_time_factor']:.2f}")
    print(f"  speedup      {r['speedup']:.1f}x (incremental over recomputation; same samples: {r['same_samples']})")
    print_load(report)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = pick_device(args)
    report = new_report(args, argv, device, device_name(device), {})
    return run_parts(report, device, {"speedup": lambda: bench_speedup(args, device)}, print_table, args.json)


if __name__ == "__main__":
    main()
