"""Pending firings and decisions, persisted in the history database (tables of 0002).

A firing's life (SPEC 5), each arrow one transaction together with its decision row:

    pending --run--> running --exit 0--> done
       ^ |                   --failed, no retry left in the window--> failed
       | |                   --failed, retry left--> pending (attempts+1, backoff)
       | +--skip (on_deadline=skip, overlap=skip)--> skipped
       | +--deadline long gone (the daemon was down), or the job was removed--> missed
       +-- defer(until): stays pending, next_eval = until

UNIQUE (job_id, nominal) makes creating a firing idempotent, and pending -> running
only succeeds from 'pending', so a firing never runs twice, even across restarts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smartcron.smart.gate import Firing, Verdict
from smartcron.smart.monitor import Snapshot
from smartcron.store.history import HistoryError, HistoryStore, from_db_time, to_db_time
from smartcron.store.historyguard import bind_all, text

OPEN_STATES = ("pending", "running")
_FIRING_COLUMNS = "id, job_id, nominal, deadline, state, attempts, next_eval, created, updated"


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredFiring:
    """A firing row: the gate's Firing plus bookkeeping."""

    firing: Firing
    next_eval: datetime | None
    created: datetime
    updated: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """A decision row. `verdict` is run, defer, skip, or an outcome the engine records
    (done, failed, retry, missed); `snapshot` and `model` are the stored JSON, parsed."""

    id: int
    firing_id: int | None
    job_id: str
    at: datetime
    verdict: str
    until: datetime | None
    reason: str
    snapshot: Mapping[str, Any] | None = None
    model: Mapping[str, Any] | None = None


def _t(instant: datetime | None) -> str | None:
    return None if instant is None else to_db_time(instant)


def _firing(row: tuple[Any, ...]) -> StoredFiring:
    fid, job_id, nominal, deadline, state, attempts, next_eval, created, updated = row
    nxt = from_db_time(next_eval)
    firing = Firing(
        id=fid,
        job_id=job_id,
        nominal=from_db_time(nominal),  # type: ignore[arg-type]
        deadline=from_db_time(deadline),  # type: ignore[arg-type]
        attempt=attempts,
        # A retry's backoff outlives a restart as its next evaluation instant.
        not_before=nxt if attempts and state == "pending" else None,
        state=state,
    )
    return StoredFiring(
        firing=firing,
        next_eval=nxt,
        created=from_db_time(created),  # type: ignore[arg-type]
        updated=from_db_time(updated),  # type: ignore[arg-type]
    )


