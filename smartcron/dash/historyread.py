"""The history database as the dashboard reads it: read-only (WAL: the daemon is never
blocked), aggregated in SQL, at most RUNS_PER_JOB runs and FIRINGS_PER_JOB firings a job.

A damaged database is an error (one line, exit 1); an older schema is a note on the
page (the jobs view still shows what the crontabs hold)."""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from smartcron.dash.records import MIN_RUNS_FOR_FLAG, RUNS_PER_JOB, SLOW_FACTOR, Row
from smartcron.store.history import HistoryDamaged, HistoryError, HistoryStore, from_db_time
from smartcron.store.history import to_db_time as db_time

FAILED = ("failed", "timeout", "interrupted", "spawn_error")
_RUN_COLUMNS = (
    "id, job_id, job_name, user, command, trigger, scheduled, started, ended, status,"
    " exit_code, signal, runtime_s, mail_sent, mail_reason, firing_id"
)


@dataclass
class HistoryPart:
    """What the history holds for the window [start, end)."""

    start: datetime
    end: datetime
    note: str | None = None
    runs: list[Row] = field(default_factory=list)
    stats: dict[str, Row] = field(default_factory=dict)  # by job_id
    by_hour: dict[str, list[Row]] = field(default_factory=dict)  # by job_id
    last: dict[str, Row] = field(default_factory=dict)  # each job_id's latest run, ever
    calibration: list[tuple[float, bool]] = field(default_factory=list)


def open_readonly(path: Path) -> tuple[HistoryStore | None, str | None]:
    """(the store, None), or (None, why there is nothing to read). Raises HistoryError
    for a damaged file or one that is not a history database."""
    if not path.exists():
        return None, f"{path}: no history database yet (the daemon writes it)"
    try:
        return HistoryStore.open(path, readonly=True), None
    except HistoryDamaged:
        raise
    except HistoryError as err:
        if "older schema" in str(err):  # readable once the daemon has migrated it
            return None, str(err)
        raise


def window(store: HistoryStore | None, days: int, now: datetime) -> tuple[datetime, datetime]:
    """The `days` up to now; or, when the history's newest record is older than that (a
    simulated history, a machine put away), the `days` up to that record."""
    newest = None
    if store is not None:
        rows = query(store, "SELECT max(started) FROM runs UNION ALL SELECT max(at) FROM decisions")
        found = [from_db_time(r[0]) for r in rows if r[0] is not None]
        newest = max((t for t in found if t is not None), default=None)
    span = timedelta(days=days)
    end = now if newest is None or newest > now - span else newest + timedelta(minutes=1)
    return end - span, end


def query(store: HistoryStore, sql: str, params: Iterable[object] = ()) -> list[Any]:
    """Rows, every SQLite failure as HistoryError naming the file (a corrupt page found
    only now is still one line, exit 1)."""
    try:
        with store.connection() as conn:
            return conn.execute(sql, tuple(params)).fetchall()
    except (sqlite3.Error, HistoryError) as exc:
        if isinstance(exc, HistoryDamaged):
            raise
        raise HistoryDamaged(f"{store.path}: cannot read the history: {exc}") from exc


def _text(value: object) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _iso(text: str | None) -> str | None:
    instant = from_db_time(text) if isinstance(text, str) else None
    return None if instant is None else instant.isoformat()


def _where(start: datetime, end: datetime, user: str | None) -> tuple[str, list[object]]:
    sql = "started >= ? AND started < ?"
    params: list[object] = [db_time(start), db_time(end)]
    if user is not None:
        sql, params = sql + " AND user = ?", [*params, user]
    return sql, params


