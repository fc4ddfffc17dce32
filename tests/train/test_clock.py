"""The wall-clock plan of a run: estimates and the step a time limit allows, on a fake clock."""

import pytest

from twopaths.training import clock as clock_module
from twopaths.training.clock import StepClock, format_duration


def run_steps(clock, fake_time, steps, seconds_each):
    for step in steps:
        fake_time[0] += seconds_each
        clock.tick(step)


@pytest.fixture
def fake_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(clock_module.time, "perf_counter", lambda: now[0])
    return now


def test_format_duration():
    assert [format_duration(s) for s in (8, 75, 600, 5400, 3599.6)] == ["8 s", "1 min 15 s", "10 min 0 s",
                                                                        "1 h 30 min", "1 h 0 min"]


def test_the_horizon_is_the_step_the_time_allows(fake_time):
    clock = StepClock(first_step=0, max_steps=10_000, limit=100.0)
    fake_time[0] += 5.0  # the first step: compilation, allocation; not counted
    clock.tick(1)
    run_steps(clock, fake_time, range(2, 12), 0.5)  # then 0.5 s per step
    assert clock.seconds_per_step(11) == pytest.approx(0.5)
    # 100 s * 0.98 - 10 s spent = 88 s left at 0.5 s/step = 176 more steps
    assert clock.horizon() == 11 + 176
    assert not clock.out_of_time()
    fake_time[0] += 100
    assert clock.out_of_time()


def test_without_a_limit_the_horizon_is_max_steps_and_the_estimate_says_why(fake_time):
    clock = StepClock(first_step=40, max_steps=1_000, limit=0)
    run_steps(clock, fake_time, range(41, 52), 2.0)
    assert clock.horizon() == 1_000
    line = clock.estimate_line(51, evaluations=4, eval_seconds=3.0)
    # 949 steps at 2 s + 4 x 3 s = 1,910 s
    assert line.startswith("estimate: 31 min 50 s to go (949 steps at 2 s/step (measured over steps 42-51)")
    assert "4 validation passes" in line


def test_a_max_steps_smaller_than_the_time_allows_wins(fake_time):
    clock = StepClock(first_step=0, max_steps=30, limit=3600)
    run_steps(clock, fake_time, range(1, 20), 0.1)
    assert clock.horizon() == 30
