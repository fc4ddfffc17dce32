#!/usr/bin/env python
"""Quality per training FLOP: twopaths' ``ddpm`` against diffusers ``UNet2DModel`` + ``DDPMScheduler``,
trained on the same data with the same number of training FLOPs, sampled, and scored by one FID.

The goal (benchmarks issue): at equal training FLOPs our ddpm's FID is <= 0.5x diffusers'. Three parts,
in one process:

1. ``train``   both denoisers on the Fashion-MNIST train split (55,000 images, 28x28x1 in [-1, 1]),
               unconditional, batch ``--batch``, in the same order (the batch sampler of our trainer,
               :class:`~twopaths.training.sampler.ResumableBatchSampler`, with the same seed feeds both).
               The budget is ``--budget-tflops`` of training FLOPs: each model's FLOPs per step
               (forward + backward of its loss on a real batch, a multiply-add = 2;
               :func:`twopaths.nn.flops.flops_of`) are counted, and each gets
               ``budget // flops_per_step`` steps. Each trains with its own recommended recipe:

               ours       the ``ddpm`` preset (Ho et al. 2020, "Denoising Diffusion Probabilistic Models":
                          eps prediction, linear betas 1e-4..0.02, T = 1000) through ``build_trainer``,
                          with Min-SNR-5 loss weighting (Hang et al. 2023, "Efficient Diffusion Training
                          via Min-SNR Weighting Strategy"), AdamW lr 1e-3 (the arena's recipe for a
                          CPU-sized U-Net), betas (0.9, 0.999), no weight decay, warmup then cosine to
                          0.1 x lr, grad clipping 1.0, EMA 0.9995 with warmup;
               diffusers  its ``train_unconditional`` example written out: ``DDPMScheduler(1000,
                          "linear")``, ``add_noise``, eps MSE, AdamW lr 1e-4, betas (0.95, 0.999),
                          weight decay 1e-6, ``get_scheduler("cosine")`` with warmup, grad clipping 1.0,
                          ``EMAModel`` (max decay 0.9999, inv_gamma 1, power 3/4).

               Both warm up for 500 steps (both recipes' value), capped at a third of the run. The two
               networks are the same size: our U-Net with base width 32, levels (1, 2, 2), one residual
               block per level, attention at 14x14 and in the middle; diffusers' ``UNet2DModel`` with
               ``block_out_channels`` (32, 64, 64), ``layers_per_block`` 1 and an ``AttnDownBlock2D`` /
               ``AttnUpBlock2D`` at 14x14 (28 -> 14 -> 7): 1.11M parameters and 0.422 GFLOP per forward
               each (checked when run: counts and FLOPs are printed side by side).
2. ``sample``  ``--n`` images from each (EMA weights): ours with DPM-Solver++(2M) (Lu et al. 2022,
               "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models") at 20
               NFE, trailing timesteps; diffusers' network with its ``DDIMScheduler`` (Song et al. 2021,
               "Denoising Diffusion Implicit Models"; eta 0, 50 steps, as ``DDIMPipeline`` runs it);
               and, so the samplers can be told apart from the training, diffusers' network under our
               DPM-Solver++ at 20 NFE too (``--no-peer-dpmpp`` skips it).
3. ``score``   FID of each sample set with our Fashion-MNIST feature net
               (``load_feature_net("fashion-mnist")``) against ``--n`` test images, beside the
               real-vs-real floor at the same n (``--n`` train images against the same test images):
               ``twopaths.eval.images.evaluate_images``. The headline is FID(ours) / FID(diffusers, DDIM 50).

Training seconds are reported but not matched: FLOPs are. diffusers is a peer installed at benchmark
time (``pip install diffusers``), never a runtime dependency of twopaths; nothing is downloaded.

    python benchmarks/quality_per_flop.py                     # 60 TFLOPs each, n = 1,000 (~35 min on 2 idle cores)
    python benchmarks/quality_per_flop.py --quick             # smoke run: 0.4 TFLOPs, n = 64 (~1 min)
    python benchmarks/quality_per_flop.py --budget-tflops 120 --json q.json
    python benchmarks/quality_per_flop.py --set optim.lr=2e-4 --out runs/qpf-ours   # change ours, keep its run
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

try:  # run from a checkout without installing: python benchmarks/quality_per_flop.py
    import twopaths  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Timer, device_name, new_report, pick_device, print_load, run_parts  # noqa: E402
from twopaths.models import get_spec, resolve_config  # noqa: E402
from twopaths.nn.flops import flops_of, forward_gflops  # noqa: E402
from twopaths.paradigms.samplers import make_sampler  # noqa: E402
from twopaths.paradigms.schedule import NoiseSchedule  # noqa: E402
from twopaths.runs import build_trainer  # noqa: E402
from twopaths.training.sampler import ResumableBatchSampler  # noqa: E402

DATA = "fashion-mnist"
SHAPE = (1, 28, 28)
BAR = 0.5  # the goal: FID(ours) <= BAR x FID(diffusers)
WARMUP = 500  # warmup steps of both recipes, capped at a third of the run

#: our recipe (``twopaths train ddpm --data fashion-mnist --set ...``): unconditional, CPU-sized U-Net
OURS_OVERRIDES = (
    "arch.conditioning=none",
    "arch.unet.base_channels=32", "arch.unet.channel_mults=[1,2,2]", "arch.unet.num_res_blocks=1",
    "arch.diffusion.weighting=min-snr",  # gamma 5 (Hang et al. 2023)
    "optim.lr=1e-3",  # the arena's lr for CPU-sized denoisers (twopaths.arena.suites, quick fashion-mnist)
    "optim.min_lr_ratio=0.1",  # cosine to 0.1 x lr over the budget (the preset keeps lr flat for long runs)
    "train.eval_every=0", "train.sample_every=0", "train.precision=fp32",
)

#: diffusers' UNet2DModel of the same size as ours (1.11M parameters, 0.422 GFLOP per 28x28 forward)
PEER_UNET = dict(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64), layers_per_block=1,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
#: diffusers' train_unconditional example defaults
PEER_RECIPE = dict(lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8, grad_clip=1.0,
                   ema_max_decay=0.9999, ema_inv_gamma=1.0, ema_power=0.75, lr_scheduler="cosine")


# ----------------------------------------------------------------------------- models and data


def ours_config(args: argparse.Namespace, steps: int = 1, warmup: int = 0) -> Any:
    overrides = [*OURS_OVERRIDES, f"train.batch_size={args.batch}", f"train.max_steps={steps}",
                 f"optim.warmup_steps={warmup}", f"train.ckpt_every={steps}", f"train.seed={args.seed}",
                 f"train.device={args.device}", f"train.progress={str(not args.quiet).lower()}",
                 *args.overrides]
    return resolve_config("ddpm", None, overrides, DATA)


def peer_unet() -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(**PEER_UNET)


def peer_scheduler() -> Any:
    """``DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")``: betas 1e-4..0.02, eps, clip 1."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")


