"""Exploration (issue 13): smart firings that start at a random minute of their window.

Cron's history shows a daily job at one hour only, so no model can learn from it that
the job fails at noon and succeeds at two. While a job has little history away from
its nominal time (its learning period), each firing starts at a uniformly drawn minute
of its window instead; afterwards a small share of firings still does (epsilon-greedy,
decaying with the job's off-nominal runs), so the next model keeps seeing what it would
otherwise never try as the machine changes: before the first model, and with a model in
use only in a daemon that retrains (nothing else would learn from it). ε-greedy rather
than Thompson sampling: the forests have no posterior to sample from, and an ε-greedy
start has an exact, recorded propensity (the probability it was chosen), which training
needs to weight it.

`Explorer` is a `gate.Advisor` wrapped around the model's (or none, while no model is
usable): the gate asks it only when the hard constraints hold, so an explored firing
still waits for them, and the gate clamps every answer to the deadline. The draws are
a hash of (seed, job, nominal time): the same firing gets the same minute after a
restart, and every explored decision records ``explored``, ``propensity`` and
``uniform`` in its model outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from smartcron.hashes import blake2b  # not hashlib: no OpenSSL in the daemon
from smartcron.smart.gate import Advisor, Firing, Verdict
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

__all__ = ["Exploration", "ExploreSettings", "Explorer", "share", "uniform"]

MAX_PLANS = 4096  # firings remembered at once (then those past their deadline are dropped)


class JobRecord(Protocol):
    """What the explorer reads of a job's past (ai.features.JobHistoryStats has it)."""

    off_nominal_runs: int
    mean_runtime_s: float | None


class RecordReader(Protocol):
    def stats(self, job_id: str, before: datetime) -> Any: ...


