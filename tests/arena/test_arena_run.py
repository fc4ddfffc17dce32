"""The arena end to end on a tiny budget: trains, measures, caches, resumes, writes the report."""

from __future__ import annotations

import json
import shutil

import pytest

from twopaths.arena.report import write_report
from twopaths.arena.runner import run_arena
from twopaths.arena.suites import Contender, Suite, select
from twopaths.errors import ConfigError

TINY = ("train.progress=false", "train.eval_every=0", "train.sample_every=0", "train.batch_size=64")


def tiny_suite() -> Suite:
    return Suite("mixture2d", "mixture2d", "points", budget_flops=2e9, seeds=2, n_eval=400, n_curve=200, overrides=TINY,
                 contenders=(Contender("ddpm", "ddpm", "diffusion", ("arch.conditioning=none", "arch.mlp.width=32",
                                                                     "arch.mlp.num_blocks=1"), nfe=(5, 10)),
                             Contender("gan", "gan", "gan", ("arch.width=32",))))


def test_arena_trains_measures_caches_and_resumes(tmp_path):
    logs: list[str] = []
    results = run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    suite = results["suites"]["mixture2d"]
    ddpm = suite["contenders"]["ddpm"]
    assert len(ddpm["runs"]) == 2 and all(r["steps"] >= 10 and r["total_flops"] > 0 for r in ddpm["runs"])
    assert set(ddpm["quality"]["by_nfe"]) == {"5", "10"}
    assert ddpm["quality"]["by_nfe"]["10"]["sequential_calls"] == 10  # one network call per step
    assert suite["contenders"]["gan"]["quality"]["by_nfe"]["single"]["sequential_calls"] == 1
    assert json.loads((tmp_path / "results.json").read_text())["suites"]["mixture2d"]
    md, page = write_report(results, tmp_path)
    assert "mixture2d" in md.read_text() and page.stat().st_size > 10_000

    # a second run reuses every cached result
    logs.clear()
    again = run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    assert sum("cached" in line for line in logs) == 4
    assert again["suites"]["mixture2d"]["contenders"]["ddpm"]["runs"] == ddpm["runs"]

    # a run killed after its last checkpoint but before its result was written resumes, not restarts
    seed1 = tmp_path / "runs" / "mixture2d" / "gan" / "seed1"
    (seed1 / "arena.json").unlink()
    logs.clear()
    run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    assert any("resuming from step" in line for line in logs)

    # a contender whose recipe changed is not passed off as its cached result
    from dataclasses import replace

    from twopaths.errors import TwopathsError

    record = tmp_path / "runs" / "mixture2d" / "ddpm" / "seed0" / "arena.json"
    saved = record.read_text()
    stale = json.loads(saved)
    stale["recipe"]["config_sha256"] = "0" * 16  # what a preset changed in code since looks like
    record.write_text(json.dumps(stale))
    with pytest.raises(TwopathsError, match="seed, budget or preset changed"):
        run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    del stale["recipe"]["config_sha256"]  # a record from an arena before the digest: still reused
    record.write_text(json.dumps(stale))
    logs.clear()
    run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    assert sum("cached" in line for line in logs) == 4
    record.write_text(saved)

    changed = replace(tiny_suite(), contenders=(replace(tiny_suite().contenders[0], overrides=("arch.mlp.width=48",)),))
    before = (tmp_path / "runs" / "mixture2d" / "ddpm" / "seed0" / "arena.json").read_bytes()
    with pytest.raises(TwopathsError, match="trained with another recipe"):
        run_arena([changed], tmp_path, "test", "cpu", log=logs.append)
    assert (tmp_path / "runs" / "mixture2d" / "ddpm" / "seed0" / "arena.json").read_bytes() == before

    # a finished contender needs only its records (arena.json, quality.json), not its checkpoints: a folder
    # carried without them to another machine (docs/arena-molecules/in-progress) resumes with what it had
    for checkpoints in (tmp_path / "runs").glob("*/*/seed*/checkpoints"):
        shutil.rmtree(checkpoints)
    logs.clear()
    run_arena([tiny_suite()], tmp_path, "test", "cpu", log=logs.append)
    assert sum("cached" in line for line in logs) == 4 and not any("resuming" in line for line in logs)
    shutil.rmtree(tmp_path / "runs")


