"""The daemon: a thin loop over pure parts (loader, ticker, due) and the I/O interfaces.

One wake-up does: reload changed crontabs, turn the minutes since the last wake-up
into cron's ticks, start what is due, collect what finished, then sleep until the
next due instant (or a clock step, a file change, a signal, a finished job).
"""

from __future__ import annotations

import logging
import math
import queue
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol

from smartcron import schedule
from smartcron.clock import STEP_THRESHOLD, Clock, Jump
from smartcron.config import Config
from smartcron.engine import Engine, EngineContext
from smartcron.executor import Runner, RunResult
from smartcron.firings import FiringStore
from smartcron.gate import Advisor, Firing
from smartcron.history import HistoryError, HistoryStore
from smartcron.historyguard import report
from smartcron.jobs import Job
from smartcron.journal import (
    RESTARTED,
    Journal,
    NotRun,
    PlainFiring,
    gap_firings,
    restart_jump,
)
from smartcron.lifecycle import RunningJob, finish_job, start_job
from smartcron.loader import Database
from smartcron.mail import Mailer
from smartcron.monitor import Monitor
from smartcron.ticker import Ticker, due, local_minute, observed_minutes, wall_of
from smartcron.wakeup import Sleeper

if TYPE_CHECKING:
    from smartcron.modelwatch import ModelWatch
    from smartcron.retrain import Retrainer

log = logging.getLogger("smartcron")

PRUNE_EVERY = timedelta(days=1)
MAX_SLEEP = timedelta(hours=1)  # a safety net: wake at least hourly even if nothing is due
MAX_JUMPS = 8  # forward clock steps remembered, to give a jumped-over firing its reason
__all__ = ["STEP_THRESHOLD", "Daemon", "Launcher", "initial_mode"]


