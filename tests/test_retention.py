"""History retention by age: the daemon prunes old runs once a day, never running ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from smartcron.store.history import HistoryStore, RunEnd, RunStart, RunStatus
from tests.harness import make_daemon


def add_run(store: HistoryStore, started: datetime, finished: bool) -> int:
    run_id = store.record_start(
        RunStart(job_id="j", source="f", user="root", command="true", started=started)
    )
    if finished:
        store.record_end(run_id, RunEnd(status=RunStatus.OK, ended=started, exit_code=0))
    return run_id


def test_the_daemon_prunes_runs_older_than_history_days_once_a_day(tmp_path):
    now = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
    daemon, clock, _ = make_daemon(tmp_path, "", now)
    store = HistoryStore.open(tmp_path / "history.db")
    daemon.run_context = replace(daemon.run_context, history=store)
    old = add_run(store, now - timedelta(days=91), finished=True)
    still_running = add_run(store, now - timedelta(days=120), finished=False)
    recent = add_run(store, now - timedelta(days=80), finished=True)
    daemon.step()
    assert sorted(row.id for row in store.runs()) == sorted([still_running, recent])
    add_run(store, now - timedelta(days=95), finished=True)
    clock.advance(timedelta(hours=1))
    daemon.step()  # within the day: no second pass
    assert len(store.runs()) == 3
    clock.advance(timedelta(days=1))
    daemon.step()
    assert len(store.runs()) == 2
    assert old not in [row.id for row in store.runs()]