class FiringStore:
    """The gate's tables on a HistoryStore's connection. Writes raise HistoryError."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    def _write(self, statements: Iterable[tuple[str, tuple[object, ...]]]) -> list[int]:
        try:
            with self.history.connection(write=True) as conn:
                return [conn.execute(sql, bind_all(params)).rowcount for sql, params in statements]
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.history.path}: firing write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self.history.connection() as conn:
                rows = conn.execute(sql, bind_all(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.history.path}: read failed: {exc}") from exc
        # Texts that are not UTF-8 (a job's bytes in a reason) are stored as BLOBs.
        return [tuple(text(value) for value in row) for row in rows]

    # ------------------------------------------------------------ writes

    def create(self, firing: Firing, now: datetime) -> StoredFiring:
        """Persist a new pending firing, or return the one already stored for
        (job, nominal) in whatever state it reached (so nothing is created twice)."""
        return self.create_all([firing], now)[0]

    def create_all(
        self,
        firings: Sequence[Firing],
        now: datetime,
        also: Iterable[tuple[str, tuple[object, ...]]] = (),
    ) -> list[StoredFiring]:
        """`create` for several firings, written in one transaction with the statements
        `also` (the minute journal: a crash leaves all of a minute or none of it)."""
        sql = (
            "INSERT OR IGNORE INTO firings"
            " (job_id, nominal, deadline, state, attempts, next_eval, created, updated)"
            " VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)"
        )
        at = to_db_time(now)
        statements = list(also)
        for firing in firings:
            nominal = to_db_time(firing.nominal)
            params = (firing.job_id, nominal, to_db_time(firing.deadline), at, at, at)
            statements.append((sql, params))
        self._write(statements)
        out = []
        for firing in firings:
            rows = self._read(
                f"SELECT {_FIRING_COLUMNS} FROM firings WHERE job_id = ? AND nominal = ?",
                (firing.job_id, to_db_time(firing.nominal)),
            )
            out.append(_firing(rows[0]))
        return out

    def record(
        self,
        firing: Firing,
        now: datetime,
        *,
        verdict: str,
        reason: str,
        until: datetime | None = None,
        snapshot: Snapshot | None = None,
        model: Mapping[str, float] | None = None,
        state: str | None = None,
        next_eval: datetime | None = None,
        expect: str | None = None,
    ) -> bool:
        """Record a decision and move the firing (state, attempts, next_eval) in one
        transaction. With `expect`, nothing happens unless the stored state is `expect`
        (False then). A firing without an id (its row could not be written) records
        nothing and returns True.

        The row is found by (job, nominal), never by the id in memory: after a corrupt
        database was moved aside, that id names nothing, or another firing, in the fresh
        file. A row missing there is written again first, in the state it had."""
        if firing.id is None:
            return True
        at = to_db_time(now)
        key = (firing.job_id, to_db_time(firing.nominal))
        again = (
            "INSERT OR IGNORE INTO firings"
            " (job_id, nominal, deadline, state, attempts, next_eval, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        was = expect or firing.state
        row = (*key, to_db_time(firing.deadline), was, firing.attempt, None, at, at)
        update = (
            "UPDATE firings SET state = ?, attempts = ?, next_eval = ?, updated = ?"
            " WHERE job_id = ? AND nominal = ?" + (" AND state = ?" if expect else "")
        )
        params: tuple[object, ...] = (state or firing.state, firing.attempt, _t(next_eval), at)
        params += key + ((expect,) if expect else ())
        insert = (
            "INSERT INTO decisions (firing_id, job_id, at, verdict, until, reason, snapshot, model)"
            " SELECT (SELECT id FROM firings WHERE job_id = ? AND nominal = ?),"
            " ?, ?, ?, ?, ?, ?, ? WHERE changes() > 0"
        )
        snap = None if snapshot is None else json.dumps(snapshot.to_dict())
        model_json = None if model is None else json.dumps(dict(model))
        values = (*key, firing.job_id, at, verdict, _t(until), reason, snap, model_json)
        counts = self._write([(again, row), (update, params), (insert, values)])
        return counts[1] > 0

    def catch_up(self, firing: Firing, now: datetime, reason: str) -> StoredFiring:
        """A firing caught up after a suspend or a power-off (smart.catchup): stored if
        new, its deadline moved if still pending, with a `catchup` decision; returns the
        row as it stands (another state: handled already, nothing moved)."""
        key = (firing.job_id, to_db_time(firing.nominal))
        at, deadline = to_db_time(now), to_db_time(firing.deadline)
        insert = (
            "INSERT OR IGNORE INTO firings"
            " (job_id, nominal, deadline, state, attempts, next_eval, created, updated)"
            " VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)"
        )
        update = (
            "UPDATE firings SET deadline = ?, next_eval = ?, updated = ?"
            " WHERE job_id = ? AND nominal = ? AND state = 'pending'"
        )
        decision = (
            "INSERT INTO decisions (firing_id, job_id, at, verdict, until, reason)"
            " SELECT (SELECT id FROM firings WHERE job_id = ? AND nominal = ?), ?, ?,"
            " 'catchup', ?, ? WHERE changes() > 0"
        )
        self._write([
            (insert, (*key, deadline, at, at, at)),
            (update, (deadline, at, at, *key)),
            (decision, (*key, firing.job_id, at, deadline, reason)),
        ])  # fmt: skip
        rows = self._read(
            f"SELECT {_FIRING_COLUMNS} FROM firings WHERE job_id = ? AND nominal = ?", key
        )
        return _firing(rows[0])

    # ------------------------------------------------------------ reads

    def open_firings(self) -> list[StoredFiring]:
        """Pending and running firings, oldest first (to resume after a restart)."""
        rows = self._read(
            f"SELECT {_FIRING_COLUMNS} FROM firings WHERE state IN ('pending', 'running')"
            " ORDER BY nominal, id"
        )
        return [_firing(row) for row in rows]

    def firings(self, job_ids: Iterable[str] | None = None, limit: int = 20) -> list[StoredFiring]:
        """The latest firings (of some jobs), newest first."""
        where, params = "", tuple[str, ...]()
        if job_ids is not None:
            ids = tuple(job_ids)
            where = f"WHERE job_id IN ({', '.join('?' * len(ids))})" if ids else "WHERE 0"
            params = ids
        rows = self._read(
            f"SELECT {_FIRING_COLUMNS} FROM firings {where} ORDER BY nominal DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_firing(row) for row in rows]

    def decisions(self, firing_id: int) -> list[Decision]:
        """A firing's decisions, oldest first."""
        rows = self._read(
            "SELECT id, firing_id, job_id, at, verdict, until, reason, snapshot, model"
            " FROM decisions WHERE firing_id = ? ORDER BY id",
            (firing_id,),
        )
        return [_decision(row) for row in rows]

    def decision_count(self, job_id: str | None = None) -> int:
        where, params = ("WHERE job_id = ?", (job_id,)) if job_id else ("", ())
        return int(self._read(f"SELECT count(*) FROM decisions {where}", params)[0][0])

    def job_ids(self, key: str) -> list[str]:
        """The ids a job `key` (an id or a name=) had in the history."""
        rows = self._read(
            "SELECT DISTINCT job_id FROM runs WHERE job_id = ? OR job_name = ?"
            " UNION SELECT DISTINCT job_id FROM firings WHERE job_id = ?",
            (key, key, key),
        )
        return sorted(row[0] for row in rows)

    def run_ids(self, firing_id: int) -> list[int]:
        """The runs of a firing (its first run and retries), oldest first."""
        rows = self._read("SELECT id FROM runs WHERE firing_id = ? ORDER BY id", (firing_id,))
        return [row[0] for row in rows]


def _decision(row: tuple[Any, ...]) -> Decision:
    did, fid, job_id, at, verdict, until, reason, snap, model = row
    return Decision(
        id=did,
        firing_id=fid,
        job_id=job_id,
        at=from_db_time(at),  # type: ignore[arg-type]
        verdict=verdict,
        until=from_db_time(until),
        reason=reason,
        snapshot=None if snap is None else json.loads(snap),
        model=None if model is None else json.loads(model),
    )


def verdict_fields(verdict: Verdict) -> dict[str, Any]:
    """A gate Verdict as `FiringStore.record` keywords."""
    return {
        "verdict": verdict.action,
        "reason": verdict.reason,
        "until": verdict.until,
        "model": verdict.model,
    }
