"""The decision engine inside the daemon, on a FakeClock, a ScriptedMonitor and a FakeRunner.

Zone Europe/Berlin in February (CET, UTC+1): 02:00 local is 01:00Z. Jobs run for the
FakeOutcome's duration in virtual time (tests/harness.py): the daemon's own loop runs
on a FakeWaker, which finishes each run when the clock reaches its end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from smartcron.testing import FakeClock, FakeOutcome
from tests.harness import START, Harness, battery, make, runs, utc

# ------------------------------------------------------------------ deferring


def test_a_firing_is_deferred_each_minute_until_the_constraints_hold(tmp_path):
    h = make(tmp_path, "#@smart window=2h min_battery=30\n0 2 * * * backup\n", battery("01:40"))
    h.run_until(utc("01:10"))
    assert h.starts == []
    assert h.daemon.next_wake() == utc("01:11")  # a modest interval, never a busy loop
    h.run_until(utc("02:00"))
    assert h.starts == [("backup", "01:40Z")]
    trail = h.trail("backup")
    assert trail[0] == ("01:00Z", "defer", "battery 18% < min_battery 30%")
    assert len([t for t in trail if t[1] == "defer"]) == 40
    assert trail[-2:] == [
        ("01:40Z", "run", "constraints hold"),
        ("01:40Z", "done", "exit 0 in 0 s"),
    ]
    (stored,) = h.firings("backup")
    assert stored.firing.state == "done" and stored.firing.attempt == 1
    (run,) = runs(h, "backup")
    assert (run.start.trigger, run.start.firing_id) == ("smart", stored.firing.id)
    assert run.start.scheduled == utc("01:00")


def test_a_standalone_job_file_runs_through_the_gate_like_an_annotated_line(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "backup.yaml").write_text(
        "job_name: backup\ncommand: backup --all 100%\nschedule: '0 2 * * *'\n"
        "window: 2h\nmin_battery: 30\n"
    )
    h = make(tmp_path, "", battery("01:40"))
    h.run_until(utc("02:00"))
    # a job file's `%` is an ordinary character: no stdin, and shown as written
    assert h.starts == [("backup --all 100%", "01:40Z")]
    assert h.runner.requests[0].stdin is None
    (run,) = runs(h, "backup --all 100%")
    assert (run.start.trigger, run.start.job_name) == ("smart", "backup")
    assert h.job("backup --all 100\\%").command == "backup --all 100%"
    (jobs / "backup.yaml").unlink()  # removed: its job stops
    h.daemon.reload()
    assert [job.name for job in h.daemon.db.jobs] == []


def test_editing_a_named_jobs_line_keeps_its_open_firing(tmp_path):
    """The firing deferred at 01:00 is the one that runs, with the edited command."""
    h = make(
        tmp_path, "#@smart name=b window=2h min_battery=30\n0 2 * * * backup\n", battery("01:40")
    )
    h.run_until(utc("01:20"))
    (tmp_path / "crontab").write_text(
        "#@smart name=b window=2h min_battery=30\n0 2 * * * backup -v\n"
    )
    h.daemon.reload()
    h.run_until(utc("02:00"))
    assert h.starts == [("backup -v", "01:40Z")]
    (stored,) = h.firings("backup -v")
    assert stored.firing.state == "done" and stored.firing.nominal == utc("01:00")


def test_every_decision_keeps_its_snapshot(tmp_path):
    h = make(tmp_path, "#@smart min_battery=30\n0 2 * * * backup\n", battery("01:02"))
    h.run_until(utc("01:05"))
    (stored,) = h.firings("backup")
    decisions = h.store.decisions(stored.firing.id)  # type: ignore[arg-type]
    assert [d.verdict for d in decisions] == ["defer", "defer", "run", "done"]
    assert decisions[0].snapshot is not None
    assert decisions[0].snapshot["battery_percent"] == 18.0
    assert decisions[2].snapshot["battery_percent"] == 80.0  # type: ignore[index]
    assert decisions[0].until == utc("01:01")


# ------------------------------------------------------------------ deadlines


def test_at_the_deadline_on_deadline_run_runs_despite_the_constraints(tmp_path):
    h = make(tmp_path, "#@smart window=30m min_battery=30\n0 2 * * * backup\n", battery())
    h.run_until(utc("02:00"))
    assert h.starts == [("backup", "01:30Z")]
    assert h.trail("backup")[-2][1:] == (
        "run",
        "deadline 02:30 reached: running despite battery 18% < min_battery 30%",
    )


def test_at_the_deadline_on_deadline_skip_skips(tmp_path):
    crontab = "#@smart window=30m min_battery=30 on_deadline=skip\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, battery())
    h.run_until(utc("02:00"))
    assert h.starts == []
    (stored,) = h.firings("backup")
    assert stored.firing.state == "skipped"
    assert h.trail("backup")[-1] == (
        "01:30Z",
        "skip",
        "deadline 02:30 reached: skipped: battery 18% < min_battery 30%",
    )
    assert h.daemon.engine.next_eval() is None


def test_a_clock_window_waits_for_its_opening(tmp_path):
    h = make(tmp_path, "#@smart window=03:00-04:00\n0 2 * * * backup\n")
    h.run_until(utc("03:00"))
    assert h.starts == [("backup", "02:00Z")]  # 03:00 CET
    assert h.trail("backup")[0] == ("01:00Z", "defer", "window opens at 03:00")


# ------------------------------------------------------------------ retries, timeout


def test_failed_runs_are_retried_with_backoff_inside_the_window(tmp_path):
    crontab = "#@smart window=1h retry=3 retry_delay=5m\n0 2 * * * backup\n"
    fail = FakeOutcome(exit_code=1, duration_s=60)
    outcomes = {"backup": [fail, fail, FakeOutcome(duration_s=60)]}
    h = make(tmp_path, crontab, outcomes=outcomes)
    h.run_until(utc("02:00"))
    # runs at 01:00, fails at 01:01; +5m -> 01:06, fails at 01:07; +10m -> 01:17, succeeds.
    assert h.starts == [("backup", "01:00Z"), ("backup", "01:06Z"), ("backup", "01:17Z")]
    assert [r.start.trigger for r in runs(h, "backup")] == ["smart", "retry", "retry"]
    assert [t for t in h.trail("backup") if t[1] in ("retry", "done")] == [
        ("01:01Z", "retry", "exit 1 in 60 s; retry 1 of 3 at 02:06"),
        ("01:07Z", "retry", "exit 1 in 60 s; retry 2 of 3 at 02:17"),
        ("01:18Z", "done", "exit 0 in 60 s"),
    ]
    (stored,) = h.firings("backup")
    assert (stored.firing.state, stored.firing.attempt) == ("done", 3)


def test_no_retry_falls_after_the_deadline(tmp_path):
    crontab = "#@smart window=20m retry=5 retry_delay=5m\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, outcomes={"backup": [FakeOutcome(exit_code=2, duration_s=60)]})
    h.run_until(utc("02:00"))
    # 01:00 -> 01:06 -> 01:17; the next would be 01:38, after the 01:20 deadline.
    assert [when for _, when in h.starts] == ["01:00Z", "01:06Z", "01:17Z"]
    (stored,) = h.firings("backup")
    assert stored.firing.state == "failed"
    assert h.trail("backup")[-1] == (
        "01:18Z",
        "failed",
        "exit 2 in 60 s; no retry before the deadline",
    )


def test_a_timeout_kills_the_run_and_is_recorded(tmp_path):
    crontab = "#@smart timeout=30s\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, outcomes={"backup": [FakeOutcome(duration_s=600)]})
    h.run_until(utc("01:20"))
    assert h.runner.requests[0].timeout == 30.0
    (run,) = runs(h, "backup")
    assert run.status == "timeout" and run.end is not None and run.end.timed_out
    (stored,) = h.firings("backup")
    assert stored.firing.state == "failed"
    assert h.trail("backup")[-1][1:] == ("failed", "timed out after 30 s")


# ------------------------------------------------------------------ priority, cap, overlap


def test_priority_order_and_the_global_cap(tmp_path):
    crontab = (
        "#@smart priority=1\n0 2 * * * low\n"
        "#@smart priority=9\n0 2 * * * high\n"
        "#@smart\n0 2 * * * mid\n"
    )
    ten_min = FakeOutcome(duration_s=600)
    outcomes = {"low": [ten_min], "high": [ten_min], "mid": [ten_min]}
    h = make(tmp_path, crontab, outcomes=outcomes, max_concurrent=1)
    h.run_until(utc("02:00"))
    # each starts the moment the previous run ends (event-driven, not on a poll)
    assert h.starts == [("high", "01:00Z"), ("low", "01:10Z"), ("mid", "01:20Z")]
    waits = [t for t in h.trail("mid") if t[1] == "defer"]
    assert waits == [("01:00Z", "defer", "waiting: 1 smart job(s) running (max_concurrent 1)")]


def overlap_harness(tmp_path: Path, policy: str) -> Harness:
    crontab = f"#@smart window=30m overlap={policy}\n*/5 * * * * sync\n"
    h = make(tmp_path, crontab, outcomes={"sync": [FakeOutcome(duration_s=420)]})
    h.run_until(utc("01:12"))
    return h


def test_overlap_allow_runs_beside_the_previous_run(tmp_path):
    h = overlap_harness(tmp_path, "allow")
    assert [when for _, when in h.starts] == ["01:00Z", "01:05Z", "01:10Z"]


def test_overlap_skip_skips_a_firing_while_the_previous_run_goes_on(tmp_path):
    h = overlap_harness(tmp_path, "skip")
    assert [when for _, when in h.starts] == ["01:00Z", "01:10Z"]
    states = [s.firing.state for s in reversed(h.firings("sync"))]
    assert states == ["done", "skipped", "running"]
    assert ("01:05Z", "skip", "previous run still going (overlap=skip)") in h.trail("sync")


def test_overlap_queue_starts_the_next_firing_when_the_previous_run_ends(tmp_path):
    h = overlap_harness(tmp_path, "queue")
    assert [when for _, when in h.starts] == ["01:00Z", "01:07Z"]
    assert ("01:05Z", "defer", "waiting for the previous run (overlap=queue)") in h.trail("sync")


# ------------------------------------------------------------------ mail


def test_mail_error_mails_only_failed_runs_and_mail_never_nothing(tmp_path):
    crontab = (
        "#@smart mail=error\n0 2 * * * good\n"
        "#@smart mail=error\n0 2 * * * bad\n"
        "#@smart mail=never\n0 2 * * * quiet\n"
        "0 2 * * * plain\n"
    )
    said = FakeOutcome(output=b"hello\n")
    outcomes = {"good": [said], "bad": [FakeOutcome(exit_code=1, output=b"oops\n")]}
    outcomes |= {"quiet": [FakeOutcome(exit_code=1, output=b"x\n")], "plain": [said]}
    h = make(tmp_path, crontab, outcomes=outcomes)
    h.run_until(utc("01:05"))
    subjects = [m.message.split(b"Subject: ")[1].split(b"\n")[0] for m in h.mailer.sent]
    assert sorted(s.rsplit(b" ", 1)[-1] for s in subjects) == [b"bad", b"plain"]
    reasons = {r.start.command: r.end.mail_reason for r in runs(h, "good") + runs(h, "quiet")}
    assert reasons == {"good": "mail=error: the run succeeded", "quiet": "mail=never"}


# ------------------------------------------------------------------ restarts


def test_a_restart_in_the_middle_of_the_window_resumes_the_firing_and_runs_it_once(tmp_path):
    crontab = "#@smart window=2h min_battery=30\n0 2 * * * backup\n"
    first = make(tmp_path, crontab, battery("01:30"))
    first.run_until(utc("01:20"))
    assert first.starts == []
    # the daemon dies; a new one starts at 01:25 on the same database
    second = make(tmp_path, crontab, battery("01:30"), start=utc("01:25"))
    second.run_until(utc("03:30"))
    assert second.starts == [("backup", "01:30Z")]
    (stored,) = second.firings("backup")
    assert stored.firing.state == "done"
    assert len(runs(second, "backup")) == 1


def test_a_firing_left_running_by_a_dead_daemon_is_not_run_again(tmp_path):
    crontab = "#@smart window=2h\n0 2 * * * backup\n"
    first = make(tmp_path, crontab, outcomes={"backup": [FakeOutcome(duration_s=3600)]})
    first.run_until(utc("01:05"))
    assert first.runner.running == [first.job("backup").id]
    second = make(tmp_path, crontab, start=utc("01:10"))
    second.run_until(utc("02:00"))
    assert second.starts == []
    (stored,) = second.firings("backup")
    assert stored.firing.state == "interrupted"  # outcome unknown, not a failure
    assert "not run again" in second.trail("backup")[-1][2]


def test_a_firing_whose_window_ended_long_before_the_restart_is_missed(tmp_path):
    crontab = "#@smart window=1h min_battery=30\n0 2 * * * backup\n"
    first = make(tmp_path, crontab, battery())
    first.run_until(utc("01:10"))
    later = datetime(2026, 2, 10, 9, 0, 30, tzinfo=UTC)
    # the same boot: the daemon was down, not the machine (that is catch-up's business)
    mono = first.clock.monotonic() + (later - first.clock.now()).total_seconds()
    clock = FakeClock(later, monotonic=mono, boot_id=first.clock.boot_id())
    second = make(tmp_path, crontab, battery(), clock=clock)
    second.run_until(later + timedelta(minutes=2))
    assert second.starts == []
    (stored,) = second.firings("backup")
    assert stored.firing.state == "missed"
    assert second.trail("backup")[-1][2] == (
        "the deadline 03:00 passed while the daemon was not running"
    )


# ------------------------------------------------------------------ modes, plain lines, errors


def test_cron_mode_ignores_annotations(tmp_path):
    h = make(tmp_path, "#@smart min_battery=30\n0 2 * * * backup\n", battery(), mode="cron")
    h.run_until(utc("01:30"))
    assert h.starts == [("backup", "01:00Z")]
    assert (h.daemon.mode, h.store.decision_count()) == ("cron", 0)
    assert runs(h, "backup")[0].start.trigger == "cron"


def test_legacy_is_the_mode_until_a_model_exists_and_status_says_why(tmp_path):
    from smartcron.daemon.service import status_document

    h = make(tmp_path, "#@smart name=b\n0 2 * * * backup\n0 3 * * * plain\n")
    doc = status_document(h.daemon, START)
    assert (doc["mode"], doc["mode_reason"]) == (
        "legacy",
        "no usable model yet: rules only (hard constraints, no model)",
    )
    assert [(j["name"], j["smart"]) for j in doc["jobs"]] == [("b", True), (None, False)]


def test_plain_lines_never_touch_the_gate(tmp_path):
    h = make(tmp_path, "*/10 * * * * plain\n0 2 * * * nightly\n", battery())
    h.run_until(utc("01:25"))
    assert [when for cmd, when in h.starts if cmd == "plain"] == ["01:00Z", "01:10Z", "01:20Z"]
    assert ("nightly", "01:00Z") in h.starts
    assert h.store.decision_count() == 0 and h.store.firings() == []
    assert h.monitor.calls == []


def test_a_bad_annotation_runs_the_line_as_plain_cron_with_a_warning(tmp_path):
    h = make(tmp_path, "#@smart min_battery=lots\n0 2 * * * backup\n", battery())
    (loaded,) = h.daemon.db.files.values()
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"{tmp_path / 'crontab'}:1: min_battery: ")
    assert loaded.warnings[0].endswith("; the line runs as plain cron")
    h.run_until(utc("01:30"))
    assert h.starts == [("backup", "01:00Z")]
    assert h.store.decision_count() == 0


def test_a_companion_file_sets_keys_and_a_bad_one_is_only_a_warning(tmp_path):
    companion = tmp_path / "crontab.smart.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    companion.write_text("jobs:\n  b:\n    min_battery: 30\n")
    h = make(tmp_path, "#@smart name=b\n0 2 * * * backup\n", battery())
    assert h.job("backup").smart.min_battery == 30  # type: ignore[union-attr]
    companion.write_text("jobs:\n  b:\n    min_battery: lots\n")
    h.daemon.reload()
    assert h.job("backup").smart.min_battery is None  # type: ignore[union-attr]
    (loaded,) = h.daemon.db.files.values()
    assert any("min_battery" in w for w in loaded.warnings)
