"""The SQLite history store: migrations, WAL readers, crash evidence, retention, retries."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.store.history import (
    MIGRATIONS,
    HistoryError,
    HistoryStore,
    HistoryWriteError,
    RunEnd,
    RunStart,
    RunStatus,
    Trigger,
    from_db_time,
    to_db_time,
)
from smartcron.testing import FakeClock

T0 = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)


def start(job_id: str = "alice:3", at: datetime = T0, **kw: object) -> RunStart:
    args: dict[str, object] = {
        "job_id": job_id,
        "source": "/var/spool/cron/crontabs/alice",
        "line": 3,
        "user": "alice",
        "command": "backup --all",
        "scheduled": at,
        "started": at + timedelta(seconds=1),
    }
    args.update(kw)
    return RunStart(**args)  # type: ignore[arg-type]


def ok(at: datetime = T0, **kw: object) -> RunEnd:
    args: dict[str, object] = {"status": "ok", "ended": at + timedelta(seconds=5), "exit_code": 0}
    args.update(kw)
    return RunEnd(**args)  # type: ignore[arg-type]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> HistoryStore:
    where = tmp_path / "h.db" if request.param == "file" else ":memory:"
    opened = HistoryStore.open(where, clock=FakeClock(T0))
    request.addfinalizer(opened.close)
    return opened


def migration_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT name, applied_at FROM migrations ORDER BY rowid").fetchall()


# --- schema and opening ------------------------------------------------------------


def test_migrations_are_recorded_once_and_reopening_is_idempotent(db_path: Path) -> None:
    HistoryStore.open(db_path, clock=FakeClock(T0)).close()
    first = migration_rows(db_path)
    assert [name for name, _ in first] == [m.name for m in MIGRATIONS]
    assert {at for _, at in first} == {"2024-03-31T01:00:00.000000Z"}
    HistoryStore.open(db_path, clock=FakeClock(T0 + timedelta(days=1))).close()
    assert migration_rows(db_path) == first


def test_schema_has_the_tables_indexes_and_pragmas(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert {"runs", "firings", "decisions", "migrations"} <= names
    assert {"runs_job_scheduled", "runs_started", "firings_due"} <= names


def test_a_new_database_file_is_private(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_a_database_from_a_newer_smartcron_is_refused(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO migrations VALUES ('0099_from_the_future', 'x')")
    for readonly in (False, True):
        with pytest.raises(HistoryError, match=r"newer SmartCron.*0099_from_the_future") as info:
            HistoryStore.open(db_path, readonly=readonly)
        assert str(db_path) in str(info.value)


def test_a_corrupt_file_is_a_clear_error_naming_it(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite\x00" * 300)
    with pytest.raises(HistoryError, match="corrupt, or not a database") as info:
        HistoryStore.open(db_path)
    assert str(info.value).startswith(f"{db_path}: ")


def test_another_applications_database_is_left_alone(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(HistoryError, match="not a SmartCron history database"):
        HistoryStore.open(db_path)


def test_a_reader_needs_an_existing_up_to_date_database(db_path: Path) -> None:
    with pytest.raises(HistoryError, match="no history database"):
        HistoryStore.open(db_path, readonly=True)
    HistoryStore.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM migrations WHERE name = ?", (MIGRATIONS[-1].name,))
    with pytest.raises(HistoryError, match="older schema"):
        HistoryStore.open(db_path, readonly=True)


def test_the_next_migration_is_applied_to_an_existing_database(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    HistoryStore.open(db_path).close()
    import smartcron.store.history as history

    extra = history.Migration(name="0099_tags", sql="CREATE TABLE tags (run_id INTEGER);\n")
    monkeypatch.setattr(history, "MIGRATIONS", (*MIGRATIONS, extra))
    HistoryStore.open(db_path).close()
    assert migration_rows(db_path)[-1][0] == "0099_tags"


def test_a_failing_migration_leaves_no_trace(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    HistoryStore.open(db_path).close()
    import smartcron.store.history as history

    bad = history.Migration(name="0099_bad", sql="CREATE TABLE t (x);\nSELECT * FROM nowhere;\n")
    monkeypatch.setattr(history, "MIGRATIONS", (*MIGRATIONS, bad))
    with pytest.raises(HistoryError):
        HistoryStore.open(db_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchone() is None
    assert "0099_bad" not in [name for name, _ in migration_rows(db_path)]


def test_instants_are_fixed_width_utc_text() -> None:
    paris = datetime(2024, 3, 31, 3, 0, tzinfo=UTC).astimezone()
    assert to_db_time(paris) == "2024-03-31T03:00:00.000000Z"
    assert from_db_time("2024-03-31T03:00:00.000000Z") == datetime(2024, 3, 31, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        to_db_time(datetime(2024, 1, 1))


# --- runs --------------------------------------------------------------------------


def test_a_started_run_is_visible_as_running_then_completed(store: HistoryStore) -> None:
    run_id = store.record_start(start(trigger=Trigger.SMART))
    [row] = store.runs()
    assert (row.id, row.status, row.end) == (run_id, RunStatus.RUNNING, None)
    assert row.start == start(trigger=Trigger.SMART)
    usage = {"runtime_s": 4.5, "cpu_s": 0.25, "max_rss_kb": 2048, "output_size": 5}
    end = ok(output=b"done\n", mail_sent=False, mail_reason="no MTA", **usage)
    store.record_end(run_id, end)
    row = store.run(run_id)
    assert row is not None and row.status is RunStatus.OK
    assert row.end == end
    # Listing leaves the output out.
    assert store.runs()[0].end == ok(output=None, mail_sent=False, mail_reason="no MTA", **usage)


def test_runs_are_newest_first_filtered_and_limited(store: HistoryStore) -> None:
    jobs = ["a", "b", "a", "a"]
    ids = [store.record_start(start(job, T0 + timedelta(minutes=i))) for i, job in enumerate(jobs)]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs(job_id="a", limit=2)] == [ids[3], ids[2]]
    assert store.run(999) is None


def test_record_end_needs_a_final_status(store: HistoryStore) -> None:
    run_id = store.record_start(start())
    with pytest.raises(ValueError, match="final status"):
        store.record_end(run_id, ok(status="running"))
    with pytest.raises(ValueError):
        store.record_end(run_id, ok(status="fine"))


def test_spawn_errors_and_timeouts_keep_their_details(store: HistoryStore) -> None:
    a = store.record_start(start())
    store.record_end(a, ok(status="spawn_error", exit_code=None, note="setuid: EPERM"))
    b = store.record_start(start())
    store.record_end(b, ok(status=RunStatus.TIMEOUT, exit_code=None, signal=9, timed_out=True))
    rows = {r.id: r for r in store.runs()}
    assert rows[a].note == "setuid: EPERM" and rows[a].status is RunStatus.SPAWN_ERROR
    assert rows[b].end is not None and (rows[b].end.signal, rows[b].end.timed_out) == (9, True)


def test_runs_left_running_by_a_dead_daemon_become_interrupted(db_path: Path) -> None:
    old = HistoryStore.open(db_path)
    crashed = old.record_start(start())
    finished = old.record_start(start())
    old.record_end(finished, ok())
    old._conn.close()  # the daemon dies without closing anything else

    new = HistoryStore.open(db_path)
    mine = new.record_start(start())  # already started by this daemon: left alone
    assert new.mark_interrupted_runs("daemon restarted") == 1
    rows = {r.id: r for r in new.runs()}
    assert rows[crashed].status is RunStatus.INTERRUPTED
    assert (rows[crashed].note, rows[crashed].end) == ("daemon restarted", None)
    assert rows[finished].status is RunStatus.OK
    assert rows[mine].status is RunStatus.RUNNING
    assert new.mark_interrupted_runs("again") == 0
    new.close()


def test_run_ids_are_never_reused_after_pruning(db_path: Path) -> None:
    with_store = HistoryStore.open(db_path)
    first = with_store.record_start(start())
    with_store.record_end(first, ok())
    assert with_store.prune(timedelta(days=1), T0 + timedelta(days=30)) == 1
    with_store.close()
    again = HistoryStore.open(db_path)
    assert again.record_start(start()) == first + 1
    again.close()


def test_prune_drops_old_finished_rows_only(store: HistoryStore) -> None:
    old_done = store.record_start(start(at=T0 - timedelta(days=40)))
    store.record_end(old_done, ok(T0 - timedelta(days=40)))
    old_running = store.record_start(start(at=T0 - timedelta(days=40)))
    recent = store.record_start(start(at=T0 - timedelta(days=2)))
    store.record_end(recent, ok(T0 - timedelta(days=2)))
    store._conn.executescript(
        """
        INSERT INTO firings (job_id, nominal, deadline, state, created, updated) VALUES
          ('a', 'n1', 'd', 'done', 'c', '2024-01-01T00:00:00.000000Z'),
          ('a', 'n2', 'd', 'pending', 'c', '2024-01-01T00:00:00.000000Z');
        INSERT INTO decisions (firing_id, job_id, at, verdict, reason) VALUES
          (2, 'a', '2024-01-01T00:00:00.000000Z', 'defer', 'on battery'),
          (2, 'a', '2024-03-30T00:00:00.000000Z', 'run', 'idle');
        """
    )
    assert store.prune(timedelta(days=30), T0) == 3
    assert {r.id for r in store.runs()} == {old_running, recent}
    firings = store._conn.execute("SELECT nominal FROM firings").fetchall()
    assert firings == [("n2",)]
    assert store._conn.execute("SELECT reason FROM decisions").fetchall() == [("idle",)]


# --- readers and writers -----------------------------------------------------------


def test_a_reader_never_blocks_on_the_writer_and_sees_committed_rows(db_path: Path) -> None:
    writer = HistoryStore.open(db_path)
    first = writer.record_start(start())
    reader = HistoryStore.open(db_path, readonly=True, busy_timeout_ms=0)
    # The writer holds the write lock mid-transaction: the reader still reads at once.
    writer._conn.execute("BEGIN IMMEDIATE")
    writer._conn.execute("UPDATE runs SET status = 'ok'")
    assert [(r.id, r.status) for r in reader.runs()] == [(first, RunStatus.RUNNING)]
    writer._conn.execute("COMMIT")
    # And a reader in the middle of a read does not stop the writer.
    reader._conn.execute("BEGIN")
    reader._conn.execute("SELECT count(*) FROM runs").fetchone()
    second = writer.record_start(start())
    reader._conn.execute("COMMIT")
    assert [r.id for r in reader.runs()] == [second, first]
    with pytest.raises(HistoryError, match="read-only"):
        reader.record_start(start())
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as raw:
        assert raw.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    reader.close()
    writer.close()


def fill_up(store: HistoryStore) -> None:
    """Make every new page fail with SQLITE_FULL, as a full disk would."""
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_keeps_writes_in_memory_and_retries_them_in_order(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    fill_up(store)
    big = b"x" * 20000
    with pytest.raises(HistoryWriteError, match="full") as info:
        store.record_start(start(command="a" * 5000))
    run_id = info.value.run_id
    assert run_id is not None and store.pending_writes == 1
    with pytest.raises(HistoryWriteError) as info:
        store.record_end(run_id, ok(output=big, output_size=len(big)))
    assert (info.value.pending, info.value.run_id) == (2, run_id)
    assert store.runs() == []

    store._conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    store.flush()
    assert store.pending_writes == 0
    row = store.run(run_id)
    assert row is not None and row.status is RunStatus.OK
    assert row.end is not None and row.end.output == big
    store.close()


def test_a_buffered_write_goes_through_with_the_next_one(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    fill_up(store)
    with pytest.raises(HistoryWriteError):
        store.record_start(start(command="y" * 8000))
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    second = store.record_start(start())
    assert store.pending_writes == 0 and len(store.runs()) == 2
    assert [r.id for r in store.runs()] == [second, second - 1]
    store.close()


def test_the_buffer_is_bounded_and_counts_what_it_dropped(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    store.max_pending = 3
    fill_up(store)
    for _ in range(5):
        with pytest.raises(HistoryWriteError):
            store.record_start(start(command="z" * 5000))
    assert (store.pending_writes, store.dropped) == (3, 2)
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    store.close()  # flushes what is left
    reopened = HistoryStore.open(db_path, readonly=True)
    assert [r.id for r in reopened.runs()] == [5, 4, 3]
    reopened.close()


def _read_as_nobody(path: Path) -> str:
    """In a forked child that became `nobody`: the commands of the runs it can read."""
    import os
    import pwd

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        try:
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            reader = HistoryStore(path, readonly=True)
            said = ",".join(r.start.command for r in reader.runs())
        except Exception as err:
            said = f"error: {err}"
        os.write(write_end, said.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: reads as another user")
def test_a_user_reads_the_systems_history_with_the_daemon_stopped_or_running() -> None:
    """A directory the reader may not write in: SQLite cannot make the -shm file of a
    WAL database for it. Stopped (no -wal), the file is read as immutable; running, the
    daemon's -shm is shared."""
    import shutil
    import tempfile

    system = Path(tempfile.mkdtemp(prefix="schist-"))  # in /tmp: others may traverse
    system.chmod(0o755)
    try:
        _read_the_system_history(system / "history.db")
    finally:
        shutil.rmtree(system)


def _read_the_system_history(db: Path) -> None:
    writer = HistoryStore(db, clock=FakeClock(T0))
    writer.record_end(writer.record_start(start(command="nightly")), ok())
    db.chmod(0o644)
    writer.close()  # the daemon stopped: checkpointed, no -wal nor -shm left
    assert not Path(f"{db}-wal").exists()
    assert _read_as_nobody(db) == "nightly"
    writer = HistoryStore(db, clock=FakeClock(T0))  # running again
    writer.record_end(writer.record_start(start(command="hourly")), ok())
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").chmod(0o644)
    assert _read_as_nobody(db) == "hourly,nightly"
    writer.close()
