"""The SQLite history store: runs (and, for the gate, firings and decisions).

WAL mode: readers (the CLI, read-only) and the daemon never block each other; each
write is one short `BEGIN IMMEDIATE` transaction. The daemon, the only writer, numbers
runs itself: a run keeps its id while its row waits in memory for a failed write to be
retried. Instants are ISO 8601 UTC text of fixed width: text order is time order.

The daemon opens it `resilient` (historyguard.py): history must never stop cron. Every
failure reaches the caller as HistoryError, never sqlite3.Error, OSError or UnicodeError."""

from __future__ import annotations

import enum
import logging
import os
import sqlite3
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
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
    text,
)

log = logging.getLogger("smartcron")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the daemon died or stopped while the job ran
    SPAWN_ERROR = "spawn_error"  # fork/exec/setuid failed: the command never ran


class Trigger(enum.StrEnum):
    CRON = "cron"  # a plain line at its cron time
    SMART = "smart"  # an annotated firing released by the gate
    RETRY = "retry"
    REBOOT = "reboot"  # @reboot


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """A named schema step (statements end with ";" + newline), applied once, in one
    transaction with its `migrations` row. Append steps; never edit an applied one.
    Values are checked in Python: SQLite cannot alter a CHECK constraint in place."""

    name: str
    sql: str

    def statements(self) -> list[str]:
        return [part.strip() for part in self.sql.split(";\n") if part.strip()]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        name="0001_runs",
        sql="""
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, job_name TEXT, source TEXT NOT NULL, line INTEGER,
            user TEXT NOT NULL, command TEXT NOT NULL, trigger TEXT NOT NULL,
            scheduled TEXT, started TEXT NOT NULL, ended TEXT,
            status TEXT NOT NULL, exit_code INTEGER, signal INTEGER,
            timed_out INTEGER NOT NULL DEFAULT 0, interrupted INTEGER NOT NULL DEFAULT 0,
            runtime_s REAL, cpu_s REAL, max_rss_kb INTEGER,
            output_size INTEGER, output BLOB, mail_sent INTEGER, mail_reason TEXT,
            note TEXT, instance TEXT);
        CREATE INDEX runs_job_scheduled ON runs (job_id, scheduled);
        CREATE INDEX runs_started ON runs (started);
        CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
        """,
    ),
    # For the gate (SPEC 5): a smart firing, persisted before it is evaluated (state:
    # pending | running | done | skipped | missed), and each verdict (run | defer | skip)
    # with its reason, the snapshot and the model's outputs as JSON text.
    Migration(
        name="0002_firings_decisions",
        sql="""
        CREATE TABLE firings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, nominal TEXT NOT NULL, deadline TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            next_eval TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,
            UNIQUE (job_id, nominal));
        CREATE INDEX firings_due ON firings (state, next_eval);
        ALTER TABLE runs ADD COLUMN firing_id INTEGER REFERENCES firings (id) ON DELETE SET NULL;
        CREATE INDEX runs_firing ON runs (firing_id);
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            firing_id INTEGER REFERENCES firings (id) ON DELETE SET NULL,
            job_id TEXT NOT NULL, at TEXT NOT NULL, verdict TEXT NOT NULL,
            until TEXT, reason TEXT NOT NULL, snapshot TEXT, model TEXT);
        CREATE INDEX decisions_firing ON decisions (firing_id);
        CREATE INDEX decisions_job_at ON decisions (job_id, at);
        """,
    ),
    # The minute journal (smartcron.store.journal): the last wake-up's observed minute, its
    # plain firings and the clocks, written with its smart firings before any job of
    # the minute starts; and the plain firings a restart left unrun, counted per job.
    Migration(
        name="0003_minute_journal",
        sql="""
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            utc_minute INTEGER NOT NULL, at TEXT NOT NULL, boot_id TEXT, mono REAL,
            plain TEXT NOT NULL, complete INTEGER NOT NULL);
        CREATE TABLE not_run (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, label TEXT NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL,
            count INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
        CREATE INDEX not_run_at ON not_run (at);
        """,
    ),
)


