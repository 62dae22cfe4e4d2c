"""after= inside the real daemon (issue 16.5): the engine on a FakeClock and a
ScriptedMonitor (tests/harness.py), the history across a restart, and explain's text.

Zone Europe/Berlin in February: 02:00 local is 01:00Z; reasons read local times.
"""

from __future__ import annotations

from datetime import timedelta

from smartcron.daemon.explain import explain_job
from smartcron.store.history import HistoryStore
from smartcron.testing import FakeClock, FakeOutcome
from tests.harness import START, battery, make, utc

CHAIN = (
    "#@smart name=backup window=2h min_battery=30\n0 2 * * * backup\n"
    "#@smart name=upload window=3h after=backup\n{minute} {hour} * * * upload\n"
)
TEN_MINUTES = {"backup": [FakeOutcome(duration_s=600)]}


def test_the_daemon_starts_upload_right_after_backup_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")  # explain reads the system zone: the daemon's
    tab = CHAIN.format(minute=0, hour=2)
    clock = FakeClock(START)
    (tmp_path / "state").mkdir()  # the history where explain looks for it (history_db)
    history = HistoryStore.open(tmp_path / "state" / "history.db", clock=clock)
    h = make(tmp_path, tab, battery("01:40"), clock=clock, history=history, outcomes=TEN_MINUTES)
    h.run_until(utc("03:00"))
    # backup waits for the battery until 01:40Z, runs 10 minutes; upload follows it
    assert h.starts == [("backup", "01:40Z"), ("upload", "01:50Z")]
    trail = h.trail("upload")
    assert trail == [
        ("01:00Z", "defer", "waiting for backup (due 02:00, not started yet)"),
        ("01:40Z", "defer", "waiting for backup (running since 02:40)"),
        ("01:50Z", "run", "backup succeeded at 02:50; constraints hold"),
        ("01:50Z", "done", "exit 0 in 0 s"),
    ]
    (firing,) = explain_job(h.daemon.config, "upload", limit=5).firings
    assert list(firing.trail) == [
        "02:00 deferred until 05:00: waiting for backup (due 02:00, not started yet)",
        "02:40 deferred until 05:00: waiting for backup (running since 02:40)",
        "02:50 ran (backup succeeded at 02:50; constraints hold); exit 0 in 0 s",
    ]


def test_a_failed_backup_makes_upload_run_at_its_deadline_saying_why(tmp_path):
    failing = {"backup": [FakeOutcome(exit_code=1, duration_s=120)]}
    h = make(tmp_path, CHAIN.format(minute=0, hour=2), outcomes=failing)
    h.run_until(utc("04:30"))
    assert h.starts == [("backup", "01:00Z"), ("upload", "04:00Z")]
    assert h.trail("upload")[-3:] == [
        ("01:02Z", "defer", "after backup: failed at 02:02"),
        ("04:00Z", "run", "deadline 05:00 reached: running despite after backup: failed at 02:02"),
        ("04:00Z", "done", "exit 0 in 0 s"),
    ]


def test_a_restarted_daemon_finds_the_dependency_s_success_in_the_history(tmp_path):
    tab = CHAIN.format(minute=0, hour=3)  # upload at 03:00 local, an hour after backup
    first = make(tmp_path, tab, outcomes=TEN_MINUTES)
    first.run_until(utc("01:30"))
    assert first.starts == [("backup", "01:00Z")]
    again = make(tmp_path, tab, clock=first.clock, history=first.history, outcomes=TEN_MINUTES)
    again.run_until(utc("02:30"))
    assert again.starts == [("upload", "02:00Z")]
    assert again.trail("upload")[0] == (
        "02:00Z",
        "run",
        "backup succeeded at 02:10; constraints hold",
    )


def test_status_warns_of_unknown_names_and_cycles_across_the_loaded_files(tmp_path):
    tab = (
        "#@smart name=upload after=bakup\n0 2 * * * upload\n"
        "#@smart name=a after=b\n0 3 * * * a\n#@smart name=b after=a\n0 4 * * * b\n"
    )
    h = make(tmp_path, tab)
    (loaded,) = h.daemon.db.files.values()
    path = loaded.path
    assert [w for w in loaded.warnings if ": after: " in w] == [
        f"{path}:1: after: no job named 'bakup'",
        f"{path}:3: after: a cycle: a -> b -> a",
        f"{path}:5: after: a cycle: b -> a -> b",
    ]
    # a job file of the same user named backup: known now, once the files are reread
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "bakup.yaml").write_text(
        "job_name: bakup\ncommand: backup\nschedule: '0 1 * * *'\n"
    )
    h.daemon.reload()
    warnings = h.daemon.db.files[path].warnings
    assert [w for w in warnings if ": after: " in w] == [
        f"{path}:3: after: a cycle: a -> b -> a",
        f"{path}:5: after: a cycle: b -> a -> b",
    ]


def test_a_resumed_waiter_is_looked_at_once_the_jobs_are_loaded(tmp_path):
    """backup ended while no daemon ran (here: written into the history), so no wake-up
    reached upload, deferred until its deadline: the restarted daemon looks at it."""
    tab = CHAIN.format(minute=0, hour=2)
    first = make(tmp_path, tab, battery("01:40"))
    first.run_until(utc("01:20"))
    (backup,) = first.firings("backup")
    (upload,) = first.firings("upload")
    assert upload.next_eval == utc("04:00")  # woken only when backup's firing moves
    first.store.record(backup.firing, utc("01:21"), verdict="done", reason="exit 0", state="done")
    again = make(tmp_path, tab, clock=first.clock, history=first.history)
    again.clock.advance(timedelta(minutes=2))  # the daemon starts again at 01:22Z
    again.run_until(utc("01:23"))
    assert again.starts == [("upload", "01:22Z")]
    assert again.trail("upload")[-2][1:] == ("run", "backup succeeded at 02:21; constraints hold")
