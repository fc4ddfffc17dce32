#!/usr/bin/env python
"""Diffusion benchmark: twopaths' U-Net under GaussianDiffusion against diffusers ``UNet2DModel`` +
``DDPMScheduler``, in the same run.

Two measurements, each reported as a ratio against its peer measured by this same process:

1. ``train``   training throughput (images/s, MFU) of one optimizer step: noise a batch at random
               timesteps, eps-prediction MSE (Ho et al. 2020, eq. 14, "L_simple"), backward, grad
               clipping, AdamW. Ours: ``GaussianDiffusion.loss`` over ``UNet(unet_preset("ddpm-cifar10"))``
               with the speed options given (--compile, --channels-last, --fused, --bf16); diffusers:
               the standard hand-written step of its training examples (``DDPMScheduler.add_noise``,
               ``UNet2DModel(...).sample``, ``F.mse_loss``), eager, contiguous, foreach AdamW, with
               the same --bf16 autocast. ``--peer-same`` also times diffusers with ours' options.
2. ``sample``  latency of one DDPM ancestral sampling step (Ho et al. 2020, Algorithm 2): one network
               evaluation plus the update, at the middle of the 1000-step ladder (t = 500), under
               no_grad. Ours: ``make_sampler("ddpm", ...).advance``; diffusers: ``unet(x, t).sample``
               then ``DDPMScheduler.step``.

Both networks are Ho et al.'s CIFAR-10 model (appendix B; diffusers' ``google/ddpm-cifar10-32``
config): 32x32x3, channels 128-256-256-256, 2 residual blocks per level, one-head self-attention at
16x16 and in the middle, dropout 0.1, 35.7M parameters each (checked: the counts must be equal).
Both are built with random weights (nothing is downloaded) and train on random images in [-1, 1]:
speed does not depend on the pixels. Same optimizer hyper-parameters for both (Ho et al.: lr 2e-4,
no weight decay; grad clip 1.0). diffusers is a peer installed at benchmark time
(``pip install diffusers``), never a runtime dependency of twopaths.

    python benchmarks/diffusion.py                         # sized for the device (GPU: batch 128, bf16, all options)
    python benchmarks/diffusion.py --quick                 # CPU-sized: batch 8, 1 warm-up + 3 steps
    python benchmarks/diffusion.py --peer-same --json d.json   # also diffusers with ours' options
    python benchmarks/diffusion.py --no-compile --no-channels-last --no-fused   # ours plain
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

try:  # run from a checkout without installing: python benchmarks/diffusion.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (H100_BF16_DENSE, Timer, _graph_breaks, device_name, new_report, pick_device,  # noqa: E402
                    print_load, run_parts)
from twopaths.backbones.unet import UNet, unet_preset  # noqa: E402
from twopaths.paradigms.gaussian import GaussianConfig, GaussianDiffusion  # noqa: E402
from twopaths.paradigms.samplers import make_sampler  # noqa: E402
from twopaths.training.optim import param_groups  # noqa: E402

PARTS = ("train", "sample")
SHAPE = (3, 32, 32)
T = 1000  # training timesteps, linear betas 1e-4 .. 0.02 (Ho et al. sec. 4), both models
LR, BETAS, WEIGHT_DECAY, GRAD_CLIP = 2e-4, (0.9, 0.999), 0.0, 1.0  # Ho et al. appendix B; clip as in their code
SAMPLE_INDEX = 499  # step i of the 1000-step ladder evaluates t = 999 - i = 500


# ----------------------------------------------------------------------------- models


def ours(dropout: float = 0.1) -> GaussianDiffusion:
    """Our U-Net (preset ``ddpm-cifar10``) under eps-prediction Gaussian diffusion, linear schedule."""
    net = UNet(unet_preset("ddpm-cifar10", dropout=dropout))
    return GaussianDiffusion(net, GaussianConfig(timesteps=T, schedule="linear", prediction="eps"), SHAPE)


def diffusers_unet(dropout: float = 0.1):
    """diffusers' UNet2DModel in the configuration of ``google/ddpm-cifar10-32`` (Ho et al.'s model)."""
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                       layers_per_block=2, attention_head_dim=None, norm_eps=1e-6, downsample_padding=0,
                       flip_sin_to_cos=False, freq_shift=1, dropout=dropout)


def diffusers_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         variance_type="fixed_small", clip_sample=True, prediction_type="epsilon")


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_flops_per_image() -> dict[str, float]:
    """FLOPs of forward + backward per image (a multiply-add counts 2), counted on the meta device
    (shapes only, no arithmetic) by ``torch.utils.flop_counter``, for each network."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    with torch.device("meta"):
        x, t = torch.randn(2, *SHAPE), torch.tensor([10, 500])
        for name, net, fn in (("ours", ours().net, lambda n: n(x, t.float())),
                              ("diffusers", diffusers_unet(), lambda n: n(x, t).sample)):
            with FlopCounterMode(display=False) as counter:
                fn(net).sum().backward()
            out[name] = counter.get_total_flops() / 2
    return out


