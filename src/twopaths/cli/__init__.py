"""The ``twopaths`` command line: train, sample, eval, data.

Every command that can fail because of what the user typed or pointed at prints one
``error: ...`` line and exits with status 2; a bug keeps its traceback.

Each command family has a module here that owns its parser and its handler (which turns the
parsed options into keyword arguments for the library): :mod:`~twopaths.cli.train`,
:mod:`~twopaths.cli.sample`, :mod:`~twopaths.cli.eval`, :mod:`~twopaths.cli.restore` (inpaint,
upscale), :mod:`~twopaths.cli.text` (fill, translate), :mod:`~twopaths.cli.arena`,
:mod:`~twopaths.cli.attention`, :mod:`~twopaths.cli.interop` (export, import-hf) and
:mod:`~twopaths.cli.data`, :mod:`~twopaths.cli.models` (the paradigm x backbone matrix);
:mod:`~twopaths.cli.options` holds the options several share.
"""

from __future__ import annotations

import argparse
import sys

from twopaths.version import __version__
from twopaths.cli import arena, attention, data, interop, models, restore, sample, text, train
from twopaths.cli import eval as evaluate
from twopaths.cli.options import GAUSSIAN_SAMPLERS, MASKED_SAMPLERS, Parser
from twopaths.errors import TrainingInterrupted, TwopathsError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="twopaths",
        description="Diffusion models and transformers, built from first principles, "
                    "trained on the same data and measured side by side.",
        epilog="Run 'twopaths COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"twopaths {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, help="what to do")
    # in the order 'twopaths --help' lists them
    train.add_parser(sub)
    sample.add_parser(sub)
    text.add_fill_parser(sub)
    restore.add_parsers(sub)
    evaluate.add_parser(sub)
    text.add_translate_parser(sub)
    arena.add_parser(sub)
    attention.add_parser(sub)
    interop.add_parsers(sub)
    data.add_parser(sub)
    models.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad option (its one line is printed): a status to return
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except TrainingInterrupted as exc:  # a checkpoint was written; not an error of the user's
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except TwopathsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted at once; a training run continues from its newest checkpoint with --resume RUN",
              file=sys.stderr)
        return 130


__all__ = ["GAUSSIAN_SAMPLERS", "MASKED_SAMPLERS", "build_parser", "main"]
