"""The minute journal: what a crash at the top of a minute may not lose (issue 11).

Before the first job of a wake-up starts, one transaction writes every smart firing of
the minutes it observed (pending rows, smartcron.smart.firings), the list of its plain
firings, the last observed minute and the clocks (wall, monotonic, boottime, boot id). The next
daemon reads it back:
- smart firings are pending rows: the engine resumes them inside their windows;
- a plain firing journaled but never started is not run again, since cron(8) never
  re-runs a minute after a restart: it is logged and counted (table not_run);
- minutes between the last journaled one and the restart were never observed: a smart
  firing whose window is still open becomes pending (nothing deferred is lost); plain
  lines are not run (cron does not catch up), logged and counted once per job;
- within one boot, monotonic time tells a clock step from downtime, and boottime (which
  goes on counting while suspended, unlike monotonic time) a suspend from a clock step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from smartcron.clock import STEP_THRESHOLD, Jump, Sleep
from smartcron.cron.schedule import next_fires
from smartcron.smart.gate import window_for
from smartcron.smart.jobs import Job
from smartcron.store.history import HistoryStore, from_db_time, to_db_time

log = logging.getLogger("smartcron")

Statement = tuple[str, tuple[object, ...]]
LOOKBACK = timedelta(days=1)  # how far back a long downtime is scanned for firings
RESTARTED = "not run: the daemon was restarted before starting it (cron does not re-run a minute)"
DOWN = "not run: the daemon was not running at its time (cron does not catch up)"
CLOSED = "missed: its window closed while the daemon was not running"


@dataclass(frozen=True, slots=True)
class PlainFiring:
    """A plain line's firing: its job, its tick's instant (the run row's `scheduled`)."""

    job_id: str
    label: str
    scheduled: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class WakeupRecord:
    """The journal's one row: the last wake-up that observed new minutes."""

    utc_minute: int
    at: datetime
    boot_id: str | None
    mono: float | None
    plain: tuple[PlainFiring, ...]
    complete: bool  # its plain firings were all handed to the launcher
    boottime: float | None = None  # None: written before migration 0005


@dataclass(frozen=True, kw_only=True, slots=True)
class NotRun:
    """`count` firings of a job, from `first` to `last`, that were never run, and why."""

    job_id: str
    label: str
    first: datetime
    last: datetime
    count: int
    reason: str


def instant_of_minute(utc_minute: int) -> datetime:
    return datetime.fromtimestamp(utc_minute * 60, UTC)


class Journal:
    """The journal and not_run tables on a HistoryStore. Writes raise HistoryError."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    @staticmethod
    def statements(
        utc_minute: int,
        at: datetime,
        boot_id: str,
        mono: float,
        plain: Iterable[PlainFiring],
        complete: bool = False,
        boottime: float | None = None,
    ) -> list[Statement]:
        """The journal row of a wake-up, to write in the transaction of its firings."""
        listed = [[p.job_id, p.label, to_db_time(p.scheduled)] for p in plain]
        sql = (
            "INSERT OR REPLACE INTO journal"
            " (id, utc_minute, at, boot_id, mono, plain, complete, boottime)"
            " VALUES (1, ?, ?, ?, ?, ?, ?, ?)"
        )
        at_db, plain_db = to_db_time(at), json.dumps(listed)
        return [(sql, (utc_minute, at_db, boot_id, mono, plain_db, int(complete), boottime))]

    def _write(self, statements: Sequence[Statement]) -> None:
        with self.history.connection(write=True) as conn:
            for sql, params in statements:
                conn.execute(sql, params)

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self.history.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def mark_complete(self) -> None:
        """Every plain firing of the last wake-up was handed to the launcher."""
        self._write([("UPDATE journal SET complete = 1", ())])

    def last(self) -> WakeupRecord | None:
        rows = self._read(
            "SELECT utc_minute, at, boot_id, mono, plain, complete, boottime FROM journal"
        )
        if not rows:
            return None
        minute, at, boot, mono, plain, complete, boottime = rows[0]
        listed = tuple(
            PlainFiring(job_id, label, from_db_time(when))  # type: ignore[arg-type]
            for job_id, label, when in json.loads(plain)
        )
        return WakeupRecord(
            utc_minute=minute,
            at=from_db_time(at),  # type: ignore[arg-type]
            boot_id=boot,
            mono=mono,
            plain=listed,
            complete=bool(complete),
            boottime=boottime,
        )

    def started(self, firing: PlainFiring) -> bool:
        """Whether the plain firing's run row was written (it started)."""
        rows = self._read(
            "SELECT 1 FROM runs WHERE job_id = ? AND scheduled = ? LIMIT 1",
            (firing.job_id, to_db_time(firing.scheduled)),
        )
        return bool(rows)

    @staticmethod
    def not_run_statements(items: Iterable[NotRun], now: datetime) -> list[Statement]:
        sql = (
            "INSERT INTO not_run (job_id, label, first, last, count, reason, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        return [
            (
                sql,
                (
                    i.job_id,
                    i.label,
                    to_db_time(i.first),
                    to_db_time(i.last),
                    i.count,
                    i.reason,
                    to_db_time(now),
                ),
            )
            for i in items
        ]

    def not_run(self, job_id: str | None = None) -> list[NotRun]:
        """Recorded unrun firings, oldest first."""
        where, params = ("WHERE job_id = ?", (job_id,)) if job_id else ("", ())
        rows = self._read(
            f"SELECT job_id, label, first, last, count, reason FROM not_run {where} ORDER BY id",
            params,
        )
        return [
            NotRun(
                job_id=job_id,
                label=label,
                first=from_db_time(first),  # type: ignore[arg-type]
                last=from_db_time(last),  # type: ignore[arg-type]
                count=count,
                reason=reason,
            )
            for job_id, label, first, last, count, reason in rows
        ]

    def prune_statements(self, older_than: datetime) -> list[Statement]:
        return [("DELETE FROM not_run WHERE at < ?", (to_db_time(older_than),))]


def restart_jump(
    entry: WakeupRecord, now: datetime, boot_id: str, mono: float, boottime: float | None = None
) -> Jump | None:
    """The clock step between the last journaled wake-up and now, if within one boot
    the wall clock moved differently from the boottime clock (the wall clock goes on in
    a suspend, as boottime does; a journal without it: the monotonic clock). Else:
    downtime, or a suspend (`restart_sleep`)."""
    if entry.boot_id != boot_id or entry.mono is None or mono < entry.mono:
        return None  # another boot: monotonic readings do not compare
    elapsed = mono - entry.mono
    if boottime is not None and entry.boottime is not None and boottime >= entry.boottime:
        elapsed = boottime - entry.boottime
    return Jump.between(entry.at + timedelta(seconds=elapsed), now)


def restart_sleep(
    entry: WakeupRecord, now: datetime, boot_id: str, mono: float, boottime: float
) -> Sleep | None:
    """The suspend since the last journaled wake-up on this boot, if the boottime clock
    went on longer than the monotonic one (as ClockWatch sees a suspend while running).
    When it happened in the gap is not known: like ClockWatch, it is taken to have ended
    now (a daemon restarted at resume), never to start before that wake-up."""
    if entry.boot_id != boot_id or entry.mono is None or entry.boottime is None:
        return None
    slept = (boottime - entry.boottime) - (mono - entry.mono)
    if slept < STEP_THRESHOLD:
        return None
    return Sleep(max(entry.at, now - timedelta(seconds=slept)), now, "suspend")


def gap_firings(
    jobs: Iterable[Job],
    after_minute: int,
    through_minute: int,
    now: datetime,
    zone: tzinfo,
    *,
    smart: bool,
    jump: Jump | None = None,
) -> tuple[list[tuple[Job, datetime]], list[NotRun]]:
    """The firings of the minutes (after_minute, through_minute] that no daemon observed:
    smart ones whose window is still open (to become pending), and the rest, per job,
    as not run. Scans at most LOOKBACK before `through_minute`."""
    end = instant_of_minute(through_minute)
    start = max(instant_of_minute(after_minute), end - LOOKBACK)
    pending: list[tuple[Job, datetime]] = []
    lost: list[NotRun] = []
    for job in jobs:
        if job.entry.spec.reboot:
            continue
        own = job.zone or zone
        missed: list[datetime] = []
        for instant in next_fires(job.entry.spec, start, own):
            if instant > end:
                break
            if smart and job.smart is not None and window_for(job.smart, instant, own)[1] > now:
                pending.append((job, instant))
                continue
            missed.append(instant)
        if not missed:
            continue
        reason = CLOSED if smart and job.smart is not None else DOWN
        if jump is not None and jump.covers(missed[0]):
            reason = f"not run: {jump.text()} over its time"
        item = NotRun(
            job_id=job.id,
            label=job.label,
            first=missed[0],
            last=missed[-1],
            count=len(missed),
            reason=reason,
        )
        lost.append(item)
    return pending, lost
