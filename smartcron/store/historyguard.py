"""What keeps the history store from ever stopping cron (issue 11): bytes-safe texts,
error classes, and the store's degrading half (Guard). A damaged file is moved aside
and a fresh one started; a read-only or full state directory leaves the store
unavailable (writes parked in memory, bounded and counted, the database tried again
each minute; quick_check hourly); a write SQLite refuses is dropped, never retried.

Texts: Debian's crontab(1) accepts any bytes, and the loader keeps the ones that are
not UTF-8 as surrogate escapes (PEP 383). SQLite text must be UTF-8, so such a text is
stored as a BLOB of its original bytes, and read back into the same str: the round
trip is exact, and a query binding the same text the same way still matches it."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Sized
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from smartcron.errors import SmartcronError

if TYPE_CHECKING:
    from smartcron.clock import Clock

log = logging.getLogger("smartcron")

# SQLite primary result codes (sqlite3.h) that say the machine, not the write, is wrong:
# a later attempt may succeed once space, permission or the lock holder is back.
_TRANSIENT = {
    3: "PERM",
    5: "BUSY",
    6: "LOCKED",
    8: "READONLY",
    10: "IOERR",
    13: "FULL",
    14: "CANTOPEN",
    15: "PROTOCOL",
}
_CORRUPT = {11: "CORRUPT", 26: "NOTADB"}
SIDE_FILES = ("-wal", "-shm", "-journal")
REOPEN_EVERY = timedelta(minutes=1)  # an unavailable database is tried again this often
CHECK_EVERY = timedelta(hours=1)  # PRAGMA quick_check while running (and at each open)


class HistoryError(SmartcronError):
    """The history database cannot be opened, read or written (the message names it)."""


class HistoryWriteError(HistoryError):
    """A write failed (disk full, locked past busy_timeout...) and waits in memory, to be
    retried in order before the next write or on `flush()`. `pending`: writes waiting;
    `run_id`: the id record_start gave the run (`HistoryStore.dropped`: writes lost)."""

    def __init__(self, message: str, *, pending: int, run_id: int | None) -> None:
        super().__init__(message)
        self.pending, self.run_id = pending, run_id


class HistoryUnavailable(HistoryWriteError):
    """The store runs without its database (damaged and not replaceable, read-only,
    full): the write waits in memory. The store logged why once, when it happened."""


def log_history_failure(err: Exception, what: str) -> None:
    """Log a failed history call with what it cost, unless it is the store's own
    `HistoryUnavailable`: that was logged once when history went down, not each minute."""
    if not isinstance(err, HistoryUnavailable):
        log.error("history: %s (%s)", err, what)


class HistoryDamaged(HistoryError):
    """The file is not a sound SQLite database (SQLITE_CORRUPT/NOTADB, quick_check)."""


def bind(value: object) -> object:
    """A parameter as SQLite can take it: a str that is not valid UTF-8 (surrogate
    escapes) becomes the BLOB of its bytes; a stray surrogate no bytes can give is
    kept visibly escaped rather than refused."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("ascii", "replace")
    return value


def bind_all(params: Iterable[object]) -> tuple[object, ...]:
    return tuple(bind(p) for p in params)


def op_bytes(op: Iterable[tuple[str, Iterable[object]]]) -> int:
    """The text and blob bytes a parked write holds (bounds the memory it may take)."""
    return sum(len(p) for _, params in op for p in params if isinstance(p, str | bytes))


def text(value: object) -> object:
    """A stored text back: a BLOB in a text column is the bytes `bind` kept."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def kind(exc: BaseException) -> str:
    """'corrupt' (the file is damaged: move it aside), 'transient' (disk full, read-only,
    locked, I/O: park the write and try later) or 'refused' (this write is bad: drop it)."""
    if isinstance(exc, OSError | MemoryError):
        return "transient"
    if not isinstance(exc, sqlite3.Error):
        return "refused"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        code &= 0xFF  # extended codes carry the primary one in the low byte
        if code in _CORRUPT:
            return "corrupt"
        if code in _TRANSIENT:
            return "transient"
        return "refused"
    message = str(exc).lower()
    if "malformed" in message or "not a database" in message:
        return "corrupt"
    if isinstance(exc, sqlite3.OperationalError):
        return "transient"
    return "refused"


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None if `PRAGMA quick_check` finds the file sound, else what it found."""
    rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    found = "; ".join(" ".join(str(text(row[0])).split()) for row in rows)[:300]
    return None if found == "ok" else found or "quick_check returned nothing"


