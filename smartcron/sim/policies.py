"""How a policy picks when a smart firing becomes ready (SPEC 9).

* ``cron``: at its nominal time; no gate, no retries, no admission (pure cron, as the
  daemon's ``cron`` mode).
* ``random``: a uniform minute of its window, seeded by (seed, job, nominal); retries
  at their backoff instant.
* ``rules``: the daemon's legacy mode: ``gate.evaluate`` at the nominal time and again
  at each verdict's ``until``, retries through the gate.
* ``smart``: ``rules`` with a model advisor (``gate.Advisor``); needs one.
* ``oracle``: knows the world and the future trace: the minute of the window with the
  lowest P(fail), then the least interference, then the earliest. It never retries:
  with one draw per firing, a run that failed at the window's lowest P(fail) would fail
  again at any later minute of it.

Every policy but ``cron`` goes through ``gate.admit`` (priority, the concurrency cap,
``overlap``). Plain cron lines ignore the policy and run at their nominal time.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import datetime

from smartcron.monitor import Snapshot
from smartcron.world import World, draw


class Policy(enum.StrEnum):
    CRON = "cron"
    RANDOM = "random"
    RULES = "rules"
    ORACLE = "oracle"
    SMART = "smart"

    @property
    def gated(self) -> bool:
        """Decisions come from gate.evaluate."""
        return self in (Policy.RULES, Policy.SMART)

    @property
    def admitted(self) -> bool:
        """Ready firings pass gate.admit (the executor's rules)."""
        return self is not Policy.CRON

    @property
    def retries(self) -> bool:
        return self in (Policy.RANDOM, Policy.RULES, Policy.SMART)


def random_minute(seed: int, job: str, nominal: datetime, first: int, last: int) -> int:
    """A uniform minute of [first, last], its own dice (not the failure draw's)."""
    if last <= first:
        return first
    u = draw(seed, f"random-policy\0{job}", nominal)
    return first + min(last - first, math.floor(u * (last - first + 1)))


def oracle_minute(
    world: World,
    job: str,
    first: int,
    last: int,
    snapshot: Callable[[int], Snapshot],
    interference: Callable[[int, float], float],
) -> int:
    """The minute of [first, last] with the lowest P(fail), then interference, then earliest.

    `interference(minute, runtime_s)` is the CPU seconds a run started then would spend
    in user-active minutes.
    """
    best: tuple[float, float, int] | None = None
    for minute in range(first, max(first, last) + 1):
        snap = snapshot(minute)
        key = (
            round(world.p_fail(job, snap), 12),
            round(interference(minute, world.runtime_s(job, snap)), 6),
            minute,
        )
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2]
