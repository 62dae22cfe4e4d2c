"""Catch-up after a suspend or a power-off (issue 16, point 1), in the daemon on a fake clock.

Europe/Berlin in February (tests/harness.py): 02:00 local is 01:00Z. A suspend moves the
wall and boottime clocks but not the monotonic one (FakeClock.advance(suspended=True));
`clock.set` is `date -s` (only the wall clock moves); a new FakeClock is a new boot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.clock import Sleep
from smartcron.cron.crontab import parse_timespec
from smartcron.smart import catchup
from smartcron.smart.smartspec import SmartSpec
from smartcron.store.journal import DOWN, Journal
from smartcron.testing import FakeClock
from tests.harness import Harness, battery, make, utc

BACKUP = "#@smart name=backup window=1h\n0 2 * * * backup\n"
PLAIN = "0 2 * * * plain-fixed\n*/30 * * * * plain-wild\n"


def suspend(h: Harness, delta: timedelta) -> None:
    """The lid closed for `delta`; at resume the timerfd (its instant past) wakes the daemon."""
    h.clock.advance(delta, suspended=True)
    h.daemon.step()


def test_a_smart_firing_whose_window_passed_in_a_suspend_runs_once_at_resume(tmp_path):
    h = make(tmp_path, BACKUP + PLAIN, start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=4, minutes=5))  # lid closed 00:55-05:00Z
    h.run_until(utc("07:00"))
    assert [s for s in h.starts if s[0] == "backup"] == [("backup", "05:00Z")]
    caught = [t for t in h.trail("backup") if t[1] == "catchup"]
    assert caught == [
        (
            "05:00Z",
            "catchup",
            "the machine was suspended for 4 h 5 min over its window: caught up,"
            " deadline 07:00 (catchup=once, catchup_window=1h)",
        )
    ]
    (stored,) = h.firings("backup")
    assert (stored.firing.nominal, stored.firing.state) == (utc("01:00"), "done")
    assert stored.firing.deadline == utc("06:00")  # resume + the job's own window
    # cron(8): a jump of more than 3 hours is a correction, plain lines do not catch up
    assert ("plain-fixed", "05:00Z") not in h.starts


def test_a_wall_clock_step_over_the_window_is_not_a_suspend_and_catches_nothing_up(tmp_path):
    h = make(tmp_path, BACKUP, start=utc("00:50"))
    h.run_until(utc("00:55"))
    h.clock.set(h.clock.now() + timedelta(hours=4, minutes=5))  # date -s: no suspend
    h.daemon.step()
    h.run_until(utc("07:00"))
    assert h.starts == []
    assert h.firings("backup") == []
    assert h.daemon.watch.sleep is None and h.daemon.jumps  # seen as a step, not a sleep


@pytest.mark.parametrize("gap", [timedelta(minutes=4), timedelta(hours=2), timedelta(hours=5)])
def test_plain_lines_keep_crons_rules_whether_the_clock_was_stepped_or_suspended(tmp_path, gap):
    """Debian's cron sees a resume as a clock step: the same plain runs either way."""
    seen = []
    for how in ("step", "suspend"):
        h = make(tmp_path / how, PLAIN, start=utc("00:50"))
        h.run_until(utc("00:55"))
        if how == "step":
            h.clock.set(h.clock.now() + gap)
            h.daemon.step()  # the timerfd wakes the daemon at once
        else:
            suspend(h, gap)
        h.run_until(utc("00:55") + gap + timedelta(minutes=40))
        seen.append(h.starts)
    assert seen[0] == seen[1]
    if gap == timedelta(hours=2):  # the fixed-time job skipped over runs at the jump
        assert ("plain-fixed", "02:55Z") in seen[1]


@pytest.mark.parametrize(("mode", "runs"), [("once", 1), ("all", 6), ("no", 0)])
def test_catchup_once_runs_one_firing_all_runs_each_and_no_none(tmp_path, mode, runs):
    crontab = f"#@smart name=sync window=20m catchup={mode}\n0 * * * * sync\n"
    h = make(tmp_path, crontab, start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=5, minutes=35))  # 00:55 -> 06:30Z
    h.run_until(utc("06:50"))  # 01:00 ... 06:00 missed (06:00's window closed at 06:20)
    late = [at for command, at in h.starts if command == "sync"]
    assert late == ["06:30Z"] * runs
    states = sorted(stored.firing.state for stored in h.firings("sync"))
    assert states.count("done") == runs
    if mode == "once":
        (done,) = [s for s in h.firings("sync") if s.firing.state == "done"]
        assert done.firing.nominal == utc("06:00")  # the latest of those missed


def test_no_catch_up_when_a_firing_is_still_inside_its_window_at_resume(tmp_path):
    crontab = "#@smart name=sync window=45m\n0 * * * * sync\n"
    h = make(tmp_path, crontab, start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=5, minutes=25))  # 06:20Z: 06:00 is open
    h.run_until(utc("06:40"))
    assert h.starts == [("sync", "06:20Z")]
    assert [s.firing.nominal for s in h.firings("sync") if s.firing.state == "done"] == [
        utc("06:00")
    ]


def test_a_caught_up_firing_waits_for_its_constraints_inside_the_catchup_window(tmp_path):
    crontab = "#@smart name=backup window=1h min_battery=30 catchup_window=3h\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, battery("05:40"), start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=4, minutes=5))
    h.run_until(utc("09:00"))
    assert h.starts == [("backup", "05:40Z")]  # the next good moment after resume
    (stored,) = h.firings("backup")
    assert stored.firing.deadline == utc("08:00")


