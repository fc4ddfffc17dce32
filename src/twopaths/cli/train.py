"""``twopaths train``: train a named model, or resume a run."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

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
           resolution channels size max_number reverse
  optim.*  lr min_lr_ratio warmup_steps weight_decay betas eps grad_clip
  train.*  max_steps batch_size grad_accum seed device precision compile ema_decay
           ema_warmup log_every eval_every eval_batches sample_every ckpt_every
           ckpt_minutes keep_last num_workers progress
  arch.*   the model's own settings (shown by --dry-run and saved in RUN/config.yaml)
"""


def _models_help() -> str:
    from twopaths.models import MODELS

    return "models:\n" + "\n".join(f"  {name:<12} {spec.summary}" for name, spec in MODELS.items())


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def cmd_train(args: argparse.Namespace) -> int:
    from twopaths.data.registry import load_splits
    from twopaths.models import load_run_config, resolve_config
    from twopaths.runs import build_trainer
    from twopaths.train.checkpoint import list_checkpoints
    from twopaths.train.lock import hold
    from twopaths.train.optim import effective_warmup

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

    if args.dry_run:
        from twopaths.config import to_dict

        splits = load_splits(cfg.data, None)
        plan = build_trainer(cfg, run_dir, splits).dry_run()
        print("dry run: nothing written\n")
        for key, value in plan.items():
            print(f"  {key:<40} {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"  {key:<40} {value}")
        print(f"\n  data source: {splits.meta.get('source')}")
        print("  arch: " + json.dumps(to_dict(cfg.arch)))
        return 0
    main_rank = os.environ.get("RANK", "0") == "0"
    # one writer per run directory, from before the first file is written (a tokenizer) to the last
    with hold(run_dir) if main_rank else contextlib.nullcontext():
        splits = load_splits(cfg.data, run_dir)
        trainer = build_trainer(cfg, run_dir, splits)
        announce = f"training {cfg.model} on {cfg.data.name} ({splits.meta.get('source')}) -> {run_dir}" + (
            " (resuming)" if args.resume else "")
        warmup = effective_warmup(cfg.optim, cfg.train.max_steps)
        if warmup < cfg.optim.warmup_steps and not args.resume:
            announce = (f"note: optim.warmup_steps={cfg.optim.warmup_steps} is more than a tenth of "
                        f"train.max_steps={cfg.train.max_steps}; warming up over {warmup} steps\n{announce}")
        result = trainer.fit(resume=bool(args.resume), announce=announce)  # said once the checkpoint loaded
    if trainer.is_main:
        if result["steps_run"] == 0:
            print(f"nothing to do: {run_dir} is already at step {result['step']} of train.max_steps="
                  f"{cfg.train.max_steps} (last loss {result['loss']:.4f}); continue it with --resume {run_dir} "
                  f"--set train.max_steps=...", file=sys.stderr)
        else:
            print(f"done: step {result['step']}, loss {result['loss']:.4f}, {result['seconds']:.1f}s; "
                  f"checkpoint {result['checkpoint']}", file=sys.stderr)
    from twopaths.train.distributed import shutdown

    shutdown()
    return 0
