"""Sending a daemon's runs to its fleet's history (config `history_url`, docs/fleet.md).

The daemon always writes its own SQLite history first; that file is the spool. A run
row waits there with `synced = 0` (every write of the row sets it back to 0) until the
server holds its last version; decisions are append-only, sent past the highest local
id the server holds. The upload is an upsert keyed by (host, local id): a batch sent
twice (a crash between sending and marking) changes nothing. While the server cannot
be reached, plain jobs run as ever: rows wait (bounded by history_days, as the history
itself) and the outage is logged once, its end with the count sent."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from smartcron.store.history import HistoryError, HistoryStore, HistoryUnavailable
from smartcron.store.pgstore import PgHistoryStore
from smartcron.store.runrecords import RUN_COLUMNS

log = logging.getLogger("smartcron")

BATCH = 500  # rows per transaction: one outage's backlog goes in a few round trips
_RUNS = ", ".join((*RUN_COLUMNS, "instance", "host"))
_DECISIONS = "id, firing_id, job_id, at, verdict, until, reason, snapshot, model"


class Uploader:
    """`sync()` sends what waits (the daemon's thread calls it every `every_s`)."""

    def __init__(
        self, history: HistoryStore, remote: Callable[[], PgHistoryStore], every_s: float = 30.0
    ) -> None:
        self.history, self._make_remote = history, remote
        self.remote: PgHistoryStore | None = None
        self.every_s = every_s
        self.down: str | None = None  # why the server cannot be reached, while it cannot
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        """Runs waiting to be sent."""
        with self.history.connection() as conn:
            return int(conn.execute("SELECT count(*) FROM runs WHERE synced = 0").fetchone()[0])

    def sync(self) -> int:
        """Send every waiting row; how many runs were sent. HistoryUnavailable (logged
        once per outage) when the server cannot be reached: the rows wait."""
        total = 0
        try:
            if self.remote is None:
                self.remote = self._make_remote()
            while True:
                n = self._batch(self.remote)
                total += n
                if n < BATCH:
                    break
        except HistoryUnavailable as err:
            if self.history.unavailable is not None:
                raise  # the local history is down: it said so itself (historyguard)
            if self.down is None:
                log.error(
                    "fleet history: %s; jobs still run, their runs wait in %s (%d) and are"
                    " sent when it returns",
                    err,
                    self.history.path,
                    self._pending_quietly(),
                )
            self.down = str(err)
            raise
        self.sent += total
        if self.down is not None:
            log.warning("fleet history: reachable again; %d waiting run(s) sent", total)
            self.down = None
        return total

    def _pending_quietly(self) -> int:
        try:
            return self.pending()
        except HistoryError:
            return -1

    def _batch(self, remote: PgHistoryStore) -> int:
        with self.history.connection() as conn:
            runs = _rows(conn, f"SELECT {_RUNS} FROM runs WHERE synced = 0 ORDER BY id LIMIT ?",
                         (BATCH,))  # fmt: skip
        since = remote.uploaded_decisions()
        with self.history.connection() as conn:
            decisions = _rows(conn, f"SELECT {_DECISIONS} FROM decisions WHERE id > ?"
                              " ORDER BY id LIMIT ?", (since, BATCH))  # fmt: skip
        if not runs and not decisions:
            return 0
        remote.upload(runs, decisions)
        # Marked only if unchanged since read: a run that ended meanwhile is sent again.
        marks = [(r["id"], r["status"]) for r in runs]
        with self.history.connection(write=True) as conn:
            conn.executemany("UPDATE runs SET synced = 1 WHERE id = ? AND status = ?", marks)
        return max(len(runs), len(decisions))

    # ------------------------------------------------------------ the thread

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fleet-upload", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sync_quietly()  # at once: what a previous daemon left waiting goes first
        while not self._stop.wait(self.every_s):
            self.sync_quietly()

    def sync_quietly(self) -> None:
        try:
            self.sync()
        except HistoryError as err:
            if not isinstance(err, HistoryUnavailable):
                log.error("fleet history: %s", err)

    def stop(self) -> None:
        """Stop the thread and send what waits, once (what cannot go waits for the
        next start: nothing is lost)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sync_quietly()
        if self.remote is not None:
            self.remote.close()


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
