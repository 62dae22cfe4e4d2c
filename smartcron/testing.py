"""Fakes for tests, shipped with the package (as structlog ships structlog.testing).

Each fake keeps its interface's promises (tests/test_contract_*.py, also run on the real):

- `FakeClock` (Clock): time moves only when told; sleeping jumps to the target.
- `FakeWaker` (wakeup.Sleeper): the daemon's own `run()` loop in virtual time; jobs of
  a `FakeRunner` last their outcome's duration on the fake clock.
- `FakeRunner`, `FakeOutcome` (Runner): scripted runs, no processes.
- `ScriptedMonitor`, `sample_snapshot` (Monitor): snapshots given in advance.
- `RecordingMailer`, `SentMail` (Mailer): keeps every message.

`run_until(daemon, until)` runs a daemon built with a FakeWaker to a virtual instant.
No pandas nor scikit-learn here; the daemon never imports this (tests/test_test_layout).
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartcron.clock import Clock, SystemClock
from smartcron.run.mail import MailResult, RunAs
from smartcron.run.runapi import (
    Handle,
    OnDone,
    RunHandle,
    RunRequest,
    RunResult,
    cap_output,
    in_thread,
)
from smartcron.smart.monitor import Snapshot

if TYPE_CHECKING:
    from smartcron.daemon.loop import Daemon

__all__ = [
    "FakeClock", "FakeOutcome", "FakeRunner", "FakeWaker", "RecordingMailer", "Responder",
    "ScriptedMonitor", "SentMail", "run_until", "sample_snapshot",
]  # fmt: skip


# ------------------------------------------------------------------ Clock


class FakeClock:
    """A clock that only moves when told to; sleeping jumps straight to the target.

    Each FakeClock is its own boot unless given `boot_id` (and the `monotonic` reading
    a restarted daemon would see). A file written while it read T has file_time T: it
    remembers the real time of each move (leave a few ms between a move and a write:
    the kernel stamps files with a coarse clock).
    """

    def __init__(
        self, start: datetime, *, monotonic: float = 1000.0, boot_id: str | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono, self._slept = monotonic, 0.0  # boottime = monotonic + time suspended
        self._boot = boot_id or uuid.uuid4().hex
        self._marks = [(time.time(), self._now)]  # (real time, fake time from then on)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def boottime(self) -> float:
        return self._mono + self._slept

    def boot_id(self) -> str:
        return self._boot

    def file_time(self, stamp_ns: int) -> datetime:
        real = stamp_ns / 1e9
        for mark, fake in reversed(self._marks):
            if real >= mark:
                return fake
        first, fake = self._marks[0]
        return fake - timedelta(seconds=first - real)  # older than the clock

    def _moved(self) -> None:
        self._marks.append((time.time(), self._now))
        del self._marks[1:-64]  # bounded: only recent writes matter

    def set(self, instant: datetime) -> None:
        """Step the wall clock (like `date -s`): monotonic time does not move."""
        self._now = instant.astimezone(UTC)
        self._moved()

    def advance(self, delta: timedelta, *, suspended: bool = False) -> None:
        """Let time pass; `suspended`: the machine slept meanwhile (monotonic time stands
        still, boottime goes on, as Linux's CLOCK_MONOTONIC and CLOCK_BOOTTIME do)."""
        self._now += delta
        if suspended:
            self._slept += delta.total_seconds()
        else:
            self._mono += delta.total_seconds()
        self._moved()

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> None:
        if instant > self._now:
            self.advance(instant - self._now)


# ------------------------------------------------------------------ Runner


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeOutcome:
    """What a FakeRunner job does. A duration beyond the request's timeout times out."""

    exit_code: int | None = 0
    signal: int | None = None
    output: bytes = b""
    duration_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    spawn_error: str | None = None


Responder = Callable[[RunRequest], FakeOutcome]


class FakeRunner:
    """Records requests and finishes them with scripted outcomes, no processes.

    It keeps the real runner's promises (on_done runs on a worker thread, wait()
    returns after it, terminate() stops a job). `responder` maps a request (or, given a
    mapping, its job id) to an outcome. With `auto`, each job finishes at once, on a
    thread as the contract says; without, it runs until `finish(job_id)` (on_done then
    runs in the caller's thread), `terminate()`, or its end on a FakeWaker's clock.
    Timestamps come from `clock`; nothing sleeps.
    """

    containment = "none (fake runner: no processes)"

    def __init__(
        self,
        responder: Responder | Mapping[str, FakeOutcome] | None = None,
        *,
        auto: bool = True,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(responder, Mapping):
            script = responder
            self.responder: Responder = lambda req: script.get(req.job_id, FakeOutcome())
        else:
            self.responder = responder or (lambda req: FakeOutcome())
        self.auto, self.clock = auto, clock or SystemClock()
        self.requests: list[RunRequest] = []
        self.started_at: list[datetime] = []  # clock.now() at each request's start
        self._lock = threading.Lock()
        self._running: dict[int, tuple[RunRequest, datetime, Handle, OnDone]] = {}

    def start(self, request: RunRequest, on_done: OnDone) -> RunHandle:
        stopped = FakeOutcome(exit_code=None, signal=signal.SIGTERM)
        with self._lock:
            self.requests.append(request)
            self.started_at.append(self.clock.now())
            pid = 10_000 + len(self.requests)

            def stopped_run() -> None:
                self._finish(pid, stopped, True)

            def done() -> None:
                self._finish(pid, None, False)

            handle = Handle(pid, lambda: in_thread("fake-stop", stopped_run))
            self._running[pid] = (request, self.clock.now(), handle, on_done)
        if self.auto:
            in_thread(f"fake-{request.job_id}", done)
        return handle

    @property
    def running(self) -> list[str]:
        """The job ids of the jobs not finished yet, oldest first."""
        return [entry[0].job_id for entry in list(self._running.values())]

    def finish(self, job_id: str, outcome: FakeOutcome | None = None) -> RunResult:
        """Finish the oldest running `job_id` with `outcome` (default: the responder's)."""
        pid = next(p for p, entry in list(self._running.items()) if entry[0].job_id == job_id)
        result = self._finish(pid, outcome, False)
        assert result is not None
        return result

    def finish_run(self, number: int, outcome: FakeOutcome | None = None) -> RunResult | None:
        """Finish the run of `requests[number]`, if it still runs (else None)."""
        return self._finish(10_001 + number, outcome, False)

    def _finish(self, pid: int, out: FakeOutcome | None, interrupted: bool) -> RunResult | None:
        with self._lock:
            if pid not in self._running:
                return None  # finished meanwhile
            req, started, handle, on_done = self._running.pop(pid)
        out = out or self.responder(req)
        duration, exit_code, sig, timed_out = out.duration_s, out.exit_code, out.signal, False
        if req.timeout is not None and duration > req.timeout:
            duration, exit_code, sig, timed_out = req.timeout, None, signal.SIGTERM, True
        result = RunResult(
            job_id=req.job_id, pid=None if out.spawn_error else pid, started=started,
            ended=started + timedelta(seconds=duration), exit_code=exit_code, signal=sig,
            timed_out=timed_out, interrupted=interrupted, wall_s=duration, cpu_s=out.cpu_s,
            max_rss_kb=out.max_rss_kb, output_size=len(out.output),
            output=cap_output(out.output, len(out.output), req.output_cap),
            spawn_error=out.spawn_error,
        )  # fmt: skip
        handle.finish(result, on_done)
        return result


# ------------------------------------------------------------------ Waker


class FakeWaker:
    """The daemon's Waker on a FakeClock: `wait(deadline)` moves the clock instead of
    sleeping, so a test calls the daemon's own `run()` (see `run_until`).

    A wait ends at the deadline, at the end of a `runner`'s job (FakeRunner, not auto:
    a job started at T with an outcome of d seconds finishes at T + d, its timeout at
    most), or at once when notified meanwhile, as the real Waker does. Watched
    directories are compared (names, inodes, times) at each wait: a change is "files".
    After `stop_at(until, stop)`, a wait that would pass `until` moves the clock there
    and calls `stop` instead.
    """

    def __init__(self, clock: FakeClock, runner: FakeRunner | None = None) -> None:
        self.clock, self.runner = clock, runner
        self.watched: list[Path] = []
        self._pending: set[str] = set()
        self._ends: list[tuple[datetime, int, FakeOutcome]] = []  # (end, request number, out)
        # Runner requests already given an end: those started before this waker was
        # made belong to another daemon (a test's restart), not to this one's time line.
        self._seen = 0 if runner is None else len(runner.requests)
        self._files: list[tuple[str, int, int, int]] = []
        self._until: datetime | None = None
        self._stop: Callable[[], None] | None = None

    @property
    def watches_files(self) -> bool:
        return True

    def notify(self) -> None:
        self._pending.add("notify")

    def watch(self, directories: list[Path]) -> None:
        self.watched += [d for d in directories if d not in self.watched]
        self._files = self._listing()

    def stop_at(self, until: datetime, stop: Callable[[], None]) -> None:
        """Call `stop` (e.g. daemon.request_stop) once the clock would pass `until`."""
        self._until, self._stop = until, stop

    def wait(self, deadline: datetime) -> set[str]:
        woke = self._woken()
        if woke:
            return woke
        target = min([deadline, *(end for end, *_ in self._ends)])
        if self._until is not None and target > self._until:
            self.clock.sleep_until(self._until)
            stop, self._until, self._stop = self._stop, None, None
            assert stop is not None
            stop()
            return {"timer"}
        self.clock.sleep_until(target)
        for item in sorted(self._ends, key=lambda e: e[:2]):
            if item[0] <= self.clock.now():
                self._ends.remove(item)
                assert self.runner is not None  # (none if stopped or finished meanwhile)
                self.runner.finish_run(item[1], item[2])  # on_done notifies: folded in below
        return {"timer", *self._woken()}

    def _woken(self) -> set[str]:
        """What woke the sleeper without time passing: notifications, changed files."""
        self._note_starts()
        listing = self._listing()
        if listing != self._files:
            self._files = listing
            self._pending.add("files")
        woke, self._pending = self._pending, set()
        return woke

    def _note_starts(self) -> None:
        runner = self.runner
        if runner is None:
            return
        for n in range(self._seen, len(runner.requests)):
            request = runner.requests[n]
            outcome = runner.responder(request)  # once per run: a script may pop its plan
            span = outcome.duration_s
            if request.timeout is not None:
                span = min(span, request.timeout)
            end = runner.started_at[n] + timedelta(seconds=span)
            self._ends.append((end, n, outcome))
        self._seen = len(runner.requests)

    def _listing(self) -> list[tuple[str, int, int, int]]:
        """What inotify would report a change of: names, inodes, mtimes, ctimes."""
        out = []
        for directory in self.watched:
            try:
                for path in sorted(directory.iterdir()):
                    st = path.lstat()
                    out.append((str(path), st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
            except OSError:
                out.append((str(directory), -1, -1, -1))  # absent: its creation is a change
        return out

    def close(self) -> None:
        """Nothing to release."""


def run_until(daemon: Daemon, until: datetime) -> None:
    """Run `daemon.run()` (its waker a FakeWaker) until its clock would pass `until`.
    A wake-up due exactly at `until` happens; the loop stops before the next one."""
    waker = daemon.waker
    if not isinstance(waker, FakeWaker):
        raise TypeError("run_until needs a daemon built with waker=FakeWaker(clock, ...)")
    waker.stop_at(until, daemon.request_stop)
    daemon.stopping = False  # a previous run_until stopped it
    daemon.run()


# ------------------------------------------------------------------ Monitor


class ScriptedMonitor:
    """Snapshots given in advance, or computed from the instant asked about.

    With a sequence, each call returns the next one (the last repeats once the script
    runs out). Either way the returned snapshot's `at` is the instant asked about, and
    every instant asked about is kept in `calls`.
    """

    def __init__(self, script: Sequence[Snapshot] | Callable[[datetime], Snapshot]) -> None:
        if not callable(script) and not script:
            raise ValueError("ScriptedMonitor needs at least one snapshot")
        self._script = script
        self.calls: list[datetime] = []

    def snapshot(self, now: datetime) -> Snapshot:
        self.calls.append(now)
        if callable(self._script):
            snap = self._script(now)
        else:
            snap = self._script[min(len(self.calls), len(self._script)) - 1]
        return replace(snap, at=now.astimezone(UTC))


def sample_snapshot(at: datetime, **changes: Any) -> Snapshot:
    """A plausible quiet laptop on AC with an away user; override any field by keyword."""
    base = Snapshot(at=at.astimezone(UTC), load1=0.2, load5=0.3, load15=0.3, cpu_percent=3.0,
                    ram_percent=40.0, battery_percent=90.0, charging=True, on_ac=True,
                    idle_seconds=3600.0, idle_source="trace", disk_free_percent=60.0)  # fmt: skip
    return replace(base, **changes)


# ------------------------------------------------------------------ Mailer


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMail:
    """One message captured by RecordingMailer."""

    recipient: str
    message: bytes
    run_as: RunAs | None = None


@dataclass(slots=True, kw_only=True)
class RecordingMailer:
    """A Mailer that keeps every message; `mta` False plays "no MTA installed", and
    `fail_with` an MTA refusing each message with that error."""

    mta: bool = True
    fail_with: str | None = None
    sent: list[SentMail] = field(default_factory=list)

    def available(self) -> bool:
        return self.mta

    def send(self, recipient: str, message: bytes, *, run_as: RunAs | None = None) -> MailResult:
        if self.fail_with is not None:
            return MailResult(sent=False, error=self.fail_with)
        self.sent.append(SentMail(recipient=recipient, message=message, run_as=run_as))
        return MailResult(sent=True)
