"""``twopaths models``: the paradigm x backbone matrix, and which cells are named models."""

from __future__ import annotations

import argparse

from twopaths.cli.options import command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "models", cmd_models)
    p.add_argument("--markdown", action="store_true", help="a markdown table: backbones x paradigms")


def cmd_models(args: argparse.Namespace) -> int:
    """show which backbone works under which paradigm, and the named models

    A model is a paradigm (how it learns and samples) on a backbone (a network with a contract). This prints
    the matrix: every paradigm with the backbones it takes and the named models ('twopaths train NAME') of
    each cell; --markdown prints it as the grid of docs/architecture.md.

    examples:
      twopaths models
      twopaths models --markdown
    """
    print(markdown_matrix() if args.markdown else text_matrix())
    return 0


def text_matrix() -> str:
    """One block per paradigm: its family, then one line per backbone with the models of that cell."""
    from twopaths.backbones import BACKBONES, CONTRACTS
    from twopaths.models import matrix
    from twopaths.paradigms import PARADIGMS

    cells = matrix()
    lines = [f"{'paradigm':<15} {'family':<15} {'backbone':<13} models", ""]
    for paradigm, entry in PARADIGMS.items():
        used = [(b, cells[b][paradigm]) for b in BACKBONES if paradigm in cells[b]]
        lines.append(f"{paradigm:<15} {entry.family:<15} {entry.summary}")
        for backbone, names in used:
            lines.append(f"{'':<31} {backbone:<13} {', '.join(names)}")
    lines += ["", "backbone contracts:"]
    lines += [f"  {name:<13} {BACKBONES[name].contract}: {BACKBONES[name].summary}" for name in BACKBONES]
    lines += [""] + [f"  {contract:<17} {signature}" for contract, signature in CONTRACTS.items()]
    return "\n".join(lines)


def markdown_matrix() -> str:
    """Rows: backbones (with their contract); columns: the generative paradigms, then 'other'."""
    from twopaths.backbones import BACKBONES
    from twopaths.models import matrix
    from twopaths.paradigms import PARADIGMS

    cells = matrix()
    columns = [p for p, e in PARADIGMS.items() if e.family != "other"]
    lines = ["| backbone (contract) | " + " | ".join(columns) + " | other |",
             "|---" * (len(columns) + 2) + "|"]
    for backbone, entry in BACKBONES.items():
        row = [", ".join(cells[backbone].get(p, [])) for p in columns]
        other = [f"{', '.join(names)} ({p})" for p, names in cells[backbone].items() if PARADIGMS[p].family == "other"]
        lines.append(f"| {backbone} ({entry.contract}) | " + " | ".join(row) + f" | {'; '.join(other)} |")
    return "\n".join(lines)
