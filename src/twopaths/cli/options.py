"""What several commands share: the checkpoint and decoding options, the sampler names, loading the run."""

from __future__ import annotations

import argparse
from typing import Any

# --sampler values, spelled here so building the parser does not import torch; a test checks they
# match the samplers of twopaths.paradigms (gaussian / mdlm_sampling.SAMPLERS)
GAUSSIAN_SAMPLERS = ("ddpm", "ddim", "dpmpp", "euler", "heun")
MASKED_SAMPLERS = ("ancestral", "remask", "block")


def command(sub: argparse._SubParsersAction, name: str, *, help: str, description: str, epilog: str = "",
            examples: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A command's parser whose epilog is ``epilog``, then a blank line and ``examples:`` with one
    indented command line per item; such a parser keeps the line breaks of its description and epilog."""
    if examples:
        epilog = (epilog + "\n\n" if epilog else "") + "examples:\n" + "\n".join(f"  {line}" for line in examples)
    if not epilog:
        return sub.add_parser(name, help=help, description=description)
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """Which weights of a run to use: the newest checkpoint's EMA unless told otherwise."""
    p.add_argument("--checkpoint", help="a specific checkpoint directory instead of the newest")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")


def add_decoding_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How a seq2seq run decodes: beam search (the run's arch.beam, arch.length_penalty) or greedy."""
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the run's arch.beam, 4)")
    p.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                   help="GNMT length penalty ((5+|Y|)/6)^ALPHA (default: the run's arch.length_penalty, 0.6)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding (the same as --beam 1)")


def decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding options of :func:`add_decoding_args` as keyword arguments."""
    return {"beam": args.beam, "length_penalty": args.length_penalty, "greedy": args.greedy}


def load(args: argparse.Namespace, with_data: bool = False) -> Any:
    """The run of ``args.run`` with the weights :func:`add_checkpoint_args` chose, as a
    :class:`~twopaths.runs.LoadedRun` (with its data splits if ``with_data``)."""
    from twopaths.runs import load_run

    return load_run(args.run, args.checkpoint, use_ema=not args.no_ema, with_data=with_data)


def weights(args: argparse.Namespace, run: Any) -> str:
    """"EMA" or "raw": which weights ``run`` was loaded with."""
    return "raw" if args.no_ema or not run.checkpoint.has_ema else "EMA"
