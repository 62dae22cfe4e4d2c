"""The daemon's decision engine: smartcron.smart.machine's firing state machine, with I/O.

Each cron tick of an annotated job becomes a pending firing, persisted (firings.py)
before it is evaluated. The machine says when to look at each firing again (a defer's
`until`, at most a minute away, or the deadline; at once when a smart run ends) and
what each decision is; this module adds what the machine leaves out: the wall clock,
the system monitor, the FiringStore (each Effect is one transition written through)
and launching (a callback into lifecycle). The database is the truth across restarts.

The Engine does not hold the Daemon: an EngineContext carries the few things it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from smartcron.clock import Clock, Jump, Sleep
from smartcron.run.executor import RunResult
from smartcron.smart import catchup, fleet
from smartcron.smart.depends import DependentMachine, Outcome
from smartcron.smart.firings import FiringStore
from smartcron.smart.gate import RECHECK, Advisor, Firing
from smartcron.smart.jobs import Job
from smartcron.smart.journal import Journal
from smartcron.smart.machine import MISSED_AFTER, Effect, Machine, RunOutcomeKind, Slot, Wakeup
from smartcron.smart.monitor import Monitor, Snapshot, SystemMonitor, disk_free_percent
from smartcron.smart.smartspec import SmartSpec
from smartcron.store.claims import Claimer, LocalClaimer
from smartcron.store.history import HistoryError, RunStatus
from smartcron.store.historyguard import log_history_failure

__all__ = ["MISSED_AFTER", "Engine", "EngineContext", "outcome_text"]

log = logging.getLogger("smartcron")


class Run(Protocol):
    """A smart run going (lifecycle.RunningJob): its job, and its firing in `extra`."""

    job: Job
    extra: dict[str, object]


@dataclass(frozen=True, kw_only=True)
class EngineContext:
    """What the engine needs from the daemon, and nothing else.

    `launch(job, firing, trigger)` starts a run (None: it could not); `jobs()` the jobs
    loaded now; `run_owners()` job id -> owner of the smart runs going (a job removed
    from its crontab may still run); `mode()` smart, legacy or cron (the advisor is asked
    in smart mode, and in legacy mode too when it `explores`: smart.explore);
    `jump_over(instant)` the forward clock step over it, if one.
    """

    clock: Clock
    zone: tzinfo
    store: FiringStore | None
    launch: Callable[[Job, Firing, str], object | None]
    jobs: Callable[[], Sequence[Job]]
    run_owners: Callable[[], Mapping[str, str]]
    mode: Callable[[], str]
    max_concurrent: int
    jump_over: Callable[[datetime], Jump | None]
    monitor: Monitor | None = None
    advisor: Advisor | None = None
    explores: bool = False  # the advisor explores: ask it in legacy mode too
    recheck: timedelta = RECHECK
    claimer: Claimer | None = None  # fleet=once (smart.fleet); None: every claim granted


def outcome_text(result: RunResult, status: RunStatus) -> str:
    """`exit 0 in 12 s`, `timed out after 30 s`, `signal 9 after 3 s`."""
    took = f"{result.wall_s:.0f} s"
    if result.spawn_error:
        return f"could not start: {result.spawn_error}"
    if status is RunStatus.TIMEOUT:
        return f"timed out after {took}"
    if result.signal is not None:
        return f"signal {result.signal} after {took}"
    return f"exit {result.exit_code} in {took}"


class Engine:
    def __init__(self, context: EngineContext) -> None:
        self.context = context
        self._monitor = context.monitor
        self._last: Snapshot | None = None  # the latest wake-up's snapshot (snapshot_at)
        self.advisor = context.advisor
        self.store = context.store
        # after= (smartcron.smart.depends): the machine that also waits for other jobs.
        self.machine: Machine = DependentMachine(
            context.zone, recheck=context.recheck, lookup=self._outcome
        )
        self.journal = Journal(context.zone)  # the decisions' lines in the log
        self._resumed = False  # firings resumed, not yet looked at with the jobs loaded
        self.claimer = context.claimer or LocalClaimer()

    @property
    def slots(self) -> dict[tuple[str, datetime], Slot]:
        return self.machine.slots

    @property
    def running(self) -> dict[str, int]:
        """Smart runs going, by job id."""
        return self.machine.running

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:  # the real machine, only once a smart job needs it
            self._monitor = SystemMonitor()
        return self._monitor

    def _outcome(self, job_id: str, nominal: datetime) -> Outcome | None:
        """after=: a dependency's latest firing due by `nominal` that this daemon did not
        see (it ran before a restart), from the history."""
        if self.store is None:
            return None
        try:
            stored = self.store.firings([job_id], limit=50)
        except HistoryError as err:
            log_history_failure(err, "a dependency's firings not read")
            return None
        found = next((item for item in stored if item.firing.nominal <= nominal), None)
        if found is None:
            return None
        return Outcome(found.firing.nominal, found.firing.state, found.updated)

    # ------------------------------------------------------------ persistence

    def _record(self, firing: Firing, now: datetime, **fields: Any) -> bool:
        """Write a transition; a database failure is logged and the engine carries on
        from memory (the firing is then only as safe as the process)."""
        if self.store is None:
            return True
        try:
            return self.store.record(firing, now, **fields)
        except HistoryError as err:
            log_history_failure(err, f"firing {firing.id} kept in memory")
            return True

    def _apply(self, effect: Effect, now: datetime) -> bool:
        if effect.kind != "start":  # a start is logged once it has started
            self.journal.effect(effect, now)
        return self._record(effect.firing, now, **effect.fields())

    def resume(self, now: datetime) -> None:
        """After a (re)start: pending firings resume; a firing left `running` by a dead
        or stopped daemon becomes `interrupted` and is not run again (its run row is
        marked interrupted by the service)."""
        if self.store is None:
            return
        try:
            stored = self.store.open_firings()
        except HistoryError as err:
            log_history_failure(err, "pending firings not resumed")
            return
        for item in stored:
            effect = self.machine.resume(item.firing, item.next_eval, now)
            if effect is not None:
                self._apply(effect, now)
        if self.slots:
            log.info("%d pending firing(s) resumed", len(self.slots))
            self._resumed = True

    def add(
        self,
        due: Sequence[tuple[Job, datetime]],
        now: datetime,
        also: Sequence[tuple[str, tuple[object, ...]]] = (),
        sleep: Sleep | None = None,
    ) -> None:
        """Cron ticks of smart jobs: pending firings, persisted before evaluation, in one
        transaction with `also` (the minute journal), before any job of the minute starts.
        `sleep`: the machine was suspended or off before them: then `catch_up`."""
        fresh: dict[tuple[str, datetime], Firing] = {}
        for job, nominal in due:
            key = (job.id, nominal)
            if not self.machine.is_open(*key) and key not in fresh:
                fresh[key] = self.machine.firing_for(job, nominal)
        if self.store is not None and (fresh or also):
            try:
                stored = self.store.create_all(list(fresh.values()), now, also)
            except HistoryError as err:
                log_history_failure(err, f"{len(fresh)} firing(s) kept in memory")
            else:
                for (key, firing), row in zip(list(fresh.items()), stored, strict=True):
                    if row.firing.state != "pending" or row.firing.attempt:
                        del fresh[key]  # already handled (or in hand) by an earlier daemon
                    else:
                        fresh[key] = replace(firing, id=row.firing.id)
        for firing in fresh.values():
            self.machine.open(firing, now)
        self.catch_up(sleep, now)

    def catch_up(self, sleep: Sleep | None, now: datetime) -> None:
        """After a suspend or a power-off: the smart firings its time kept from running
        (smartcron.smart.catchup), persisted like any firing. Not in cron mode."""
        if sleep is None or self.context.mode() == "cron":
            return
        jobs = [(job, job.entry.spec) for job in self.context.jobs() if job.smart is not None]
        opened = {key: slot.firing for key, slot in self.slots.items()}
        found = catchup.plan(jobs, opened, sleep, now, self.context.zone)
        self.add(found.fresh, now)
        why = {(c.job.id, c.nominal): c for c in found.catch}

        def stored(firing: Firing) -> Firing:
            catch = why[firing.job_id, firing.nominal]
            log.info("%s: %s", catch.job.label, catch.reason)
            if self.store is None:
                return firing
            try:
                return self.store.catch_up(firing, now, catch.reason).firing
            except HistoryError as err:
                log_history_failure(err, "a catch-up firing kept in memory")
                return firing

        missed, moved, _ = catchup.apply(self.machine, found, now, stored)
        for effect in missed:
            self._apply(effect, now)
        for catch in moved:
            stored(self.slots[catch.job.id, catch.nominal].firing)

    # ------------------------------------------------------------ evaluation

    def reconsider(self, now: datetime) -> None:
        """Evaluate every open firing again now (the model was dropped, or the clock
        stepped: what it deferred may run at once)."""
        self.machine.reconsider(now)

    def next_eval(self) -> datetime | None:
        if self._resumed:  # at once: process() looks at the resumed after= waiters
            return self.context.clock.now()
        return self.machine.next_eval()

    def process(self, now: datetime) -> list[tuple[Job, datetime]]:
        """Evaluate the firings due now, admit the ready ones, start them."""
        if self._resumed:  # after=: what a resumed firing waits for may have ended meanwhile
            self._resumed = False
            waiting = {job.id for job in self.context.jobs() if job.smart and job.smart.after}
            for (job_id, _), slot in self.slots.items():
                if job_id in waiting:
                    slot.next_eval = min(slot.next_eval, now)
        if not any(slot.next_eval <= now for slot in self.slots.values()):
            return []
        ctx = self.context
        jobs = {job.id: job for job in ctx.jobs() if job.smart is not None}
        snaps: dict[str, Snapshot] = {}
        metered = any(job.smart is not None and job.smart.network == "unmetered"
                      for job in jobs.values())  # fmt: skip

        def owners() -> dict[str, str]:
            return {**{job.id: job.owner for job in ctx.jobs()}, **ctx.run_owners()}

        wake = Wakeup(
            now=now,
            jobs=jobs,
            snapshot=lambda spec: self._snapshot(spec, now, snaps, metered),
            owners=owners,
            max_concurrent=ctx.max_concurrent,
            advisor=self.advisor if ctx.mode() == "smart" or ctx.explores else None,
            jump_over=ctx.jump_over,
        )
        started = []
        for effect in self.machine.process(wake):
            if effect.kind == "start":
                if self._launch(effect, now):
                    self.journal.effect(effect, now)
                    started.append((effect.job, effect.firing.nominal))
            else:
                self._apply(effect, now)
        if len(self.journal) > len(self.slots):
            self.journal.retain(self.slots)
        return started

    def snapshot_at(self, now: datetime) -> Snapshot:
        """The wake-up's snapshot if one was taken at `now`, else a new one (the presence
        sample reads the idle time once a wake-up, as the gate does)."""
        last = self._last
        return last if last is not None and last.at == now else self.monitor.snapshot(now)

    def _snapshot(
        self, spec: SmartSpec, now: datetime, cache: dict[str, Snapshot], metered: bool
    ) -> Snapshot:
        """One snapshot per wake-up (the metered state only if a job asks for it); min_disk
        on another path replaces only the disk's figures."""
        monitor = self.monitor
        if "" not in cache:
            if isinstance(monitor, SystemMonitor):
                monitor.ask_metered = metered
            cache[""] = self._last = monitor.snapshot(now)
        snap = cache[""]
        path = spec.disk_path
        if spec.min_disk is None or path == snap.disk_path:
            return snap
        if path not in cache:
            if isinstance(monitor, SystemMonitor):
                free = disk_free_percent(path)
                cache[path] = replace(snap, disk_path=path, disk_free_percent=free)
            else:
                cache[path] = snap  # a fake measured one path: min_disk counts as unknown
        return cache[path]

    def _launch(self, start: Effect, now: datetime) -> bool:
        """pending -> running (only from pending), then start the run."""
        job: Job = start.job
        held = fleet.hold(self.machine, start, self.claimer, self.context.zone, now)
        if held is not None:
            self._apply(held, now)  # fleet=once: another host's, or not claimable yet
            return False
        if not self._apply(start, now):
            log.error("%s: firing %s is no longer pending: not started", job.label, start.firing.id)
            self.machine.not_started(start, None)
            return False
        running = None
        try:
            running = self.context.launch(job, start.firing, start.trigger)
        except Exception:
            log.exception("%s: could not start job", job.label)
        if running is None:
            fleet.release(start, self.claimer)
            failed = self.machine.not_started(start, "could not start (see the log)")
            assert failed is not None
            self._apply(failed, now)
            return False
        fleet.started(start, self.claimer, now)
        return True

    # ------------------------------------------------------------ outcomes

    def finished(self, running: Run, result: RunResult, status: RunStatus) -> None:
        """A smart run ended: done, a retry inside the window, failed, or interrupted
        (the daemon stopped it: its outcome is unknown)."""
        firing = running.extra["firing"]
        assert isinstance(firing, Firing)
        now = self.context.clock.now()
        outcome: RunOutcomeKind = "failed"
        if status is RunStatus.OK:
            outcome = "ok"
        elif status is RunStatus.INTERRUPTED:  # stopped by the daemon: not the job's failure
            outcome = "interrupted"
        what = outcome_text(result, status)
        self._apply(self.machine.finished(running.job, firing, outcome, what, now), now)
