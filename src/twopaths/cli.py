"""The ``twopaths`` command line: train, sample, eval, data.

Every command that can fail because of what the user typed or pointed at prints one
``error: ...`` line and exits with status 2; a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twopaths import __version__
from twopaths.errors import TwopathsError

EXAMPLES_TRAIN = """\
examples:
  twopaths train gpt-nano --data fortunes --out runs/gpt
  twopaths train gpt-char --out runs/char --set data.tokenizer=char
  twopaths train mlp-lm --data fortunes --out runs/mlp
  twopaths train mlp-lm --out runs/mlp --set train.max_steps=2000 --set optim.lr=1e-3
  twopaths train mlp-lm --out runs/mlp --config my.yaml --dry-run
  twopaths train --resume runs/mlp --set train.max_steps=4000     # continue, exactly where it stopped
  torchrun --nproc_per_node 2 -m twopaths train mlp-lm --out runs/ddp   # data parallel

config keys (--set KEY=VALUE; the value is YAML, e.g. 3e-4, true, [0.9,0.95]):
  data.*   name path seed val_fraction test_fraction tokenizer vocab_size context
           resolution channels size max_number
  optim.*  lr min_lr_ratio warmup_steps weight_decay betas eps grad_clip
  train.*  max_steps batch_size grad_accum seed device precision compile ema_decay
           ema_warmup log_every eval_every eval_batches sample_every ckpt_every
           keep_last num_workers progress
  arch.*   the model's own settings (shown by --dry-run and saved in RUN/config.yaml)
"""


def _models_help() -> str:
    from twopaths.models import MODELS

    return "models:\n" + "\n".join(f"  {name:<12} {spec.summary}" for name, spec in MODELS.items())


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """Which weights of a run to use: the newest checkpoint's EMA unless told otherwise."""
    p.add_argument("--checkpoint", help="a specific checkpoint directory instead of the newest")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twopaths",
        description="Diffusion models and transformers, built from first principles, "
                    "trained on the same data and measured side by side.",
        epilog="Run 'twopaths COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"twopaths {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, help="what to do")

    # train ------------------------------------------------------------------------------------
    p = sub.add_parser("train", help="train a model (or resume a run)",
                       description="Train a named model on a dataset, writing checkpoints, metrics.jsonl "
                                   "and the resolved config.yaml into the run directory.",
                       epilog=_models_help() + "\n\n" + EXAMPLES_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model name (see below); omit with --resume")
    p.add_argument("--data", help="dataset name (see 'twopaths data list'); same as --set data.name=...")
    p.add_argument("--out", type=Path, help="run directory to create (refuses one that already has checkpoints)")
    p.add_argument("--config", help="YAML file of config values (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue RUN from its newest checkpoint with its saved config (plus any --set)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the config, load data, build the model, run one forward/backward pass, "
                        "print the plan; write nothing")
    p.set_defaults(func=cmd_train)

    # sample -----------------------------------------------------------------------------------
    p = sub.add_parser("sample", help="generate from a trained run",
                       description="Generate from a run's newest checkpoint (EMA weights unless --no-ema). "
                                   "Text models stream tokens to stdout; diffusion models write a PNG grid "
                                   "(or a scatter plot for 2-D points) or NPZ arrays.",
                       epilog="examples:\n"
                              "  twopaths sample runs/gpt --prompt \"The secret of\" --n 3 --top-p 0.9\n"
                              "  twopaths sample runs/ddpm --n 64 --sampler dpmpp --steps 20 --out grid.png\n"
                              "  twopaths sample runs/ddpm --class Sneaker --guidance 3 --trajectory traj.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--n", type=int, default=None, help="number of samples (text: 1, diffusion: 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same samples)")
    _add_checkpoint_args(p)
    g = p.add_argument_group("text models")
    g.add_argument("--prompt", default="", help="text to continue (default: start of a new document)")
    g.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate per sample")
    g.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy")
    g.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    g.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling: only the most likely tokens whose probability adds up to p")
    g.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop a sample when this text appears (not printed); repeatable")
    g = p.add_argument_group("diffusion models")
    g.add_argument("--sampler", choices=["ddpm", "ddim", "dpmpp", "euler", "heun"], default="ddim",
                   help="DDPM ancestral, DDIM (eta 0), DPM-Solver++(2M), or Euler/Heun on EDM sigmas")
    g.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: T for ddpm, the run's arch.sample_steps otherwise); "
                        "heun evaluates the network twice per step")
    g.add_argument("--spacing", choices=["leading", "linspace", "trailing"], default="leading",
                   help="how the steps are placed among the T training timesteps")
    g.add_argument("--class", dest="class_", metavar="C",
                   help="class name or number for class-conditional models (default: every class in turn)")
    g.add_argument("--guidance", type=float, default=1.0,
                   help="classifier-free guidance scale w (1 = plain conditional; 3 is a common choice)")
    g.add_argument("--out", help="output file: .png (grid or scatter plot) or .npz (arrays); "
                                 "default RUN/samples/sample.png")
    g.add_argument("--trajectory", metavar="PNG", help="also draw x_t and the predicted x0 across the steps")
    p.set_defaults(func=cmd_sample)

    # eval -------------------------------------------------------------------------------------
    p = sub.add_parser("eval", help="evaluate a trained run on a split",
                       description="Mean loss of a run's newest checkpoint on a split, plus the metrics "
                                   "of its family (perplexity and bits per token for language models). "
                                   "Prints a table and, with --json, writes the numbers to a file.")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--split", choices=["val", "test", "train"], default="val", help="which split (default val)")
    p.add_argument("--batches", type=int, default=None, help="only the first N batches (default: all)")
    p.add_argument("--n", type=int, default=None, help="only the first N items of the split")
    p.add_argument("--metrics", default="loss",
                   help="comma-separated: loss (mean training loss, plus perplexity for text), "
                        "nll (diffusion: bits/dim from the full variational bound; T evaluations per batch)")
    _add_checkpoint_args(p)
    p.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    p.set_defaults(func=cmd_eval)

    # export / import-hf ------------------------------------------------------------------------
    p = sub.add_parser("export", help="write a run in another library's format (Hugging Face GPT-2)",
                       description="Write a GPT run as a Hugging Face GPT-2 folder (config.json, model.safetensors, "
                                   "tokenizer) that transformers.GPT2LMHeadModel.from_pretrained(DIR) loads. "
                                   "Needs a GPT-2 compatible run: learned positions, gelu-tanh, biases, tied head.")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--format", choices=["hf"], default="hf", help="output format (only hf for now)")
    p.add_argument("--out", type=Path, required=True, help="folder to create (must not exist or be empty)")
    _add_checkpoint_args(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import-hf", help="turn a local Hugging Face GPT-2 folder into a twopaths run",
                       description="Read a local GPT-2 folder (config.json, model.safetensors, tokenizer.json or "
                                   "vocab.json + merges.txt) and write a twopaths run you can sample, evaluate "
                                   "or fine-tune with --resume. Never unpickles: pytorch_model.bin is refused.")
    p.add_argument("dir", type=Path, help="the Hugging Face model folder")
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.set_defaults(func=cmd_import_hf)

    # data -------------------------------------------------------------------------------------
    p = sub.add_parser("data", help="list datasets, or fetch Fashion-MNIST",
                       description="'list' shows every dataset, where it was found, its size and shapes. "
                                   "'fetch fashion-mnist' downloads the IDX files from the official mirror "
                                   "into the cache (checksums verified); it is the only network access.")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, help="list or fetch")
    q = data_sub.add_parser("list", help="show every dataset and where it was found")
    q.add_argument("--path", help="an explicit Fashion-MNIST folder to check")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("fetch", help="download a dataset (only fashion-mnist needs it)")
    q.add_argument("name", choices=["fashion-mnist"], help="dataset to download (the others are local or procedural)")
    q.add_argument("--dest", type=Path, help="folder to download into (default: the cache, see TWOPATHS_CACHE)")
    q.set_defaults(func=cmd_data_fetch)
    return parser


