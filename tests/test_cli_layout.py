"""The command line's layout: argparse stays in twopaths.cli, and every family's sample function
takes the keyword options ``twopaths sample`` passes."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import twopaths

SRC = Path(twopaths.__file__).parent


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_cli_parses_arguments():
    below = [p for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts]
    assert below
    assert [str(p.relative_to(SRC)) for p in below if "argparse" in _imports(p)] == []


def test_models_import_neither_eval_nor_cli():
    wrong = {str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith(("twopaths.eval", "twopaths.cli")))
             for p in (SRC / "models").glob("*.py")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_every_sample_function_takes_the_options_of_twopaths_sample():
    from twopaths.cli import build_parser
    from twopaths.models import MODELS

    args = build_parser().parse_args(["sample", "RUN"])
    options = {k: getattr(args, k) for k in ("n", "seed", "out", "prompt", "max_new_tokens", "temperature", "top_k",
                                               "top_p", "stop", "sampler", "steps", "block_size", "infill", "spacing",
                                               "class_", "guidance", "trajectory", "context_frames")}
    for name, spec in MODELS.items():
        if spec.sample is not None:
            inspect.signature(spec.sample).bind(object(), **options)  # TypeError if one is missing or unknown
        assert spec.evaluation in ("samples", "diffusion", "classifier"), name


def test_every_command_of_the_readme_and_docs_parses():
    """Each ``twopaths ...`` line of the README and docs/ is a valid command line for today's parser (a
    renamed option or command would make a documented command fail)."""
    import shlex

    from twopaths.cli import build_parser

    root = Path(__file__).resolve().parents[1]
    parser, checked = build_parser(), 0
    for doc in [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]:
        fenced = False
        for line in doc.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("```"):
                fenced = not fenced
            if not fenced or not line.startswith("twopaths "):
                continue  # commands in code blocks
            words = shlex.split(line, comments=True)[1:]
            if any("..." in w or "<" in w for w in words):
                continue  # a placeholder, not a command
            try:
                parser.parse_args(words)
            except SystemExit as exc:
                raise AssertionError(f"{doc.relative_to(root)}: '{line}' does not parse") from exc
            checked += 1
    assert checked >= 50
