"""Issue 11, finding 10: a smart run going when the daemon stops is not a failure.

The process may go on and succeed after the daemon is gone, so its outcome is unknown:
the firing and its run are recorded `interrupted` (never `failed`), never run again nor
retried, shown so by `smartcronctl explain`, and left out of training. The daemon on a
fake clock (tests.test_smart_daemon's harness) on a real SQLite history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai import train
from smartcron.cli.jobs import explain_document
from smartcron.daemon import service
from smartcron.smart.firings import FiringStore
from smartcron.smart.gate import Firing
from smartcron.store.history import HistoryStore, RunEnd, RunStart, RunStatus
from smartcron.testing import FakeOutcome, sample_snapshot
from tests.harness import Harness, make, utc

CRONTAB = "#@smart name=backup window=2h retry=2\n0 2 * * * backup\n"
HOUR = {"backup": [FakeOutcome(duration_s=3600)]}
UNKNOWN = "the daemon stopped while it ran: outcome unknown (not run again)"


def daemon(tmp_path: Path, **options: object) -> Harness:
    """A daemon whose history is where `smartcronctl explain` looks (state/history.db)."""
    (tmp_path / "state").mkdir(parents=True, exist_ok=True)
    history = HistoryStore.open(tmp_path / "state" / "history.db")
    return make(tmp_path, CRONTAB, history=history, **options)  # type: ignore[arg-type]


def runs(h: Harness) -> list:
    return h.history.runs(h.job("backup").id, limit=10)


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
def test_a_smart_run_going_at_a_daemon_stop_is_recorded_interrupted_not_failed(
    tmp_path, monkeypatch, how
):
    first = daemon(tmp_path, outcomes=HOUR)
    first.run_until(utc("01:05"))
    assert first.runner.running == [first.job("backup").id]
    if how == "SIGTERM":  # what serve() does on its way out (the job outlives it)
        monkeypatch.setattr(service, "STOP_GRACE", 0.0)
        service.shutdown(first.daemon)
        # at once, not at the next start: status and list must not show it running
        assert first.store.firings([first.job("backup").id])[0].firing.state == "interrupted"
    first.history.close()
    second = daemon(tmp_path, start=utc("01:10"))
    # serve() on a start: runs an earlier daemon left `running` become interrupted
    second.history.mark_interrupted_runs("the daemon stopped while the job ran")
    second.run_until(utc("03:30"))

    assert second.starts == []  # neither run again nor retried (retry=2, window open)
    (stored,) = second.firings("backup")
    assert stored.firing.state == "interrupted"
    trail = second.trail("backup")
    marked_at = "01:05Z" if how == "SIGTERM" else "01:10Z"  # by the stop, or the next start
    assert trail[-1] == (marked_at, "interrupted", UNKNOWN)
    assert [verdict for _, verdict, _ in trail] == ["run", "interrupted"]
    (run,) = runs(second)
    assert run.status is RunStatus.INTERRUPTED
    # smartcronctl explain says interrupted, nowhere failed
    monkeypatch.setenv("TZ", "UTC")
    doc = explain_document(second.daemon.config, "backup", 5)
    (firing,) = doc["firings"]
    assert firing["state"] == "interrupted"
    assert [r["status"] for r in firing["run_records"]] == ["interrupted"]
    assert firing["trail"][-1] == f"{marked_at[:5]} interrupted: {UNKNOWN}"
    assert "failed" not in json.dumps(doc)


def test_a_smart_run_the_daemon_stops_itself_is_interrupted_and_not_retried(tmp_path):
    h = daemon(tmp_path, outcomes=HOUR)
    h.run_until(utc("01:05"))
    (running,) = h.daemon.running.values()
    handle = running.extra["handle"]
    handle.terminate()  # as a stop that terminates its jobs would (RunResult.interrupted)
    assert handle.wait(5.0) is not None
    h.daemon.collect()
    h.run_until(utc("03:30"))

    assert len(h.runner.requests) == 1  # no retry, although retry=2 and the window is open
    (stored,) = h.firings("backup")
    assert stored.firing.state == "interrupted"
    verdict, reason = h.trail("backup")[-1][1:]
    assert verdict == "interrupted"
    assert reason.startswith("stopped by the daemon (signal 15 after 0 s)")
    (run,) = runs(h)
    assert run.status is RunStatus.INTERRUPTED


# ------------------------------------------------------------------ training

JOB = "crontab-root-backup"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
TINY = {"n_estimators": 8, "max_depth": 4, "min_samples_leaf": 3}


def history_with(path: Path, interrupted: bool) -> Path:
    """60 hourly smart firings of one job, each with its `run` decision and run; every
    fifth is interrupted (half at a SIGTERM stop, half left `running` by a kill -9),
    or, with interrupted=False, not there at all."""
    store = HistoryStore.open(path)
    fstore = FiringStore(store)
    for i in range(60):
        cut = i % 5 == 4
        if cut and not interrupted:
            continue
        at = T0 + timedelta(hours=i)
        stored = fstore.create(Firing(id=None, job_id=JOB, nominal=at, deadline=at + 2 * HOURS), at)
        firing = stored.firing
        snap = sample_snapshot(at, load5=0.1 * (i % 7), cpu_percent=5.0 * (i % 4))
        fstore.record(firing, at, verdict="run", reason="constraints hold", snapshot=snap)
        run_id = store.record_start(
            RunStart(
                job_id=JOB, source="crontab", user="root", command="backup", started=at,
                trigger="smart", scheduled=at, job_name="backup", firing_id=firing.id,
            )
        )  # fmt: skip
        ended = at + timedelta(minutes=5 + i % 3)
        if cut:
            fstore.record(firing, ended, verdict="interrupted", reason=UNKNOWN, state="interrupted")
            if i % 10 == 4:  # a SIGTERM stop records the end; a kill -9 leaves it running
                end = RunEnd(status=RunStatus.INTERRUPTED, ended=ended, note="daemon stopped")
                store.record_end(run_id, end)
            continue
        ok = i % 3 != 0
        status = RunStatus.OK if ok else RunStatus.FAILED
        end = RunEnd(status=status, ended=ended, exit_code=0 if ok else 1, runtime_s=300.0 + i)
        store.record_end(run_id, end)
        fstore.record(
            firing, ended, verdict="done" if ok else "failed", reason="exit", state="done"
        )
    store.close()
    later = HistoryStore.open(path)  # the next daemon marks the kill -9 ones
    later.mark_interrupted_runs("the daemon stopped while the job ran")
    later.close()
    return path


HOURS = timedelta(hours=1)


def test_training_leaves_interrupted_runs_and_firings_out(tmp_path):
    mixed = history_with(tmp_path / "mixed.db", interrupted=True)
    clean = history_with(tmp_path / "clean.db", interrupted=False)
    got, want = train.load_dataset(mixed), train.load_dataset(clean)
    assert len(got.ok) == len(want.ok) == 48  # 60 runs, 12 interrupted
    assert (got.ok == want.ok).all()
    assert (got.X == want.X).all()  # job stats (last outcome, success rate) included
    assert got.dropped == 0
    result = train.train(
        mixed, tmp_path / "model", params=TINY, min_runs=40, min_failures=5, now=T0 + 60 * HOURS
    )
    assert result.card["training"]["rows"] == 48
    assert result.card["training"]["failures"] == 16
