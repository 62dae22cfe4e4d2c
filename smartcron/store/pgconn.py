"""One PostgreSQL connection to a fleet's history, kept and remade (psycopg 3).

Imported only when config `history_url` is set: psycopg is the `fleet` extra. Every
failure reaches the caller as HistoryError (HistoryUnavailable when the server cannot
be reached: the caller spools and retries), its message without the URL's secrets."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from smartcron.store.historyguard import HistoryError, HistoryUnavailable
from smartcron.store.pgschema import MIGRATIONS
from smartcron.store.pgurl import connect_kwargs, redact

# One advisory lock id for migrations: daemons starting at once migrate one at a time.
_MIGRATION_LOCK = 0x5C0_17


class PgConnection:
    """`transaction()` yields a cursor inside one transaction, connecting (and migrating,
    once) on first use and after a lost connection. Thread-safe (one lock)."""

    def __init__(self, url: str, *, password_file: Path | None = None) -> None:
        self.url, self.password_file = url, password_file
        self.where = redact(url)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._migrated = False

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(**connect_kwargs(self.url, self.password_file))  # type: ignore[arg-type]
        except OSError as err:  # the password file
            raise HistoryError(f"{self.where}: history_password_file: {err}") from err
        if not self._migrated:
            try:
                migrate(conn)
            except HistoryError as err:
                conn.close()
                raise HistoryError(f"{self.where}: {err}") from err
            except BaseException:
                conn.close()
                raise
            self._migrated = True
        return conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            try:
                if self._conn is not None and not self._conn.closed and _ended(self._conn):
                    self.close()
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as err:
                self.close()
                why = redact(str(err).strip().splitlines()[0] if str(err).strip() else repr(err))
                raise HistoryUnavailable(f"{self.where}: {why}", pending=0, run_id=None) from err
            except psycopg.Error as err:
                if self._conn is not None and self._conn.broken:
                    self.close()
                raise HistoryError(f"{self.where}: {redact(str(err))}") from err

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.closed:
                conn.close()


def _ended(conn: psycopg.Connection[Any]) -> bool:
    """Bytes waiting on a connection kept idle between transactions: the server's farewell
    (it restarted, or the backend was terminated; we never LISTEN). Such a connection
    fails its next statement, which would make a server that is back look unreachable
    (a fleet=once firing held a minute, the last upload at a stop left for the next
    start). Checked without a round trip; a false alarm costs one reconnection."""
    try:
        return bool(select.select([conn.pgconn.socket], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        return True


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the missing migrations in order, each in its transaction with its row."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        known = {m.name for m in MIGRATIONS}
        if unknown := ", ".join(sorted(applied - known)):
            raise HistoryError(f"history database from a newer SmartCron ({unknown})")
        for migration in MIGRATIONS:
            if migration.name in applied:
                continue
            for statement in migration.statements():
                conn.execute(statement.encode())  # no parameters: % is not special
            conn.execute(
                "INSERT INTO migrations VALUES (%s, to_char(now() AT TIME ZONE 'UTC',"
                ' \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\'))',
                (migration.name,),
            )