# ----------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from twopaths.data.registry import load_splits
    from twopaths.models import get_spec, load_run_config, resolve_config
    from twopaths.train.checkpoint import list_checkpoints
    from twopaths.train.trainer import Hook, Trainer

    if args.resume:
        if args.model or args.data or args.config:
            raise TwopathsError("--resume takes the model, data and config from the run; "
                                "change values with --set only")
        run_dir = args.resume
        cfg = load_run_config(run_dir, args.overrides)
        if not list_checkpoints(run_dir / "checkpoints"):
            raise TwopathsError(f"run {run_dir} has no checkpoint to resume from; "
                                f"start it again with 'twopaths train {cfg.model} --out {run_dir}'")
    else:
        if not args.model:
            raise TwopathsError("name a model to train (see 'twopaths train --help'), or --resume RUN")
        if not args.out and not args.dry_run:
            raise TwopathsError("--out RUN is required: the directory where checkpoints and metrics go")
        cfg = resolve_config(args.model, args.config, args.overrides, args.data)
        run_dir = args.out or Path("runs") / args.model
        if list_checkpoints(run_dir / "checkpoints") and not args.dry_run:
            raise TwopathsError(f"{run_dir} already holds a run with checkpoints; continue it with "
                                f"--resume {run_dir}, or choose another --out (nothing was changed)")

    spec = get_spec(cfg.model)
    splits = load_splits(cfg.data, None if args.dry_run else run_dir)
    import torch

    torch.manual_seed(cfg.train.seed)  # model initialisation is reproducible
    model = spec.build(cfg, splits.meta)
    hooks = [Hook("samples", cfg.train.sample_every, spec.sample_hook(splits.meta))] \
        if cfg.train.sample_every and spec.sample_hook else []
    trainer = Trainer(model, splits.train, cfg, run_dir, val_set=splits.val, hooks=hooks)
    if args.dry_run:
        from twopaths.config import to_dict

        plan = trainer.dry_run()
        print("dry run: nothing written\n")
        for key, value in plan.items():
            print(f"  {key:<40} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"  {key:<40} {value}")
        print(f"\n  data source: {splits.meta.get('source')}")
        print("  arch: " + json.dumps(to_dict(cfg.arch)))
        return 0
    if trainer.is_main:
        print(f"training {cfg.model} on {cfg.data.name} ({splits.meta.get('source')}) -> {run_dir}"
              + (f" (resuming)" if args.resume else ""), file=sys.stderr)
    result = trainer.fit(resume=bool(args.resume))
    if trainer.is_main:
        print(f"done: step {result['step']}, loss {result['loss']:.4f}, {result['seconds']:.1f}s; "
              f"checkpoint {result['checkpoint']}", file=sys.stderr)
    from twopaths.train.distributed import shutdown

    shutdown()
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from twopaths.models import load_run

    run = load_run(args.run, args.checkpoint, use_ema=not args.no_ema)
    if run.spec.sample_command is None:
        raise TwopathsError(f"model '{run.cfg.model}' has no sampler")
    is_text = "tokenizer" in run.meta
    args.n = args.n if args.n is not None else (1 if is_text else 64)
    if args.n < 1 or args.max_new_tokens < 1 or (args.steps is not None and args.steps < 1):
        raise TwopathsError("--n, --steps and --max-new-tokens must be >= 1")
    return run.spec.sample_command(run, args)


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from twopaths.models import load_run
    from twopaths.train.trainer import mean_loss

    metrics_asked = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(metrics_asked) - {"loss", "nll"})
    if unknown:
        raise TwopathsError(f"unknown metric(s) {', '.join(unknown)}; available here: loss, nll")
    run = load_run(args.run, args.checkpoint, use_ema=not args.no_ema, with_data=True)
    dataset = getattr(run.splits, args.split)
    if args.n is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(args.n, len(dataset))))
    torch.manual_seed(0)  # stochastic losses (diffusion's t and noise) give the same number every time
    metrics: dict[str, float] = {}
    with torch.no_grad():
        if "loss" in metrics_asked:
            loss = mean_loss(run.model, dataset, run.cfg.train.batch_size, torch.device("cpu"),
                             max_batches=args.batches, progress=True)
            metrics.update(run.spec.report(loss, run.meta))
        if "nll" in metrics_asked:
            if not hasattr(run.model, "nll_bits_per_dim"):
                raise TwopathsError(f"model '{run.cfg.model}' has no likelihood bound; use --metrics loss")
            metrics.update(_diffusion_nll(run, dataset, args.batches))
    print(f"{run.cfg.model} on {run.cfg.data.name}/{args.split}, checkpoint step {run.checkpoint.step}"
          f" ({'raw' if args.no_ema or not run.checkpoint.has_ema else 'EMA'} weights), {len(dataset):,} items")
    for key, value in metrics.items():
        print(f"  {key:<20} {value:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "split": args.split, "items": len(dataset),
                                         "step": run.checkpoint.step, **metrics}, indent=2))
    return 0