# ----------------------------------------------------------------------------- 1. training


def _optimizer(module: torch.nn.Module, fused: bool) -> torch.optim.AdamW:
    """AdamW over twopaths' parameter groups (no decay on norms and biases; wd is 0 anyway): the same
    update for both models; ``fused`` picks the one-kernel implementation, else torch's foreach default."""
    return torch.optim.AdamW(param_groups(module, WEIGHT_DECAY), lr=LR, betas=BETAS, eps=1e-8,
                             fused=True if fused else None)


def _diffusers_loss(unet: torch.nn.Module, scheduler: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The standard diffusers training step (its train_unconditional example), written out."""
    def loss(x0: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        x_t = scheduler.add_noise(x0, noise, t)
        pred = unet(x_t, t).sample
        return F.mse_loss(pred.float(), noise.float())
    return loss


def _train_step(run: dict[str, Any], autocast: Callable[[], Any]) -> torch.Tensor:
    x0 = run["batches"][run["i"] % len(run["batches"])]
    run["i"] += 1
    with autocast():
        loss = run["fn"](x0)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run["module"].parameters(), GRAD_CLIP)
    run["opt"].step()
    run["opt"].zero_grad(set_to_none=True)
    return loss.detach()


def _specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(name, options) of every model timed: ours with the options given, diffusers standard, and
    with --peer-same diffusers with ours' options."""
    mine = {"compiled": args.compile, "channels_last": args.channels_last, "fused": args.fused}
    specs = [{"name": "ours", **mine}, {"name": "diffusers", "compiled": False, "channels_last": False, "fused": False}]
    if args.peer_same:
        specs.append({"name": "diffusers-same", **mine})
    return specs


def bench_train(args: argparse.Namespace, device: torch.device, flops: dict[str, float]) -> dict[str, Any]:
    """Warm up each model (compilation included), then interleave the measured steps in rounds of a
    few steps per model, so a slow patch of a shared machine hits all alike; images/s from the
    median step time."""
    B = args.batch
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.bf16 else nullcontext
    gen = torch.Generator().manual_seed(args.seed)
    images = [(torch.rand(B, *SHAPE, generator=gen) * 2 - 1).to(device) for _ in range(4)]  # (B, 3, 32, 32)
    images_cl = [x.contiguous(memory_format=torch.channels_last) for x in images]

    runs = []
    for spec in _specs(args):
        torch.manual_seed(args.seed)
        if spec["name"] == "ours":
            model = ours().to(device).train()
            fn = lambda x0, m=model: m.loss({"image": x0})  # noqa: E731
            module = model
        else:
            module = diffusers_unet().to(device).train()
            fn = _diffusers_loss(module, diffusers_scheduler())
        if spec["channels_last"]:
            module.to(memory_format=torch.channels_last)
        breaks_before = _graph_breaks() if spec["compiled"] else 0
        run = {**spec, "module": module, "opt": _optimizer(module, spec["fused"]),
               "fn": torch.compile(fn) if spec["compiled"] else fn,
               "batches": images_cl if spec["channels_last"] else images, "times": [], "losses": [], "i": 0}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with Timer(device) as t:
            for _ in range(args.warmup):
                _train_step(run, autocast)
        run["warmup_s"] = t.seconds
        run["graph_breaks"] = _graph_breaks() - breaks_before if spec["compiled"] else None
        run["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        runs.append(run)
        print(f"  train {run['name']:15s} warm-up {args.warmup} steps: {t.seconds:.1f} s"
              + (f", graph breaks {run['graph_breaks']}" if spec["compiled"] else ""), flush=True)

    per_round = max(1, min(args.steps, 5))
    while len(runs[0]["times"]) < args.steps:
        for run in runs:
            for _ in range(min(per_round, args.steps - len(run["times"]))):
                with Timer(device) as t:
                    loss = _train_step(run, autocast)
                run["times"].append(t.seconds)
                run["losses"].append(loss)

    results: dict[str, Any] = {}
    for run in runs:
        times, losses = run["times"], [float(x) for x in run["losses"]]
        median = statistics.median(times)
        img_s = B / median
        f = flops["ours" if run["name"] == "ours" else "diffusers"]
        results[run["name"]] = {
            "compiled": run["compiled"], "channels_last": run["channels_last"], "fused_adamw": run["fused"],
            "graph_breaks": run["graph_breaks"], "warmup_s": run["warmup_s"], "peak_mem_gib": run["peak_mem_gib"],
            "images_per_s": img_s, "images_per_s_mean": B * len(times) / sum(times),
            "step_ms_median": 1e3 * median, "step_ms_min": 1e3 * min(times), "step_ms_max": 1e3 * max(times),
            "mfu": f * img_s / args.peak_flops if args.peak_flops else None,
            "first_loss": losses[0], "last_loss": losses[-1], "params": param_count(run["module"]),
            "step_ms": [round(1e3 * x, 3) for x in times],
        }
        if not all(math.isfinite(v) for v in losses):
            results[run["name"]]["warning"] = "non-finite loss"
        print(f"  train {run['name']:15s} {img_s:10,.1f} img/s  median step {1e3 * median:9.1f} ms"
              f"  loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
    base = results["diffusers"]["images_per_s"]
    for r in results.values():
        r["x_vs_diffusers"] = r["images_per_s"] / base
    del runs
    return {"batch": B, "dtype": "bf16 autocast" if args.bf16 else "fp32", "flops_per_image": flops,
            "peak_flops": args.peak_flops, "warmup_steps": args.warmup, "measured_steps": args.steps,
            "steps_per_round": per_round,
            "optimizer": f"AdamW lr={LR} betas={BETAS} wd={WEIGHT_DECAY} grad_clip={GRAD_CLIP}", "models": results}


# ----------------------------------------------------------------------------- 2. one sampling step


def bench_sample(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Latency of one DDPM step at batch ``--sample-batch``; runs interleaved, best and median kept."""
    B = args.sample_batch
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.bf16 else nullcontext
    x = torch.randn(B, *SHAPE, generator=torch.Generator().manual_seed(args.seed)).to(device)  # (B, 3, 32, 32)
    fns: dict[str, Callable[[], torch.Tensor]] = {}
    for spec in _specs(args):
        torch.manual_seed(args.seed)
        xs = x.contiguous(memory_format=torch.channels_last) if spec["channels_last"] else x
        if spec["name"] == "ours":
            model = ours().to(device).eval()
            if spec["channels_last"]:
                model.to(memory_format=torch.channels_last)
            sampler = make_sampler("ddpm", model.schedule, steps=T)
            net = torch.compile(model.model_output) if spec["compiled"] else model.model_output

            def step(model=model, sampler=sampler, net=net, xs=xs) -> torch.Tensor:
                with autocast():
                    return sampler.advance(net, SAMPLE_INDEX, xs)
        else:
            unet = diffusers_unet().to(device).eval()
            if spec["channels_last"]:
                unet.to(memory_format=torch.channels_last)
            scheduler = diffusers_scheduler()
            scheduler.set_timesteps(T)
            t = scheduler.timesteps[SAMPLE_INDEX]
            call = torch.compile(unet) if spec["compiled"] else unet

            def step(call=call, scheduler=scheduler, t=t, xs=xs) -> torch.Tensor:
                with autocast():
                    out = call(xs, t).sample
                return scheduler.step(out.float(), t, xs).prev_sample
        fns[spec["name"]] = step

    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for name, fn in fns.items():
            for _ in range(args.sample_warmup):  # compilation, cuDNN autotuning, allocator
                fn()
        for _ in range(args.sample_repeats):
            for name, fn in fns.items():
                with Timer(device) as t:
                    out = fn()
                times[name].append(t.seconds)
                if not bool(torch.isfinite(out).all()):
                    print(f"  WARNING: {name} sampling step gave non-finite values", flush=True)
    results = {}
    for name, ts in times.items():
        results[name] = {"ms_best": 1e3 * min(ts), "ms_median": 1e3 * statistics.median(ts),
                         "images_per_s": B / min(ts), "ms": [round(1e3 * s, 3) for s in ts]}
    for name, r in results.items():
        r["x_vs_diffusers"] = results["diffusers"]["ms_best"] / r["ms_best"]
        print(f"  sample {name:15s} one step {r['ms_best']:9.1f} ms "
              f"(median {r['ms_median']:.1f})  x{r['x_vs_diffusers']:.2f}", flush=True)
    return {"batch": B, "t": T - 1 - SAMPLE_INDEX, "dtype": "bf16 autocast" if args.bf16 else "fp32",
            "warmup": args.sample_warmup, "repeats": args.sample_repeats, "models": results}


# ----------------------------------------------------------------------------- report


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    print("\n" + "=" * 78)
    print(f"Diffusion benchmark  {report['date']}")
    print(f"device   {report['device']} ({report['device_type']}), torch {report['torch']}, "
          f"diffusers {report['diffusers']}, threads {report['threads']}")
    print(f"model    U-Net ddpm-cifar10 (Ho et al. CIFAR-10), 32x32x3, ours {report['params']['ours']:,} params, "
          f"diffusers {report['params']['diffusers']:,}")
    print(f"ours     compile={s['compile']} channels_last={s['channels_last']} fused_adamw={s['fused']} "
          f"bf16={s['bf16']}; diffusers: eager, contiguous, foreach AdamW, bf16={s['bf16']}")
    print_load(report)
    tr = report.get("train")
    if tr:
        print(f"\nTraining: batch {tr['batch']}, {tr['dtype']}, {tr['warmup_steps']} warm-up + "
              f"{tr['measured_steps']} measured steps, {tr['flops_per_image']['ours'] / 1e9:.1f} GFLOP/image (fwd+bwd)")
        print(f"  {tr['optimizer']}")
        print(f"  {'model':15s} {'compiled':>8s} {'ch-last':>7s} {'fused':>5s} {'images/s':>10s} {'median ms':>10s} "
              f"{'MFU':>7s} {'vs diffusers':>12s}")
        for name, r in tr["models"].items():
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            print(f"  {name:15s} {str(r['compiled']):>8s} {str(r['channels_last']):>7s} {str(r['fused_adamw']):>5s} "
                  f"{r['images_per_s']:10,.1f} {r['step_ms_median']:10.1f} {mfu:>7s} {r['x_vs_diffusers']:11.2f}x")
            if r["graph_breaks"]:
                print(f"  {'':15s} torch.compile hit {r['graph_breaks']} graph break(s)")
            if r["peak_mem_gib"] is not None:
                print(f"  {'':15s} peak memory {r['peak_mem_gib']:.1f} GiB")
        if tr["peak_flops"] is None:
            print("  MFU: n/a (no peak known for this device; pass --peak-tflops)")
        else:
            print(f"  MFU against {tr['peak_flops'] / 1e12:.0f} TFLOP/s")
    sm = report.get("sample")
    if sm:
        print(f"\nOne DDPM sampling step at t = {sm['t']}: batch {sm['batch']}, {sm['dtype']}, no_grad, "
              f"best of {sm['repeats']} interleaved runs")
        print(f"  {'model':15s} {'best ms':>9s} {'median ms':>10s} {'images/s':>10s} {'vs diffusers':>12s}")
        for name, r in sm["models"].items():
            print(f"  {name:15s} {r['ms_best']:9.1f} {r['ms_median']:10.1f} {r['images_per_s']:10,.1f} "
                  f"{r['x_vs_diffusers']:11.2f}x")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None)
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts to run, from: {', '.join(PARTS)} (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default: auto: CUDA if visible)")
    p.add_argument("--quick", action="store_true",
                   help="CPU-sized run: batch 8, 1 warm-up + 3 measured steps, sampling batch 8, 2 repeats")
    p.add_argument("--batch", type=int, default=None, help="training batch (default: 128; 8 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="measured training steps per model (default: 20; 3 --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="training steps excluded from timing (default: 10 (includes compilation); 1 --quick)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast for both models (default: on for CUDA, off for CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile ours (training loss and sampling network) (default: on for CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="ours in channels_last memory format, weights and inputs (default: on for CUDA)")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=None,
                   help="fused AdamW for ours (default: on for CUDA)")
    p.add_argument("--peer-same", action="store_true",
                   help="also time diffusers with ours' --compile/--channels-last/--fused (as 'diffusers-same')")
    p.add_argument("--sample-batch", type=int, default=None,
                   help="batch of the sampling step (default: 256; 8 --quick)")
    p.add_argument("--sample-repeats", type=int, default=None,
                   help="timed sampling steps per model (default: 10; 2 --quick)")
    p.add_argument("--sample-warmup", type=int, default=None,
                   help="untimed sampling steps first (default: 3; 1 --quick)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="peak FLOP/s for MFU in TFLOP/s (default: 989 on an H100, else MFU is n/a)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="weights and batches (default: 0)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.only.split(",") if x.strip()]
    bad = [x for x in args.parts if x not in PARTS]
    if bad:
        p.error(f"--only: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = pick_device(args)
    cuda = device.type == "cuda"
    name = device_name(device)
    q = args.quick
    args.batch = args.batch or (8 if q else 128)
    args.steps = args.steps or (3 if q else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 10)
    args.sample_batch = args.sample_batch or (8 if q else 256)
    args.sample_repeats = args.sample_repeats or (2 if q else 10)
    args.sample_warmup = args.sample_warmup if args.sample_warmup is not None else (1 if q else 3)
    for opt in ("bf16", "compile", "channels_last", "fused"):
        if getattr(args, opt) is None:
            setattr(args, opt, cuda)
    if args.fused and not cuda:
        print("note: --fused on CPU uses torch's fused CPU AdamW", flush=True)
    if args.peak_tflops is not None:
        args.peak_flops = args.peak_tflops * 1e12
    elif cuda and "H100" in name:
        args.peak_flops = H100_BF16_DENSE if args.bf16 else None
    else:
        args.peak_flops = None
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # conv algorithm autotuning, for both models
    elif not q:
        print("note: full-size training on a CPU is slow (minutes per model); --quick is the CPU-sized run",
              flush=True)

    import diffusers
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="diffusers")

    flops = train_flops_per_image()
    params = {"ours": param_count(ours().net), "diffusers": param_count(diffusers_unet())}
    if params["ours"] != params["diffusers"]:
        print(f"  WARNING: parameter counts differ: {params}", flush=True)
    report = new_report(args, argv, device, name, {"diffusers": diffusers.__version__}, params=params)
    print(f"device {name} ({device.type}), torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"U-Net ddpm-cifar10 ({params['ours']:,} params), train batch {args.batch}, sample batch "
          f"{args.sample_batch}, bf16={args.bf16}; ours compile={args.compile} channels_last={args.channels_last} "
          f"fused={args.fused}; parts: {', '.join(args.parts)}", flush=True)
    parts = {"train": lambda: bench_train(args, device, flops), "sample": lambda: bench_sample(args, device)}
    return run_parts(report, device, {k: v for k, v in parts.items() if k in args.parts}, print_table, args.json)


if __name__ == "__main__":
    main()
