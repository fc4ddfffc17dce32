"""``twopaths export`` and ``twopaths import-hf``: runs to and from Hugging Face GPT-2 folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from twopaths.cli.options import add_checkpoint_args


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a run in another library's format (Hugging Face GPT-2)",
                       description="Write a GPT run as a Hugging Face GPT-2 folder (config.json, model.safetensors, "
                                   "tokenizer) that transformers.GPT2LMHeadModel.from_pretrained(DIR) loads. "
                                   "Needs a GPT-2 compatible run: learned positions, gelu-tanh, biases, tied head.")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--format", choices=["hf"], default="hf", help="output format (only hf for now)")
    p.add_argument("--out", type=Path, required=True, help="folder to create (must not exist or be empty)")
    add_checkpoint_args(p)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import-hf", help="turn a local Hugging Face GPT-2 folder into a twopaths run",
                       description="Read a local GPT-2 folder (config.json, model.safetensors, tokenizer.json or "
                                   "vocab.json + merges.txt) and write a twopaths run you can sample, evaluate "
                                   "or fine-tune with --resume. Never unpickles: pytorch_model.bin is refused.")
    p.add_argument("dir", type=Path, help="the Hugging Face model folder")
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.set_defaults(func=cmd_import_hf)


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
