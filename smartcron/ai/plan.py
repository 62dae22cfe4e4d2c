"""The expected cost of a start, and the machine-wide plan the advisor keeps (issue 13).

Cost of starting a firing at slot k (docs/ai.md, "Deciding"), in units of one failure:

    P(fail at k) x fail_cost
    + interference_cost x cores x runtime_k (minutes) x P(user active during the run)
    + delay_cost x hours from the nominal time to k

`fail_cost`, `interference_cost` and `delay_cost` are the job's ``#@smart`` keys (or
its companion's, or the defaults in SmartSpec, which `Costs` takes as its own).

`Commitments` is what makes the plan system-wide rather than per job: the advisor
records each firing it starts (now, for its predicted runtime) and each one it defers
(at the slot it waits for), with the job's cores. A later slot of another firing is then
forecast with the load they put on it, so two heavy jobs are not planned on top of each
other; the load they add is taken out of the measured load before the background is
forecast. load1 counts the runs going; load5 and load15 are damped averages, as Linux's
(kernel/sched/loadavg.c: each minute keeps exp(-1/5) and exp(-1/15) of the last), so a
run has raised them only partly a minute after it starts and still raises them for a
while after it ends (issue 13's second round: a job that fails on load5 > 0.8
must not be planned right at the end of a 4-core run, when load5 is still near 4 and
1.5 five minutes later). Re-planned at every decision (each minute while a firing
waits), so a plan follows the machine. Like advisor.py: no pandas, no sklearn.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from smartcron.ai.features import amended
from smartcron.smart.smartspec import SmartSpec

MAX_COMMITMENTS = 4096  # then those that ended are dropped
# Per minute, the share of load5 and load15 kept (Linux's EXP_5 and EXP_15 over 60 s).
KEEP = np.asarray([0.0, math.exp(-1.0 / 5.0), math.exp(-1.0 / 15.0)])
FIRST_MINUTE = 1.0 - KEEP  # per core, a run's load1, load5, load15 in its first minute
NEGLIGIBLE = 0.005  # cores of planned load a state is not rebuilt for
TAIL = timedelta(minutes=90)  # after its end a run's load15 is below 0.2 % of its cores


_DEFAULT: dict[str, Any] = {f.name: f.default for f in fields(SmartSpec)}  # their one home


@dataclass(frozen=True, kw_only=True)
class Costs:
    fail: float = _DEFAULT["fail_cost"]
    interference: float = _DEFAULT["interference_cost"]  # per CPU-minute, user active
    delay: float = _DEFAULT["delay_cost"]  # per hour after the nominal time

    @classmethod
    def of(cls, spec: Any) -> Costs:
        """The job's costs (SmartSpec's keys; the defaults for an object without them)."""
        base = cls()
        return cls(
            fail=float(getattr(spec, "fail_cost", base.fail)),
            interference=float(getattr(spec, "interference_cost", base.interference)),
            delay=float(getattr(spec, "delay_cost", base.delay)),
        )


def cores_of(stats: Any, default: float) -> float:
    """The cores a job's run uses: its mean CPU seconds over its mean runtime (`default`
    while either is unknown)."""
    return run_cores(getattr(stats, "mean_cpu_s", None), stats.mean_runtime_s, default)


def expected_costs(
    p_success: Sequence[float] | np.ndarray,
    runtime_s: Sequence[float] | np.ndarray,
    p_active: Sequence[float] | np.ndarray,
    delay_h: Sequence[float],
    cores: float,
    costs: Costs,
) -> np.ndarray:
    """The expected cost of each slot (see the module notes)."""
    p, runtime, active, delay = (
        np.asarray(v, np.float64) for v in (p_success, runtime_s, p_active, delay_h)
    )
    return np.asarray(_cost(p, runtime, active, delay, cores, costs))


def expected_cost(
    p_success: float, runtime_s: float, p_active: float, delay_h: float, cores: float, c: Costs
) -> float:
    """One slot's expected cost, from plain floats (a waiting plan's): `expected_costs`'s."""
    return float(_cost(p_success, runtime_s, p_active, delay_h, cores, c))


def _cost(p: Any, runtime_s: Any, active: Any, delay_h: Any, cores: float, c: Costs) -> Any:
    """Floats or float64 arrays alike: the same operations in the same order."""
    cpu_min = cores * runtime_s / 60.0
    return (1.0 - p) * c.fail + c.interference * cpu_min * active + c.delay * delay_h


@dataclass(frozen=True, slots=True)
class Commitment:
    start: datetime
    end: datetime
    cores: float


