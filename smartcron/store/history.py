"""The SQLite history store: runs (and, for the gate, firings and decisions).

WAL mode: readers (the CLI, read-only) and the daemon never block each other; each
write is one short `BEGIN IMMEDIATE` transaction. The daemon, the only writer, numbers
runs itself: a run keeps its id while its row waits in memory for a failed write to be
retried. Instants are ISO 8601 UTC text of fixed width: text order is time order.

The daemon opens it `resilient` (historyguard.py): history must never stop cron. Every
failure reaches the caller as HistoryError, never sqlite3.Error, OSError or UnicodeError.

The records (RunStart, RunEnd, RunRow) are in runrecords.py, the migrations in schema.py;
both are imported from here too."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timedelta
from typing import Any

from smartcron.clock import Clock, SystemClock
from smartcron.store.historyguard import (
    CHECK_EVERY,
    Guard,
    HistoryDamaged,
    HistoryError,
    HistoryUnavailable,
    HistoryWriteError,
    bind_all,
    kind,
    op_bytes,
    quick_check,
)
from smartcron.store.runrecords import (
    RUN_COLUMNS,
    RunEnd,
    RunRow,
    RunStart,
    RunStatus,
    Trigger,
    db_values,
    from_db_time,
    run_row,
    to_db_time,
)
from smartcron.store.schema import MIGRATIONS, Migration

# The store's names, and those its users import from here (records, schema, errors).
__all__ = [
    "MIGRATIONS",
    "HistoryDamaged",
    "HistoryError",
    "HistoryStore",
    "HistoryUnavailable",
    "HistoryWriteError",
    "Migration",
    "RunEnd",
    "RunRow",
    "RunStart",
    "RunStatus",
    "Trigger",
    "from_db_time",
    "to_db_time",
]

log = logging.getLogger("smartcron")
_Op = tuple[tuple[str, tuple[object, ...]], ...]  # statements run in one transaction
_INTERRUPT = (
    "UPDATE runs SET status = 'interrupted', interrupted = 1, note = ?, synced = 0"
    " WHERE status = 'running' AND (instance IS NULL OR instance != ?)"
)
_PRUNE = (
    "DELETE FROM decisions WHERE at < ?",
    "DELETE FROM runs WHERE started < ? AND status != 'running'",
    "DELETE FROM firings WHERE updated < ? AND state NOT IN ('pending', 'running')",
    "DELETE FROM presence WHERE at < ?",
)


def presence_samples(conn: sqlite3.Connection) -> list[tuple[datetime, float]]:
    """The presence table's (instant, idle s) samples, oldest first (smartcron.ai.activity);
    none in a history from before it (a read-only reader does not migrate)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'presence'").fetchone():
        return []
    rows = conn.execute("SELECT at, idle_s FROM presence ORDER BY at").fetchall()
    return [(at, float(idle)) for text, idle in rows if (at := from_db_time(text)) is not None]


def _needs_immutable(conn: sqlite3.Connection, name: str) -> bool:
    """A reader who may not write beside a WAL database (a user reading the system's
    history) cannot create its -shm file: SQLite then refuses even to read. With no -wal
    file (the daemon stopped and checkpointed), the main file is the whole history and
    can be read as immutable; with one, the daemon's -shm is there to be shared."""
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError as err:
        return "readonly" in str(err) and not os.path.exists(f"{name}-wal")
    return False


