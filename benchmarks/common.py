"""What every benchmark script shares: the machine's name and load, a timer, and the run's frame
(settings, the busy-CPU check, the parts, the table, the JSON file)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM dense bf16 (the figure DESIGN.md measures MFU against)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs other processes kept busy over ``seconds`` (from /proc/stat; None off Linux)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])
    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def _busy_warning(busy: float | None, threads: int, cpus: int | None) -> str | None:
    """CPU ops split over ``threads`` OpenMP workers wait for the slowest one: if other processes
    hold the cores, every op waits for a descheduled worker and timings fall apart (we saw 40x)."""
    if busy is None or not cpus or busy + threads <= cpus + 0.3:
        return None
    return (f"WARNING: other processes kept {busy:.1f} of {cpus} CPUs busy just before the run and torch uses "
            f"{threads} threads: CPU timings are unreliable; run on an idle machine or with "
            f"--threads {max(1, cpus - math.ceil(busy - 0.3))}")


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


class Timer:
    """Wall time of a region; CUDA events on GPU (queued work is included), perf_counter on CPU."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> "Timer":
        if self.device.type == "cuda":
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(self.device)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self._end.record()
            torch.cuda.synchronize(self.device)
            self.seconds = self._start.elapsed_time(self._end) / 1e3
        else:
            self.seconds = time.perf_counter() - self._t0


def _graph_breaks() -> int:
    from torch._dynamo.utils import counters

    return int(sum(counters["graph_break"].values()))



def pick_device(args: argparse.Namespace) -> torch.device:
    """``--threads`` and ``--device`` (auto: CUDA when visible) applied; exits on a missing GPU."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    return torch.device(args.device)


def new_report(args: argparse.Namespace, argv: list[str] | None, device: torch.device, name: str,
               peers: dict[str, str], **extra: Any) -> dict[str, Any]:
    """The header every results file starts with: date, machine, versions, command and settings."""
    settings = {k: (str(v) if not isinstance(v, (int, float, str, bool, list, tuple, type(None))) else v)
                for k, v in vars(args).items()}
    return {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "device": name, "device_type": device.type, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            **peers, "command": " ".join([sys.argv[0]] + (argv or sys.argv[1:])), "settings": settings,
            **extra, "load_before": _load()}


def print_load(report: dict[str, Any]) -> None:
    """The table header's last lines: how busy the machine was, which every ratio depends on."""
    print(f"load     1-min load average {report['load_before']:.2f} before, {report['load_after']:.2f} after "
          f"({report['cpu_count']} CPUs; other work on the machine slows both sides of every ratio)")
    if report["busy_cpus_before"] is not None:
        print(f"         CPUs kept busy by other processes just before the run: {report['busy_cpus_before']:.1f}")
    if report["busy_warning"]:
        print(report["busy_warning"])
    print("=" * 78)


def run_parts(report: dict[str, Any], device: torch.device, parts: dict[str, Callable[[], Any]],
              print_table: Callable[[dict[str, Any]], None], json_path: Any) -> dict[str, Any]:
    """Warn if other processes hold the CPUs, run each part into ``report``, print, write JSON."""
    report["busy_cpus_before"] = _busy_cpus() if device.type == "cpu" else None
    report["busy_warning"] = _busy_warning(report["busy_cpus_before"], report["threads"], report["cpu_count"])
    if report["busy_warning"]:
        print(report["busy_warning"], flush=True)
    for name, part in parts.items():
        report[name] = part()
    report["load_after"] = _load()
    print_table(report)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return report