def test_suite_selection_and_clear_errors():
    quick = select("quick")
    assert {s.name for s in quick} == {"mixture2d", "fashion-mnist", "fortunes"}
    only = select("quick", ["fashion-mnist/ddpm", "fortunes"], budget_s=5, seeds=2)
    assert [(s.name, [c.name for c in s.contenders], s.budget_s, s.seeds) for s in only] == \
        [("fashion-mnist", ["ddpm"], 5, 2), ("fortunes", ["gpt", "mdlm"], 5, 2)]
    with pytest.raises(ConfigError, match="no contender 'nope'.*ddpm"):
        select("quick", ["fashion-mnist/nope"])
    with pytest.raises(ConfigError, match="no suite"):
        select("quick", ["cifar"])
    with pytest.raises(ConfigError, match="unknown suite"):
        select("huge")
    with pytest.raises(ConfigError, match="--budget"):
        select("quick", budget_s=0)


@pytest.mark.parametrize("size", ["quick", "full", "audio", "video"])
def test_contenders_have_matched_parameter_counts(size):
    from twopaths.arena.runner import contender_config
    from twopaths.arena.suites import PARAM_MATCH_FACTOR
    from twopaths.models import get_spec

    for suite in select(size):
        if len(suite.contenders) < 2:
            continue
        counts = {}
        for c in suite.contenders:
            cfg = contender_config(suite, c, 0, "cpu")
            model = get_spec(cfg.model).build(cfg, _meta(cfg))
            counts[c.name] = sum(p.numel() for p in model.parameters())
        assert max(counts.values()) / min(counts.values()) <= PARAM_MATCH_FACTOR, (suite.name, counts)


def _meta(cfg):
    """The data's meta (the tokenizer sets a language model's vocabulary). All of MOSES takes about a
    minute to tokenize; its sample moses-small has the same SMILES vocabulary but for a rare token (25
    tokens, not 26), so the full suite's molecule contenders are counted on that: a few hundred
    parameters fewer, nothing the 2x match could notice."""
    from dataclasses import replace

    from twopaths.data.registry import load_splits

    data = replace(cfg.data, name="moses-small") if cfg.data.name == "moses" else cfg.data
    return load_splits(data).meta


def test_cli_rebuilds_the_report_and_refuses_a_missing_results_file(tmp_path, capsys):
    from contrived import results

    from twopaths.arena.runner import write_json
    from twopaths.cli import main

    assert main(["arena", "--report-only", "--out", str(tmp_path)]) == 2
    assert "no readable" in capsys.readouterr().err
    write_json(tmp_path / "results.json", results())
    assert main(["arena", "--report-only", "--out", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert "Generation quality" in (tmp_path / "report.md").read_text()
    assert main(["arena", "--out", str(tmp_path), "--only", "fashion-mnist", "--suite", "huge"]) == 2


def test_malformed_results_and_foreign_folders_are_refused_without_changes(tmp_path, capsys):
    from twopaths.cli import main

    for text in ('{"suites": [1]}', '[]', '{"suites": {"s": {"contenders": {"c": {"runs": "x"}}}}}', '{"suites"'):
        (tmp_path / "results.json").write_text(text)
        assert main(["arena", "--report-only", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    assert main(["arena", "--suite", "quick", "--only", "mixture2d/gan", "--budget", "1G", "--out", str(mine)]) == 2
    assert "files the arena did not write (report.md)" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["report.md"] and (mine / "report.md").read_text() == "my notes"
