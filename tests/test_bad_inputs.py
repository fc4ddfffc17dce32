"""Every bad or careless input through the real CLI: one ``error:`` line, exit 2, and no file changed.

Each case is a command line (``R``: a trained text run, ``D``: a trained 2-D diffusion run, ``X``: a
fresh path in a scratch folder, ``F``: an existing file). The test runs it through
:func:`twopaths.cli.main` and checks the promise of the error contract: status 2, exactly one line on
stderr and it starts with ``error:``, no traceback, and every file of both runs and of the scratch
folder byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import TINY_LM, write_corpus
from twopaths.cli import main

POINTS = ["--set", "arch.mlp.width=32", "--set", "arch.mlp.num_blocks=1", "--set", "train.max_steps=6",
          "--set", "train.batch_size=32", "--set", "train.progress=false", "--set", "train.eval_every=0",
          "--set", "train.sample_every=0", "--set", "arch.conditioning=none"]

CASES: list[tuple[str, str]] = [
    # numbers given to sample
    ("sample R --temperature nan", "argument --temperature: expected a finite number"),
    ("sample R --temperature -1", "argument --temperature: must be 0 or more"),
    ("sample R --top-k 0", "argument --top-k: must be at least 1"),
    ("sample R --top-p 0", "argument --top-p: must be in (0, 1]"),
    ("sample R --top-p 1.5", "argument --top-p: must be in (0, 1]"),
    ("sample R --n 0", "argument --n: must be at least 1"),
    ("sample R --n many", "argument --n: expected a whole number"),
    ("sample R --n 1e9", "argument --n: expected a whole number"),
    ("sample R --max-new-tokens 0", "argument --max-new-tokens: must be at least 1"),
    ("sample R --guidance nan", "argument --guidance: expected a finite number"),
    ("sample R --guidance inf", "argument --guidance: expected a finite number"),
    ("sample R --seed -1", "argument --seed: must be 0 or more"),
    ("sample R --steps 0", "argument --steps: must be at least 1"),
    ("sample R --spacing sideways", "argument --spacing: invalid choice"),
    ("sample R --sampler magic", "argument --sampler: invalid choice"),
    # options that do not fit the run
    ("sample D --steps 100000", "more than the run's T = 1,000 training timesteps"),
    ("sample R --sampler ddim", "--sampler and --steps are for diffusion models"),
    ("sample R --steps 5", "--sampler and --steps are for diffusion models"),
    ("sample R --sampler block", "are for masked diffusion models"),
    ("sample R --block-size 4", "are for masked diffusion models"),
    ("sample R --n 100000", "add --force"),
    ("sample D --n 60000", "add --force"),
    ("sample R --out R", "is a folder; give a file name"),
    ("sample R --out X/missing/x.txt", None),  # text sample files create their folder: allowed (not a case)
    ("sample R --checkpoint X", "checkpoint not found"),
    ("sample X", "run directory not found"),
    ("sample F", "run directory not found"),
    # eval
    ("eval R --batches 0", "argument --batches: must be at least 1"),
    ("eval R --n 0", "argument --n: must be at least 1"),
    ("eval R --batch-size 0", "argument --batch-size: must be at least 1"),
    ("eval R --guidance nan", "argument --guidance: expected a finite number"),
    ("eval R --metrics bogus", "unknown metric(s) bogus"),
    ("eval R --metrics fid", "fid"),
    ("eval D --metrics modes --n 1000000", "add --force"),
    ("eval D --steps 5000 --metrics modes --n 100", "more than the run's T"),
    ("eval R --json X/missing/m.json", "does not exist"),
    ("eval R --json R", "is a folder; give a file name"),
    ("eval", "give a run directory, or --real-vs-real DATASET"),
    ("eval --real-vs-real fortunes", "needs an image or 2-D point dataset"),
    ("eval --real-vs-real nosuchdata", "nosuchdata"),
    # train: config values
    ("train mlp-lm --out X --set optim.betas=[2,3]", "'optim.betas' must hold two values in [0, 1)"),
    ("train mlp-lm --out X --set optim.eps=-1", "'optim.eps' must be > 0"),
    ("train mlp-lm --out X --set optim.grad_clip=.nan", "expected a finite number"),
    ("train mlp-lm --out X --set optim.lr=.inf", "expected a finite number"),
    ("train mlp-lm --out X --set optim.lr=0", "'optim.lr' must be > 0"),
    ("train mlp-lm --out X --set train.eval_batches=0", "'train.eval_batches' must be >= 1"),
    ("train mlp-lm --out X --set train.max_steps=0", "'train.max_steps' must be >= 1"),
    ("train mlp-lm --out X --set train.batch_size=0", "'train.batch_size' must be >= 1"),
    ("train mlp-lm --out X --set train.ckpt_minutes=-1", "'train.ckpt_minutes' must be >= 0"),
    ("train mlp-lm --out X --set train.precision=fp16", "'fp16' is not allowed"),
    ("train mlp-lm --out X --set trian.max_steps=3", "unknown config key 'trian.max_steps'"),
    ("train mlp-lm --out X --set noequals", "must look like key=value"),
    ("train mlp-lm --out X --set data.context=0", "'data.context' must be >= 1"),
    ("train mlp-lm --out X --set optim.min_lr_ratio=2", "'optim.min_lr_ratio' must be in"),
    ("train mlp-lm --out X --data nosuchdata", "nosuchdata"),
    ("train mlp-lm --out X --data mixture2d", "trains on text data"),
    ("train mlp-lm --out X --config X/none.yaml", "config file not found"),
    ("train nosuchmodel --out X", "unknown model 'nosuchmodel'"),
    ("train", "name a model to train"),
    ("train mlp-lm", "--out RUN is required"),
    # train: the places it writes
    ("train mlp-lm --out F", "exists and is not a directory"),
    ("train mlp-lm --out R", "already holds a run with checkpoints"),
    ("train --resume R --data text", "--resume takes the model, data and config from the run"),
    ("train --resume R --set arch.hidden=64", "does not match this model"),
    ("train --resume X", "run directory not found"),
    # arena
    ("arena --out X --budget nan", "nan"),
    ("arena --out X --budget -1T", "argument --budget"),
    ("arena --out X --budget-seconds nan", "argument --budget-seconds: expected a finite number"),
    ("arena --out X --budget-seconds -5", "argument --budget-seconds: must be more than 0"),
    ("arena --out X --seeds 0", "argument --seeds: must be at least 1"),
    ("arena --out X --suite huge", "argument --suite: invalid choice"),
    ("arena --out X --only nosuchsuite", "nosuchsuite"),
    ("arena --report-only --out X", "no readable"),
    ("arena --report-only --out R", "no readable"),
    ("arena --out R --only mixture2d/gan --budget 1G", "files the arena did not write"),
    # other commands
    ("translate R --beam 0", "argument --beam: must be at least 1"),
    ("fill R --top-k 0", "argument --top-k: must be at least 1"),
    ("attention R --n 0", "argument --n: must be at least 1"),
    ("upscale R --image F --steps 0", "argument --steps: must be at least 1"),
    ("bogus", "argument COMMAND: invalid choice"),
]
CASES = [c for c in CASES if c[1] is not None]


def _snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for folder in folders for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    corpus = write_corpus(root / "corpus.txt")
    text_run, points_run = root / "R", root / "D"
    assert main(["train", "mlp-lm", "--data", "text", "--set", f"data.path={corpus}", "--out", str(text_run),
                 *TINY_LM, "--set", "train.max_steps=4"]) == 0
    assert main(["train", "ddpm", "--data", "mixture2d", "--out", str(points_run), *POINTS]) == 0
    scratch = root / "scratch"
    scratch.mkdir()
    (scratch / "file.txt").write_text("a file, not a folder")
    return {"R": text_run, "D": points_run, "X": scratch / "new", "F": scratch / "file.txt", "root": root}


def test_at_least_sixty_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("command, expected", CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(places, capsys, command, expected):
    argv = [places[w] if w in ("R", "D", "X", "F") else w for w in command.split()]
    argv = [str(a).replace("X/", str(places["X"]) + "/") for a in argv]
    before = _snapshot(places["root"])
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert _snapshot(places["root"]) == before, "a refused command changed files"


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


@pytest.mark.parametrize("damage, expected", [
    (lambda run: _edit_state(run, step="abc"), "'step' must be a whole number >= 0, got 'abc'"),
    (lambda run: _edit_state(run, step=-20), "'step' must be a whole number >= 0, got -20"),
    (lambda run: _edit_state(run, drop="files"), "'files' must list model.safetensors"),
    (lambda run: (run / "tokenizer.json").unlink(), "tokenizer.json is missing"),
    (lambda run: (run / "config.yaml").write_text("model: [unclosed"), "is not valid YAML"),
    (lambda run: (run / "config.yaml").unlink(), "config.yaml is missing"),
])
def test_a_damaged_run_is_one_clear_error_for_sample_eval_and_resume(places, capsys, tmp_path, damage, expected):
    run = _copy(places["R"], tmp_path / "run")
    damage(run)
    before = _snapshot(run)
    for command in (["sample", str(run)], ["eval", str(run)], ["train", "--resume", str(run)]):
        assert main(command) == 2, command
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (command, lines)
    assert _snapshot(run) == before


def _edit_state(run: Path, step=None, drop=None) -> None:
    newest = sorted((run / "checkpoints").glob("step_*"))[-1] / "state.json"
    state = json.loads(newest.read_text())
    if drop:
        state.pop(drop)
    else:
        state["step"] = step
    newest.write_text(json.dumps(state))
