"""Clock steps and pending smart firings (issue 11, finding 6), on the FakeClock seam.

Europe/Berlin in February (CET, UTC+1). The smart job `0 2 * * *` window=1h fires at
01:00Z with its deadline at 02:00Z (03:00 CET); on battery (18 % < min_battery 30 %)
it is deferred each minute. `FakeClock.set` steps the wall clock, monotonic time stays:
the daemon must tell such a step from downtime, and say which it was.
cron(8)'s plain-line rules for clock changes are guarded by tests/test_daemon_clock.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartcron.testing import FakeClock, sample_snapshot
from tests.harness import START, make, runs, utc

BACKUP = "#@smart window=1h min_battery=30{extra}\n0 2 * * * backup\n"
DESPITE = "deadline 03:00 reached: running despite battery 18% < min_battery 30%"


def power(level: list[float]):
    """A laptop on battery at level[0] percent (the test changes it)."""
    return lambda now: sample_snapshot(now, battery_percent=level[0], on_ac=False, charging=False)


def feb9(hhmm: str) -> datetime:
    return utc(hhmm) - timedelta(days=1)


def decisions(h, command: str = "backup") -> list[tuple[str, str, str]]:
    return [d for d in h.trail(command) if d[1] != "defer"]


@pytest.mark.parametrize("hours", [2, 5])
def test_a_forward_step_past_the_window_runs_the_firing_once_with_the_step_as_reason(
    tmp_path, hours
):
    h = make(tmp_path, BACKUP.format(extra=""), power([18.0]))
    h.run_until(utc("01:10"))
    assert h.starts == [] and h.firings("backup")[0].firing.state == "pending"
    h.clock.set(utc("01:10") + timedelta(hours=hours))
    after = h.clock.now()
    h.run_until(after + timedelta(minutes=30))
    assert h.starts == [("backup", after.strftime("%H:%MZ"))]
    assert len(runs(h, "backup")) == 1
    (stored,) = h.firings("backup")
    assert stored.firing.state == "done"
    at = after.strftime("%H:%MZ")
    assert decisions(h) == [
        (at, "run", f"the clock was stepped forward by {hours} h past its window; {DESPITE}"),
        (at, "done", "exit 0 in 0 s"),
    ]


def test_a_forward_step_of_five_hours_skips_the_firing_when_on_deadline_is_skip(tmp_path):
    h = make(tmp_path, BACKUP.format(extra=" on_deadline=skip"), power([18.0]))
    h.run_until(utc("01:10"))
    h.clock.set(utc("06:10"))
    h.run_until(utc("07:00"))
    assert h.starts == [] and runs(h, "backup") == []
    (stored,) = h.firings("backup")
    assert stored.firing.state == "skipped"
    assert decisions(h) == [
        (
            "06:10Z",
            "skip",
            "the clock was stepped forward by 5 h past its window; deadline 03:00 reached:"
            " skipped: battery 18% < min_battery 30%",
        )
    ]


def test_a_two_hour_step_back_keeps_evaluating_the_firing_each_minute_and_runs_it_once(
    tmp_path,
):
    level = [18.0]
    h = make(tmp_path, BACKUP.format(extra=""), power(level))
    h.run_until(utc("01:10"))
    h.clock.set(feb9("23:10"))  # 00:10 CET: two hours back
    h.daemon.step()  # the waker's timerfd is cancelled by the step: a wake-up at once
    h.run_until(feb9("23:20"))
    # Re-checked each minute on the new time line, not left until the wall clock
    # reads 01:11 again two real hours later.
    deferred_after_step = [d for d in h.trail("backup") if d[0] > "23:00Z"]
    assert len(deferred_after_step) == 11  # 23:10 to 23:20
    level[0] = 80.0
    h.run_until(utc("03:30"))  # through the 02:00 CET tick a second time, and past it
    assert h.starts == [("backup", "23:21Z")]  # the first check after the battery rose
    assert len(runs(h, "backup")) == 1
    assert [f.firing.state for f in h.firings("backup")] == ["done"]


def test_a_five_hour_step_back_runs_neither_a_pending_nor_a_finished_firing_twice(tmp_path):
    crontab = BACKUP.format(extra="") + "#@smart window=1h\n0 2 * * * report\n"
    level = [18.0]
    h = make(tmp_path, crontab, power(level))
    h.run_until(utc("01:10"))
    assert h.starts == [("report", "01:00Z")]  # report ran at once; backup waits
    h.clock.set(feb9("20:10"))
    h.daemon.step()  # the waker's timerfd is cancelled by the step: a wake-up at once
    level[0] = 80.0
    h.run_until(utc("03:30"))  # 01:00Z comes round again: both lines tick again
    assert h.starts == [("report", "01:00Z"), ("backup", "20:11Z")]
    assert (len(runs(h, "report")), len(runs(h, "backup"))) == (1, 1)
    assert [f.firing.state for f in h.store.firings()] == ["done", "done"]


def _restart(monkeypatch, tmp_path, first_clock: FakeClock, at: datetime, real_s: float):
    """A new daemon on the same state dir at wall time `at`, `real_s` real seconds after
    the first one stopped, on the same boot."""
    clock = FakeClock(at, monotonic=first_clock.monotonic() + real_s, boot_id="boot-1")
    return make(tmp_path, BACKUP.format(extra=""), power([18.0]), clock=clock)


def test_after_real_downtime_on_the_same_boot_the_firing_is_missed_while_not_running(
    tmp_path, monkeypatch
):
    first_clock = FakeClock(START, boot_id="boot-1")
    first = make(tmp_path, BACKUP.format(extra=""), power([18.0]), clock=first_clock)
    first.run_until(utc("01:10"))
    later = datetime(2026, 2, 10, 9, 0, 30, tzinfo=UTC)
    down = (later - utc("01:10")).total_seconds()
    second = _restart(monkeypatch, tmp_path, first_clock, later, down)
    second.run_until(later + timedelta(minutes=2))
    assert second.starts == []
    (stored,) = second.firings("backup")
    assert stored.firing.state == "missed"
    assert second.trail("backup")[-1][2] == (
        "the deadline 03:00 passed while the daemon was not running"
    )


def test_a_clock_step_while_the_daemon_was_down_is_told_from_downtime_by_the_boot_clock(
    tmp_path, monkeypatch
):
    first_clock = FakeClock(START, boot_id="boot-1")
    first = make(tmp_path, BACKUP.format(extra=""), power([18.0]), clock=first_clock)
    first.run_until(utc("01:10"))
    at = utc("01:15") + timedelta(hours=5)  # down 5 minutes, and the clock set 5 h on
    second = _restart(monkeypatch, tmp_path, first_clock, at, 300.0)
    second.run_until(at + timedelta(minutes=5))
    assert second.starts == [("backup", "06:15Z")]
    assert decisions(second) == [
        ("06:15Z", "run", f"the clock was stepped forward by 5 h past its window; {DESPITE}"),
        ("06:15Z", "done", "exit 0 in 0 s"),
    ]
