"""A suspend while the daemon was stopped, on the same boot (issue 16 follow-up): the
journal keeps the boottime clock with each minute, so the next daemon tells the suspend
(boottime went on, monotonic time did not) from a clock step (`date -s`: neither did)
and from plain downtime (both went on). Europe/Berlin in February: 02:00 is 01:00Z.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from smartcron.clock import Jump, Sleep
from smartcron.store.journal import Journal, WakeupRecord, restart_jump, restart_sleep
from tests.harness import make, utc

BACKUP = "#@smart name=backup window=1h\n0 2 * * * backup\n"  # 01:00Z, deadline 02:00Z
PLAIN = "0 2 * * * plain-fixed\n"
CAUGHT = (
    "the machine was suspended for 4 h 5 min over its window: caught up,"
    " deadline 07:00 (catchup=once, catchup_window=1h)"
)


def test_a_suspend_while_the_daemon_was_stopped_is_caught_up_not_taken_for_a_step(tmp_path):
    first = make(tmp_path, BACKUP + PLAIN, start=utc("00:50"))
    first.run_until(utc("00:55"))  # the last journaled minute; then the daemon stops
    clock = first.clock
    clock.advance(timedelta(hours=4, minutes=5), suspended=True)  # the lid closed 00:55-05:00Z
    second = make(tmp_path, BACKUP + PLAIN, clock=clock, history=first.history)
    assert second.clock.boot_id() == first.clock.boot_id()
    second.run_until(utc("07:00"))
    assert second.daemon.jumps == []  # no clock step
    assert second.starts == [("backup", "05:00Z")]  # plain lines: cron does not catch up
    assert [t for t in second.trail("backup") if t[1] == "catchup"] == [
        ("05:00Z", "catchup", CAUGHT)
    ]
    reasons = {item.label.split(":")[-1]: item.reason for item in Journal(second.history).not_run()}
    assert (
        reasons["3"] == "not run: the daemon was not running at its time (cron does not catch up)"
    )
    assert (
        reasons["2"]
        == "the machine was suspended for 4 h 5 min over its window: left to catchup=once"
    )


def test_a_clock_step_while_the_daemon_was_stopped_is_still_a_step_and_catches_nothing_up(
    tmp_path,
):
    first = make(tmp_path, BACKUP + PLAIN, start=utc("00:50"))
    first.run_until(utc("00:55"))
    clock = first.clock
    clock.set(clock.now() + timedelta(hours=4, minutes=5))  # date -s: only the wall clock
    second = make(tmp_path, BACKUP + PLAIN, clock=clock, history=first.history)
    second.run_until(utc("07:00"))
    assert second.starts == []
    assert [(j.end - j.start) for j in second.daemon.jumps] == [timedelta(hours=4, minutes=5)]
    assert [t for t in second.trail("backup") if t[1] == "catchup"] == []


def test_the_journal_row_s_boottime_tells_downtime_a_suspend_and_a_step_apart():
    old = WakeupRecord(utc_minute=0, at=utc("00:55"), boot_id="b", mono=100.0, plain=(),
                       complete=True)  # fmt: skip
    now, gap = utc("05:00"), 4 * 3600 + 5 * 60
    # a row written before migration 0005 (no boottime): the monotonic rule, as before
    assert restart_jump(old, now, "b", 100.0, 100.0 + gap) == Jump(utc("00:55"), now)
    assert restart_sleep(old, now, "b", 100.0, 100.0 + gap) is None
    row = replace(old, boottime=100.0)
    assert restart_jump(row, now, "b", 100.0, 100.0 + gap) is None  # all of it suspended
    assert restart_sleep(row, now, "b", 100.0, 100.0 + gap) == Sleep(utc("00:55"), now, "suspend")
    # an hour awake while stopped, then suspended: the suspend is taken to end at the restart
    awake = 3600.0
    assert restart_jump(row, now, "b", 100.0 + awake, 100.0 + gap) is None
    slept = restart_sleep(row, now, "b", 100.0 + awake, 100.0 + gap)
    assert slept == Sleep(utc("01:55"), now, "suspend")
    assert restart_sleep(row, now, "b", 100.0 + gap, 100.0 + gap) is None  # plain downtime
    assert restart_sleep(row, now, "another boot", 100.0, 100.0 + gap) is None  # off: the boot id
    # date -s while stopped: neither clock went on, the wall clock did
    assert restart_jump(row, now, "b", 100.0, 100.0) == Jump(utc("00:55"), now)
    assert restart_sleep(row, now, "b", 100.0, 100.0) is None