def _diffusion_nll(run, dataset, max_batches: int | None) -> dict[str, float]:
    """Bits per dimension from the full variational bound (T network evaluations per batch)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    model = run.model
    loader = DataLoader(dataset, batch_size=min(64, len(dataset)))
    total = min(len(loader), max_batches) if max_batches else len(loader)
    bits, prior = [], []
    for i, batch in enumerate(tqdm(loader, total=total, desc=f"VLB ({model.schedule.T} steps per batch)")):
        if i >= total:
            break
        x = batch[model.data_key]
        y = batch["label"] if model.num_classes else None
        out = model.nll_bits_per_dim(x, y)
        bits.append(out["bits_per_dim"])
        prior.append(out["prior_bits_per_dim"])
    return {"nll_bits_per_dim": float(torch.cat(bits).mean()), "prior_bits_per_dim": float(torch.cat(prior).mean())}


def cmd_export(args: argparse.Namespace) -> int:
    from twopaths.interop.hf import export_hf

    out = export_hf(args.run, args.out, args.checkpoint, use_ema=not args.no_ema)
    print(f"wrote {out} (load it with transformers.GPT2LMHeadModel.from_pretrained)")
    return 0


def cmd_import_hf(args: argparse.Namespace) -> int:
    from twopaths.interop.hf import import_hf

    out = import_hf(args.dir, args.out)
    print(f"wrote run {out}; try: twopaths sample {out} --prompt \"Hello\"")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from twopaths.data.registry import inventory

    rows = inventory(args.path)
    headers = ("name", "kind", "size", "shapes", "found at")
    table = [(r.name + ("" if r.available else " (missing)"), r.kind, r.size, r.shapes, r.source) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  " + headers[-1])
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from twopaths.data.images import download_fashion_mnist

    path = download_fashion_mnist(args.dest)
    print(f"Fashion-MNIST is in {path} (checksums verified)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TwopathsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; a training run continues from its newest checkpoint with --resume RUN",
              file=sys.stderr)
        return 130