def test_a_power_off_between_two_journaled_minutes_catches_up_smart_firings_only(tmp_path):
    first = make(tmp_path, BACKUP + PLAIN, start=utc("00:50"))
    first.run_until(utc("00:55"))  # the last journaled minute
    # powered off; the next boot (another boot id) starts a daemon at 05:00Z
    second = make(tmp_path, BACKUP + PLAIN, start=utc("05:00"), history=first.history)
    assert second.clock.boot_id() != first.clock.boot_id()
    second.run_until(utc("07:00"))
    assert [s for s in second.starts if s[0] == "backup"] == [("backup", "05:00Z")]
    assert "plain-fixed" not in [command for command, _ in second.starts]
    reasons = {item.label.split(":")[-1]: item.reason for item in Journal(second.history).not_run()}
    assert reasons["3"] == DOWN  # plain-fixed: cron does not catch up
    assert reasons["2"].startswith("the machine was off for 4 h 5 min over its window")
    (stored,) = second.firings("backup")
    assert (stored.firing.state, stored.firing.deadline) == ("done", utc("06:00"))


def test_a_restart_on_the_same_boot_is_downtime_not_a_power_off(tmp_path):
    first = make(tmp_path, BACKUP, start=utc("00:50"))
    first.run_until(utc("00:55"))
    gap = (utc("05:00") - first.clock.now()).total_seconds()
    clock = FakeClock(utc("05:00"), monotonic=first.clock.monotonic() + gap,
                      boot_id=first.clock.boot_id())  # fmt: skip
    second = make(tmp_path, BACKUP, clock=clock, history=first.history)
    second.run_until(utc("07:00"))
    assert second.starts == []


def test_boottime_runs_with_monotonic_time_and_on_through_a_suspend():
    import time as systime

    from smartcron.clock import SystemClock

    real = SystemClock()
    mono, boot = real.monotonic(), real.boottime()
    assert boot >= mono  # CLOCK_BOOTTIME = CLOCK_MONOTONIC + the time suspended
    systime.sleep(0.05)
    assert 0.04 < real.boottime() - boot < 5 and 0.04 < real.monotonic() - mono < 5
    fake = FakeClock(utc("00:00"))
    fake.advance(timedelta(minutes=10))
    fake.advance(timedelta(hours=2), suspended=True)
    assert (fake.monotonic(), fake.boottime()) == (1600.0, 1600.0 + 7200.0)
    assert fake.now() == utc("02:10")


def test_explain_tells_the_catch_up(tmp_path):
    from smartcron.cli.jobs import trail_lines
    from tests.harness import BERLIN

    h = make(tmp_path, BACKUP, start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=4, minutes=5))
    h.run_until(utc("05:10"))
    (stored,) = h.firings("backup")
    lines = trail_lines(h.store.decisions(stored.firing.id), BERLIN)  # type: ignore[arg-type]
    assert lines[0] == (
        "06:00 catchup: the machine was suspended for 4 h 5 min over its window: caught up,"
        " deadline 07:00 (catchup=once, catchup_window=1h)"
    )
    assert lines[1].startswith("06:00 ran (constraints hold)")


def test_a_short_suspend_catches_up_the_firing_crons_rules_replayed(tmp_path):
    """Under 3 hours cron's rules replay the skipped fixed-time tick: that firing, its
    window already gone, is the one caught up (once, not twice)."""
    h = make(tmp_path, BACKUP.replace("window=1h", "window=20m"), start=utc("00:50"))
    h.run_until(utc("00:55"))
    suspend(h, timedelta(hours=2))  # 00:55 -> 02:55Z, over 01:00-01:20
    h.run_until(utc("04:00"))
    assert h.starts == [("backup", "02:55Z")]
    (stored,) = h.firings("backup")
    assert stored.firing.deadline == utc("03:15")
    assert [t[1] for t in h.trail("backup")] == ["catchup", "run", "done"]


@given(
    expr=st.sampled_from(["*/7 * * * *", "0 * * * *", "15 */3 * * *", "@daily", "30 6 * * 1"]),
    window_m=st.integers(min_value=0, max_value=600),
    mode=st.sampled_from(["once", "all", "no"]),
    fell=st.integers(min_value=0, max_value=3 * 1440),
    slept=st.integers(min_value=1, max_value=4 * 1440),
)
@settings(max_examples=60, deadline=None)
def test_the_plan_never_bursts_unless_all_and_only_catches_windows_passed_asleep(
    expr, window_m, mode, fell, slept
):
    spec = SmartSpec(window=timedelta(minutes=window_m), catchup=mode)

    class Job:
        id, owner, zone, smart = "j", "alice", None, spec

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    sleep = Sleep(t0 + timedelta(minutes=fell), t0 + timedelta(minutes=fell + slept), "suspend")
    found = catchup.plan([(Job(), parse_timespec(expr))], {}, sleep, sleep.end, UTC)
    assert len(found.catch) <= {"once": 1, "all": catchup.MAX_ALL, "no": 0}[mode]
    for item in found.catch:
        assert sleep.start < item.nominal <= sleep.end  # ticked in the sleep
        assert sleep.start < item.nominal + spec.window <= sleep.end  # its window passed then
        assert item.deadline == sleep.end + spec.window and not item.open
    for _, nominal in found.fresh:
        assert nominal + spec.window > sleep.end  # still in its window: an ordinary firing
    if mode == "once" and found.fresh:
        assert found.catch == []  # a firing in its window runs instead
