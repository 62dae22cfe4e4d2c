"""Daemons on a fake clock for the tests: the daemon's own `run()` loop, in virtual time.

Two shapes. `make_daemon` is a cron daemon whose launcher only records (command, HH:MMZ)
(clock handling, reloads). `make` is the whole smart daemon on a FakeClock, a
ScriptedMonitor, a FakeRunner whose jobs last their FakeOutcome's duration on the
clock, a RecordingMailer and a real SQLite history. Both are in Europe/Berlin, and
`utc("HH:MM")` is an instant of 2026-02-10 (CET, UTC+1: 02:00 local is 01:00Z).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.run.executor import RunRequest
from smartcron.run.runcontext import RunContext, RunSettings
from smartcron.smart.firings import FiringStore
from smartcron.smart.jobs import Job
from smartcron.smart.monitor import Snapshot
from smartcron.store.history import HistoryStore
from smartcron.testing import (
    FakeClock,
    FakeOutcome,
    FakeRunner,
    FakeWaker,
    RecordingMailer,
    ScriptedMonitor,
    sample_snapshot,
)
from smartcron.testing import (
    run_until as run_daemon_until,
)
from tests.userconfig import user_config

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 2, 10, 0, 58, 30, tzinfo=UTC)  # 01:58:30 CET


def utc(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 2, 10, hour, minute, tzinfo=UTC)


# ------------------------------------------------------------------ a cron daemon


class Recorder:
    """A launcher that starts nothing: (command, HH:MMZ) of each job started."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, str]] = []

    def __call__(self, job: Job, scheduled: Any, trigger: str, **_: Any) -> None:
        self.runs.append((job.entry.command, self.clock.now().strftime("%H:%MZ")))


def make_daemon(
    tmp_path: Path, crontab: str, start: datetime
) -> tuple[Daemon, FakeClock, Recorder]:
    """A user-mode daemon on `crontab` whose jobs are recorded, not run (no history)."""
    cfg = user_config(tmp_path, crontab)
    clock = FakeClock(start)
    recorder = Recorder(clock)
    run = RunContext(
        runner=None,  # type: ignore[arg-type]
        mailer=None,  # type: ignore[arg-type]
        history=None,
        clock=clock,
        settings=RunSettings.of(cfg),
    )
    daemon = Daemon(cfg, run, zone=BERLIN, launcher=recorder, waker=FakeWaker(clock))
    daemon.reload(force=True)
    return daemon, clock, recorder


def run_until(daemon: Daemon, clock: FakeClock, until: datetime) -> None:
    """The daemon's loop through `until`, then one wake-up at `until` itself."""
    run_daemon_until(daemon, until)
    daemon.step()


# ------------------------------------------------------------------ the smart daemon


def battery(low_until: str | None = None, percent: float = 18.0) -> Callable[[datetime], Snapshot]:
    """A laptop on battery: `percent` until `low_until` (UTC HH:MM), then 80%."""

    def script(now: datetime) -> Snapshot:
        low = low_until is None or now < utc(low_until)
        return sample_snapshot(
            now, battery_percent=percent if low else 80.0, on_ac=False, charging=False
        )

    return script


@dataclass
class Harness:
    """A daemon and its fakes. Without a waker, the daemon gets a FakeWaker on `runner`."""

    daemon: Daemon
    clock: FakeClock
    runner: FakeRunner
    mailer: RecordingMailer
    history: HistoryStore
    monitor: ScriptedMonitor
    outcomes: Mapping[str, list[FakeOutcome]]

    def __post_init__(self) -> None:
        self._wake()

    def _wake(self) -> None:
        if self.daemon.waker is None:  # also a daemon rebuilt by a test (h.daemon = ...)
            self.daemon.waker = FakeWaker(self.clock, self.runner)

    @property
    def starts(self) -> list[tuple[str, str]]:
        """(command, HH:MMZ) of every run started, in order."""
        pairs = zip(self.runner.requests, self.runner.started_at, strict=True)
        return [(request.command, at.strftime("%H:%MZ")) for request, at in pairs]

    @property
    def store(self) -> FiringStore:
        return FiringStore(self.history)

    def job(self, command: str) -> Job:
        return next(job for job in self.daemon.db.jobs if job.entry.command == command)

    def run_until(self, until: datetime) -> None:
        """The daemon's own loop until the clock would pass `until`."""
        self._wake()
        run_daemon_until(self.daemon, until)

    def firings(self, command: str) -> list[Any]:
        return self.store.firings([self.job(command).id])

    def trail(self, command: str) -> list[tuple[str, str, str]]:
        """(HH:MMZ, verdict, reason) of every decision of the job's firings, oldest first."""
        out = []
        for stored in reversed(self.firings(command)):
            assert stored.firing.id is not None
            for d in self.store.decisions(stored.firing.id):
                out.append((d.at.strftime("%H:%MZ"), d.verdict, d.reason))
        return out


def make(
    tmp_path: Path,
    crontab: str,
    script: Callable[[datetime], Snapshot] | None = None,
    *,
    start: datetime = START,
    clock: FakeClock | None = None,
    outcomes: Mapping[str, list[FakeOutcome]] | None = None,
    history: HistoryStore | None = None,
    advisor: object = None,
    load: bool = True,
    **settings: object,
) -> Harness:
    """A user-mode daemon on `crontab`; `outcomes` by command, one per run (the last
    repeats). `clock` defaults to a FakeClock at `start` (pass one to restart a daemon
    on the same boot). `load=False`: the test makes the first load (`reload(force=True)`)."""
    cfg = user_config(tmp_path, crontab, **settings)
    clock = clock or FakeClock(start)
    plan = {cmd: list(items) for cmd, items in (outcomes or {}).items()}

    def respond(request: RunRequest) -> FakeOutcome:
        items = plan.get(request.command)
        if not items:
            return FakeOutcome()
        return items.pop(0) if len(items) > 1 else items[0]

    runner = FakeRunner(respond, auto=False, clock=clock)
    mailer = RecordingMailer()
    store = history or HistoryStore.open(tmp_path / "history.db", clock=clock)
    monitor = ScriptedMonitor(script or (lambda now: sample_snapshot(now)))
    run = RunContext(
        runner=runner, mailer=mailer, history=store, clock=clock, settings=RunSettings.of(cfg)
    )
    daemon = Daemon(
        cfg,
        run,
        zone=BERLIN,
        smart=SmartParts(monitor=monitor, advisor=advisor),  # type: ignore[arg-type]
        waker=FakeWaker(clock, runner),
    )
    if load:
        daemon.reload(force=True)
    return Harness(daemon, clock, runner, mailer, store, monitor, plan)


def runs(h: Harness, command: str) -> list[Any]:
    return [r for r in reversed(h.history.runs(limit=500)) if r.start.command == command]


def cli_config(top: Path, name: str = "smartcron.toml", extra: str = "") -> Path:
    """A configuration for the CLIs (status, list, explain, history) over the files a
    harness daemon made in `top` (its crontab, state, run and jobs directories)."""
    conf = top / name
    conf.write_text(
        f'user_crontab = "{top / "crontab"}"\nstate_dir = "{top / "state"}"\n'
        f'run_dir = "{top / "run"}"\njobs_dir = "{top / "jobs"}"\n{extra}'
    )
    return conf
