"""Wall-clock planning of one ``train`` invocation: the time estimate printed when a run starts, and
the step at which ``train.max_time`` ends it.

Step counts decide what a run *is* (the arena budgets in FLOPs turned into steps); time only decides
when a user's run stops. With ``train.max_time`` the clock measures seconds per step as the run goes
(evaluations and sample hooks included, since they share the wall clock) and moves the run's last
step -- the *horizon* the learning-rate schedule decays to -- to the step the time allows, never past
``train.max_steps``. The schedule is re-fitted as the measurement improves, so the cosine ends at the
step the run really ends at, and the run ends with a checkpoint, not a kill.
"""

from __future__ import annotations

import time

#: steps measured before the first estimate (the first step, which warms up kernels, is not counted)
WARMUP_STEPS = 10
#: seconds kept back at the end of a ``max_time`` run for the final checkpoint and its bookkeeping
RESERVE_FRACTION = 0.02


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``; ``5400`` -> ``'1 h 30 min'``; ``8`` -> ``'8 s'``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class StepClock:
    """Seconds per step of this invocation, measured from its second step on.

    ``limit``: ``train.max_time`` in seconds (0: none). :meth:`horizon` is the last step of the run.
    """

    def __init__(self, first_step: int, max_steps: int, limit: float = 0.0) -> None:
        self.first_step, self.max_steps, self.limit = first_step, max_steps, limit
        self.started = time.perf_counter()
        self._mark: tuple[int, float] | None = None  # (step, time) after the first step
        self._horizon = max_steps

    def tick(self, step: int) -> None:
        """Call after each optimizer step (and whatever evaluation or hook ran with it)."""
        now = time.perf_counter()
        if step == self.first_step + 1:
            self._mark = (step, now)
        elif self.limit and self._mark and step - self._mark[0] >= WARMUP_STEPS:
            left = self.limit * (1 - RESERVE_FRACTION) - (now - self.started)
            self._horizon = min(self.max_steps, step + max(0, int(left / self.seconds_per_step(step))))

    def seconds_per_step(self, step: int) -> float:
        if self._mark is None or step <= self._mark[0]:
            return float("nan")
        return (time.perf_counter() - self._mark[1]) / (step - self._mark[0])

    def horizon(self) -> int:
        """The step this invocation ends at: ``max_steps``, or the step ``max_time`` allows."""
        return self._horizon

    def end_at(self, step: int) -> None:
        """End the run at ``step`` (at most ``max_steps``), e.g. because the time is up."""
        self._horizon = min(self._horizon, step, self.max_steps)

    def out_of_time(self) -> bool:
        return bool(self.limit) and time.perf_counter() - self.started >= self.limit

    def estimate_line(self, step: int, evaluations: int, eval_seconds: float) -> str:
        """One line: the time this invocation will take from now, and what it is made of."""
        per_step = self.seconds_per_step(step)
        left = self.horizon() - step
        total = left * per_step + evaluations * eval_seconds
        parts = [f"{left:,} steps at {per_step:.3g} s/step (measured over steps {self._mark[0] + 1}-{step})"]
        if evaluations:
            parts.append(f"{evaluations} validation passes of ~{format_duration(eval_seconds)}")
        limit = f"; train.max_time ends the run at step {self.horizon():,}" if self.horizon() < self.max_steps else ""
        return f"estimate: {format_duration(total)} to go ({', '.join(parts)}){limit}"


__all__ = ["StepClock", "format_duration"]
