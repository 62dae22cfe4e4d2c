"""A job's past as the model sees it (SPEC 6): finished runs in, `JobHistoryStats` out.

`job_stats()` is the definition: the runs that *ended strictly before* the decision
instant (a run still going, or one ending at the instant itself, tells nothing yet), the
last RECENT_RUNS of them for the recent record, the last LOOKBACK_RUNS for the counts per
hour of day and weekday of the start. It costs O(LOOKBACK_RUNS) per call; `JobRecord`
gives the same answer for a binary search and a subtraction of running totals, which is
what training (one row per run), the simulator and the daemon (a decision per minute)
need. The readers (`StatsReader`): `MemoryStats` from outcomes given as they happen,
`HistoryStats` from the daemon's history store, read incrementally. Pure Python: no
pandas, no scikit-learn.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from smartcron.store.historyguard import HistoryError
from smartcron.store.runrecords import from_db_time

log = logging.getLogger("smartcron")

RECENT_RUNS = 10
LOOKBACK_RUNS = 1000  # runs behind the per-hour and per-weekday counts
OFF_NOMINAL = timedelta(minutes=5)  # a start this late or later was not cron's choice
KEEP_RUNS = 2 * LOOKBACK_RUNS  # a record's memory: the newest runs (readers ask about now)
_H, _D = 24, 7
# running totals, one tuple per run: runs, successes, off-nominal starts, then
# runs per hour (24), successes per hour (24), runs per weekday (7), successes (7)
_OFF, _HR, _HO = 2, 3, 3 + _H
_DR, _DO = _HO + _H, _HO + _H + _D
_WIDTH = _DO + _D


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """One finished run, as the model sees a job's past. `started` and `nominal` (the
    firing's cron instant) are None where the caller does not know them."""

    ended: datetime
    ok: bool  # exit 0 and no timeout
    runtime_s: float | None
    started: datetime | None = None
    nominal: datetime | None = None
    cpu_s: float | None = None


_ZERO_H, _ZERO_D = (0,) * _H, (0,) * _D


@dataclass(frozen=True, slots=True, kw_only=True)
class JobHistoryStats:
    """A job's record at one instant (see `job_stats`). Per-hour and per-weekday counts
    are by local start time (the run's end when its start is unknown)."""

    last_ok: bool | None = None
    success_rate: float | None = None  # over the last RECENT_RUNS
    runs: int = 0  # 0..RECENT_RUNS
    mean_runtime_s: float | None = None
    mean_cpu_s: float | None = None
    total_runs: int = 0  # 0..LOOKBACK_RUNS
    total_ok: int = 0
    off_nominal_runs: int = 0  # of total_runs, started >= OFF_NOMINAL after nominal
    hour_runs: tuple[int, ...] = _ZERO_H
    hour_ok: tuple[int, ...] = _ZERO_H
    weekday_runs: tuple[int, ...] = _ZERO_D
    weekday_ok: tuple[int, ...] = _ZERO_D


NO_STATS = JobHistoryStats()


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _counts(outcome: RunOutcome, tz: tzinfo) -> list[int]:
    """The run's contribution to the running totals."""
    row = [0] * _WIDTH
    local = (outcome.started or outcome.ended).astimezone(tz)
    ok = int(outcome.ok)
    row[0], row[1] = 1, ok
    start, nominal = outcome.started, outcome.nominal
    row[_OFF] = int(start is not None and nominal is not None and start - nominal >= OFF_NOMINAL)
    row[_HR + local.hour] = row[_DR + local.weekday()] = 1
    row[_HO + local.hour] = row[_DO + local.weekday()] = ok
    return row


def _stats(recent: Sequence[RunOutcome], totals: Sequence[int]) -> JobHistoryStats:
    if not recent:
        return NO_STATS
    return JobHistoryStats(
        last_ok=recent[-1].ok,
        success_rate=sum(o.ok for o in recent) / len(recent),
        runs=len(recent),
        mean_runtime_s=_mean(o.runtime_s for o in recent),
        mean_cpu_s=_mean(o.cpu_s for o in recent),
        total_runs=totals[0],
        total_ok=totals[1],
        off_nominal_runs=totals[_OFF],
        hour_runs=tuple(totals[_HR : _HR + _H]),
        hour_ok=tuple(totals[_HO : _HO + _H]),
        weekday_runs=tuple(totals[_DR : _DR + _D]),
        weekday_ok=tuple(totals[_DO : _DO + _D]),
    )


def job_stats(
    outcomes: Sequence[RunOutcome],
    before: datetime,
    n: int = RECENT_RUNS,
    *,
    tz: tzinfo = UTC,
    lookback: int = LOOKBACK_RUNS,
) -> JobHistoryStats:
    """Stats of the runs in `outcomes` (sorted by `ended`) that ended < `before`: the
    last `n` for the recent record, the last `lookback` for the counts (hours in `tz`)."""
    cut = bisect.bisect_left(outcomes, before, key=lambda o: o.ended)
    totals = [0] * _WIDTH
    for outcome in outcomes[max(0, cut - lookback) : cut]:
        totals = [a + b for a, b in zip(totals, _counts(outcome, tz), strict=True)]
    return _stats(outcomes[max(0, cut - n) : cut], totals)


