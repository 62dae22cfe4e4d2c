"""The simulator (SPEC 9): the daemon's schedule, smart specs and firing state machine on
a virtual clock, with a trace for the machine and a world for what jobs do. The library behind
``smartcronctl simulate``; the parts live in smartcron.sim:

* sim.scenario: the crontab's jobs, resolved as the daemon resolves them;
* sim.timeline: the trace on a minute grid, with the flags the metrics need;
* sim.policies: cron, random, rules, smart, oracle;
* sim.engine: the virtual clock driving the daemon's firing state machine
  (smartcron.smart.machine);
* sim.metrics: SPEC 9's metrics; sim.recorder: ``--history``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartcron.ai.jobstats import RunOutcome
from smartcron.sim.engine import Simulation
from smartcron.sim.metrics import JobMetrics, metrics_report
from smartcron.sim.policies import SimPolicy
from smartcron.sim.recorder import Recorder
from smartcron.sim.scenario import (
    Scenario,
    SimJob,
    SimulationError,
    check_world,
    load_scenario,
)
from smartcron.sim.timeline import Timeline
from smartcron.sim.trace import Trace
from smartcron.sim.world import World
from smartcron.smart.gate import Advisor

__all__ = [
    "Scenario",
    "SimJob",
    "SimPolicy",
    "SimResult",
    "SimulationError",
    "Timeline",
    "check_world",
    "load_scenario",
    "simulate",
]


@dataclass(frozen=True, kw_only=True)
class SimResult:
    policy: SimPolicy
    start: datetime
    end: datetime
    seed: int
    stats: dict[str, JobMetrics]
    unnamed: list[str]  # jobs the world does not name: the default law
    evaluations: int = 0
    seconds: float = 0.0  # wall time of the event loop
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def firings(self) -> int:
        return sum(s.firings for s in self.stats.values())

    def metrics(self) -> dict[str, Any]:
        """SPEC 9's keys for all jobs, and ``jobs``: the same per job."""
        return metrics_report(self.stats)


def simulate(
    scenario: Scenario,
    trace: Trace | Timeline,
    world: World,
    policy: SimPolicy | str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    seed: int | None = None,
    advisor: Advisor | None = None,
    history: str | None = None,
    max_concurrent: int = 8,
    exact: bool = False,
    on_run: Callable[[str, RunOutcome], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Run `scenario` over [start, end) (default: the whole trace).

    `trace` may be a prepared Timeline (to run several policies on one). `exact`:
    evaluate a deferred firing every minute, as the daemon does, instead of skipping to
    the next minute where its constraints hold (same outcomes; always so with
    `history`, which records every decision). `progress` gets (minutes done, minutes in
    total) now and then; `on_run(job, outcome)` each run (an advisor's job
    statistics: `smartcron.ai.jobstats.MemoryStats.add`). Raises SimulationError.
    """
    policy = SimPolicy(policy)
    if policy is SimPolicy.SMART and advisor is None:
        raise SimulationError("policy 'smart' needs a model (--model DIR); 'rules' runs without")
    if policy is not SimPolicy.SMART and advisor is not None:
        raise SimulationError(f"policy {policy.value!r} takes no advisor (only 'smart' does)")
    unnamed = check_world(world, scenario)
    timeline = trace if isinstance(trace, Timeline) else Timeline(trace, world, scenario.specs())
    first = timeline.start if start is None else start
    last = timeline.trace.end if end is None else end
    _check_period(timeline, first, last)
    lo, hi = timeline.index_ceil(first), timeline.index_ceil(last)
    recorder = Recorder(history, policy.value) if history is not None else None
    if policy.gated and not exact and recorder is None:
        timeline.prepare(scenario.specs())  # the skip-ahead masks, all in one pass
    tick = _ticker(progress, lo, hi) if progress is not None else None
    engine = Simulation(
        jobs=list(scenario.jobs),
        timeline=timeline,
        world=world,
        policy=policy,
        seed=world.seed if seed is None else seed,
        start=lo,
        end=hi,
        advisor=advisor,
        max_concurrent=max_concurrent,
        recorder=recorder,
        exact=exact,
        on_run=on_run,
        progress=tick,
    )
    began = time.perf_counter()
    try:
        stats = engine.run()
        if recorder is not None and policy.admitted and any(j.smart for j in scenario.jobs):
            recorder.presence(timeline, lo, hi)  # as the daemon samples while it gates
    finally:
        if recorder is not None:
            recorder.close()
    if progress is not None:
        progress(hi - lo, hi - lo)
    return SimResult(
        policy=policy,
        start=timeline.instant(lo),
        end=timeline.instant(hi),
        seed=engine.seed,
        stats=stats,
        unnamed=unnamed,
        evaluations=engine.evaluations,
        seconds=time.perf_counter() - began,
    )


def _ticker(progress: Callable[[int, int], None], lo: int, hi: int) -> Callable[[int], None]:
    """The engine's per-minute hook: `progress` (minutes done, in total) about 200 times."""
    step = max(1, (hi - lo) // 200)
    state = {"next": lo}

    def tick(minute: int) -> None:
        if minute >= state["next"]:
            state["next"] = minute + step
            progress(min(minute, hi) - lo, hi - lo)

    return tick


def _check_period(timeline: Timeline, first: datetime, last: datetime) -> None:
    for name, value in (("--from", first), ("--to", last)):
        if value.tzinfo is None:
            raise SimulationError(f"{name} {value.isoformat()}: needs a UTC offset")
    trace = timeline.trace
    if first >= last:
        raise SimulationError(
            f"empty period: --from {first.isoformat()} is not before --to {last.isoformat()}"
        )
    if first < trace.start or last > trace.end:
        raise SimulationError(
            f"period {first.isoformat()} to {last.isoformat()} is outside the trace"
            f" {trace.path} ({trace.start.isoformat()} to {trace.end.isoformat()})"
        )
