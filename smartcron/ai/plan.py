"""The expected cost of a start, and the machine-wide plan the advisor keeps (issue 13).

Cost of starting a firing at slot k (docs/ai.md, "Deciding"), in units of one failure:

    P(fail at k) x fail_cost
    + interference_cost x cores x runtime_k (minutes) x P(user active during the run)
    + delay_cost x hours from the nominal time to k

`fail_cost`, `interference_cost` and `delay_cost` are the job's ``#@smart`` keys (or
its companion's, or the defaults in SmartSpec).

`Commitments` is what makes the plan system-wide rather than per job: the advisor
records each firing it starts (now, for its predicted runtime) and each one it defers
(at the slot it waits for), with the job's cores. A later slot of another firing is then
forecast with the load of those that overlap it, so two heavy jobs are not planned on
top of each other; the load they add while running is taken out of the measured load
before the background is forecast. Re-planned at every decision (each minute while a
firing waits), so a plan follows the machine. Like advisor.py: no pandas, no sklearn.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

MAX_COMMITMENTS = 4096  # then those that ended are dropped


@dataclass(frozen=True, kw_only=True)
class Costs:
    fail: float = 1.0
    interference: float = 0.05  # per CPU-minute while the user is active
    delay: float = 0.01  # per hour after the nominal time

    @classmethod
    def of(cls, spec: Any) -> Costs:
        """The job's costs (SmartSpec's keys; the defaults for an object without them)."""
        base = cls()
        return cls(
            fail=float(getattr(spec, "fail_cost", base.fail)),
            interference=float(getattr(spec, "interference_cost", base.interference)),
            delay=float(getattr(spec, "delay_cost", base.delay)),
        )


def expected_costs(
    p_success: Sequence[float] | np.ndarray,
    runtime_s: Sequence[float] | np.ndarray,
    p_active: Sequence[float] | np.ndarray,
    delay_h: Sequence[float],
    cores: float,
    costs: Costs,
) -> np.ndarray:
    """The expected cost of each slot (see the module notes)."""
    fail = (1.0 - np.asarray(p_success, np.float64)) * costs.fail
    cpu_min = cores * np.asarray(runtime_s, np.float64) / 60.0
    interference = costs.interference * cpu_min * np.asarray(p_active, np.float64)
    return fail + interference + costs.delay * np.asarray(delay_h, np.float64)


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
            self._items = {k: c for k, c in self._items.items() if c.end > start}
        end = start + timedelta(seconds=max(60.0, runtime_s))
        self._items[key] = Commitment(start, end, cores)

    def forget(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def prune(self, now: datetime) -> None:
        """Drop the runs that have ended by `now`: each decision scans what is left."""
        if any(c.end <= now for c in self._items.values()):
            self._items = {k: c for k, c in self._items.items() if c.end > now}

    def running(self, now: datetime, but: Hashable) -> float:
        """Cores of the other runs started before `now` and going on: measured already."""
        return sum(c.cores for k, c in self._items.items() if k != but and c.start < now < c.end)

    def load_at(self, at: datetime, but: Hashable) -> float:
        """Cores of the other runs going (or planned to be) at `at`."""
        return sum(c.cores for k, c in self._items.items() if k != but and c.start <= at < c.end)