def peer_loss(unet: torch.nn.Module, scheduler: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training loss of diffusers' train_unconditional example (epsilon objective)."""
    def loss(x0: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        pred = unet(scheduler.add_noise(x0, noise, t), t).sample
        return F.mse_loss(pred.float(), noise.float())
    return loss


def batches(train_set: Any, cfg: Any) -> Any:
    """The batches our trainer draws, in its order (same sampler, same seed): both models see the same data."""
    sampler = ResumableBatchSampler(len(train_set), cfg.train.batch_size, cfg.data.seed + cfg.train.seed)
    return iter(DataLoader(train_set, batch_sampler=sampler, num_workers=0))


def step_flops(loss: Callable[[], torch.Tensor], module: torch.nn.Module) -> int:
    """FLOPs of forward + backward of one training loss (RNG and gradients left as they were)."""
    with torch.random.fork_rng():
        flops = flops_of(lambda: loss().backward())
    module.zero_grad(set_to_none=True)
    return flops


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- 1. training


def plan(args: argparse.Namespace, device: torch.device, state: dict[str, Any]) -> dict[str, Any]:
    """Count each model's FLOPs per step on the first real batch and turn the budget into steps."""
    from twopaths.data.registry import load_splits

    cfg = ours_config(args)
    splits = load_splits(cfg.data)
    batch = next(batches(splits.train, cfg))  # {"image": (B, 1, 28, 28) in [-1, 1], "label": (B,)}
    x0 = batch["image"].to(device)
    torch.manual_seed(args.seed)
    ours = get_spec("ddpm").build(cfg, splits.meta).to(device).train()
    peer = peer_unet().to(device).train()
    flops = {"ours": step_flops(lambda: ours.loss({"image": x0}), ours),
             "diffusers": step_flops(lambda: peer_loss(peer, peer_scheduler())(x0), peer)}
    t = torch.zeros(1, device=device)
    forward = {"ours": forward_gflops(ours.net, x0[:1], t), "diffusers": forward_gflops(peer, x0[:1], t)}
    budget = args.budget_tflops * 1e12
    steps = {k: int(budget // f) for k, f in flops.items()}
    if min(steps.values()) < 1:
        raise SystemExit(f"--budget-tflops {args.budget_tflops} is less than one training step "
                         f"({max(flops.values()) / 1e12:.3f} TFLOPs at batch {args.batch})")
    warmup = {k: args.warmup if args.warmup is not None else min(WARMUP, s // 3) for k, s in steps.items()}
    out = {"budget_tflops": args.budget_tflops, "batch": args.batch, "train_images": len(splits.train),
           "params": {"ours": params(ours), "diffusers": params(peer)}, "gflops_forward": forward,
           "gflops_per_step": {k: f / 1e9 for k, f in flops.items()}, "steps": steps, "warmup_steps": warmup,
           "epochs": {k: round(s * args.batch / len(splits.train), 3) for k, s in steps.items()}}
    state["splits"] = splits
    del ours, peer
    print(f"plan   {args.budget_tflops:g} TFLOPs each at batch {args.batch}: ours {params_str(out, 'ours')}, "
          f"diffusers {params_str(out, 'diffusers')}", flush=True)
    return out


def params_str(p: dict[str, Any], k: str) -> str:
    return (f"{p['params'][k] / 1e6:.2f}M params, {p['gflops_forward'][k]:.3f} GFLOP/forward, "
            f"{p['gflops_per_step'][k]:.1f} GFLOP/step -> {p['steps'][k]:,} steps ({p['epochs'][k]:.2f} epochs)")


def train_ours(args: argparse.Namespace, device: torch.device, state: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    p = state["report"]["plan"]
    cfg = ours_config(args, p["steps"]["ours"], p["warmup_steps"]["ours"])
    trainer = build_trainer(cfg, run_dir, state["splits"])
    with Timer(device) as t:
        result = trainer.fit()
    state["ours"] = trainer
    print(f"train  ours       {p['steps']['ours']:,} steps in {t.seconds:.1f} s, last loss {result['loss']:.4f}"
          " (min-SNR weighted)", flush=True)
    return {"seconds": t.seconds, "steps": result["step"], "last_loss": result["loss"],
            "tflops": p["steps"]["ours"] * p["gflops_per_step"]["ours"] / 1e3, "run_dir": str(run_dir),
            "recipe": {"overrides": [*OURS_OVERRIDES, *args.overrides], "lr": cfg.optim.lr,
                       "warmup_steps": cfg.optim.warmup_steps, "min_lr_ratio": cfg.optim.min_lr_ratio,
                       "betas": list(cfg.optim.betas), "weight_decay": cfg.optim.weight_decay,
                       "grad_clip": cfg.optim.grad_clip, "ema_decay": cfg.train.ema_decay,
                       "weighting": cfg.arch.diffusion.weighting, "min_snr_gamma": cfg.arch.diffusion.min_snr_gamma}}


def train_peer(args: argparse.Namespace, device: torch.device, state: dict[str, Any]) -> dict[str, Any]:
    """diffusers' train_unconditional loop, written out, on the batches our trainer draws."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    p, r = state["report"]["plan"], PEER_RECIPE
    steps, warmup = p["steps"]["diffusers"], p["warmup_steps"]["diffusers"]
    cfg = ours_config(args)  # only for the data order: same seed, same batches as ours
    torch.manual_seed(args.seed)
    unet = peer_unet().to(device).train()
    scheduler = peer_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=r["lr"], betas=r["betas"], weight_decay=r["weight_decay"],
                            eps=r["eps"])
    lr_sched = get_scheduler(r["lr_scheduler"], optimizer=opt, num_warmup_steps=warmup, num_training_steps=steps)
    ema = EMAModel(unet.parameters(), decay=r["ema_max_decay"], use_ema_warmup=True, inv_gamma=r["ema_inv_gamma"],
                   power=r["ema_power"])
    loss_fn = peer_loss(unet, scheduler)
    data = batches(state["splits"].train, cfg)
    losses: list[float] = []
    with Timer(device) as t, tqdm(total=steps, desc="diffusers", unit="step", disable=args.quiet,
                                  mininterval=0.1 if sys.stderr.isatty() else 5.0) as bar:
        for _ in range(steps):
            x0 = next(data)["image"].to(device)
            loss = loss_fn(x0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), r["grad_clip"])
            opt.step()
            lr_sched.step()
            opt.zero_grad(set_to_none=True)
            ema.step(unet.parameters())
            losses.append(float(loss.detach()))
            bar.update(1)
            if len(losses) % 10 == 0:
                bar.set_postfix(loss=f"{sum(losses[-10:]) / 10:.4f}", refresh=False)
    ema.copy_to(unet.parameters())  # sample from the EMA weights, as the example's pipeline does
    state["peer"], state["peer_scheduler"] = unet.eval(), scheduler
    last = sum(losses[-50:]) / len(losses[-50:])
    print(f"train  diffusers  {steps:,} steps in {t.seconds:.1f} s, mean loss of the last 50 {last:.4f}", flush=True)
    return {"seconds": t.seconds, "steps": steps, "last_loss": last,
            "tflops": steps * p["gflops_per_step"]["diffusers"] / 1e3,
            "recipe": {**r, "betas": list(r["betas"]), "warmup_steps": warmup, "ema_use_warmup": True}}


# ----------------------------------------------------------------------------- 2. sampling


@torch.no_grad()
def sample_ours(args: argparse.Namespace, trainer: Any) -> torch.Tensor:
    from twopaths.eval.images import sample_model

    model = trainer.model
    with trainer.ema.applied(model) if trainer.ema is not None else contextlib.nullcontext():
        model.eval()
        return sample_model(model, args.n, args.sample_batch, "dpmpp", args.nfe, seed=args.seed,
                            progress=not args.quiet, spacing="trailing")


@torch.no_grad()
def sample_peer_ddim(args: argparse.Namespace, unet: torch.nn.Module, ddpm: Any, device: torch.device) -> torch.Tensor:
    """What ``DDIMPipeline(unet, ddpm)(eta=0, num_inference_steps=...)`` does, without the image conversion."""
    from diffusers import DDIMScheduler

    ddim = DDIMScheduler.from_config(ddpm.config)
    ddim.set_timesteps(args.peer_steps)
    gen = torch.Generator().manual_seed(args.seed)
    out = []
    for i in tqdm(range(0, args.n, args.sample_batch), desc="diffusers ddim", disable=args.quiet, leave=False):
        x = torch.randn(min(args.sample_batch, args.n - i), *SHAPE, generator=gen).to(device)
        for t in ddim.timesteps:
            x = ddim.step(unet(x, t).sample, t, x, eta=0.0).prev_sample
        out.append(x.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def sample_peer_ours(args: argparse.Namespace, unet: torch.nn.Module, ddpm: Any, device: torch.device) -> torch.Tensor:
    """diffusers' network under our DPM-Solver++(2M), on diffusers' own betas."""
    schedule = NoiseSchedule(ddpm.betas.double())
    solver = make_sampler("dpmpp", schedule, args.nfe, spacing="trailing", prediction="eps", clip=1.0)
    gen = torch.Generator().manual_seed(args.seed)
    out = []
    for i in tqdm(range(0, args.n, args.sample_batch), desc="diffusers dpmpp", disable=args.quiet, leave=False):
        x_T = solver.init_noise((min(args.sample_batch, args.n - i), *SHAPE), gen, device)
        out.append(solver.sample(lambda x_t, t: unet(x_t, t).sample, x_T).float().cpu())
    return torch.cat(out)


def rows(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """What is sampled: name -> which trained model, sampler, NFE."""
    out = {"ours": {"model": "ours", "sampler": "dpmpp (ours), trailing", "nfe": args.nfe},
           "diffusers": {"model": "diffusers", "sampler": "DDIMScheduler eta=0", "nfe": args.peer_steps}}
    if args.peer_dpmpp:
        out["diffusers+dpmpp"] = {"model": "diffusers", "sampler": "dpmpp (ours), trailing", "nfe": args.nfe}
    return out


def bench_sample(args: argparse.Namespace, device: torch.device, state: dict[str, Any]) -> dict[str, Any]:
    fns = {"ours": lambda: sample_ours(args, state["ours"]),
           "diffusers": lambda: sample_peer_ddim(args, state["peer"], state["peer_scheduler"], device),
           "diffusers+dpmpp": lambda: sample_peer_ours(args, state["peer"], state["peer_scheduler"], device)}
    out, state["samples"] = {}, {}
    for name, row in rows(args).items():
        with Timer(device) as t:
            x = fns[name]()
        state["samples"][name] = x
        finite = bool(torch.isfinite(x).all())
        out[name] = {**row, "n": len(x), "seconds": t.seconds, "finite": finite,
                     "mean": float(x.mean()), "std": float(x.std())}
        print(f"sample {name:16s} {len(x):,} images, {row['sampler']} {row['nfe']} NFE: {t.seconds:.1f} s"
              + ("" if finite else "  WARNING: non-finite values"), flush=True)
    return out


# ----------------------------------------------------------------------------- 3. FID


def bench_score(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    from twopaths.eval.features import load_feature_net
    from twopaths.data.registry import real_images
    from twopaths.eval.images import evaluate_images

    net = load_feature_net(DATA)
    real_eval, _ = real_images(DATA, args.n, "test", seed=args.seed)
    real_floor, _ = real_images(DATA, args.n, "train", seed=args.seed + 1)
    out: dict[str, Any] = {"n": args.n, "feature_net": net.identity, "rows": {}}
    for name, fake in state["samples"].items():
        fake = torch.nan_to_num(fake, nan=0.0, posinf=1.0, neginf=-1.0)
        r = evaluate_images(fake, real_eval, real_floor, net, ("fid", "kid", "pr"), progress=False)
        out["floor"] = r["floor"]
        out["rows"][name] = r["metrics"]
        print(f"score  {name:16s} FID {r['metrics']['fid']:.2f} (floor {r['floor']['fid']:.2f})", flush=True)
    fid = {k: v["fid"] for k, v in out["rows"].items()}
    out["ratio_vs_diffusers"] = fid["ours"] / fid["diffusers"]
    if "diffusers+dpmpp" in fid:
        out["ratio_vs_diffusers_same_sampler"] = fid["ours"] / fid["diffusers+dpmpp"]
    out["bar"] = BAR
    out["bar_met"] = out["ratio_vs_diffusers"] <= BAR
    return out


# ----------------------------------------------------------------------------- report


def print_table(report: dict[str, Any]) -> None:
    p, tr, sm, sc = report["plan"], report["train"], report["sample"], report["score"]
    print("\n" + "=" * 78)
    print(f"Quality per training FLOP  {report['date']}")
    print(f"device   {report['device']} ({report['device_type']}), torch {report['torch']}, "
          f"diffusers {report['diffusers']}, threads {report['threads']}")
    print(f"data     {DATA} train split ({p['train_images']:,} images, 28x28x1), unconditional, batch {p['batch']}, "
          f"same batches in the same order for both")
    print(f"budget   {p['budget_tflops']:g} TFLOPs of training each (forward + backward, multiply-add = 2)")
    print(f"ours     {params_str(p, 'ours')}")
    print(f"         ddpm preset + Min-SNR-5, AdamW lr {tr['ours']['recipe']['lr']:g}, warmup "
          f"{tr['ours']['recipe']['warmup_steps']} + cosine to {tr['ours']['recipe']['min_lr_ratio']:g} x lr, "
          f"EMA {tr['ours']['recipe']['ema_decay']:g}")
    print(f"peer     {params_str(p, 'diffusers')}")
    r = tr["diffusers"]["recipe"]
    print(f"         train_unconditional recipe: AdamW lr {r['lr']:g} betas {tuple(r['betas'])} "
          f"wd {r['weight_decay']:g}, warmup {r['warmup_steps']} + cosine, "
          f"EMAModel max {r['ema_max_decay']:g} power {r['ema_power']:g}")
    print(f"FID      n = {sc['n']:,} samples against {sc['n']:,} test images, feature net {sc['feature_net']}; "
          f"floor = {sc['n']:,} train images")
    print_load(report)
    print(f"{'row':16s} {'sampler':24s} {'NFE':>4s} {'FID':>8s} {'floor':>6s} {'FID/floor':>9s} {'prec':>5s} "
          f"{'recall':>6s} {'steps':>6s} {'TFLOPs':>7s} {'train s':>8s} {'sample s':>8s}")
    floor = sc["floor"]["fid"]
    for name, m in sc["rows"].items():
        s, t = sm[name], tr[sm[name]["model"]]
        print(f"{name:16s} {s['sampler']:24s} {s['nfe']:4d} {m['fid']:8.2f} {floor:6.2f} {m['fid'] / floor:9.1f} "
              f"{m['precision']:5.2f} {m['recall']:6.2f} {t['steps']:6,d} {t['tflops']:7.1f} {t['seconds']:8.1f} "
              f"{s['seconds']:8.1f}")
    verdict = "met" if sc["bar_met"] else "NOT met"
    print(f"\nFID ours / diffusers (DDIM {sm['diffusers']['nfe']}): {sc['ratio_vs_diffusers']:.3f}  "
          f"(goal <= {sc['bar']:g}: {verdict})")
    if "ratio_vs_diffusers_same_sampler" in sc:
        print(f"FID ours / diffusers (same sampler, dpmpp {sm['ours']['nfe']}): "
              f"{sc['ratio_vs_diffusers_same_sampler']:.3f}")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 0.4 TFLOPs of training each (about 10 steps), n = 64 (about 1 min)")
    p.add_argument("--budget-tflops", type=float, default=None,
                   help="training FLOPs per model in TFLOPs (default: 60, about 1,550 steps of batch 32; 0.4 --quick)")
    p.add_argument("--batch", type=int, default=32, help="training batch of both models (default: 32)")
    p.add_argument("--warmup", type=int, default=None,
                   help=f"warmup steps of both (default: {WARMUP}, capped at a third of the run)")
    p.add_argument("--n", type=int, default=None,
                   help="samples per row and real images for FID (default: 1000; 64 --quick)")
    p.add_argument("--sample-batch", type=int, default=250, help="images per sampling batch (default: 250)")
    p.add_argument("--nfe", type=int, default=20, help="network evaluations of our DPM-Solver++ (default: 20)")
    p.add_argument("--peer-steps", type=int, default=50, help="steps of diffusers' DDIM (default: 50)")
    p.add_argument("--peer-dpmpp", action=argparse.BooleanOptionalAction, default=True,
                   help="also sample diffusers' network with our DPM-Solver++ (default: on)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value of our ddpm, as 'twopaths train --set'; repeatable")
    p.add_argument("--out", type=Path, default=None, help="keep our trained run here (default: a temporary directory)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="(default: cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="weights, noise, data order and real subsets (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    args = p.parse_args(argv)
    args.budget_tflops = args.budget_tflops if args.budget_tflops is not None else (0.4 if args.quick else 60.0)
    args.n = args.n or (64 if args.quick else 1000)
    args.sample_batch = min(args.sample_batch, args.n)
    if args.out is not None and (args.out / "config.yaml").exists():
        p.error(f"{args.out} already holds a run; choose another --out")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = pick_device(args)
    name = device_name(device)

    import diffusers
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module="diffusers")

    report = new_report(args, argv, device, name, {"diffusers": diffusers.__version__})
    print(f"device {name} ({device.type}), torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"threads {torch.get_num_threads()}; budget {args.budget_tflops:g} TFLOPs each, batch {args.batch}, "
          f"n = {args.n}", flush=True)
    state: dict[str, Any] = {"report": report}
    with tempfile.TemporaryDirectory(prefix="qpf-bench-") as tmp:
        run_dir = args.out or Path(tmp) / "ours"
        parts = {"plan": lambda: plan(args, device, state),
                 "train": lambda: {"ours": train_ours(args, device, state, run_dir),
                                   "diffusers": train_peer(args, device, state)},
                 "sample": lambda: bench_sample(args, device, state),
                 "score": lambda: bench_score(args, state)}
        return run_parts(report, device, parts, print_table, args.json)


if __name__ == "__main__":
    main()
