"""One contract, two run stores: the same tests on SQLite (every daemon's history) and on
a real PostgreSQL server (a fleet's, tests/pgkit.py). What the daemon and the history
readers rely on: ids, round trips, newest first, host, interruption, retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.store.history import HistoryStore, RunEnd, RunStart, RunStatus, Trigger
from smartcron.store.store import RunStore

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """(host) -> a fresh store of the kind; every store made shares one database."""
    opened: list[RunStore] = []
    if request.param == "sqlite":
        path = tmp_path / "history.db"

        def make(host: str = "host-a") -> RunStore:
            opened.append(HistoryStore.open(path, host=host))
            return opened[-1]
    else:
        from smartcron.store.pgstore import PgHistoryStore

        url = request.getfixturevalue("pg").create_db()

        def make(host: str = "host-a") -> RunStore:
            opened.append(PgHistoryStore(url, host=host))
            return opened[-1]

    yield make
    for store in opened:
        store.close()


def start(job: str = "alice:3", at: datetime = T0, **kw: object) -> RunStart:
    args: dict[str, object] = {
        "job_id": job, "source": "/var/spool/cron/crontabs/alice", "line": 3, "user": "alice",
        "command": "backup --all", "scheduled": at, "started": at + timedelta(seconds=1),
        "trigger": Trigger.SMART, "job_name": "backup",
    }  # fmt: skip
    return RunStart(**(args | kw))  # type: ignore[arg-type]


def test_a_started_run_reads_back_running_with_its_host_and_every_field(make_store) -> None:
    store = make_store("host-a")
    run_id = store.record_start(start())
    row = store.run(run_id)
    assert row is not None and row.id == run_id
    assert (row.status, row.end, row.host) == (RunStatus.RUNNING, None, "host-a")
    assert row.start == start()


def test_an_ended_run_keeps_its_output_bytes_and_figures(make_store) -> None:
    store = make_store()
    run_id = store.record_start(start())
    end = RunEnd(status="failed", ended=T0 + timedelta(seconds=9), exit_code=3, runtime_s=8.5,
                 cpu_s=1.25, max_rss_kb=2048, output_size=4, output=b"\x00\xffok",
                 mail_sent=True, timed_out=False, note="n")  # fmt: skip
    store.record_end(run_id, end)
    row = store.run(run_id)
    assert row is not None and row.end is not None
    assert row.status is RunStatus.FAILED
    assert (row.end.exit_code, row.end.runtime_s, row.end.cpu_s) == (3, 8.5, 1.25)
    assert (row.end.output, row.end.mail_sent, row.end.max_rss_kb) == (b"\x00\xffok", True, 2048)
    assert store.run(run_id, with_output=False).end.output is None  # type: ignore[union-attr]


def test_ids_grow_and_runs_are_newest_first_filtered_by_job_and_limited(make_store) -> None:
    store = make_store()
    ids = [store.record_start(start(job=f"j{i % 2}", at=T0 + timedelta(minutes=i)))
           for i in range(5)]  # fmt: skip
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs("j1")] == [ids[3], ids[1]]
    assert [r.id for r in store.runs(limit=2)] == ids[:2:-1]
    assert store.run(ids[-1] + 1000) is None


def test_a_final_status_is_required_to_end_a_run(make_store) -> None:
    store = make_store()
    run_id = store.record_start(start())
    with pytest.raises(ValueError):
        store.record_end(run_id, RunEnd(status="running", ended=T0))


def test_each_host_writes_its_name_and_reads_every_hosts_rows(make_store) -> None:
    a = make_store("host-a")
    first = a.record_start(start())
    b = make_store("host-b")  # after a's write: a SQLite history has one writer at a time
    second = b.record_start(start(job="bob:1"))
    assert first != second
    assert {(r.start.job_id, r.host) for r in a.runs()} == {("alice:3", "host-a"),
                                                          ("bob:1", "host-b")}  # fmt: skip


def test_a_new_daemon_marks_only_earlier_running_rows_interrupted(make_store) -> None:
    old = make_store("host-a")
    left = old.record_start(start())
    done = old.record_start(start(job="j2"))
    old.record_end(done, RunEnd(status="ok", ended=T0 + timedelta(seconds=3), exit_code=0))
    new = make_store("host-a")
    mine = new.record_start(start(job="j3"))
    assert new.mark_interrupted_runs("the daemon stopped") == 1
    row = new.run(left)
    assert row is not None and (row.status, row.note) == (
        RunStatus.INTERRUPTED,
        "the daemon stopped",
    )
    assert new.run(mine).status is RunStatus.RUNNING  # type: ignore[union-attr]
    assert new.run(done).status is RunStatus.OK  # type: ignore[union-attr]


def test_prune_deletes_finished_runs_older_than_the_cutoff_and_keeps_running_ones(
    make_store,
) -> None:
    store = make_store()
    old = store.record_start(start(at=T0 - timedelta(days=40)))
    store.record_end(old, RunEnd(status="ok", ended=T0 - timedelta(days=40), exit_code=0))
    going = store.record_start(start(at=T0 - timedelta(days=40), job="long"))
    recent = store.record_start(start(at=T0))
    store.prune(timedelta(days=30), T0)
    assert sorted(r.id for r in store.runs()) == sorted([going, recent])
