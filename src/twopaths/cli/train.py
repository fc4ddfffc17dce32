"""``twopaths train``: train a named model, or resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twopaths.cli.options import command
from twopaths.config import PRESETS
from twopaths.errors import TwopathsError


def _models_help() -> str:
    from twopaths.models import MODELS

    return "models:\n" + "\n".join(f"  {name:<12} {spec.summary}" for name, spec in MODELS.items())


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", cmd_train, epilog=_models_help())
    p.add_argument("model", nargs="?", help="model name (see below); omit with --resume")
    p.add_argument("--data", help="dataset name (see 'twopaths data list'); same as --set data.name=...")
    p.add_argument("--out", type=Path, help="run directory to create (refuses one that already has checkpoints)")
    p.add_argument("--config", help="YAML file of config values (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value; repeatable")
    p.add_argument("--resume", type=Path, metavar="RUN",
                   help="continue RUN from its newest checkpoint with its saved config (plus any --set)")
    p.add_argument("--preset", choices=PRESETS, default="auto",
                   help="the model's CPU-sized preset (finishes on 2 CPU cores) or its full GPU-sized one; "
                        "auto (default): cpu unless training on CUDA. --config and --set apply on top")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the config, load data, build the model, run one forward/backward pass, "
                        "print the plan; write nothing")


def cmd_train(args: argparse.Namespace) -> int:
    """train a model (or resume a run)

    Train a named model on a dataset, writing checkpoints, metrics.jsonl and the resolved config.yaml into
    the run directory.

    examples:
      twopaths train gpt-nano --data fortunes --out runs/gpt
      twopaths train gpt-char --out runs/char --set data.tokenizer=char
      twopaths train mlp-lm --data fortunes --out runs/mlp
      twopaths train mlp-lm --out runs/mlp --set train.max_steps=2000 --set optim.lr=1e-3
      twopaths train mlp-lm --out runs/mlp --config my.yaml --dry-run   # the plan and the time it will take
      twopaths train ddpm --out runs/ddpm --preset gpu --set train.max_time=2h   # the full model, 2 hours at most
      twopaths train --resume runs/mlp --set train.max_steps=4000     # continue, exactly where it stopped
      torchrun --nproc_per_node 2 -m twopaths train mlp-lm --out runs/ddp   # data parallel

    config keys (--set KEY=VALUE; the value is YAML, e.g. 3e-4, true, [0.9,0.95]):
      data.*   name path seed val_fraction test_fraction tokenizer vocab_size context rows
               resolution channels size frames objects seconds max_number reverse
      optim.*  lr min_lr_ratio warmup_steps weight_decay betas eps grad_clip
      train.*  max_steps max_time batch_size grad_accum seed device precision compile ema_decay
               ema_warmup log_every eval_every eval_batches sample_every ckpt_every
               ckpt_minutes keep_last num_workers progress
      arch.*   the model's own settings (shown by --dry-run and saved in RUN/config.yaml)
    """
    from twopaths.data.registry import load_splits
    from twopaths.runs import build_trainer, train_run, training_config

    if not args.resume and args.model and not args.out and not args.dry_run:
        raise TwopathsError("--out RUN is required: the directory where checkpoints and metrics go")
    if args.dry_run:
        from twopaths.config import to_dict
        from twopaths.models import load_run_config, preset_note, resolve_config

        if args.resume:
            cfg, run_dir = load_run_config(args.resume, args.overrides), args.resume
        elif args.model:
            cfg, run_dir = resolve_config(args.model, args.config, args.overrides, args.data, args.preset), args.out
        else:
            raise TwopathsError("name a model to train (see 'twopaths train --help'), or --resume RUN")
        splits = load_splits(cfg.data, None)
        plan = build_trainer(cfg, run_dir or Path("runs") / cfg.model, splits).dry_run()
        print("dry run: nothing written\n")
        for key, value in plan.items():
            print(f"  {key:<40} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"  {key:<40} {value}")
        print(f"\n  {preset_note(cfg, args.preset)}" if not args.resume else "")
        print(f"  data source: {splits.meta.get('source')}")
        print("  arch: " + json.dumps(to_dict(cfg.arch)))
        return 0
    cfg, run_dir = training_config(args.model, out=args.out, data=args.data, config=args.config,
                                   overrides=args.overrides, resume=args.resume, preset=args.preset)
    result = train_run(cfg, run_dir, resume=bool(args.resume), preset=args.preset)
    if result["main"]:
        if result["steps_run"] and result["stopped_by_time"]:
            print(f"done: train.max_time={cfg.train.max_time} reached at step {result['step']} of "
                  f"train.max_steps={cfg.train.max_steps}, loss {result['loss']:.4f}, {result['seconds']:.1f}s; "
                  f"checkpoint {result['checkpoint']}; continue it with --resume {run_dir}", file=sys.stderr)
        elif result["steps_run"] == 0:
            print(f"nothing to do: {run_dir} is already at step {result['step']} of train.max_steps="
                  f"{cfg.train.max_steps} (last loss {result['loss']:.4f}); continue it with --resume {run_dir} "
                  f"--set train.max_steps=...", file=sys.stderr)
        else:
            print(f"done: step {result['step']}, loss {result['loss']:.4f}, {result['seconds']:.1f}s; "
                  f"checkpoint {result['checkpoint']}", file=sys.stderr)
    from twopaths.training.distributed import shutdown

    shutdown()
    return 0