class HistoryStore(Guard):
    """Thread-safe (one connection, one lock). `open(path)` creates the file (mode 0600:
    it holds job output; its directory is the caller's) or migrates it; ":memory:" works.
    `readonly=True` (a `mode=ro` URI, for the CLI) never migrates nor writes.
    `resilient=True` (the daemon) never raises from the constructor: see the module."""

    max_pending = 1000  # failed writes kept in memory (count, then bytes of text/blobs)
    max_pending_bytes = 8 << 20

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        clock: Clock | None = None,
        busy_timeout_ms: int = 5000,
        resilient: bool = False,
        host: str | None = None,
    ) -> None:
        self.path = name = os.fspath(path)
        self.host = host or socket.gethostname()  # each run row says where it ran
        self.readonly, self._clock = readonly, clock or SystemClock()
        self.resilient = resilient and not readonly and name != ":memory:"
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        self._pending: deque[_Op] = deque()
        self.dropped = 0
        self.instance = os.urandom(8).hex()  # tells this daemon's rows from older ones
        self._conn: sqlite3.Connection | None = None
        self._next_run_id = 1
        self.unavailable: str | None = None  # why the store runs without its database
        self.since: datetime | None = None
        self.moved_aside: list[str] = []  # damaged files set aside by this store
        self.before_close: list[Callable[[], None]] = []  # e.g. the fleet's last upload
        now = self._clock.now()
        self._next_reopen, self._next_check = now, now + CHECK_EVERY
        if self.resilient:
            self._reopen()
        else:
            self._connect()

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> HistoryStore:
        return cls(path, **options)

    def _connect(self, check: bool = False) -> None:
        name, readonly = self.path, self.readonly
        memory = name == ":memory:"
        if readonly and (memory or not os.path.exists(name)):
            raise HistoryError(f"{name}: no history database")
        try:
            if not readonly and not memory and not os.path.exists(name):
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))
            to = f"file:{urllib.parse.quote(name)}?mode=ro" if readonly else name
            conn = sqlite3.connect(to, uri=readonly, isolation_level=None, check_same_thread=False)
            if readonly and _needs_immutable(conn, name):
                conn.close()
                to = f"file:{urllib.parse.quote(name)}?immutable=1"
                conn = sqlite3.connect(to, uri=True, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"{name}: cannot open history database: {exc}") from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL
            if check and (problem := quick_check(conn)):
                raise HistoryDamaged(f"{name}: corrupt: {problem}")
            self._migrate()
        except BaseException as exc:
            self._conn = None
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                if kind(exc) == "corrupt":
                    raise HistoryDamaged(f"{name}: corrupt, or not a database: {exc}") from exc
                raise HistoryError(f"{name}: cannot open history database: {exc}") from exc
            raise

    def _migrate(self) -> None:
        conn, path = self._conn, self.path
        assert conn is not None
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "migrations" not in tables:
            if self.readonly or tables - {"sqlite_sequence"}:
                raise HistoryError(f"{path}: not a SmartCron history database")
            conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        applied = {r[0] for r in conn.execute("SELECT name FROM migrations")}
        if unknown := ", ".join(sorted(applied - {m.name for m in MIGRATIONS})):
            raise HistoryError(f"{path}: from a newer SmartCron (unknown migrations: {unknown})")
        missing = [m for m in MIGRATIONS if m.name not in applied]
        if self.readonly and missing:
            raise HistoryError(f"{path}: older schema; start the daemon once to upgrade it")
        for migration in [] if self.readonly else missing:
            with self._transaction():
                for statement in migration.statements():
                    conn.execute(statement)
                at = to_db_time(self._clock.now())
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (migration.name, at))
        # AUTOINCREMENT's counter (>= max(id), even for given ids): pruned ids never return.
        # After a fresh start (a damaged file set aside) the daemon's ids carry on.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
        self._next_run_id = max(self._next_run_id, (row[0] if row else 0) + 1)

    # ------------------------------------------------------------ writing

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now, within busy_timeout
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.rollback()  # a no-op when SQLite already rolled back
            raise

    @property
    def pending_writes(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Retry buffered writes now (the daemon may call this once a minute)."""
        with self._lock:
            if self.resilient and self.unavailable is not None:
                self._next_reopen = self._clock.now()  # now, not at the next minute
                self.maintain()
                if self.unavailable is not None:
                    n = len(self._pending)
                    raise HistoryUnavailable(f"{self.unavailable}", pending=n, run_id=None)
            self._flush(run_id=None)

    def _write(self, op: _Op, *, run_id: int | None = None) -> int:
        """Queue `op` behind failed writes (oldest lost past the bounds), run the queue."""
        if self.readonly:
            raise HistoryError(f"{self.path}: opened read-only")
        with self._lock:
            self.maintain()
            self._pending.append(op)
            while len(self._pending) > 1 and (
                len(self._pending) > self.max_pending
                or sum(map(op_bytes, self._pending)) > self.max_pending_bytes
            ):
                self._pending.popleft()
                self.dropped += 1
            if self.unavailable is not None or self._conn is None:
                n = len(self._pending)
                msg = f"{self.path}: history unavailable; {n} write(s) wait in memory"
                raise HistoryUnavailable(msg, pending=n, run_id=run_id)
            return self._flush(run_id=run_id)

    def _flush(self, *, run_id: int | None) -> int:
        changed, replaced = 0, False
        while self._pending and self._conn is not None:
            try:
                with self._transaction():
                    changed = sum(
                        self._conn.execute(sql, bind_all(params)).rowcount
                        for sql, params in self._pending[0]
                    )
            except Exception as exc:  # never let one write block the others for good
                if kind(exc) == "refused":  # a bad write (a bug): drop it, say so
                    self._pending.popleft()
                    self.dropped += 1
                    log.error("history: %s: a write was refused and dropped: %r", self.path, exc)
                    raise HistoryError(f"{self.path}: write refused: {exc}") from exc
                # Full, locked, read-only, I/O error; or damaged: then replaced by a fresh
                # file (once per flush), where the queue goes on.
                if not replaced and self._trouble(exc):
                    replaced = True
                    continue
                n = len(self._pending)
                msg = f"{self.path}: write failed ({exc}); {n} write(s) kept to retry"
                cls = HistoryUnavailable if self.resilient else HistoryWriteError
                raise cls(msg, pending=n, run_id=run_id) from exc
            self._pending.popleft()
        if self._pending:  # the connection was lost on the way
            n = len(self._pending)
            msg = f"{self.path}: history unavailable; {n} write(s) wait in memory"
            raise HistoryUnavailable(msg, pending=n, run_id=run_id)
        return changed

    @contextmanager
    def connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection, locked (in a write transaction if `write`): smartcron.smart.firings.
        HistoryUnavailable while the store runs without its database."""
        with self._lock:
            self.maintain()
            if self._conn is None or (write and self.unavailable is not None):
                raise HistoryUnavailable(
                    f"{self.path}: history unavailable", pending=len(self._pending), run_id=None
                )
            try:
                with self._transaction() if write else nullcontext():
                    yield self._conn
            except sqlite3.Error as exc:
                self._trouble(exc)
                raise HistoryError(f"{self.path}: {exc}") from exc

    def record_start(self, start: RunStart) -> int:
        """Write a 'running' row as the job starts, so a crash leaves evidence; its id.
        On a write failure, HistoryWriteError carries the id (the row is buffered)."""
        values = db_values(start) | {"trigger": Trigger(start.trigger).value}
        with self._lock:
            run_id = self._next_run_id
            self._next_run_id += 1
            values |= {"id": run_id, "status": "running", "instance": self.instance}
            values["host"] = self.host
            sql = f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
            self._write(((sql, tuple(values.values())),), run_id=run_id)
        return run_id

    def record_end(self, run_id: int, end: RunEnd) -> None:
        """Complete a run begun by `record_start`."""
        status = RunStatus(end.status)
        if status is RunStatus.RUNNING:
            raise ValueError("record_end needs a final status")
        values = db_values(end) | {"status": status.value}
        values["interrupted"] = int(status is RunStatus.INTERRUPTED)
        values["synced"] = 0  # the fleet's copy is out of date (spool.py)
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        self._write(((sql, (*values.values(), run_id)),), run_id=run_id)

    def mark_interrupted_runs(self, reason: str) -> int:
        """On daemon start: earlier daemons' 'running' rows become 'interrupted'; how many."""
        return self._write(((_INTERRUPT, (reason, self.instance)),))

    def record_presence(self, samples: Iterable[tuple[datetime, float]]) -> None:
        """The user's idle time (s) at minutes `samples` name, in one transaction (the
        daemon samples every few minutes while it gates smart jobs: smartcron.ai.activity)."""
        sql = "INSERT OR REPLACE INTO presence (at, idle_s) VALUES (?, ?)"
        ops = tuple(
            (sql, (to_db_time(at.replace(second=0, microsecond=0)), float(idle)))
            for at, idle in samples
        )
        if ops:
            self._write(ops)

    def prune(self, older_than: timedelta, now: datetime) -> int:
        """Delete finished runs, decisions, settled firings and presence samples older than
        `now - older_than`."""
        cutoff = (to_db_time(now - older_than),)
        return self._write(tuple((sql, cutoff) for sql in _PRUNE))

    def runs(
        self, job_id: str | None = None, limit: int = 50, *, with_output: bool = False
    ) -> list[RunRow]:
        """The latest runs, newest first, without output unless asked (nor buffered rows)."""
        where, params = ("WHERE job_id = ?", (job_id,)) if job_id is not None else ("", ())
        return self._select(f"{where} ORDER BY id DESC LIMIT ?", (*params, limit), with_output)

    def run(self, run_id: int, *, with_output: bool = True) -> RunRow | None:
        rows = self._select("WHERE id = ?", (run_id,), with_output)
        return rows[0] if rows else None

    def _select(self, tail: str, params: Sequence[object], with_output: bool) -> list[RunRow]:
        columns = ", ".join(c if c != "output" or with_output else "NULL" for c in RUN_COLUMNS)
        # Rows older than the host column (0004) ran here too.
        sql = f"SELECT {columns}, COALESCE(host, ?) FROM runs {tail}"
        params = (self.host, *params)
        try:
            with self._lock:
                if self._conn is None:
                    raise HistoryError(f"{self.path}: history unavailable: {self.unavailable}")
                rows = self._conn.execute(sql, bind_all(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: read failed: {exc}") from exc
        names = (*RUN_COLUMNS, "host")
        return [run_row(dict(zip(names, row, strict=True))) for row in rows]

    def close(self) -> None:
        """Flush what can be, then close; HistoryWriteError if buffered writes are lost."""
        for hook in self.before_close:
            try:
                hook()
            except Exception:  # another part's trouble must not keep the history open
                log.exception("history: before closing %s", self.path)
        with self._lock:
            try:
                if self._pending and not self.readonly:
                    if self._conn is None:
                        n = len(self._pending)
                        msg = f"{self.path}: history unavailable; {n} write(s) lost"
                        raise HistoryUnavailable(msg, pending=n, run_id=None)
                    self._flush(run_id=None)
            finally:
                self._close_connection()
