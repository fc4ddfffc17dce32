"""Budgets in training FLOPs: the same suite trains the same models on a busy machine as on an idle one.

A FLOP budget is turned into a step count before training (FLOPs per step are counted, not timed),
so a CPU hog beside the arena changes only the time columns of results.json: step counts, losses,
quality numbers and verdicts stay bit-identical.
"""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from twopaths.arena.runner import ArenaClock, planned_steps, run_arena
from twopaths.arena.suites import Contender, Suite, parse_flops, select
from twopaths.errors import ConfigError

TINY = ("train.progress=false", "train.eval_every=0", "train.sample_every=0", "train.batch_size=64")

#: what a clock measured: the only keys allowed to differ between two runs of one suite
TIME_KEYS = {"created", "arena_seconds", "train_seconds", "items_per_s", "samples_per_s", "latency_s", "latency_min",
             "latency_max", "tokens_per_s"}


def tiny_suite() -> Suite:
    return Suite("mixture2d", "mixture2d", "points", budget_flops=6e8, seeds=1, n_eval=200, n_curve=100,
                 overrides=TINY,
                 contenders=(Contender("ddpm", "ddpm", "diffusion", ("arch.conditioning=none", "arch.mlp.width=32",
                                                                     "arch.mlp.num_blocks=1"), nfe=(5, 10)),
                             Contender("gan", "gan", "gan", ("arch.width=32",))))


def without_times(value):
    """``value`` with every clock reading removed (and the loss curve's seconds column)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        if value and all(isinstance(p, list) and len(p) == 3 for p in value):  # loss curve: [step, seconds, loss]
            return [[p[0], p[2]] for p in value]
        return [without_times(v) for v in value]
    return value


def test_a_busy_machine_trains_the_same_models(tmp_path):
    idle = run_arena([tiny_suite()], tmp_path / "idle", "test", "cpu", log=lambda _: None)
    # each hog spins until its parent (this test) is gone, so a killed test run leaves none behind
    hog = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(2)]
    try:
        busy = run_arena([tiny_suite()], tmp_path / "busy", "test", "cpu", log=lambda _: None)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    a, b = without_times(copy.deepcopy(idle)), without_times(copy.deepcopy(busy))
    for name in ("ddpm", "gan"):
        run_a, run_b = (x["suites"]["mixture2d"]["contenders"][name]["runs"][0] for x in (a, b))
        assert run_a["steps"] == run_b["steps"] == run_a["planned_steps"]
        assert 6e8 * 0.5 < run_a["total_flops"] <= 6e8
    a.pop("environment"), b.pop("environment")
    # configs name their run directories; everything else must be equal to the bit
    for res in (a, b):
        for c in res["suites"]["mixture2d"]["contenders"].values():
            for r in c["runs"]:
                r.pop("config")
    assert a == b
    curve = idle["suites"]["mixture2d"]["contenders"]["ddpm"]["quality"]["curve"]
    assert [p["step"] for p in curve] == [s * curve[-1]["step"] // 8 for s in (1, 2, 4, 8)]  # geometric


def test_steps_follow_the_flop_budget():
    suite = tiny_suite()
    assert planned_steps(suite, {"flops_per_step": 1e5}) == 6000  # 6e8 / 1e5, a multiple of 8
    assert planned_steps(suite, {"flops_per_step": 7e6}) == 80  # 85 rounded down to a multiple of 8
    assert planned_steps(suite, {"flops_per_step": 1e12}) == 8  # never fewer than the curve's checkpoints


@pytest.mark.parametrize("text,value", [("2.5T", 2.5e12), ("300G", 3e11), ("1e13", 1e13), ("4tflop", 4e12)])
def test_budgets_are_read_as_people_write_them(text, value):
    assert parse_flops(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["nan", "-1T", "0", "inf", "lots", ""])
def test_bad_budgets_are_refused(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_flops(text)


def test_a_seconds_budget_is_separate_and_labelled():
    (suite,) = select("quick", ["mixture2d"], budget_s=5)
    assert suite.budget_s == 5
    with pytest.raises(ConfigError, match="not both"):
        select("quick", budget_flops=1e12, budget_s=5)
    with pytest.raises(ConfigError, match="--budget-seconds"):
        select("quick", budget_s=float("nan"))


def test_the_eta_learns_each_suites_speed():
    fast, slow = tiny_suite(), Suite("fashion-mnist", "fashion-mnist", "image", budget_flops=1e12, contenders=())
    jobs = [(fast, fast.contenders[0], 0), (fast, fast.contenders[0], 1), (slow, None, 0)]
    clock = ArenaClock(jobs, assumed_flops_per_s=1e9, assumed_eval_s=10.0)
    assert clock.eta() == pytest.approx(2 * 6e8 / 1e9 + 1e12 / 1e9 + 2 * 10.0)
    clock.trained(fast, {"total_flops": 6e8}, seconds=3.0)  # 2e8 FLOP/s on the small model
    clock.evaluated(fast, 4.0, cached=False)
    # the small model's speed and evaluation time stand for its own suite only
    assert clock.eta() == pytest.approx(6e8 / 2e8 + 1e12 / 1e9 + 10.0)
