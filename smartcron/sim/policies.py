"""How a policy picks when a smart firing starts (SPEC 9).

Every policy but ``cron`` is the daemon's firing state machine (smartcron.smart.machine):
capacity, overlap, the deadline and retries are its; a policy only plugs in its
decision step (`decide_step`).

* ``cron``: at its nominal time; no gate, no retries, no admission (pure cron, as the
  daemon's ``cron`` mode: the machine is not used).
* ``random``: a uniform minute of its window, seeded by (seed, job, nominal); retries
  at their backoff instant.
* ``rules``: the daemon's legacy mode: the machine with ``gate.evaluate``, no advisor.
* ``smart``: ``rules`` with a model advisor (``gate.Advisor``); needs one.
* ``oracle``: knows the world and the future trace: the minute of the window with the
  lowest P(fail) (1 where the load would slow the run past its timeout), then the least
  interference, then the earliest. It retries as the
  others do (so not_done compares), a retry at the best minute by the same criterion
  between its backoff instant and the deadline. It minimises failures first: its
  interference is a reference, not a lower bound.
* ``gated-oracle``: the oracle keeping the job's hard constraints, as every gated policy
  must: its minute is picked among those where the trace's state keeps them (none: the
  deadline), and from that minute on it is gated as ``rules`` is (the deadline's
  on_deadline included). Beside the oracle, which may run a ``max_load=4`` job at load
  9: a reference for what keeping the rules costs. Not a bound either: it picks each
  firing's minute alone, so under job load smart can do better.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from smartcron.sim.world import World, draw
from smartcron.smart import gate
from smartcron.smart.gate import Firing, Verdict
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec


class SimPolicy(enum.StrEnum):
    CRON = "cron"
    RANDOM = "random"
    RULES = "rules"
    ORACLE = "oracle"
    SMART = "smart"
    GATED_ORACLE = "gated-oracle"

    @property
    def gated(self) -> bool:
        """Decisions come from gate.evaluate."""
        return self in (SimPolicy.RULES, SimPolicy.SMART)

    @property
    def admitted(self) -> bool:
        """Ready firings pass gate.admit (the executor's rules)."""
        return self is not SimPolicy.CRON

    @property
    def retries(self) -> bool:
        """Every policy through the machine retries; cron, as cron, never does."""
        return self is not SimPolicy.CRON


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
    keeps: Callable[[Snapshot], bool] | None = None,
    timeout_s: float | None = None,
) -> int:
    """The minute of [first, last] with the lowest P(fail), then interference, then earliest.

    `interference(minute, runtime_s)` is the CPU seconds a run started then would spend
    in user-active minutes. `keeps`: only minutes whose state it accepts (none: `last`).
    `timeout_s`: the job's timeout; a run the load there would slow past it is killed
    (the simulation's rule), so P(fail) there is 1.
    """
    best: tuple[float, float, int] | None = None
    for minute in range(first, max(first, last) + 1):
        snap = snapshot(minute)
        if keeps is not None and not keeps(snap):
            continue
        runtime = world.runtime_s(job, snap)
        killed = timeout_s is not None and runtime > timeout_s
        key = (
            1.0 if killed else round(world.p_fail(job, snap), 12),
            round(interference(minute, min(runtime, timeout_s or runtime)), 6),
            minute,
        )
        if best is None or key < best:
            best = key
    return max(first, last) if best is None else best[2]


def decide_step(
    policy: str,
    chosen: Callable[[Firing], datetime],
    retry: Callable[[Firing], datetime] | None = None,
) -> Callable[..., Verdict]:
    """A decision step for the machine (gate.evaluate's signature) that starts a firing's
    first run at `chosen(firing)` and a retry at `retry(firing)` (default: its backoff
    instant), with no gate."""

    def decide(
        firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime, **_: object
    ) -> Verdict:
        if not firing.attempt:
            at: datetime | None = chosen(firing)
        else:
            at = firing.not_before if retry is None else retry(firing)
        if at is not None and now < at:
            when = at.astimezone(firing.nominal.tzinfo).strftime("%H:%M")
            return Verdict(action="defer", until=at, reason=f"{policy} policy: at {when}")
        return Verdict(action="run", until=None, reason=f"{policy} policy")

    return decide


def gated_step(chosen: Callable[[Firing], datetime]) -> Callable[..., Verdict]:
    """The gated oracle's decision step: wait for `chosen(firing)` (a retry too), then
    the gate, as the rules policy has it (no advisor)."""

    def decide(
        firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime, **kw: Any
    ) -> Verdict:
        at = chosen(firing)
        if now < at:
            when = at.astimezone(firing.nominal.tzinfo).strftime("%H:%M")
            return Verdict(action="defer", until=at, reason=f"gated-oracle policy: at {when}")
        return gate.evaluate(firing, spec, snap, now, recheck=kw.get("recheck", gate.RECHECK))

    return decide


def step_for(
    policy: SimPolicy,
    pick_random: Callable[[Firing], datetime],
    pick_oracle: Callable[[Firing], datetime],
) -> Callable[..., Verdict]:
    """The machine's decision step under `policy` (gate.evaluate's signature)."""
    if policy is SimPolicy.RANDOM:
        return decide_step("random", pick_random)
    if policy is SimPolicy.ORACLE:  # its retries too start at its best minute
        return decide_step("oracle", pick_oracle, retry=pick_oracle)
    if policy is SimPolicy.GATED_ORACLE:
        return gated_step(pick_oracle)
    return gate.evaluate
