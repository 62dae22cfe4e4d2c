"""The fleet's run store on PostgreSQL: the RunStore interface (store.py), as SQLite's
HistoryStore, plus the upload of a host's SQLite rows (spool.py) keyed by host and
local id, so that sending a row twice changes nothing.

Texts that are not UTF-8 (a crontab may hold any bytes: historyguard.py) cannot be
PostgreSQL text: they are stored with backslash escapes (lossy; SQLite keeps them)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from smartcron.store.historyguard import HistoryError
from smartcron.store.pgconn import PgConnection
from smartcron.store.runrecords import (
    RUN_COLUMNS,
    RunEnd,
    RunRow,
    RunStart,
    RunStatus,
    Trigger,
    db_values,
    run_row,
    to_db_time,
)

# The columns a host uploads: SQLite's, with its id as local_id, and where it came from.
UPLOAD_COLUMNS = ("local_id", *RUN_COLUMNS[1:], "instance", "host")
DECISION_COLUMNS = ("local_id", "firing_id", "job_id", "at", "verdict", "until", "reason",
                    "snapshot", "model", "host")  # fmt: skip
_SELECT = ", ".join(f'"{c}"' if c == "user" else c for c in ("id", *RUN_COLUMNS[1:], "host"))


def pg_text(value: object) -> object:
    """A value PostgreSQL takes: text without surrogates nor NUL (escaped), bytes as is
    only for `output` (the caller's business)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value.replace("\x00", "\\x00")
    return value


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' if n == "user" else n for n in names)


class PgHistoryStore:
    """Runs in PostgreSQL. `host` names this daemon's rows (default: the host name)."""

    def __init__(
        self, url: str, *, host: str | None = None, password_file: Path | None = None
    ) -> None:
        self.db = PgConnection(url, password_file=password_file)
        self.path = self.db.where  # as HistoryStore.path: what messages name
        self.host = host or socket.gethostname()
        self.instance = os.urandom(8).hex()
        with self.db.transaction():
            pass  # connect and migrate now: a bad URL is said at once

    def record_start(self, start: RunStart) -> int:
        values = db_values(start) | {"trigger": Trigger(start.trigger).value}
        values |= {"status": "running", "instance": self.instance, "host": self.host}
        sql = f"INSERT INTO runs ({_columns(list(values))}) VALUES"
        sql += f" ({', '.join(['%s'] * len(values))}) RETURNING id"
        with self.db.transaction() as cur:
            cur.execute(sql.encode(), [pg_text(v) for v in values.values()])
            row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def record_end(self, run_id: int, end: RunEnd) -> None:
        status = RunStatus(end.status)
        if status is RunStatus.RUNNING:
            raise ValueError("record_end needs a final status")
        values = db_values(end) | {"status": status.value}
        values["interrupted"] = int(status is RunStatus.INTERRUPTED)
        sets = ", ".join(f"{k} = %s" for k in values)
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE runs SET {sets} WHERE id = %s".encode(),
                [pg_text(v) for v in values.values()] + [run_id],
            )

    def mark_interrupted_runs(self, reason: str) -> int:
        """This host's runs left 'running' by an earlier daemon; how many."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = 'interrupted', interrupted = 1, note = %s"
                " WHERE host = %s AND status = 'running' AND instance IS DISTINCT FROM %s",
                (pg_text(reason), self.host, self.instance),
            )
            return cur.rowcount

    def prune(self, older_than: timedelta, now: datetime) -> int:
        """Every host's finished runs and decisions, and claims, older than the cutoff."""
        cutoff = to_db_time(now - older_than)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM decisions WHERE at < %s", (cutoff,))
            n = cur.rowcount
            cur.execute("DELETE FROM runs WHERE started < %s AND status != 'running'", (cutoff,))
            n += cur.rowcount
            cur.execute("DELETE FROM claims WHERE claimed_at < %s", (cutoff,))
            return n + cur.rowcount

    def runs(
        self,
        job_id: str | None = None,
        limit: int = 50,
        *,
        with_output: bool = False,
        host: str | None = None,
    ) -> list[RunRow]:
        """The latest runs of every host (or `host`'s), newest first."""
        where, params = [], []
        for column, value in (("job_id", job_id), ("host", host)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        tail = f"WHERE {' AND '.join(where)} " if where else ""
        return self._select(f"{tail}ORDER BY id DESC LIMIT %s", (*params, limit), with_output)

    def run(self, run_id: int, *, with_output: bool = True) -> RunRow | None:
        rows = self._select("WHERE id = %s", (run_id,), with_output)
        return rows[0] if rows else None

    def _select(self, tail: str, params: Sequence[object], with_output: bool) -> list[RunRow]:
        columns = _SELECT if with_output else _SELECT.replace("output,", "NULL,")
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {columns} FROM runs {tail}".encode(), params)
            rows = cur.fetchall()
        names = (*RUN_COLUMNS, "host")
        return [run_row(dict(zip(names, row, strict=True))) for row in rows]

    # ------------------------------------------------------------ the upload

    def upload(
        self, runs: Sequence[Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]]
    ) -> None:
        """A host's SQLite rows (dicts by column, `id` their local id), in one
        transaction: a run sent again replaces itself (it may have ended since)."""
        with self.db.transaction() as cur:
            if runs:
                _upsert(cur, "runs", UPLOAD_COLUMNS, [self._row(r) for r in runs], update=True)
            if decisions:
                rows = [self._row(d, DECISION_COLUMNS) for d in decisions]
                _upsert(cur, "decisions", DECISION_COLUMNS, rows, update=False)

    def _row(self, raw: Mapping[str, Any], names: Sequence[str] = UPLOAD_COLUMNS) -> list[object]:
        # Under this daemon's fleet host: a history file is one daemon's (its rows may
        # name the machine's host name, from before fleet_host was set).
        values = {**raw, "local_id": raw["id"], "host": self.host}
        return [values.get(n) if n == "output" else pg_text(_plain(values.get(n))) for n in names]

    def uploaded_decisions(self) -> int:
        """The highest local id of this host's decisions the server holds (0: none)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT max(local_id) FROM decisions WHERE host = %s", (self.host,))
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        self.db.close()


def _plain(value: object) -> object:
    """SQLite keeps a text that is not UTF-8 as a BLOB (historyguard.bind): text again."""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def _upsert(cur: Any, table: str, names: Sequence[str], rows: list[list[object]], *,
            update: bool) -> None:  # fmt: skip
    cols = _columns(names)
    marks = ", ".join(["%s"] * len(names))
    if update:
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in _columns(names[1:-1]).split(", "))
        tail = f"DO UPDATE SET {sets}"
    else:
        tail = "DO NOTHING"
    sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT (host, local_id) {tail}"
    try:
        cur.executemany(sql.encode(), rows)
    except ValueError as err:  # a value psycopg cannot adapt: a bug, said plainly
        raise HistoryError(f"upload to {table} refused: {err}") from err