class Commitments:
    """Smart runs started or planned by the advisor, by firing."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Commitment] = {}

    def __len__(self) -> int:
        return len(self._items)

    def commit(self, key: Hashable, start: datetime, runtime_s: float, cores: float) -> None:
        if len(self._items) >= MAX_COMMITMENTS:
            self._items = {k: c for k, c in self._items.items() if c.end + TAIL > start}
        end = start + timedelta(seconds=max(60.0, runtime_s))
        self._items[key] = Commitment(start, end, cores)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def prune(self, now: datetime) -> None:
        """Drop the runs whose load has died away by `now`: each decision scans the rest."""
        if any(c.end + TAIL <= now for c in self._items.values()):
            self._items = {k: c for k, c in self._items.items() if c.end + TAIL > now}

    def loads(
        self, now: datetime, slots: Sequence[datetime], but: Hashable, share: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(load1, load5, load15) the other runs add at each slot beyond what was measured
        at `now` (a row per slot), and the cores of those starting in the slot's minute
        (features' starting_cores). The load: theirs at the slot, those starting in its
        minute included (the world judges a start by the load of the runs started before
        it, StartLog), less that of the runs started before `now` at `now` (the snapshot
        has it), times `share`: how much of a run's cores the machine's load shows
        (loadshare). One numpy pass over the runs that start by the last slot (a later
        one adds nothing at any slot: a daemon's deferred firings are planned hours ahead)."""
        until = max(slots)
        others = [c for k, c in self._items.items() if k != but and c.start <= until]
        if not others:
            return np.zeros((len(slots), 3)), np.zeros(len(slots))
        minute = 60.0
        at = np.asarray([*((s - now).total_seconds() / minute for s in slots), 0.0])
        start = np.asarray([(c.start - now).total_seconds() / minute for c in others])
        end = np.asarray([(c.end - now).total_seconds() / minute for c in others])
        cores = np.asarray([c.cores for c in others])
        level = _load(at[:, None], start, end, cores)
        measured = level[-1][start < 0].sum(axis=0)  # the last row: now
        lead = at[:-1, None] - start
        first = (start >= 0) & (lead >= 0) & (lead < 1.0)  # (slots, runs): its first minute
        return share * (level[:-1].sum(axis=1) - measured), (first * cores).sum(axis=1)

    def running(self, now: datetime, but: Hashable) -> float:
        """Cores of the other runs started before `now` and going on: measured already."""
        return sum(c.cores for k, c in self._items.items() if k != but and c.start < now < c.end)

    def load_at(self, at: datetime, but: Hashable) -> float:
        """Cores of the other runs going (or planned to be) at `at`."""
        return sum(c.cores for k, c in self._items.items() if k != but and c.start <= at < c.end)


def _load(at: np.ndarray, start: np.ndarray, end: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """(load1, load5, load15) at the minutes `at` (a column) of runs of `cores` over
    [start, end) (rows), as the simulator's Timeline.occupy and Linux's damped averages
    count it: shape (slots, runs, 3). np.maximum, not np.clip (slower): a decision's cost."""
    started = at >= start
    on = started & (at < end)
    steps_on = np.maximum(np.floor(np.minimum(at, end) - start) + on, 0.0)
    after = np.maximum(np.floor(at - end) + 1.0, 0.0) * (at >= end)
    level = (1.0 - KEEP ** steps_on[..., None]) * KEEP ** after[..., None]
    level[..., 0] = on
    return (cores * started)[..., None] * level


class StartLog:
    """Runs' starts, for what a decision's snapshot could not see (training's rows).

    The advisor decides the firings of one wake-up in turn on one snapshot, and gives a
    slot the cores of the runs it plans to start in that minute and their load, times
    the load share (`Commitments.loads`: features' starting_cores). A training row must
    see the same: the runs started after its decision's snapshot and before its own
    start (the same wake-up, earlier), as cores and, by the share, as load. Without
    it, a job that always starts beside a heavy one learns that its nominal minute
    fails, not why (issue 13, ninth round); without the load, a model that learnt the
    load a job fails at cannot see two jobs planned into one minute (25th round).
    """

    def __init__(self, starts: Iterable[tuple[datetime, int, float | None, float | None]]):
        """`starts`: (started, run id, CPU seconds, runtime seconds) of each run."""
        self._starts = sorted((at, i, run_cores(cpu, rt)) for at, i, cpu, rt in starts)

    def starting(self, at: datetime, started: datetime, run_id: int) -> float:
        """The cores of the runs started in [at, started) and of those started at
        `started` before run `run_id`."""
        lo = bisect_left(self._starts, (at,))
        hi = bisect_right(self._starts, (started, run_id))
        return float(sum(c for _, i, c in self._starts[lo:hi] if i != run_id))


def run_cores(cpu_s: float | None, runtime_s: float | None, unknown: float = 0.0) -> float:
    """CPU seconds over runtime seconds; `unknown` when either is missing (or NaN)."""
    if cpu_s is None or not runtime_s or not math.isfinite(float(cpu_s) / float(runtime_s)):
        return unknown
    return max(0.0, float(cpu_s) / float(runtime_s))


def with_load(snap: Any, load: np.ndarray) -> Any:
    """`snap` with `load` (load1, load5, load15) more or less from smart runs (a
    load15 tail below NEGLIGIBLE is left out: a decision builds one state per row)."""
    more = _felt(load)
    if more is None:
        return snap
    one, five, fifteen = more
    return amended(
        snap,
        {
            "load1": max(0.0, snap.load1 + one),
            "load5": max(0.0, snap.load5 + five),
            "load15": max(0.0, snap.load15 + fifteen),
        },
    )


def loads_with(load1: float, load5: float, load: np.ndarray) -> tuple[float, float]:
    """`with_load`'s load1 and load5, from the values instead of a state."""
    more = _felt(load)
    if more is None:
        return load1, load5
    return max(0.0, load1 + more[0]), max(0.0, load5 + more[1])


def _felt(load: np.ndarray) -> list[float] | None:
    """`load` as plain floats (three numpy calls cost more), None if negligible."""
    values = load.tolist()
    return None if max(map(abs, values)) < NEGLIGIBLE else values