class JobRecord:
    """One job's finished runs in end order with running totals: `stats(before)` equals
    `job_stats(runs, before, tz=tz)` for a binary search and a subtraction. Keeps the
    newest `keep` runs (None: all), so instants older than those are no longer answered
    exactly; readers ask about now, training keeps all."""

    def __init__(self, tz: tzinfo = UTC, keep: int | None = KEEP_RUNS) -> None:
        self.tz, self.keep = tz, keep
        self.outcomes: list[RunOutcome] = []
        self._ends: list[datetime] = []
        self._totals: list[tuple[int, ...]] = [(0,) * _WIDTH]
        self._memo: tuple[int, JobHistoryStats] | None = None  # (cut, stats)

    def add(self, outcome: RunOutcome) -> None:
        """Insert a run (after any that ended at the same instant)."""
        at = bisect.bisect_right(self._ends, outcome.ended)
        self.outcomes.insert(at, outcome)
        self._ends.insert(at, outcome.ended)
        self._memo = None
        if self.keep is not None and len(self.outcomes) > self.keep + LOOKBACK_RUNS // 2:
            del self.outcomes[: -self.keep], self._ends[: -self.keep]  # amortised: every 500
            at = 0
        self._retotal(at)

    def retz(self, tz: tzinfo) -> None:
        """Count hours and weekdays in another zone from now on."""
        if tz != self.tz:
            self.tz, self._memo = tz, None
            self._retotal(0)

    def _retotal(self, at: int) -> None:
        del self._totals[at + 1 :]
        last = self._totals[at]
        for outcome in self.outcomes[at:]:
            last = tuple(a + b for a, b in zip(last, _counts(outcome, self.tz), strict=True))
            self._totals.append(last)

    def stats(self, before: datetime, n: int = RECENT_RUNS) -> JobHistoryStats:
        cut = bisect.bisect_left(self._ends, before)
        if self._memo is not None and self._memo[0] == cut and n == RECENT_RUNS:
            return self._memo[1]  # no run ended in between: the same record
        upper, lower = self._totals[cut], self._totals[max(0, cut - LOOKBACK_RUNS)]
        totals = [a - b for a, b in zip(upper, lower, strict=True)]
        stats = _stats(self.outcomes[max(0, cut - n) : cut], totals)
        if n == RECENT_RUNS:
            self._memo = (cut, stats)
        return stats


# ------------------------------------------------------------------ readers


class StatsReader(Protocol):
    """A job's record before an instant (strictly: runs that ended earlier), with hours
    and weekdays counted in `tz` (the model card's zone)."""

    def stats(self, job_id: str, before: datetime, tz: tzinfo = UTC) -> JobHistoryStats: ...


class MemoryStats:
    """JobHistoryStats from outcomes given as they happen (the simulator, tests)."""

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}

    def add(self, job_id: str, outcome: RunOutcome) -> None:
        self._records.setdefault(job_id, JobRecord()).add(outcome)

    def stats(self, job_id: str, before: datetime, tz: tzinfo = UTC) -> JobHistoryStats:
        record = self._records.get(job_id)
        if record is None:
            return NO_STATS
        record.retz(tz)
        return record.stats(before)


_COLUMNS = "id, status, exit_code, timed_out, started, scheduled, ended, runtime_s, cpu_s"
_FINISHED = ("ok", "failed", "timeout")


@dataclass(slots=True)
class _Seen:
    record: JobRecord
    last_id: int  # every row up to this id has been read
    running: set[int]  # ids read while still running: read again until they end


class HistoryStats:
    """JobHistoryStats from a HistoryStore (the daemon's; bench-ai's smart policy).

    A job's first question reads its newest KEEP_RUNS rows; later ones read only rows
    with a higher id (a rowid range: the index on job_id would walk all of the job's
    rows) and the rows last seen running. Unreadable history: the record so far."""

    def __init__(self, store: Any, window: int = RECENT_RUNS) -> None:
        self.store, self.window = store, window
        self._seen: dict[str, _Seen] = {}

    def _rows(self, job_id: str, seen: _Seen | None) -> list[tuple]:
        try:
            with self.store.connection() as conn:
                if seen is None:
                    sql = f"SELECT {_COLUMNS} FROM runs WHERE job_id = ? ORDER BY id DESC LIMIT ?"
                    return list(reversed(conn.execute(sql, (job_id, KEEP_RUNS)).fetchall()))
                sql = f"SELECT {_COLUMNS} FROM runs NOT INDEXED WHERE id > ? AND job_id = ?"
                rows = conn.execute(sql, (seen.last_id, job_id)).fetchall()
                if seen.running:
                    marks = ", ".join("?" * len(seen.running))
                    again = f"SELECT {_COLUMNS} FROM runs WHERE id IN ({marks})"
                    rows += conn.execute(again, tuple(sorted(seen.running))).fetchall()
                return rows
        except HistoryError as err:
            log.debug("job stats from memory: %s", err)
            return []

    def stats(self, job_id: str, before: datetime, tz: tzinfo = UTC) -> JobHistoryStats:
        seen = self._seen.get(job_id)
        rows = self._rows(job_id, seen)
        if seen is None:
            seen = self._seen[job_id] = _Seen(JobRecord(tz), 0, set())
        seen.record.retz(tz)
        for row_id, status, code, timed_out, started, scheduled, ended, runtime, cpu in rows:
            seen.last_id = max(seen.last_id, row_id)
            if status == "running":
                seen.running.add(row_id)
                continue
            seen.running.discard(row_id)
            end = from_db_time(ended)
            if status not in _FINISHED or end is None:
                continue
            outcome = RunOutcome(
                ended=end,
                ok=status == "ok" and code == 0 and not timed_out,
                runtime_s=runtime,
                started=from_db_time(started),
                nominal=from_db_time(scheduled),
                cpu_s=cpu,
            )
            seen.record.add(outcome)
        return seen.record.stats(before, self.window)
