"""The simulator's virtual clock: the daemon's schedule and gate on a trace, minute by minute.

Event-driven, never minute-scanning: a heap holds each job's next nominal firing, each
pending firing's next evaluation (a verdict's ``until``) and each run's end, keyed by
minute index. Every decision is a call of ``smartcron.gate`` (``evaluate``,
``deadline_for``/``window_for``, ``retry_at``, ``admit``), exactly as the daemon makes
it; outcomes come from the world (``fails`` with common random numbers, ``runtime_s``)
at the start minute. Nothing sleeps.

Runs: a run occupies [start, start + runtime) and frees its slot at the first minute
after; a ``timeout`` shorter than the runtime kills it there (a failure). A failed run
retries (``retry_at`` from its end) while attempts remain and the retry instant is not
past the deadline (SPEC 4.1: backoff inside the window); every attempt meets the
firing's one draw.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from smartcron import gate
from smartcron.schedule import next_fires
from smartcron.sim.metrics import JobStats
from smartcron.sim.policies import Policy, oracle_minute, random_minute
from smartcron.sim.recorder import Recorder
from smartcron.sim.scenario import SimJob
from smartcron.sim.timeline import Timeline
from smartcron.smartspec import SmartSpec
from smartcron.world import World

_END, _NOMINAL, _EVAL, _READY = 0, 1, 2, 3  # also the order of events within a minute


@dataclass(slots=True, eq=False)
class _Job:
    job: SimJob
    spec: SmartSpec | None  # None: not gated here (plain line, or the cron policy)
    cpu: float
    stats: JobStats
    fires: Iterator[datetime]
    running: int = 0
    mask: bytes | None = None  # minutes where the job's constraints hold


@dataclass(slots=True, eq=False)
class _Pending:
    """A firing in flight."""

    job: _Job
    firing: gate.Firing
    nominal: int  # minute indexes
    first: int  # the window's first minute
    last: int  # the last minute starting at or before the deadline
    started: int = -1


@dataclass(slots=True)
class Engine:
    """One simulation. `run()` fills each job's JobStats."""

    jobs: list[SimJob]
    timeline: Timeline
    world: World
    policy: Policy
    seed: int
    start: int  # minute indexes of the period [start, end): nominal times inside count
    end: int
    advisor: gate.Advisor | None = None
    max_concurrent: int = 8
    recheck: timedelta = gate.RECHECK
    recorder: Recorder | None = None
    exact: bool = False  # evaluate every minute of a deferral (no skipping ahead)
    on_run: Callable[[str, datetime, bool, float], None] | None = None  # job, end, ok, s
    progress: Callable[[int], None] | None = None
    evaluations: int = 0
    stats: dict[str, JobStats] = field(default_factory=dict)
    _heap: list[tuple[int, int, int, object]] = field(default_factory=list)
    _seq: int = 0
    _total: int = 0  # smart runs going (the admission cap counts these)
    _waiting: list[_Pending] = field(default_factory=list)  # admitted to wait

    @property
    def skip_ahead(self) -> bool:
        return not self.exact and self.recorder is None and self.recheck == timedelta(minutes=1)

    def run(self) -> dict[str, JobStats]:
        t0 = self.timeline.instant(self.start) - timedelta(seconds=1)
        for sim in self.jobs:
            spec = sim.smart if self.policy is not Policy.CRON else None
            cpu = self.world.law_for(sim.id).cpu
            job = _Job(sim, spec, cpu, JobStats(), next_fires(sim.timespec, t0, sim.zone))
            self.stats[sim.id] = job.stats
            self._next_nominal(job)
        heap, pop = self._heap, heapq.heappop
        while heap:
            minute = heap[0][0]
            if self.progress is not None:
                self.progress(minute)
            ready: list[_Pending] = []
            freed = False
            while heap and heap[0][0] == minute:
                _, kind, _, item = pop(heap)
                if kind == _END:
                    self._end(item, minute)  # type: ignore[arg-type]
                    freed = True
                elif kind == _NOMINAL:
                    self._nominal(item, minute)  # type: ignore[arg-type]
                elif kind == _EVAL:
                    if self._evaluate(item, minute):  # type: ignore[arg-type]
                        ready.append(item)  # type: ignore[arg-type]
                else:
                    ready.append(item)  # type: ignore[arg-type]
            if ready or (freed and self._waiting):
                self._admit(ready, minute)
        return self.stats

    # ------------------------------------------------------------ events

    def _push(self, minute: int, kind: int, item: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (minute, kind, self._seq, item))

    def _next_nominal(self, job: _Job) -> None:
        for instant in job.fires:
            minute = self.timeline.index(instant)
            if minute < self.end:
                self._push(minute, _NOMINAL, job)
            return

    def _nominal(self, job: _Job, minute: int) -> None:
        self._next_nominal(job)
        job.stats.firings += 1
        nominal = self.timeline.instant(minute)
        smart, zone = job.job.smart, job.job.zone
        if smart is None:  # plain cron: at its time, no gate, no admission, no firing row
            firing = gate.Firing(id=None, job_id=job.job.id, nominal=nominal, deadline=nominal)
            self._start(_Pending(job, firing, minute, minute, minute), minute)
            return
        opens, deadline = gate.window_for(smart, nominal, zone)
        firing = gate.Firing(
            id=None,
            job_id=job.job.id,
            nominal=nominal,
            deadline=gate.deadline_for(smart, nominal, zone),
            not_before=opens if opens > nominal else None,
        )
        if self.recorder is not None:
            firing = self.recorder.firing(firing)
        first = max(minute, self.timeline.index_ceil(opens))
        item = _Pending(job, firing, minute, first, max(first, self.timeline.index(deadline)))
        if self.policy is Policy.CRON:
            self._start(item, minute)
        elif self.policy.gated:
            self._push(minute, _EVAL, item)
        elif self.policy is Policy.RANDOM:
            chosen = random_minute(self.seed, job.job.id, nominal, first, item.last)
            self._push(chosen, _READY, item)
        else:
            self._push(self._oracle(item), _READY, item)

    def _oracle(self, item: _Pending) -> int:
        cpu, tl = item.job.cpu, self.timeline
        return oracle_minute(
            self.world,
            item.job.job.id,
            item.first,
            item.last,
            tl.snapshot,
            lambda minute, runtime: cpu * tl.active_seconds(minute, runtime),
        )

    def _evaluate(self, item: _Pending, minute: int) -> bool:
        """One gate evaluation; True when the verdict is run."""
        assert item.job.spec is not None
        now = self.timeline.instant(minute)
        snap = self.timeline.snapshot(minute)
        verdict = gate.evaluate(
            item.firing, item.job.spec, snap, now, recheck=self.recheck, advisor=self.advisor
        )
        self.evaluations += 1
        if self.recorder is not None:
            self.recorder.verdict(item.firing, now, verdict, snap)
        if verdict.action == "run":
            return True
        if verdict.action == "skip":
            self._skipped(item, now, None)  # the verdict is recorded already
            return False
        assert verdict.until is not None
        after = max(minute + 1, self.timeline.index_ceil(verdict.until))
        if self.skip_ahead and verdict.failed and after == minute + 1:
            after = self._skip_ahead(item, minute)
        self._push(after, _EVAL, item)
        return False

    def _skip_ahead(self, item: _Pending, minute: int) -> int:
        """The next minute the gate could answer other than "defer: constraints fail".

        Below the deadline and past `not_before`, evaluate() defers a firing whose
        constraints fail by one recheck (a minute) each time, whatever else holds; so
        the minute-by-minute evaluations in between would all say the same and are
        skipped: the next one is where the constraints hold (the gate's own
        constraint_failures, per minute), else the deadline. `exact=True` evaluates
        every minute instead; a test checks both give the same runs.
        """
        assert item.job.spec is not None
        tl = self.timeline
        deadline = tl.index_ceil(item.firing.deadline)
        mask = item.job.mask
        if mask is None:
            mask = item.job.mask = tl.hold_mask(item.job.spec)
        found = tl.next_hold(mask, minute, deadline - 1)
        return deadline if found is None else found

    def _skipped(self, item: _Pending, now: datetime, reason: str | None) -> None:
        if item.started < 0:  # a skipped retry leaves the firing started
            item.job.stats.skipped += 1
        if self.recorder is not None and reason is not None:
            self.recorder.skip(item.firing, now, reason)

    def _admit(self, new: list[_Pending], minute: int) -> None:
        """gate.admit over the firings that just became ready and those still waiting.

        A waiting firing is offered again only when a run ends or another firing becomes
        ready: in other minutes nothing admit looks at has changed.
        """
        ready, self._waiting = self._waiting + new, []
        by_key = {(p.firing.job_id, p.firing.nominal): p for p in ready}
        pairs = [(p.firing, p.job.spec) for p in ready]
        running = {p.job.job.id: p.job.running for p in ready if p.job.running}
        admission = gate.admit(pairs, running, self._total, self.max_concurrent)  # type: ignore[arg-type]
        now = self.timeline.instant(minute)
        for firing, _ in admission.start:
            self._start(by_key[firing.job_id, firing.nominal], minute)
        for firing, _ in admission.wait:
            item = by_key[firing.job_id, firing.nominal]
            self._waiting.append(item)
            if self.recorder is not None and item in new:
                self.recorder.note(firing, now, "wait", admission.reason_for(firing) or "wait")
        for firing, reason in admission.skip:
            self._skipped(by_key[firing.job_id, firing.nominal], now, reason)

    # ------------------------------------------------------------ runs

    def _start(self, item: _Pending, minute: int) -> None:
        job, sim, tl = item.job, item.job.job, self.timeline
        snap = tl.snapshot(minute)
        runtime = self.world.runtime_s(sim.id, snap)
        failed = self.world.fails(sim.id, item.firing.nominal, snap, self.seed)
        timeout = sim.smart.timeout if sim.smart is not None and job.spec is not None else None
        timed_out = timeout is not None and runtime > timeout.total_seconds()
        if timeout is not None and timed_out:
            runtime, failed = timeout.total_seconds(), True
        job.stats.add_run(
            cpu_s=job.cpu * runtime,
            active_s=tl.active_seconds(minute, runtime),
            battery_s=tl.battery_seconds(minute, runtime),
            cpu=job.cpu,
            failed=failed,
        )
        if item.started < 0:
            item.started = minute
            job.stats.delays.append(60 * (minute - item.nominal))
            if minute > item.last:
                job.stats.window_misses += 1
        began = tl.instant(minute)
        ends = began + timedelta(seconds=runtime)
        retry = self._retry(item, ends) if failed else None
        if self.on_run is not None:
            self.on_run(sim.id, ends, not failed, runtime)
        if self.recorder is not None:
            if not self.policy.gated and item.firing.id is not None:
                self.recorder.started(item.firing, began, snap)
            self.recorder.run(
                sim,
                item.firing,
                began,
                ends,
                cpu_s=job.cpu * runtime,
                failed=failed,
                timed_out=timed_out,
                retry=retry,
            )
        if retry is not None:
            item.firing = replace(item.firing, attempt=item.firing.attempt + 1, not_before=retry)
            self._push(tl.index_ceil(retry), _EVAL if self.policy.gated else _READY, item)
        if job.spec is not None:  # a smart run: admission counts it until it ends
            job.running += 1
            self._total += 1
            self._push(minute + max(1, math.ceil(runtime / 60)), _END, job)

    def _retry(self, item: _Pending, ended: datetime) -> datetime | None:
        """When the failed run's retry may start, or None (none left, or past the deadline)."""
        spec, firing = item.job.spec, item.firing
        if spec is None or not self.policy.retries or firing.attempt >= spec.retry:
            return None
        at = gate.retry_at(spec, firing.attempt + 1, ended)
        return at if at <= firing.deadline else None

    def _end(self, job: _Job, minute: int) -> None:
        job.running -= 1
        self._total -= 1
