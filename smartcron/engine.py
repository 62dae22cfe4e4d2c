"""The decision engine: the daemon's smart half (SPEC 5), over the pure gate.

Each cron tick of an annotated job becomes a pending firing, persisted (firings.py)
before it is evaluated. Pending firings are evaluated when their `next_eval` comes
(a defer's `until`, at most a minute away, or the deadline), and again at once when a
smart run ends (capacity and queues free up): never a busy loop. `run` verdicts go
through `gate.admit` (priority, max_concurrent, overlap); a failed run is retried with
backoff while the window lasts. The database is the truth across restarts; this
module keeps the open firings in memory and writes every transition through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from smartcron.firings import FiringStore, verdict_fields
from smartcron.gate import (
    RECHECK,
    Advisor,
    Firing,
    Verdict,
    admit,
    evaluate,
    retry_at,
    window_for,
)
from smartcron.history import HistoryError, RunStatus
from smartcron.historyguard import report
from smartcron.jobs import Job
from smartcron.monitor import Monitor, Snapshot
from smartcron.smartspec import SmartSpec

if TYPE_CHECKING:
    from smartcron.daemon import Daemon
    from smartcron.executor import RunResult
    from smartcron.lifecycle import RunningJob

log = logging.getLogger("smartcron")

# A firing first evaluated this long after its deadline (the daemon was down, or the
# machine asleep) is `missed`, not run: cron.c too catches up at most 3 hours.
MISSED_AFTER = timedelta(hours=3)

Key = tuple[str, datetime]


@dataclass
class Slot:
    """An open firing in memory: when to look at it next, and why it waits, if it does."""

    firing: Firing
    next_eval: datetime
    waiting: str | None = None


def _hhmm(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%H:%M")


def _in_zone(firing: Firing, zone: tzinfo) -> Firing:
    """The firing's instants on the job's wall clock, so reasons read `deadline 03:00`."""
    nb = firing.not_before
    return replace(
        firing,
        nominal=firing.nominal.astimezone(zone),
        deadline=firing.deadline.astimezone(zone),
        not_before=None if nb is None else nb.astimezone(zone),
    )


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
    def __init__(
        self,
        daemon: Daemon,
        monitor: Monitor | None,
        advisor: Advisor | None = None,
        recheck: timedelta = RECHECK,
    ) -> None:
        self.daemon = daemon
        self._monitor = monitor
        self.advisor = advisor
        self.recheck = recheck
        self.store = FiringStore(daemon.history) if daemon.history is not None else None
        self.slots: dict[Key, Slot] = {}
        self.running: dict[str, int] = {}  # job id -> smart runs going

    @property
    def monitor(self) -> Monitor:
        if self._monitor is None:  # the real machine, only once a smart job needs it
            from smartcron.monitor import SystemMonitor

            self._monitor = SystemMonitor()
        return self._monitor

    # ------------------------------------------------------------ persistence

    def _record(self, firing: Firing, now: datetime, **fields: object) -> bool:
        """Write a transition; a database failure is logged and the engine carries on
        from memory (the firing is then only as safe as the process)."""
        if self.store is None:
            return True
        try:
            return self.store.record(firing, now, **fields)  # type: ignore[arg-type]
        except HistoryError as err:
            report(err, f"firing {firing.id} kept in memory")
            return True

    def resume(self, now: datetime) -> None:
        """After a (re)start: pending firings resume; a firing left `running` by a dead
        or stopped daemon becomes `interrupted` and is not run again (its run row is
        marked interrupted by the service)."""
        if self.store is None:
            return
        try:
            stored = self.store.open_firings()
        except HistoryError as err:
            report(err, "pending firings not resumed")
            return
        for item in stored:
            firing = item.firing
            if firing.state == "running":
                # Its process may well have gone on and succeeded: the outcome is unknown,
                # never a failure (and so never a training label, nor retried).
                why = "the daemon stopped while it ran: outcome unknown (not run again)"
                self._record(firing, now, verdict="interrupted", reason=why, state="interrupted")
                continue
            when = item.next_eval or now
            self.slots[firing.job_id, firing.nominal] = Slot(firing, when)
        if self.slots:
            log.info("%d pending firing(s) resumed", len(self.slots))

    def add(
        self,
        due: Sequence[tuple[Job, datetime]],
        now: datetime,
        also: Sequence[tuple[str, tuple[object, ...]]] = (),
    ) -> None:
        """Cron ticks of smart jobs: pending firings, persisted before evaluation, in one
        transaction with `also` (the minute journal), before any job of the minute starts."""
        fresh: dict[Key, Firing] = {}
        for job, nominal in due:
            assert job.smart is not None
            key = (job.id, nominal)
            if key in self.slots or key in fresh:
                continue
            start, deadline = window_for(job.smart, nominal, self._zone(job))
            fresh[key] = Firing(
                id=None,
                job_id=job.id,
                nominal=nominal,
                deadline=deadline,
                not_before=start if start > nominal else None,
            )
        if self.store is not None and (fresh or also):
            try:
                stored = self.store.create_all(list(fresh.values()), now, also)
            except HistoryError as err:
                report(err, f"{len(fresh)} firing(s) kept in memory")
            else:
                for (key, firing), row in zip(list(fresh.items()), stored, strict=True):
                    if row.firing.state != "pending" or row.firing.attempt:
                        del fresh[key]  # already handled (or in hand) by an earlier daemon
                    else:
                        fresh[key] = replace(firing, id=row.firing.id)
        for key, firing in fresh.items():
            self.slots[key] = Slot(firing, now)

    # ------------------------------------------------------------ evaluation

    def reconsider(self, now: datetime) -> None:
        """Evaluate every open firing again now (the model was dropped: what it deferred,
        the rules alone may run at once)."""
        for slot in self.slots.values():
            slot.next_eval = min(slot.next_eval, now)

    def next_eval(self) -> datetime | None:
        return min((slot.next_eval for slot in self.slots.values()), default=None)

    def process(self, now: datetime) -> list[tuple[Job, datetime]]:
        """Evaluate the firings due now, admit the ready ones, start them."""
        due = [slot for slot in self.slots.values() if slot.next_eval <= now]
        if not due:
            return []
        jobs = {job.id: job for job in self.daemon.db.jobs if job.smart is not None}
        snaps: dict[str, Snapshot] = {}
        ready: dict[Key, tuple[Slot, Job, Verdict, Snapshot]] = {}
        for slot in sorted(due, key=lambda s: (s.firing.nominal, s.firing.job_id)):
            firing = slot.firing
            job = jobs.get(firing.job_id)
            # A forward clock step over the deadline is not downtime: on_deadline applies.
            jump = self.daemon.jump_over(firing.deadline) if now >= firing.deadline else None
            if job is None or (jump is None and now - firing.deadline > MISSED_AFTER):
                self._missed(slot, job, now)
                continue
            assert job.smart is not None
            try:
                snap = self._snapshot(job.smart, now, snaps)
            except Exception:  # a broken monitor: look again in a minute
                log.exception("%s: system snapshot failed", job.label)
                slot.next_eval = now + self.recheck
                continue
            advisor = self.advisor if self.daemon.mode == "smart" else None
            local = _in_zone(firing, self._zone(job))
            verdict = evaluate(local, job.smart, snap, now, recheck=self.recheck, advisor=advisor)
            if jump is not None:
                verdict = replace(
                    verdict, reason=f"{jump.text()} past its window; {verdict.reason}"
                )
            if verdict.action == "run":
                ready[firing.job_id, firing.nominal] = (slot, job, verdict, snap)
                continue
            self._decided(slot, verdict, snap, now)
        return self._admit(ready, now)

    def _zone(self, job: Job | None) -> tzinfo:
        return (job.zone if job is not None else None) or self.daemon.zone

    def _snapshot(self, spec: SmartSpec, now: datetime, cache: dict[str, Snapshot]) -> Snapshot:
        """One snapshot per wake-up; min_disk on another path is measured there."""
        if "" not in cache:
            cache[""] = self.monitor.snapshot(now)
        snap = cache[""]
        path = spec.disk_path
        if spec.min_disk is None or path == snap.disk_path:
            return snap
        if path not in cache:
            from smartcron.monitor import SystemMonitor

            if isinstance(self.monitor, SystemMonitor):
                cache[path] = SystemMonitor(disk_path=path).snapshot(now)
            else:
                cache[path] = snap  # a fake measured one path: min_disk counts as unknown
        return cache[path]

    def _missed(self, slot: Slot, job: Job | None, now: datetime) -> None:
        firing = slot.firing
        if job is None and now < firing.deadline:
            slot.next_eval = firing.deadline  # maybe a crontab mid-edit: wait and see
            return
        if job is None:
            why = "the job is no longer in any crontab (or no longer annotated)"
        else:
            deadline = _hhmm(firing.deadline, self._zone(job))
            why = f"the deadline {deadline} passed while the daemon was not running"
        self._record(firing, now, verdict="missed", reason=why, state="missed")
        del self.slots[firing.job_id, firing.nominal]
        log.warning("%s: firing of %s missed: %s", firing.job_id, firing.nominal, why)

    def _decided(self, slot: Slot, verdict: Verdict, snap: Snapshot, now: datetime) -> None:
        """Record a defer or skip verdict."""
        firing = slot.firing
        fields = verdict_fields(verdict)
        if verdict.action == "skip":
            self._record(firing, now, **fields, snapshot=snap, state="skipped")
            del self.slots[firing.job_id, firing.nominal]
            log.info("%s: firing of %s skipped: %s", firing.job_id, firing.nominal, verdict.reason)
            return
        assert verdict.until is not None
        until = max(verdict.until, now + timedelta(seconds=1))  # never a busy loop
        self._record(firing, now, **fields, snapshot=snap, next_eval=until)
        slot.next_eval, slot.waiting = until, None

    def _admit(
        self, ready: dict[Key, tuple[Slot, Job, Verdict, Snapshot]], now: datetime
    ) -> list[tuple[Job, datetime]]:
        """gate.admit (priority, overlap, the cap shared fairly between owners; a firing
        at its deadline is not held by the cap), then start, wait or skip each."""
        if not ready:
            return []
        pairs = [
            (_in_zone(slot.firing, self._zone(job)), job.smart)
            for slot, job, _, _ in ready.values()
        ]
        # Owners of the runs going too: a job removed from its crontab may still run.
        owners = {job.id: job.owner for job in self.daemon.db.jobs}
        for run in self.daemon.running.values():
            if "firing" in run.extra:
                owners[run.job.id] = run.job.owner
        total = sum(self.running.values())
        cap = self.daemon.config.max_concurrent
        admission = admit(pairs, self.running, total, cap, owners=owners, now=now)  # type: ignore[arg-type]
        started = []
        for firing, _ in admission.start:
            slot, job, verdict, snap = ready[firing.job_id, firing.nominal]
            over = admission.reason_for(firing)  # started over the cap at its deadline
            if over is not None:
                verdict = replace(verdict, reason=f"{verdict.reason}; {over}")
            if self._launch(slot, job, verdict, snap, now):
                started.append((job, firing.nominal))
        for firing, _ in admission.wait:
            slot, _, _, snap = ready[firing.job_id, firing.nominal]
            why = admission.reason_for(firing) or "waiting"
            # Look again in a minute, or at the deadline: there the cap stops holding it.
            deadline = slot.firing.deadline
            slot.next_eval = now + self.recheck
            if now < deadline:
                slot.next_eval = min(slot.next_eval, deadline)
            if why != slot.waiting:  # record a wait once, not every minute
                self._record(
                    slot.firing,
                    now,
                    verdict="defer",
                    reason=why,
                    snapshot=snap,
                    next_eval=slot.next_eval,
                )
                slot.waiting = why
        for firing, why in admission.skip:
            slot, _, _, snap = ready[firing.job_id, firing.nominal]
            self._record(
                slot.firing, now, verdict="skip", reason=why, snapshot=snap, state="skipped"
            )
            del self.slots[firing.job_id, firing.nominal]
        return started

    def _launch(
        self, slot: Slot, job: Job, verdict: Verdict, snap: Snapshot, now: datetime
    ) -> bool:
        """pending -> running (only from pending), then start the run."""
        firing = replace(slot.firing, attempt=slot.firing.attempt + 1, state="running")
        moved = self._record(
            firing, now, **verdict_fields(verdict), snapshot=snap, state="running", expect="pending"
        )
        del self.slots[firing.job_id, firing.nominal]
        if not moved:
            log.error("%s: firing %s is no longer pending: not started", job.label, firing.id)
            return False
        trigger = "retry" if slot.firing.attempt else "smart"
        running = None
        try:
            running = self.daemon.launch_smart(job, firing, trigger)
        except Exception:
            log.exception("%s: could not start job", job.label)
        if running is None:
            why = "could not start (see the log)"
            self._record(firing, now, verdict="failed", reason=why, state="failed")
            return False
        self.running[job.id] = self.running.get(job.id, 0) + 1
        return True

    # ------------------------------------------------------------ outcomes

    def finished(self, running: RunningJob, result: RunResult, status: RunStatus) -> None:
        """A smart run ended: done, a retry inside the window, failed, or interrupted
        (the daemon stopped it: its outcome is unknown)."""
        firing: Firing = running.extra["firing"]  # type: ignore[assignment]
        spec = running.job.smart
        assert spec is not None
        now = self.daemon.clock.now()
        count = self.running.get(firing.job_id, 0) - 1
        if count > 0:
            self.running[firing.job_id] = count
        else:
            self.running.pop(firing.job_id, None)
        for slot in self.slots.values():  # capacity freed: look at the waiting ones now
            if slot.waiting is not None:
                slot.next_eval = min(slot.next_eval, now)
        what = outcome_text(result, status)
        if status is RunStatus.OK:
            self._record(firing, now, verdict="done", reason=what, state="done")
            return
        if status is RunStatus.INTERRUPTED:  # stopped by the daemon: not the job's failure
            why = f"stopped by the daemon ({what}): outcome unknown, not retried"
            self._record(firing, now, verdict="interrupted", reason=why, state="interrupted")
            return
        again = retry_at(spec, firing.attempt, now)
        if firing.attempt > spec.retry or again > firing.deadline:
            left = (
                "no retry left" if firing.attempt > spec.retry else "no retry before the deadline"
            )
            reason = f"{what}; {left}" if spec.retry else what
            self._record(firing, now, verdict="failed", reason=reason, state="failed")
            return
        pending = replace(firing, state="pending", not_before=again)
        at = _hhmm(again, self._zone(running.job))
        reason = f"{what}; retry {firing.attempt} of {spec.retry} at {at}"
        self._record(
            pending,
            now,
            verdict="retry",
            reason=reason,
            until=again,
            state="pending",
            next_eval=again,
        )
        self.slots[firing.job_id, firing.nominal] = Slot(pending, again)
