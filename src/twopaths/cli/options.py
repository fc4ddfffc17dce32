"""What several commands share: the checkpoint and decoding options, the sampler names, loading the run."""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any, Callable

from twopaths.errors import TwopathsError
from twopaths.paradigms import PARADIGMS

# ----------------------------------------------------------------------------- numbers, checked at the edge
# argparse calls these on the text of an option; an ArgumentTypeError becomes one 'error:' line, exit 2


def _parse(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounded(kind: type, ok: Any, requirement: str, doc: str) -> Any:
    """An argparse ``type``: ``text`` parsed as ``kind`` (finite) and accepted when ``ok(value)``."""

    def check(text: str) -> Any:
        value = _parse(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {value:g}")
        return value

    check.__doc__ = doc
    return check


count = _bounded(int, lambda v: v >= 1, "must be at least 1", "A whole number >= 1 (sizes, steps, batches).")
natural = _bounded(int, lambda v: v >= 0, "must be 0 or more", "A whole number >= 0 (seeds).")
finite = _bounded(float, lambda v: True, "", "Any finite number (a guidance scale may be below 1 or negative).")
non_negative = _bounded(float, lambda v: v >= 0, "must be 0 or more", "A finite number >= 0 (a temperature: 0 is greedy).")
positive = _bounded(float, lambda v: v > 0, "must be more than 0", "A finite number > 0 (seconds).")
fraction = _bounded(float, lambda v: 0 < v <= 1, "must be in (0, 1]", "A number in (0, 1] (nucleus sampling's top-p).")


#: an --n above this needs --force: memory and time grow with it (10^9 points once filled 21 GB)
MAX_N = 50_000


def check_n(n: int | None, force: bool) -> None:
    if n is not None and n > MAX_N and not force:
        raise TwopathsError(f"--n {n:,} is more than {MAX_N:,}: memory and time grow with it; add --force to "
                            f"run it anyway")


def check_steps(run: Any, steps: int | None) -> None:
    """``--steps`` of a Gaussian diffusion run: at most the T timesteps it was trained with."""
    T = getattr(getattr(run.cfg.arch, "diffusion", None), "timesteps", None)
    if steps is not None and T is not None and steps > T:
        raise TwopathsError(f"--steps {steps:,} is more than the run's T = {T:,} training timesteps "
                            f"(arch.diffusion.timesteps); use --steps {T} or fewer")


def check_writable(path: Path, makes_folders: bool = False) -> None:
    """Fail before any work when the file ``path`` could not be written (a folder, a missing or read-only
    place); ``makes_folders``: the command creates missing folders on the way."""
    if path.is_dir():
        raise TwopathsError(f"{path} is a folder; give a file name")
    parent = path.parent
    while makes_folders and not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise TwopathsError(f"cannot write {path}: {parent} "
                            f"{'is not a folder' if parent.exists() else 'does not exist'}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise TwopathsError(f"cannot write {path}: permission denied (nothing was computed)")


class Parser(argparse.ArgumentParser):
    """argparse, except that a bad option is one ``error: ...`` line (and exit 2), not usage plus error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


# --sampler values: the names of the paradigm registry (a table, no torch), which the samplers are checked against
GAUSSIAN_SAMPLERS = PARADIGMS["gaussian"].samplers
MASKED_SAMPLERS = PARADIGMS["mdlm"].samplers


def command(sub: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int], *,
            epilog: str = "", run: str | None = None) -> argparse.ArgumentParser:
    """The parser of command ``name``, which ``handler`` runs, documented by the handler's docstring: its
    first line is the one-line help of 'twopaths --help', the paragraphs after it the description, and from
    the first section heading on (a line such as ``examples:`` or ``metrics:``) the text is the epilog, kept
    line for line after ``epilog`` (help that is computed, such as the list of models).
    ``run``: the command reads a trained run; its first argument is the run directory (``run`` is that
    argument's help) and it takes the checkpoint options (:func:`add_checkpoint_args`)."""
    help, description, sections = _split_docstring(handler)
    epilog = "\n\n".join(part for part in (epilog, sections) if part)
    p = sub.add_parser(name, help=help, description=description, epilog=epilog or None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=handler)
    if run is not None:
        p.add_argument("run", type=Path, help=run)
        add_checkpoint_args(p)
    return p


def _split_docstring(handler: Callable) -> tuple[str, str, str]:
    """(help, description refilled to the terminal's width, the sections verbatim) of a handler's docstring."""
    blocks = inspect.cleandoc(handler.__doc__ or "").split("\n\n")
    heading = next((i for i, block in enumerate(blocks) if re.fullmatch(r"[a-z][\w ,]*:", block.split("\n")[0])),
                   len(blocks))
    width = min(shutil.get_terminal_size().columns - 2, 100)
    paragraphs = [textwrap.fill(" ".join(block.split()), width, break_on_hyphens=False) for block in blocks[1:heading]]
    return " ".join(blocks[0].split()), "\n\n".join(paragraphs), "\n\n".join(blocks[heading:])


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """Which weights of a run to use: the newest checkpoint's EMA unless told otherwise."""
    p.add_argument("--checkpoint", help="a specific checkpoint directory instead of the newest")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA")


def add_decoding_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How a seq2seq run decodes: beam search (the run's arch.beam, arch.length_penalty) or greedy."""
    p.add_argument("--beam", type=count, default=None, help="beam width (default: the run's arch.beam, 4)")
    p.add_argument("--length-penalty", type=finite, default=None, metavar="ALPHA",
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