def to_db_time(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: history stores UTC instants")
    return instant.astimezone(UTC).strftime(_TIME_FORMAT)


def from_db_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStart:
    """What is known as a job starts. `scheduled` is the nominal firing instant (None
    for @reboot); `source`/`line` the crontab file and line; `firing_id` a smart firing."""

    job_id: str
    source: str
    user: str
    command: str
    started: datetime
    trigger: Trigger | str = Trigger.CRON
    scheduled: datetime | None = None
    job_name: str | None = None
    line: int | None = None
    firing_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnd:
    """How a run ended. `output` is stored as given (the caller caps it); `output_size`
    is the full size. `note` is free text (a spawn error, an interruption reason)."""

    status: RunStatus | str
    ended: datetime
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    runtime_s: float | None = None
    cpu_s: float | None = None
    max_rss_kb: int | None = None
    output_size: int | None = None
    output: bytes | None = None
    mail_sent: bool | None = None
    mail_reason: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """A stored run; `end` is None while it runs or if the daemon died first (see `note`)."""

    id: int
    status: RunStatus
    note: str | None
    start: RunStart
    end: RunEnd | None


def _values(record: RunStart | RunEnd) -> dict[str, object]:
    """A record's fields as stored: UTC text for instants, 0/1 for booleans."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    for name, value in values.items():
        if isinstance(value, datetime | bool):
            values[name] = to_db_time(value) if isinstance(value, datetime) else int(value)
    return values


_START = tuple(f.name for f in fields(RunStart))
_END = tuple(f.name for f in fields(RunEnd))
_COLUMNS = ("id", *_START, *_END)
_Op = tuple[tuple[str, tuple[object, ...]], ...]  # statements run in one transaction
_INTERRUPT = (
    "UPDATE runs SET status = 'interrupted', interrupted = 1, note = ?"
    " WHERE status = 'running' AND (instance IS NULL OR instance != ?)"
)
_PRUNE = (
    "DELETE FROM decisions WHERE at < ?",
    "DELETE FROM runs WHERE started < ? AND status != 'running'",
    "DELETE FROM firings WHERE updated < ? AND state NOT IN ('pending', 'running')",
)


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
    ) -> None:
        self.path = name = os.fspath(path)
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
        values = _values(start) | {"trigger": Trigger(start.trigger).value}
        with self._lock:
            run_id = self._next_run_id
            self._next_run_id += 1
            values |= {"id": run_id, "status": "running", "instance": self.instance}
            sql = f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
            self._write(((sql, tuple(values.values())),), run_id=run_id)
        return run_id

    def record_end(self, run_id: int, end: RunEnd) -> None:
        """Complete a run begun by `record_start`."""
        status = RunStatus(end.status)
        if status is RunStatus.RUNNING:
            raise ValueError("record_end needs a final status")
        values = _values(end) | {"status": status.value}
        values["interrupted"] = int(status is RunStatus.INTERRUPTED)
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?"
        self._write(((sql, (*values.values(), run_id)),), run_id=run_id)

    def mark_interrupted_runs(self, reason: str) -> int:
        """On daemon start: earlier daemons' 'running' rows become 'interrupted'; how many."""
        return self._write(((_INTERRUPT, (reason, self.instance)),))

    def prune(self, older_than: timedelta, now: datetime) -> int:
        """Delete finished runs, decisions and settled firings older than `now - older_than`."""
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
        columns = ", ".join(c if c != "output" or with_output else "NULL" for c in _COLUMNS)
        sql = f"SELECT {columns} FROM runs {tail}"
        try:
            with self._lock:
                if self._conn is None:
                    raise HistoryError(f"{self.path}: history unavailable: {self.unavailable}")
                rows = self._conn.execute(sql, bind_all(params)).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: read failed: {exc}") from exc
        return [_row(dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def close(self) -> None:
        """Flush what can be, then close; HistoryWriteError if buffered writes are lost."""
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


def _row(raw: dict[str, Any]) -> RunRow:
    for name, value in raw.items():  # texts kept as BLOBs (not UTF-8) come back exactly
        if name != "output":
            raw[name] = text(value)
    for name in ("scheduled", "started", "ended"):
        raw[name] = from_db_time(raw[name])
    for name in ("timed_out", "mail_sent"):
        raw[name] = None if raw[name] is None else bool(raw[name])
    raw["status"], raw["trigger"] = RunStatus(raw["status"]), Trigger(raw["trigger"])
    return RunRow(
        id=raw["id"],
        status=raw["status"],
        note=raw["note"],
        start=RunStart(**{k: raw[k] for k in _START}),
        end=None if raw["ended"] is None else RunEnd(**{k: raw[k] for k in _END}),
    )
