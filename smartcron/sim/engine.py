"""The simulator's driver: the daemon's firing state machine on a virtual clock.

The decisions are smartcron.smart.machine's, exactly as the daemon makes them (window,
deadline, capacity, overlap, retries); this module adds only what the daemon's driver
(smartcron.smart.engine) adds in real life, in virtual form: a clock (minute indexes of the
Timeline), a monitor (the trace's snapshot of the minute) and an executor (the world:
``runtime_s`` and ``fails`` with common random numbers, at the start minute), and a fixed
host name for jitter= (`SIMULATED_HOST`: the same figures on every machine). Nothing sleeps.

Event-driven, never minute-scanning: a heap holds each job's next nominal firing and
each smart run's end; the machine says when it next wants to look at an open firing.
Each wake-up does what a daemon's does, in its order: runs that ended, then the ticks
of the minute, then the machine. A run occupies [start, start + runtime) and its end is
seen at the first minute boundary after (the daemon's wake-ups, in a simulation, are
minutes); a ``timeout`` shorter than the runtime kills it there (a failure).

Speed, with no decision changed (`exact=True`, and ``--history``, look every minute):
a firing deferred because its constraints fail would be looked at every minute; the
machine's `skip_ahead` jumps to the next minute where they hold (the Timeline's masks),
or the deadline. A firing waiting for capacity is gated again every minute, as in the
daemon; minutes that would only repeat a quiet wake-up are counted, not replayed
(`_repeat_quiet`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from smartcron.ai.jobstats import RunOutcome
from smartcron.clock import Sleep
from smartcron.cron.schedule import next_fires
from smartcron.sim.metrics import JobMetrics
from smartcron.sim.policies import SimPolicy, oracle_minute, random_minute, step_for
from smartcron.sim.recorder import Recorder
from smartcron.sim.scenario import SimJob
from smartcron.sim.timeline import Timeline
from smartcron.sim.world import World
from smartcron.smart import catchup, gate
from smartcron.smart.constraints import constraint_failures
from smartcron.smart.depends import DependentMachine
from smartcron.smart.machine import Effect, Machine, RunOutcomeKind, Wakeup
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

_END, _NOMINAL = 0, 1  # also the order of events within a minute (as the daemon's step)
SIMULATED_HOST = "simulator"


@dataclass(slots=True, eq=False)
class _Job:
    job: SimJob
    gated: bool  # a smart job under a policy other than cron: through the machine
    cpu: float
    stats: JobMetrics
    fires: Iterator[datetime]
    rank: int  # its place in the crontab: a minute's ticks go in file order, as the daemon's


@dataclass(slots=True, eq=False)
class _Run:
    """A smart run going: what the machine hears when it ends."""

    job: _Job
    firing: gate.Firing
    outcome: RunOutcomeKind
    what: str


@dataclass(slots=True)
class Simulation:
    """One simulation run: `run()` fills each job's JobMetrics."""

    jobs: list[SimJob]
    timeline: Timeline
    world: World
    policy: SimPolicy
    seed: int
    start: int  # minute indexes of the period [start, end): nominal times inside count
    end: int
    advisor: gate.Advisor | None = None
    max_concurrent: int = 8
    recheck: timedelta = gate.RECHECK
    recorder: Recorder | None = None
    exact: bool = False  # evaluate every minute of a deferral (no skipping ahead)
    on_run: Callable[[str, RunOutcome], None] | None = None  # each run, as it will end
    progress: Callable[[int], None] | None = None
    stats: dict[str, JobMetrics] = field(default_factory=dict)
    machine: Machine | None = None
    _heap: list[tuple[int, int, int, object]] = field(default_factory=list)
    _seq: int = 0
    _by_id: dict[str, _Job] = field(default_factory=dict)
    _chosen: dict[tuple[str, datetime, int], datetime] = field(default_factory=dict)
    _late: set[tuple[str, datetime]] = field(default_factory=set)  # not_done already

    @property
    def skip_ahead(self) -> bool:
        """Jump over minutes the Timeline's masks say would repeat (not with job load:
        the masks come from the trace alone)."""
        quiet = not self.exact and self.recorder is None and not self.world.job_load
        return quiet and self.recheck == timedelta(minutes=1)

    @property
    def evaluations(self) -> int:
        return 0 if self.machine is None else self.machine.evaluations

    def _machine(self) -> Machine:
        decide = step_for(
            self.policy,
            lambda f: self._choose(f, self._random),
            lambda f: self._choose(f, self._oracle),
        )
        skip = self._skip if self.skip_ahead and self.policy.gated else None
        zone = self.timeline.start.tzinfo
        assert zone is not None
        machine = DependentMachine(  # the daemon's machine, after= included
            zone, recheck=self.recheck, decide=decide, retries=self.policy.retries,
            skip_ahead=skip,
        )  # fmt: skip
        machine.host = SIMULATED_HOST
        return machine

    def run(self) -> dict[str, JobMetrics]:
        self.machine = machine = self._machine()
        if self.world.job_load:  # a Timeline shared by several simulations: start clean
            self.timeline.clear_overlay()
        t0 = self.timeline.instant(self.start) - timedelta(seconds=1)
        for rank, sim in enumerate(self.jobs):
            gated = sim.smart is not None and self.policy is not SimPolicy.CRON
            fires = next_fires(sim.timespec, t0, sim.zone)
            job = _Job(sim, gated, self.world.law_for(sim.id).cpu, JobMetrics(), fires, rank)
            self.stats[sim.id] = job.stats
            self._by_id[sim.id] = job
            self._next_nominal(job)
        smart = {sim.id: sim for sim in self.jobs if self._by_id[sim.id].gated}
        owners = {sim.id: sim.owner for sim in self.jobs}
        heap, pop, tl = self._heap, heapq.heappop, self.timeline
        while heap or machine.slots:
            minute = heap[0][0] if heap else math.inf
            wanted = machine.next_eval()
            if wanted is not None:  # the machine decides nothing while it sleeps
                woke = tl.next_awake(tl.index_ceil(wanted))
                minute = min(minute, math.inf if woke is None else woke)
            if minute == math.inf:
                break  # asleep for good
            assert isinstance(minute, int)
            if self.progress is not None:
                self.progress(minute)
            now = tl.instant(minute)
            while heap and heap[0][0] == minute:
                _, kind, _, item = pop(heap)
                if kind == _END:
                    self._end(item, now)  # type: ignore[arg-type]
                else:
                    self._nominal(item, minute)  # type: ignore[arg-type]
            wake = Wakeup(
                now=now,
                jobs=smart,
                snapshot=self._monitor(minute),
                owners=lambda: owners,
                max_concurrent=self.max_concurrent,
                advisor=self.advisor,
            )
            if tl.asleep_at(minute):
                continue
            for effect in self._caught_up(minute) + machine.process(wake):
                self._effect(effect, minute)
            if machine.quiet and self.skip_ahead:
                self._repeat_quiet(minute)
        return self.stats

    def _woken(self, minute: int) -> int | None:
        """When a plain tick of `minute` runs: then, or if the machine sleeps, as cron's
        clock rules say at the wake-up: then after at most 3 hours asleep, else never."""
        tl = self.timeline
        if not tl.asleep_at(minute):
            return minute
        woke, fell = tl.next_awake(minute), tl.fell_asleep(minute)
        return woke if woke is not None and woke - fell <= 180 else None

    def _caught_up(self, minute: int) -> list[Effect]:
        """At the first minute awake after a sleep: smart firings whose window passed
        while it slept catch up, as in the daemon (smartcron.smart.catchup)."""
        tl, machine = self.timeline, self.machine
        if minute == 0 or not tl.asleep_at(minute - 1) or machine is None:
            return []
        sleep = Sleep(tl.instant(tl.fell_asleep(minute - 1)), tl.instant(minute), "suspend")
        jobs = [(job.job, job.job.timespec) for job in self._by_id.values() if job.gated]
        make = self.recorder.firing if self.recorder is not None else None
        return catchup.wake_up(machine, jobs, sleep, tl.start.tzinfo or UTC, make)

    def _repeat_quiet(self, minute: int) -> None:
        """After a quiet wake-up (only firings waiting for capacity, gated `run` again and
        still waiting: Machine.quiet), skip the minutes that would repeat it exactly: up
        to the next event (a run's end, a tick), another firing's next look, a waiter's
        deadline, or the first minute a waiter's constraints fail (the Timeline's masks).
        A waiter whose job asks the model is asked every minute (no skipping)."""
        assert self.machine is not None
        machine, tl = self.machine, self.timeline
        quiet = {id(slot) for slot in machine.quiet}
        stop = min(tl.index_ceil(slot.firing.deadline) for slot in machine.quiet)
        if self._heap:
            stop = min(stop, self._heap[0][0])
        for slot in machine.slots.values():
            if id(slot) not in quiet:
                stop = min(stop, tl.index_ceil(slot.next_eval))
        for slot in machine.quiet:
            spec = self._by_id[slot.firing.job_id].job.smart
            assert spec is not None
            if self.advisor is not None and spec.ai:
                return
            fails = tl.next_fail(tl.hold_mask(spec), minute, stop - 1)
            stop = stop if fails is None else fails
        if stop > minute + 1:
            machine.repeat_quiet(tl.instant(stop), stop - minute - 1)

    def _monitor(self, minute: int) -> Callable[[SmartSpec], Snapshot]:
        """The trace as the machine's monitor at `minute` (asked only when it evaluates)."""
        return lambda _spec: self.timeline.snapshot(minute)

    # ------------------------------------------------------------ events

    def _push(self, minute: int, kind: int, item: object, tie: int | None = None) -> None:
        self._seq += 1  # one minute's events of a kind go by `tie`, else as pushed
        heapq.heappush(self._heap, (minute, kind, self._seq if tie is None else tie, item))

    def _next_nominal(self, job: _Job) -> None:
        for instant in job.fires:
            minute = self.timeline.index(instant)
            if minute < self.end:
                self._push(minute, _NOMINAL, job, tie=job.rank)  # crontab order
            return

    def _nominal(self, job: _Job, minute: int) -> None:
        """A cron tick: a plain line (or any line under the cron policy) starts at once
        (the machine asleep: as cron's rules say at its wake-up, `_woken`); a smart one
        becomes a pending firing of the machine, looked at now."""
        self._next_nominal(job)
        job.stats.firings += 1
        nominal = self.timeline.instant(minute)
        smart = job.job.smart
        if not job.gated:
            firing = gate.Firing(id=None, job_id=job.job.id, nominal=nominal, deadline=nominal)
            if smart is not None and self.recorder is not None:  # cron: rows for training
                firing = self.recorder.firing(self.machine_firing(job, nominal))
                self.recorder.started(firing, nominal, self.timeline.snapshot(minute))
            at = self._woken(minute)
            if at is None:  # slept through it for more than 3 hours: cron never runs it
                job.stats.window_misses += 1
                job.stats.not_done += 1
            else:
                self._start(job, firing, at, None)
            return
        assert self.machine is not None
        firing = self.machine.firing_for(job.job, nominal)
        if self.recorder is not None:
            firing = self.recorder.firing(firing)
        self.machine.open(firing, nominal)

    def machine_firing(self, job: _Job, nominal: datetime) -> gate.Firing:
        """The firing the daemon would make (its window), for the cron policy's rows."""
        assert job.job.smart is not None
        deadline = gate.deadline_for(job.job.smart, nominal, job.job.zone)
        return gate.Firing(id=None, job_id=job.job.id, nominal=nominal, deadline=deadline)

    def _effect(self, effect: Effect, minute: int) -> None:
        """Count and record what the machine decided; carry out a start."""
        job = self._by_id[effect.firing.job_id]
        if self.recorder is not None:
            self.recorder.effect(effect, self.timeline.instant(minute))
        firing = effect.firing
        if effect.kind == "start":
            self._chosen.pop((firing.job_id, firing.nominal, firing.attempt - 1), None)
            self._start(job, firing, minute, effect)
        elif effect.kind == "skip":
            if firing.attempt == 0:
                job.stats.skipped += 1  # a skipped retry leaves the firing started
            self._not_done(job, firing)
        elif effect.kind == "missed":
            job.stats.window_misses += 1
            self._not_done(job, firing)

    def _not_done(self, job: _Job, firing: gate.Firing) -> None:
        """The firing ended without a successful run in its window: count it once (a
        window miss was counted when it started)."""
        key = (firing.job_id, firing.nominal)
        if key in self._late:
            self._late.discard(key)
        else:
            job.stats.not_done += 1

    def _end(self, run: _Run, now: datetime) -> None:
        assert self.machine is not None
        effect = self.machine.finished(run.job.job, run.firing, run.outcome, run.what, now)
        if effect.kind == "failed":
            self._not_done(run.job, run.firing)
        elif effect.kind == "done":
            self._late.discard((run.firing.job_id, run.firing.nominal))
        if self.recorder is not None:
            self.recorder.effect(effect, now)

    # ------------------------------------------------------------ policies

    def _choose(self, firing: gate.Firing, how: Callable[[gate.Firing, int, int], int]) -> datetime:
        """The minute a random or oracle policy picked for a firing's run (picked once)."""
        key = (firing.job_id, firing.nominal, firing.attempt)
        if key not in self._chosen:
            first, last = self._window(firing)
            self._chosen[key] = self.timeline.instant(how(firing, first, last))
        return self._chosen[key]

    def _random(self, firing: gate.Firing, first: int, last: int) -> int:
        return random_minute(self.seed, firing.job_id, firing.nominal, first, last)

    def _oracle(self, firing: gate.Firing, first: int, last: int) -> int:
        job, tl = self._by_id[firing.job_id], self.timeline
        spec, keeps = job.job.smart, None
        if self.policy is SimPolicy.GATED_ORACLE and spec is not None:
            keeps = lambda snap: not constraint_failures(spec, snap)  # noqa: E731
        cost = lambda minute, runtime: job.cpu * tl.active_seconds(minute, runtime)  # noqa: E731
        timeout = None if spec is None or spec.timeout is None else spec.timeout.total_seconds()
        return oracle_minute(
            self.world, firing.job_id, first, last, tl.snapshot, cost, keeps, timeout_s=timeout
        )

    def _window(self, firing: gate.Firing) -> tuple[int, int]:
        """The first and last minute a firing's run may start in its window (a retry: from
        its backoff instant)."""
        tl = self.timeline
        nominal = tl.index(firing.nominal)
        first = max(nominal, tl.index_ceil(firing.not_before or firing.nominal))
        return first, max(first, tl.index(firing.deadline))

    def _skip(self, firing: gate.Firing, spec: SmartSpec, now: datetime) -> datetime:
        """The next minute the gate could answer other than "defer: constraints fail".

        Below the deadline and past `not_before`, evaluate() defers a firing whose
        constraints fail by one recheck (a minute) each time, whatever else holds; so
        the minute-by-minute evaluations in between would all say the same and are
        skipped: the next one is where the constraints hold (the gate's own
        constraint_failures, per minute), else the deadline. `exact=True` evaluates
        every minute instead; a test checks both give the same runs.
        """
        tl = self.timeline
        deadline = tl.index_ceil(firing.deadline)
        found = tl.next_hold(tl.hold_mask(spec), tl.index(now), deadline - 1)
        return tl.instant(deadline if found is None else found)

    # ------------------------------------------------------------ runs

    def _start(self, job: _Job, firing: gate.Firing, minute: int, start: Effect | None) -> None:
        """A run begins at `minute`: the world says how long it lasts and how it ends."""
        sim, tl = job.job, self.timeline
        snap = tl.snapshot(minute)
        runtime = self.world.runtime_s(sim.id, snap)
        failed = self.world.fails(sim.id, firing.nominal, snap, self.seed)
        timeout = sim.smart.timeout if sim.smart is not None and start is not None else None
        timed_out = timeout is not None and runtime > timeout.total_seconds()
        if timeout is not None and timed_out:
            runtime, failed = timeout.total_seconds(), True
        if self.world.job_load:  # from now on the machine carries this run's CPU
            tl.occupy(minute, runtime, job.cpu)
        job.stats.add_run(
            cpu_s=job.cpu * runtime,
            active_s=tl.active_seconds(minute, runtime),
            battery_s=tl.battery_seconds(minute, runtime),
            cpu=job.cpu,
            failed=failed,
        )
        if start is None and failed:  # cron's run: no retry, its outcome is the firing's
            job.stats.not_done += 1
        if start is None or firing.attempt == 1:  # a firing's first run
            nominal = tl.index(firing.nominal)
            job.stats.delays.append(60 * (minute - nominal))
            if start is not None and minute > self._window(firing)[1]:
                job.stats.window_misses += 1
                job.stats.not_done += 1
                self._late.add((firing.job_id, firing.nominal))
        began = tl.instant(minute)
        ends = began + timedelta(seconds=runtime)
        if self.on_run is not None:
            cpu_s = job.cpu * runtime
            done = RunOutcome(ended=ends, ok=not failed, runtime_s=runtime, started=began,
                              nominal=firing.nominal, cpu_s=cpu_s)  # fmt: skip
            self.on_run(sim.id, done)
        what = f"exit {int(failed)} in {runtime:.0f} s"
        if timed_out:
            what = f"timed out after {runtime:.0f} s"
        if self.recorder is not None:
            trigger = "cron" if start is None else start.trigger
            self.recorder.run(sim, firing, began, ends, cpu_s=job.cpu * runtime,
                              failed=failed, timed_out=timed_out, trigger=trigger)  # fmt: skip
            if start is None and firing.id is not None:  # the cron policy's smart job
                self.recorder.ended(firing, ends, failed, what)
        if start is not None:  # a smart run: the machine counts it until it ends
            run = _Run(job, firing, "failed" if failed else "ok", what)
            self._push(minute + max(1, math.ceil(runtime / 60)), _END, run)
