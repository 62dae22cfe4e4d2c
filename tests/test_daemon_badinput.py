"""What must never stop the daemon or another job: a vanished user, a full history disk."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

from smartcron.store.history import HistoryStore
from smartcron.testing import FakeOutcome, FakeRunner, RecordingMailer
from tests.harness import make_daemon

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


class FullDisk:
    """The store's connection, failing every write as a full disk does (SQLITE_FULL).

    tests/test_history.py drives a real SQLITE_FULL; here only the daemon's reaction
    matters, so the failure is injected where the store meets SQLite.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.full = conn, True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if self.full and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def daemon_with(tmp_path, crontab: str, runner: FakeRunner, store: HistoryStore):
    daemon, _, _ = make_daemon(tmp_path, crontab, START)
    daemon.run_context = replace(
        daemon.run_context, runner=runner, mailer=RecordingMailer(), history=store
    )
    return daemon


def test_a_job_whose_user_was_deleted_is_logged_and_skipped_and_the_next_one_runs(tmp_path, caplog):
    runner = FakeRunner()
    store = HistoryStore.open(tmp_path / "history.db")
    daemon = daemon_with(tmp_path, "0 1 * * * first\n0 2 * * * second\n", runner, store)
    gone, kept = daemon.db.jobs
    gone = replace(gone, owner="deleted-user-xyz")
    with caplog.at_level(logging.ERROR, logger="smartcron"):
        daemon.start(gone, START, "cron")
        daemon.start(kept, START, "cron")
    assert "(deleted-user-xyz) ORPHAN (no passwd entry)" in caplog.text
    assert [request.command for request in runner.requests] == ["second"]


def test_a_full_history_disk_never_stops_the_job_and_its_record_is_kept_for_later(tmp_path, caplog):
    runner = FakeRunner({}, auto=False)
    store = HistoryStore.open(tmp_path / "history.db")
    daemon = daemon_with(tmp_path, "0 1 * * * echo hi\n", runner, store)
    disk = FullDisk(store._conn)
    store._conn = disk  # type: ignore[assignment]
    (job,) = daemon.db.jobs
    with caplog.at_level(logging.ERROR, logger="smartcron"):
        daemon.start(job, START, "cron")
    assert [request.command for request in runner.requests] == ["echo hi"]  # it ran
    assert "history:" in caplog.text and "the job still runs" in caplog.text
    disk.full = False  # space again
    runner.finish(job.id, FakeOutcome(exit_code=0, output=b"hi\n"))
    daemon.collect()
    (row,) = store.runs()
    assert (row.start.command, str(row.status), row.end.exit_code) == ("echo hi", "ok", 0)