class Planner(Protocol):
    """An inner advisor that keeps a machine-wide plan (ai.advisor.SmartAdvisor)."""

    def plan_start(self, firing: Firing, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreSettings:
    """`learning_runs`: off-nominal runs that end a job's learning period (every firing
    explored until then); then the share decays as `after` x learning_runs / n down to
    `floor`, until a model is in use. Chosen on the training scenarios only (docs/ai.md).

    With a model in use, the share after the learning period goes on only if
    `after_learning` (a daemon that retrains, config `retrain`): an exploration pays
    failures now for a model trained later, and without retraining no model learns from
    it. Before the first model, that model will (docs/ai.md, sixth round)."""

    enabled: bool = True
    learning_runs: int = 20
    after_learning: bool = False
    after: float = 0.05
    floor: float = 0.01
    seed: int = 0
    runtime_factor: float = 0.0  # room left after a drawn start, in mean runtimes


def share(off_nominal: int, settings: ExploreSettings, *, model_in_use: bool = False) -> float:
    """The probability that a firing is explored, for a job with `off_nominal` runs."""
    if off_nominal < settings.learning_runs:
        return 1.0
    if model_in_use and not settings.after_learning:
        return 0.0
    decayed = settings.after * settings.learning_runs / max(1, off_nominal)
    return max(settings.floor, min(1.0, decayed))


def uniform(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) from (seed, parts): the same for the same firing."""
    key = "\0".join([str(seed), *map(str, parts)]).encode()
    digest = blake2b(key, digest_size=8, person=b"smartcron-explor").digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True, kw_only=True)
class Exploration:
    """One firing's draw: explored or not, and if so the minute it starts at."""

    explored: bool
    target: datetime
    candidates: int  # minutes it could have been drawn from
    share: float
    off_nominal: int
    learning: bool

    @property
    def outputs(self) -> dict[str, float]:
        """What the decision records: P(this start) under the logging policy, and 1/N."""
        return {
            "explored": 1.0,
            "propensity": round(self.share / self.candidates, 8),
            "uniform": round(1.0 / self.candidates, 8),
            "explore_share": round(self.share, 4),
        }

    def why(self, settings: ExploreSettings) -> str:
        if self.learning:
            return (
                f"learning period: {self.off_nominal} of {settings.learning_runs} runs"
                " away from the nominal time"
            )
        return f"exploration share {self.share:.0%}"


class Explorer:
    """gate.Advisor: explored firings start at their drawn minute; the others go to
    `inner` (the model's advisor; None: the rules alone)."""

    def __init__(
        self,
        inner: Advisor | None,
        history: RecordReader,
        settings: ExploreSettings | None = None,
    ) -> None:
        self.inner, self.history = inner, history
        self.settings = settings or ExploreSettings()
        self._drawn: dict[tuple[str, datetime], Exploration] = {}

    def draw(self, firing: Firing, spec: SmartSpec) -> Exploration:
        """Whether `firing` is explored and its minute (remembered per firing)."""
        key = (firing.job_id, firing.nominal)
        found = self._drawn.get(key)
        if found is not None:
            return found
        # The job's record at the nominal time: the same answer at every look and after
        # a restart (runs that end while the firing waits change nothing).
        record = self.history.stats(firing.job_id, firing.nominal)
        off = int(getattr(record, "off_nominal_runs", 0) or 0)
        runtime = getattr(record, "mean_runtime_s", None) or 0.0
        p = share(off, self.settings, model_in_use=self.model_in_use())
        first = _minute_ceil(max(firing.nominal, firing.not_before or firing.nominal))
        room = timedelta(seconds=runtime * self.settings.runtime_factor)
        if spec.retry:
            room += spec.retry_delay
        last = max(first, _minute_floor(firing.deadline - room - timedelta(minutes=1)))
        n = int((last - first).total_seconds() // 60) + 1
        seed, job, nominal = self.settings.seed, firing.job_id, firing.nominal.astimezone(UTC)
        explored = uniform(seed, "explore", job, nominal.isoformat()) < p
        pick = math.floor(uniform(seed, "minute", job, nominal.isoformat()) * n)
        drawn = Exploration(
            explored=explored,
            target=first + timedelta(minutes=min(n - 1, pick)),
            candidates=n,
            share=p,
            off_nominal=off,
            learning=off < self.settings.learning_runs,
        )
        if len(self._drawn) >= MAX_PLANS:
            self._drawn = {k: v for k, v in self._drawn.items() if v.target >= firing.nominal}
        self._drawn[key] = drawn
        return drawn

    def advise(
        self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime
    ) -> Verdict | None:
        if not self.settings.enabled or not spec.explore or firing.attempt:
            return self._inner(firing, spec, snap, now)
        drawn = self.draw(firing, spec)
        if not drawn.explored:
            return self._inner(firing, spec, snap, now)
        at = drawn.target.astimezone(firing.nominal.tzinfo).strftime("%H:%M")
        why = drawn.why(self.settings)
        # The start is in the plan the model's other firings see (issue 13: an explored
        # heavy job is load they must not be planned on top of).
        self.plan_start(firing, max(now, drawn.target))
        if now < drawn.target:
            reason = f"explored: waiting for {at}, a random minute of the window ({why})"
            return Verdict(action="defer", until=drawn.target, reason=reason, model=drawn.outputs)
        self._drawn.pop((firing.job_id, firing.nominal), None)
        reason = f"constraints hold (explored: a random start at {at}; {why})"
        return Verdict(action="run", until=None, reason=reason, model=drawn.outputs)

    def model_in_use(self) -> bool:
        """Whether the inner advisor has a model now (the daemon's ModelWatch says so by
        its mode; any other inner advisor is a model's)."""
        return self.inner is not None and getattr(self.inner, "mode", "smart") == "smart"

    def plan_start(self, firing: Firing, at: datetime) -> None:
        """A start at `at` into the inner advisor's machine-wide plan, if it keeps one
        (an explored start, or one the gate made at the deadline: gate._past_deadline)."""
        plan_start = getattr(self.inner, "plan_start", None)
        if plan_start is not None:
            plan_start(firing, at)

    def _inner(
        self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime
    ) -> Verdict | None:
        return None if self.inner is None else self.inner.advise(firing, spec, snap, now)


def _minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _minute_ceil(at: datetime) -> datetime:
    floor = _minute_floor(at)
    return floor if floor == at else floor + timedelta(minutes=1)