class Launcher(Protocol):
    """Starts a job (lifecycle.start_job; tests record instead). Smart runs pass `firing`."""

    def __call__(
        self,
        daemon: Daemon,
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
        *,
        clock: Clock,
        runner: Runner,
        mailer: Mailer,
        history: HistoryStore,
        zone: tzinfo,
        launcher: Launcher | None = None,
        waker: Sleeper | None = None,
        hostname: str = "localhost",
        mail_charset: str = "US-ASCII",
        pam_env: tuple[tuple[str, str], ...] = (),
        sandbox: tuple[str, ...] = (),
        monitor: Monitor | None = None,
        advisor: Advisor | None = None,
        models: ModelWatch | None = None,
        retrainer: Retrainer | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.runner = runner
        self.mailer = mailer
        self.history = history
        self.zone = zone
        self.waker = waker
        self.hostname = hostname
        self.mail_charset = mail_charset
        self.pam_env = pam_env
        self.sandbox = sandbox
        self.db = Database(config, zone_of=lambda env: schedule.entry_zone(env, zone))
        self.finished: queue.SimpleQueue[tuple[RunningJob, RunResult]] = queue.SimpleQueue()
        self.running: dict[int, RunningJob] = {}
        self.stopping = False
        self.reload_requested = False
        self._launch = launcher or start_job
        now = clock.now()
        self._last_wall = now.timestamp()
        self._last_mono = clock.monotonic()
        self._last_utc_minute = math.floor(self._last_wall / 60)
        self.ticker = Ticker(local_minute(self._last_utc_minute, zone))
        self._next_rescan = now
        self._next_prune = now
        self._next: dict[str, datetime] = {}
        self.jumps: list[Jump] = []  # forward clock steps seen (running, or across a restart)
        self._stepped = False
        # Files (re)loaded since the last wake-up -> when they changed: a file changed
        # during minute M is first used for M+1, as Debian's cron loads its database.
        self._fresh: dict[str, datetime] = {}
        self.journal = Journal(history) if history is not None else None
        self._recovering = True  # at the first load: what the previous daemon left
        self.on_reload: Callable[[], None] | None = None
        self.on_status: Callable[[], None] | None = None  # the mode or the model changed
        # Smart mode only: the model (loaded when usable, else legacy with the reason)
        # and its retraining; a fixed `advisor` (tests, tools) counts as a usable model.
        smart = config.mode == "smart"
        self.models = models if smart else None
        self.retrainer = retrainer if smart else None
        self._mode, self._mode_reason = initial_mode(config, model=advisor is not None)
        if self.models is not None:
            advisor = self.models
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
                    run.job.id: run.job.owner
                    for run in self.running.values()
                    if "firing" in run.extra
                },
                mode=lambda: self.mode,
                max_concurrent=config.max_concurrent,
                jump_over=self.jump_over,
                monitor=monitor,
                advisor=advisor,
            )
        )
        if self.mode != "cron":
            self.engine.resume(now)

    @property
    def mode(self) -> str:
        """smart, legacy or cron (SPEC 5): with a model watch, as its model allows."""
        return self.models.mode if self.models is not None else self._mode

    @property
    def mode_reason(self) -> str:
        return self.models.reason if self.models is not None else self._mode_reason

    # ------------------------------------------------------------------ the loop

    def reload(self, force: bool = False) -> list[str]:
        changed = self.db.refresh(force=force)
        now = self.clock.now()
        for key in changed:
            loaded = self.db.files.get(key)
            companion = None if loaded is None else loaded.companion
            stamps = (
                [] if loaded is None else [loaded.stamp, getattr(companion, "stamp", companion)]
            )
            changes = [self.clock.file_time(st[1]) for st in stamps if st is not None]  # ctime
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
        """The (utc, local) minutes cron would have woken in since the last step.

        A wall clock that moved differently from the monotonic clock was stepped: the
        minutes up to where it *should* be are replayed, then the new reading is seen,
        which is exactly the sequence cron.c observes when someone runs `date -s`.
        """
        wall = now.timestamp()
        mono = self.clock.monotonic()
        expected = self._last_wall + (mono - self._last_mono)
        utc_minute = math.floor(wall / 60)
        if abs(wall - expected) >= STEP_THRESHOLD:
            log.info("clock step of %+.0f s detected", wall - expected)
            self._next.clear()  # next firings were computed on the old time line
            self._stepped = True
            if wall > expected:
                self._jumped(datetime.fromtimestamp(expected, UTC), now)
            seen = list(
                observed_minutes(self._last_utc_minute, math.floor(expected / 60), self.zone)
            )
            seen.append((utc_minute, local_minute(utc_minute, self.zone)))
        else:
            seen = list(observed_minutes(self._last_utc_minute, utc_minute, self.zone))
        self._last_wall, self._last_mono = wall, mono
        self._last_utc_minute = utc_minute
        return seen

    def step(self) -> list[tuple[Job, datetime]]:
        """One wake-up at clock.now(). Returns the (job, scheduled instant) pairs started."""
        now = self.clock.now()
        self.collect()
        self.prune(now)
        before = self._status_key()
        self.check_model(now, force=self.reload_requested)
        self._dropped(before, now)
        if self.reload_requested or now >= self._next_rescan:
            self.reload(force=self.reload_requested)
            self.reload_requested = False
            self._next_rescan = now + timedelta(seconds=self.config.mtime_check)
        started: list[tuple[Job, datetime]] = []
        smart: list[tuple[Job, datetime]] = []
        jobs, fresh, self._fresh = self.db.jobs, self._fresh, {}
        seen = self.observations(now)
        for utc_minute, minute in seen:
            for tick in self.ticker.observe(minute, utc_minute):
                scheduled = _instant_of(tick.minute, tick.utc_minute, self.zone)
                # cron.c runs minute M on the database as loaded at the top of M.
                ready = [j for j in jobs if j.source not in fresh or fresh[j.source] < scheduled]
                for job in due(ready, tick, self.zone):
                    gated = job.smart is not None and self.mode != "cron"
                    (smart if gated else started).append((job, scheduled))
        if self._stepped:  # what waits was timed on the old time line: look again now
            self._stepped = False
            self.engine.reconsider(now)
        try:  # the minute made durable (its smart firings, its plain ones) before any starts
            self.engine.add(smart, now, self._journal_entry(seen, now, started))
        except Exception:  # the gate's trouble must not stop plain cron
            log.exception("the decision engine failed; carrying on")
        for job, scheduled in started:  # plain lines never pass through the gate
            try:
                self._launch(self, job, scheduled, "cron")
            except Exception:  # a bug in one launch must not stop the others
                log.exception("%s: could not start job", job.label)
        if started:
            self._journal_done()
        try:
            started += self.engine.process(now)
        except Exception:  # the gate's trouble must not stop plain cron
            log.exception("the decision engine failed; carrying on")
        self._dropped(before, now)
        if self._status_key() != before and self.on_status is not None:
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
        boot, mono = self.clock.boot_id(), self.clock.monotonic()
        return self.journal.statements(seen[-1][0], now, boot, mono, listed)

    def _journal_done(self) -> None:
        """Every plain firing of this wake-up was handed to the launcher."""
        if self.journal is None:
            return
        try:
            self.journal.mark_complete()
        except HistoryError as err:
            report(err, "journal")

    def _jumped(self, start: datetime, end: datetime) -> None:
        self.jumps = [*self.jumps[-(MAX_JUMPS - 1) :], Jump(start, end)]

    def jump_over(self, instant: datetime) -> Jump | None:
        """The forward clock step that carried the wall clock over `instant`, if one did."""
        return next((jump for jump in reversed(self.jumps) if jump.covers(instant)), None)

    def recover(self, now: datetime) -> None:
        """At the first load: what the previous daemon journaled and did not start, and
        the minutes no daemon observed (see smartcron.journal)."""
        if self.journal is None:
            return
        try:
            last = self.journal.last()
        except HistoryError as err:
            report(err, "journal not read")
            return
        through = self._last_utc_minute  # this daemon's first minute is not run (cron.c)
        boot, mono = self.clock.boot_id(), self.clock.monotonic()
        also = self.journal.statements(through, now, boot, mono, [], complete=True)
        also += self.journal.prune_statements(now - timedelta(days=self.config.history_days))
        if last is None:
            self.engine.add([], now, also)
            return
        jump = restart_jump(last, now, boot, mono)
        if jump is not None:
            log.info("%s while the daemon was not running", jump.text())
            if jump.end > jump.start:
                self._jumped(jump.start, jump.end)
            self.engine.reconsider(now)
        lost = []
        if not last.complete:  # killed while starting a minute's jobs
            for firing in last.plain:
                if not self.journal.started(firing):
                    item = (firing.job_id, firing.label, firing.scheduled)
                    lost.append(_not_run(*item, reason=RESTARTED))
        smart = self.mode != "cron"
        jobs = self.db.jobs
        pending, gap = gap_firings(
            jobs, last.utc_minute, through, now, self.zone, smart=smart, jump=jump
        )
        for item in [*lost, *gap]:
            when = item.first.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
            last = item.last.astimezone(self.zone)
            more = f" (and {item.count - 1} more to {last:%H:%M})" if item.count > 1 else ""
            log.warning("%s: firing of %s%s %s", item.label, when, more, item.reason)
        if pending:
            log.info("%d firing(s) of minutes no daemon saw are pending", len(pending))
        self.engine.add(pending, now, [*also, *self.journal.not_run_statements([*lost, *gap], now)])

    def _dropped(self, before: tuple[object, ...], now: datetime) -> None:
        """The model was dropped: firings it deferred go back to the rules at once."""
        if before[0] == "smart" and self.mode == "legacy":
            self.engine.reconsider(now)

    def _status_key(self) -> tuple[object, ...]:
        retrain = self.retrainer
        busy = retrain is not None and retrain.child is not None
        return self.mode, self.mode_reason, busy, None if retrain is None else retrain.last

    def check_model(self, now: datetime, force: bool = False) -> None:
        """Retraining (start when due, swap when done), then reload a changed model
        (`force`: SIGHUP, or a model just swapped in: at once)."""
        swapped = False
        if self.retrainer is not None:
            try:
                swapped = self.retrainer.step(now)
            except Exception:
                log.exception("retraining failed; carrying on with the current model")
        if self.models is None:
            return
        try:
            self.models.refresh(now, force=force or swapped)
        except Exception:  # load_model answers with reasons; this would be a bug
            log.exception("model check failed; carrying on")
        if self.waker is not None:  # a model directory made since the start
            self.waker.watch(self.models.watch_dirs())

    def launch_smart(self, job: Job, firing: Firing, trigger: str) -> RunningJob | None:
        """Start a smart firing's run (called by the engine)."""
        return self._launch(self, job, firing.nominal, trigger, firing=firing)

    def prune(self, now: datetime) -> None:
        """Retention by age (config history_days), at most once a day."""
        if self.history is None or now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        try:
            removed = self.history.prune(timedelta(days=self.config.history_days), now)
        except HistoryError as err:
            report(err, "not pruned")
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
        for when in (
            None if self.retrainer is None else self.retrainer.next_wake(now),
            None if self.models is None else self.models.next_check(),
        ):
            if when is not None:
                best = min(best, max(when, now))
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
            finish_job(self, running, result)

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


def _instant_of(minute: int, utc_minute: int | None, zone: tzinfo) -> datetime:
    """The real instant of a tick (for history): its observed minute, else its wall time."""
    if utc_minute is not None:
        return datetime.fromtimestamp(utc_minute * 60, UTC)
    return wall_of(minute).replace(tzinfo=zone).astimezone(UTC)


def initial_mode(config: Config, model: bool = False) -> tuple[str, str]:
    """The mode the daemon runs in and why (SPEC section 5). `model`: a usable advisor."""
    if config.mode == "cron":
        return "cron", "configured: annotations are ignored, every job runs at its cron time"
    if config.mode == "legacy":
        return "legacy", "configured: rules only (hard constraints, no model)"
    if not model:
        return "legacy", "no usable model yet: rules only (hard constraints, no model)"
    return "smart", "rules and model"


def _not_run(job_id: str, label: str, scheduled: datetime, *, reason: str) -> NotRun:
    return NotRun(
        job_id=job_id, label=label, first=scheduled, last=scheduled, count=1, reason=reason
    )