def check_database_file(path: str) -> str | None:
    """What is wrong with the database file on disk, or None: `quick_check` through a
    connection of its own, because the daemon's cached pages would hide the damage."""
    if not os.path.exists(path):
        return "the file is gone"
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
        try:
            return quick_check(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:  # busy or locked: look again next time
        return f"corrupt ({exc})" if kind(exc) == "corrupt" else None


def move_aside(path: str, now: datetime) -> str:
    """Rename a damaged database, with its -wal/-shm (SQLite pairs them by name), to
    `PATH.corrupt-YYYYmmddTHHMMSSZ`; the new name. OSError if it cannot be renamed."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target, n = f"{path}.corrupt-{stamp}", 1
    while any(os.path.lexists(target + s) for s in ("", *SIDE_FILES)):
        n += 1
        target = f"{path}.corrupt-{stamp}.{n}"
    os.rename(path, target)
    for suffix in SIDE_FILES:
        if os.path.lexists(path + suffix):
            try:
                os.rename(path + suffix, target + suffix)
            except OSError:  # a stale -shm is rebuilt by SQLite; never reuse it
                os.unlink(path + suffix)
    return target


class Guard:
    """HistoryStore's degrading half (resilient stores): what happens when the database
    is damaged, read-only, full or locked, so that the daemon's calls never change."""

    path: str
    resilient: bool
    max_pending: int
    dropped: int
    unavailable: str | None
    since: datetime | None
    moved_aside: list[str]
    _clock: Clock
    _lock: threading.RLock
    _conn: sqlite3.Connection | None
    _pending: Sized  # the store's queue of failed writes: only counted here
    _next_reopen: datetime
    _next_check: datetime

    def _connect(self, check: bool = False) -> None:
        raise NotImplementedError

    def _flush(self, *, run_id: int | None) -> int:
        raise NotImplementedError

    def _reopen(self) -> bool:
        """(Re)open the database: a damaged one is moved aside and a fresh one started;
        anything else leaves the store unavailable until the next try (REOPEN_EVERY)."""
        self._next_reopen = self._clock.now() + REOPEN_EVERY
        self._close_connection()
        try:
            try:
                self._connect(check=True)
            except HistoryDamaged as err:
                self._set_aside(str(err))
                self._connect(check=True)
        except (HistoryError, OSError) as err:
            self._down(str(err))
            return False
        self._next_check = self._clock.now() + CHECK_EVERY
        return True

    def _set_aside(self, reason: str) -> None:
        self._close_connection()
        target = move_aside(self.path, self._clock.now())  # OSError: unavailable
        self.moved_aside.append(target)
        log.error("history: %s; moved aside to %s, a fresh database started", reason, target)

    def _down(self, reason: str) -> None:
        """Carry on without the database; said once, not at every write."""
        if self.since is None:
            log.error(
                "history: %s; jobs still run, their history waits in memory (at most %d"
                " writes) and the database is tried again every %d s",
                reason,
                self.max_pending,
                REOPEN_EVERY.total_seconds(),
            )
            self.since = self._clock.now()
        self.unavailable = reason
        self._next_reopen = self._clock.now() + REOPEN_EVERY

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _trouble(self, exc: BaseException) -> bool:
        """A failed statement: a damaged file is replaced now (True once a fresh one is
        open); a full, read-only or locked one makes the store unavailable for a while."""
        if not self.resilient:
            return False
        if kind(exc) == "corrupt":
            return self._replace(f"{self.path}: corrupt ({exc})")
        self._down(f"{self.path}: write failed ({exc})")
        return False

    def _replace(self, reason: str) -> bool:
        """Set a damaged file aside and start a fresh one; True if that worked."""
        try:
            self._set_aside(reason)
        except OSError as err:
            self._down(f"{reason}, and it cannot be moved aside: {err}")
            return False
        return self._reopen()

    def maintain(self) -> None:
        """Scheduled care, cheap when nothing is due (writes call it; so may a timer): an
        unavailable database is tried again each minute, a sound one checked hourly."""
        if not self.resilient:
            return
        with self._lock:
            now = self._clock.now()
            if self.unavailable is not None:
                if now >= self._next_reopen and (self._conn is not None or self._reopen()):
                    self._retry_parked()
                return
            if self._conn is not None and now >= self._next_check:
                self._next_check = now + CHECK_EVERY
                problem = check_database_file(self.path)
                if problem:
                    self._replace(f"{self.path}: {problem}")

    def _retry_parked(self) -> None:
        """The database opens again: write what waited, in order; then it is available."""
        self._next_reopen = self._clock.now() + REOPEN_EVERY
        waiting, was = len(self._pending), self.unavailable
        self.unavailable = None  # let _flush try; a failure sets it again (not re-logged)
        try:
            self._flush(run_id=None)
        except HistoryError:
            if self.unavailable is None and self._conn is None:
                self.unavailable = was
            if self.unavailable is not None:
                return
        log.warning(
            "history: %s can be written again (%d waiting write(s) recorded, %d dropped)",
            self.path,
            waiting - len(self._pending),
            self.dropped,
        )
        self.since = None

    def document(self) -> dict[str, object]:
        """The store's state for `smartcronctl status`."""
        return {
            "path": self.path,
            "available": self.unavailable is None,
            "reason": self.unavailable,
            "since": None if self.since is None else self.since.isoformat(),
            "pending_writes": len(self._pending),
            "dropped_writes": self.dropped,
            "moved_aside": list(self.moved_aside),
        }