def read_runs(
    store: HistoryStore, part: HistoryPart, user: str | None, keep: Callable[[str], bool]
) -> None:
    """Fill part.runs (last RUNS_PER_JOB a job), part.stats, part.by_hour and part.last.
    `user`: only that owner's rows (None: all); `keep(job_id)`: the jobs asked for."""
    where, params = _where(part.start, part.end, user)
    sql = (
        f"SELECT {_RUN_COLUMNS} FROM (SELECT *, row_number() OVER"
        f" (PARTITION BY job_id ORDER BY id DESC) AS rn FROM runs WHERE {where})"
        " WHERE rn <= ? ORDER BY id DESC"
    )
    names = _RUN_COLUMNS.replace(" ", "").split(",")
    for raw in query(store, sql, [*params, RUNS_PER_JOB]):
        row = {key: _text(value) for key, value in zip(names, raw, strict=True)}
        if keep(row["job_id"]):
            part.runs.append(_run(row))
    failed = ", ".join(f"'{s}'" for s in FAILED)
    totals = query(
        store,
        f"SELECT job_id, count(*), sum(status IN ({failed})),"
        f" sum(status = 'running') FROM runs WHERE {where} GROUP BY job_id",
        params,
    )
    for job_id, count, failures, running in totals:
        if keep(job_id):
            part.stats[job_id] = {"runs": count, "failures": failures, "running": running}
    offset = part.end.astimezone().utcoffset() or timedelta()  # the viewer's zone, at `end`
    shift = f"{int(offset.total_seconds() // 60):+d} minutes"
    hours = query(
        store,
        f"SELECT job_id, CAST(strftime('%H', started, ?) AS INTEGER), count(*),"
        f" sum(status IN ({failed})) FROM runs WHERE {where} GROUP BY 1, 2",
        [shift, *params],
    )
    for job_id, hour, count, failures in hours:
        if keep(job_id):
            part.by_hour.setdefault(job_id, []).append(
                {"hour": hour, "runs": count, "failures": failures}
            )
    mine = "" if user is None else "WHERE user = ?"
    latest = query(
        store,
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN (SELECT max(id) FROM runs"
        f" {mine} GROUP BY job_id)",
        [] if user is None else [user],
    )
    for raw in latest:
        row = {key: _text(value) for key, value in zip(names, raw, strict=True)}
        if keep(row["job_id"]):
            part.last[row["job_id"]] = _run(row)
    _flag(part)


def _run(row: Row) -> Row:
    started = from_db_time(row["started"])
    scheduled = from_db_time(row["scheduled"])
    delay = None
    if started is not None and scheduled is not None:
        delay = max(0.0, (started - scheduled).total_seconds())
    return {
        **row,
        "scheduled": _iso(row["scheduled"]),
        "started": _iso(row["started"]),
        "ended": _iso(row["ended"]),
        "delay_s": delay,
        "mail_sent": None if row["mail_sent"] is None else bool(row["mail_sent"]),
        "outcome": "failed" if row["status"] in FAILED else row["status"],
        "flag": None,
    }


def _flag(part: HistoryPart) -> None:
    """Each job's median duration over its runs shown, and a flag on the runs outside
    [median / SLOW_FACTOR, median * SLOW_FACTOR] (with MIN_RUNS_FOR_FLAG runs at least)."""
    by_job: dict[str, list[Row]] = {}
    for row in part.runs:
        by_job.setdefault(row["job_id"], []).append(row)
    for job_id, rows in by_job.items():
        done = [r for r in rows if r["runtime_s"] is not None and r["status"] != "running"]
        median = statistics.median(r["runtime_s"] for r in done) if done else None
        stats = part.stats.setdefault(job_id, {"runs": len(rows), "failures": 0, "running": 0})
        stats["median_s"] = median
        stats["durations"] = [[r["started"], r["runtime_s"]] for r in reversed(done)]
        stats["flagged"] = 0
        if median is None or median <= 0 or len(done) < MIN_RUNS_FOR_FLAG:
            continue
        for row in done:
            if row["runtime_s"] > median * SLOW_FACTOR:
                row["flag"] = "slow"
            elif row["runtime_s"] < median / SLOW_FACTOR:
                row["flag"] = "fast"
            stats["flagged"] += row["flag"] is not None


def read_calibration(store: HistoryStore, part: HistoryPart, keep: Callable[[str], bool]) -> None:
    """(predicted failure, failed) for each run the model let start in the window."""
    sql = (
        "SELECT d.job_id, d.model, f.state FROM decisions d JOIN firings f ON d.firing_id = f.id"
        " WHERE d.verdict = 'run' AND d.model IS NOT NULL AND d.at >= ? AND d.at < ?"
        " AND f.state IN ('done', 'failed')"
    )
    import json

    for job_id, model, state in query(store, sql, [db_time(part.start), db_time(part.end)]):
        try:
            p = float(json.loads(_text(model))["p_success"])
        except (ValueError, KeyError, TypeError):
            continue
        if keep(job_id) and 0.0 <= p <= 1.0:
            part.calibration.append((1.0 - p, state == "failed"))


def newest_first(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r["started"] or "", r["id"]), reverse=True)


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
