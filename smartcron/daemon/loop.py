"""The daemon: a thin loop over pure parts (loader, ticker, due) and the I/O interfaces.

One wake-up does: reload changed crontabs, turn the minutes since the last wake-up
into cron's ticks, start what is due, collect what finished, then sleep until the
next due instant (or a clock step, a file change, a signal, a finished job).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from smartcron.clock import STEP_THRESHOLD, Clock, Jump
from smartcron.config import Config
from smartcron.cron import schedule
from smartcron.daemon.clockwatch import ClockWatch
from smartcron.daemon.loader import Database
from smartcron.daemon.modes import Modes, SmartParts, explores, exploring, initial_mode
from smartcron.daemon.presence import PresenceSampler
from smartcron.daemon.recovery import recover
from smartcron.daemon.steering import Steering
from smartcron.daemon.ticker import Ticker, due, instant_of, local_minute
from smartcron.daemon.wakeup import Sleeper
from smartcron.run.executor import Runner, RunResult
from smartcron.run.lifecycle import finish_job, start_job
from smartcron.run.mail import Mailer
from smartcron.run.runcontext import RunContext, RunningJob
from smartcron.smart.engine import Engine, EngineContext
from smartcron.smart.firings import FiringStore
from smartcron.smart.gate import Firing
from smartcron.smart.jobs import Job
from smartcron.store.fleetparts import fleet_for
from smartcron.store.history import HistoryError, HistoryStore
from smartcron.store.historyguard import log_history_failure
from smartcron.store.journal import Journal, PlainFiring

log = logging.getLogger("smartcron")

PRUNE_EVERY = timedelta(days=1)
MAX_SLEEP = timedelta(hours=1)  # a safety net: wake at least hourly even if nothing is due
__all__ = ["STEP_THRESHOLD", "Daemon", "Launcher", "SmartParts", "initial_mode"]


class Launcher(Protocol):
    """Starts a job: Daemon.start by default; tests record, or wrap `daemon.start`.
    Smart runs pass `firing`."""

    def __call__(
        self,
        job: Job,
        scheduled: datetime | None,
        trigger: str,
        *,
        firing: Firing | None = None,
    ) -> RunningJob | None: ...


class Daemon:
    """The scheduler. `step()` is one wake-up; `run()` loops over it until stopped."""

    def __init__(
        self,
        config: Config,
        run: RunContext,
        *,
        zone: tzinfo,
        smart: SmartParts | None = None,
        waker: Sleeper | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.config = config
        self.run_context = run  # what lifecycle needs to start and finish a job
        clock, history = run.clock, run.history
        self.zone = zone
        self.waker = waker
        self.db = Database(config, zone_of=lambda env: schedule.entry_zone(env, zone))
        self.finished: queue.SimpleQueue[tuple[RunningJob, RunResult]] = queue.SimpleQueue()
        self.running: dict[int, RunningJob] = {}
        self.stopping = False
        self.reload_requested = False
        self._launch: Launcher = launcher or self.start
        now = clock.now()
        self.watch = ClockWatch(clock, zone)  # the minutes observed, the clock steps seen
        self.ticker = Ticker(local_minute(self.watch.utc_minute, zone))
        self._next_rescan = now
        self._next_prune = now
        self._next: dict[str, datetime] = {}
        self._stepped = False
        # Files (re)loaded since the last wake-up -> when they changed: a file changed
        # during minute M is first used for M+1, as Debian's cron loads its database.
        self._fresh: dict[str, datetime] = {}
        self.journal = Journal(history) if history is not None else None
        self._recovering = True  # at the first load: what the previous daemon left
        self.on_reload: Callable[[], None] | None = None
        self.on_status: Callable[[], None] | None = None  # the mode or the model changed
        # The control socket's run and cancel, served in step() (smartcron.daemon.steering).
        self.steering = Steering(lambda job, how: self._launch(job, None, how), lambda: self.waker)
        # Smart mode only: the model (loaded when usable, else legacy with the reason)
        # and its retraining; a fixed `advisor` (tests, tools) counts as a usable model.
        smart = smart or SmartParts()
        self.modes = Modes(config, smart)
        self.models, self.retrainer = self.modes.models, self.modes.retrainer
        self.check_model(now)
        # Smart firings (not in cron mode): SystemMonitor by default, made when needed.
        self.engine = Engine(
            EngineContext(
                clock=clock,
                zone=zone,
                store=FiringStore(history) if history is not None else None,
                launch=self.launch_smart,
                jobs=lambda: self.db.jobs,
                run_owners=lambda: {
                    going.job.id: going.job.owner
                    for going in self.running.values()
                    if "firing" in going.extra
                },
                mode=lambda: self.mode,
                max_concurrent=config.max_concurrent,
                jump_over=self.watch.jump_over,
                monitor=smart.monitor,
                advisor=exploring(config, self.modes.advisor, history),
                explores=explores(config, history),
                claimer=fleet_for(config, history).claimer,  # fleet=once (docs/fleet.md)
            )
        )
        if self.mode != "cron":
            self.engine.resume(now)
        self.presence = PresenceSampler(history, self.engine.snapshot_at, config.presence)

    # The run context's parts, as the service, the status document and tests read them.
    @property
    def clock(self) -> Clock:
        return self.run_context.clock

    @property
    def history(self) -> HistoryStore | None:
        return self.run_context.history

    @property
    def runner(self) -> Runner:
        return self.run_context.runner

    @property
    def mailer(self) -> Mailer:
        return self.run_context.mailer

    @property
    def jumps(self) -> list[Jump]:
        """The forward clock steps seen (running, or across a restart)."""
        return self.watch.jumps

    @property
    def mode(self) -> str:
        """smart, legacy or cron (SPEC 5): with a model watch, as its model allows."""
        return self.modes.mode

    @property
    def mode_reason(self) -> str:
        return self.modes.reason

    # ------------------------------------------------------------------ the loop

    def reload(self, force: bool = False) -> list[str]:
        changed = self.db.refresh(force=force)
        now = self.clock.now()
        # A later load counts from when each file changed. The first is cron.c's
        # load_database() before its first minute, whatever the stamps say (a crontab
        # stamped ahead of the clock lost the minute begun between the start and now).
        for key in changed if not self._recovering else []:
            changes = [self.clock.file_time(ns) for ns in self.db.ctimes(key)]
            self._fresh[key] = min([now, max(changes, default=now)])
        if self._recovering:
            self._recovering = False
            try:
                self.recover(now)
            except Exception:  # a bug here must not stop cron from starting
                log.exception("recovery from the journal failed; carrying on")
        if changed or force:
            self._next.clear()
            if self.on_reload is not None:
                self.on_reload()
        return changed

    def observations(self, now: datetime) -> list[tuple[int, int]]:
        """The (utc, local) minutes cron would have woken in since the last step."""
        seen, stepped = self.watch.observe(now)
        if stepped:
            self._next.clear()  # next firings were computed on the old time line
            self._stepped = True
        return seen

    def step(self) -> list[tuple[Job, datetime]]:
        """One wake-up at clock.now(). Returns the (job, scheduled instant) pairs started."""
        now = self.clock.now()
        self.collect()
        self.prune(now)
        before = self.modes.key()
        self.check_model(now, force=self.reload_requested)
        self._dropped(before, now)
        if self.reload_requested or now >= self._next_rescan:
            self.reload(force=self.reload_requested)
            self.reload_requested = False
            self._next_rescan = now + timedelta(seconds=self.config.mtime_check)
        self.steering.serve(self.db.jobs, self.engine, now)  # smartcronctl run / cancel
        started: list[tuple[Job, datetime]] = []
        smart: list[tuple[Job, datetime]] = []
        jobs, fresh, self._fresh = self.db.jobs, self._fresh, {}
        seen = self.observations(now)
        for utc_minute, minute in seen:
            for tick in self.ticker.observe(minute, utc_minute):
                scheduled = instant_of(tick.minute, tick.utc_minute, self.zone)
                # cron.c runs minute M on the database as loaded at the top of M.
                ready = [j for j in jobs if j.source not in fresh or fresh[j.source] < scheduled]
                for job in due(ready, tick, self.zone):
                    gated = job.smart is not None and self.mode != "cron"
                    (smart if gated else started).append((job, scheduled))
        if self._stepped:  # what waits was timed on the old time line: look again now
            self._stepped = False
            self.engine.reconsider(now)
        try:  # the minute made durable (its smart firings, its plain ones) before any starts
            self.engine.add(smart, now, self._journal_entry(seen, now, started), self.watch.sleep)
        except Exception:  # the gate's trouble must not stop plain cron
            log.exception("the decision engine failed; carrying on")
        for job, scheduled in started:  # plain lines never pass through the gate
            try:
                self._launch(job, scheduled, "cron")
            except Exception:  # a bug in one launch must not stop the others
                log.exception("%s: could not start job", job.label)
        if started:
            self._journal_done()
        try:
            started += self.engine.process(now)
        except Exception:  # the gate's trouble must not stop plain cron
            log.exception("the decision engine failed; carrying on")
        self.presence.observe(now, self._gating())
        self._dropped(before, now)
        if self.modes.key() != before and self.on_status is not None:
            self.on_status()  # a model loaded, dropped or retrained
        return started

    # ------------------------------------------------------------------ the journal

    def _journal_entry(
        self, seen: list[tuple[int, int]], now: datetime, plain: list[tuple[Job, datetime]]
    ) -> list[tuple[str, tuple[object, ...]]]:
        """The journal row of this wake-up (none if it saw no new minute)."""
        if self.journal is None or not seen:
            return []
        listed = [PlainFiring(job.id, job.label, scheduled) for job, scheduled in plain]
        boot, mono, boottime = self.clock.boot_id(), self.clock.monotonic(), self.clock.boottime()
        return self.journal.statements(seen[-1][0], now, boot, mono, listed, boottime=boottime)

    def _journal_done(self) -> None:
        """Every plain firing of this wake-up was handed to the launcher."""
        if self.journal is None:
            return
        try:
            self.journal.mark_complete()
        except HistoryError as err:
            log_history_failure(err, "journal")

    def recover(self, now: datetime) -> None:
        """At the first load: what the previous daemon journaled and did not start, and
        the minutes no daemon observed (see smartcron.daemon.recovery)."""
        if self.journal is None:
            return
        found = recover(
            self.journal,
            self.db.jobs,
            through=self.watch.utc_minute,
            now=now,
            clock=self.clock,
            zone=self.zone,
            smart=self.mode != "cron",
            keep=timedelta(days=self.config.history_days),
        )
        if found is None:
            return
        if found.jump is not None:
            if found.jump.end > found.jump.start:
                self.watch.jumped(found.jump.start, found.jump.end)
            self.engine.reconsider(now)
        self.engine.add(found.pending, now, found.statements, sleep=found.sleep)  # was it off?

    def _dropped(self, before: tuple[object, ...], now: datetime) -> None:
        """The model was dropped: firings it deferred go back to the rules at once."""
        if before[0] == "smart" and self.mode == "legacy":
            self.engine.reconsider(now)

    def check_model(self, now: datetime, force: bool = False) -> None:
        """The model's upkeep (Modes.check); a model directory made since the start is
        watched."""
        self.modes.check(now, force, None if self.waker is None else self.waker.watch)

    def launch_smart(self, job: Job, firing: Firing, trigger: str) -> RunningJob | None:
        """Start a smart firing's run (called by the engine)."""
        return self._launch(job, firing.nominal, trigger, firing=firing)

    def start(
        self, job: Job, scheduled: datetime | None, trigger: str, *, firing: Firing | None = None
    ) -> RunningJob | None:
        """Start a run now (the default launcher; @reboot jobs too) and count it running."""
        running = start_job(
            self.run_context, job, scheduled, trigger, done=self.job_done, firing=firing
        )
        if running is not None:
            self.running[id(running)] = running
        return running

    def job_done(self, running: RunningJob, result: RunResult) -> None:
        """A run ended (the runner's worker thread, its mail sent): queue it for the main
        thread, which alone writes history, and wake the loop."""
        self.finished.put((running, result))
        if self.waker is not None:
            self.waker.notify()

    def _gating(self) -> bool:
        """Smart jobs pass the gate (smart or legacy mode): presence is sampled."""
        return self.mode != "cron" and any(job.smart is not None for job in self.db.jobs)

    def prune(self, now: datetime) -> None:
        """Retention by age (config history_days), at most once a day."""
        if self.history is None or now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        try:
            removed = self.history.prune(timedelta(days=self.config.history_days), now)
        except HistoryError as err:
            log_history_failure(err, "not pruned")
            return
        if removed:
            log.info(
                "history: %d old row(s) pruned (history_days = %d)",
                removed,
                self.config.history_days,
            )

    def next_wake(self) -> datetime:
        """The next instant anything is due (at most MAX_SLEEP away)."""
        now = self.clock.now()
        if self.watch.behind(now):  # the first top after the start has passed
            return now
        horizon = now + MAX_SLEEP
        best = horizon
        for job in self.db.jobs:
            when = self._next.get(job.id)
            if when is None or when <= now:
                zone = job.zone or self.zone
                when = next(schedule.next_fires(job.entry.spec, now, zone), horizon)
                self._next[job.id] = when
            best = min(best, when)
        pending = self.engine.next_eval()
        if pending is not None:
            best = min(best, max(pending, now))
        for when in (*self.modes.next_wakes(now), self.presence.next_wake(now, self._gating())):
            best = min(best, max(when, now)) if when is not None else best
        if not self.config.mtime_check or self.waker is None:
            return best
        if not self.waker.watches_files:
            best = min(best, self._next_rescan)
        return best

    def collect(self) -> None:
        """Record the jobs that finished since the last wake-up (main thread only)."""
        while True:
            try:
                running, result = self.finished.get_nowait()
            except queue.Empty:
                return
            self.running.pop(id(running), None)
            status = finish_job(self.run_context, running, result)
            if "firing" in running.extra:
                try:
                    self.engine.finished(running, result, status)
                except Exception:  # one firing's bookkeeping must not stop the loop
                    log.exception("%s: recording the smart run's outcome failed", running.job.label)

    def run(self) -> None:
        """Loop until SIGTERM/SIGINT: sleep, wake, step."""
        assert self.waker is not None
        while not self.stopping:
            reasons = self.waker.wait(self.next_wake())
            if self.stopping:
                break
            if "files" in reasons:  # inotify: a crontab directory changed; rescan now
                self._next_rescan = self.clock.now()
            try:
                self.step()
            except Exception:
                log.exception("unexpected error in the scheduling loop; carrying on")
        self._journal_done()  # a clean stop: the last minute's plain firings were started

    def request_stop(self, *_: object) -> None:
        self.stopping = True

    def request_reload(self, *_: object) -> None:
        self.reload_requested = True
