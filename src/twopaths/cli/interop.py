"""``twopaths export`` and ``twopaths import-hf``: runs to and from Hugging Face GPT-2 folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from twopaths.cli.options import command


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "export", cmd_export, run="run directory")
    p.add_argument("--format", choices=["hf"], default="hf", help="output format (only hf for now)")
    p.add_argument("--out", type=Path, required=True, help="folder to create (must not exist or be empty)")
    p = command(sub, "import-hf", cmd_import_hf)
    p.add_argument("dir", type=Path, help="the Hugging Face model folder")
    p.add_argument("--out", type=Path, required=True, help="run directory to create")


def cmd_export(args: argparse.Namespace) -> int:
    """write a run in another library's format (Hugging Face GPT-2)

    Write a GPT run as a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer) that
    transformers.GPT2LMHeadModel.from_pretrained(DIR) loads. Needs a GPT-2 compatible run: learned
    positions, gelu-tanh, biases, tied head.
    """
    from twopaths.interop.hf import export_hf

    out = export_hf(args.run, args.out, args.checkpoint, use_ema=not args.no_ema)
    print(f"wrote {out} (load it with transformers.GPT2LMHeadModel.from_pretrained)")
    return 0


def cmd_import_hf(args: argparse.Namespace) -> int:
    """turn a local Hugging Face GPT-2 folder into a twopaths run

    Read a local GPT-2 folder (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt)
    and write a twopaths run you can sample, evaluate or fine-tune with --resume. Never unpickles:
    pytorch_model.bin is refused.
    """
    from twopaths.interop.hf import import_hf

    out = import_hf(args.dir, args.out)
    print(f"wrote run {out}; try: twopaths sample {out} --prompt \"Hello\"")
    return 0
