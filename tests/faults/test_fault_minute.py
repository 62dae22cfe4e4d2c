"""The minute boundary (issue 11, findings 8 and 9), in process on the FakeClock.

Finding 8: a daemon killed just after the top of a minute must lose nothing that can be
kept. The kill is a BaseException raised by the launcher at the first plain start, after
the minute was journaled: it leaves `step()` as SIGKILL would, and the Daemon object is
dropped without shutdown. A new Daemon on the same state directory then resumes the
minute's smart firings and logs and counts its plain ones, which cron(8) does not re-run.

Finding 9: Debian's cron runs minute M on the crontabs as loaded at the top of M; a
file installed or changed during M is first used for M+1.

Europe/Berlin in February (CET, UTC+1): 01:52 CET is 00:52Z.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta

from smartcron.store.journal import CLOSED, DOWN, RESTARTED, Journal
from smartcron.testing import FakeClock
from tests.harness import make, make_daemon, run_until, runs

SMART = 11
CRONTAB = "".join(f"#@smart window=1h\n52 1 * * * smart-{i}\n" for i in range(SMART))
CRONTAB += "52 1 * * * plain-a\n52 1 * * * plain-b\n* * * * * every-minute\n"


def at(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2026-02-10T{hhmmss}").replace(tzinfo=UTC)


class Killed(BaseException):
    """SIGKILL, as far as the daemon's own code can tell: nothing after it runs."""


def kill_at_first_plain_start(daemon) -> None:
    def launch(job, scheduled, trigger, *, firing=None):
        if trigger == "cron":
            raise Killed
        return daemon.start(job, scheduled, trigger, firing=firing)

    daemon._launch = launch


def test_a_kill_at_the_top_of_a_minute_loses_none_of_its_firings(tmp_path, caplog):
    first = make(tmp_path, CRONTAB, start=at("00:50:30"), max_concurrent=SMART)
    first.run_until(at("00:51:30"))
    assert [cmd for cmd, _ in first.starts] == ["every-minute"]
    kill_at_first_plain_start(first.daemon)
    first.clock.advance(at("00:52:00.050") - first.clock.now())
    try:
        first.daemon.step()
    except Killed:
        pass
    else:
        raise AssertionError("the launcher was not reached")
    assert first.runner.requests[1:] == []  # nothing of 00:52 started
    del first  # no shutdown: the process is gone
    with caplog.at_level(logging.WARNING, logger="smartcron"):
        second = make(tmp_path, CRONTAB, start=at("00:52:30"), max_concurrent=SMART)
    second.run_until(at("00:54:30"))
    smart = sorted(cmd for cmd, when in second.starts if cmd.startswith("smart-"))
    assert smart == sorted(f"smart-{i}" for i in range(SMART))  # resumed, inside the window
    assert {when for cmd, when in second.starts if cmd.startswith("smart-")} == {"00:52Z"}
    for i in range(SMART):
        (run,) = runs(second, f"smart-{i}")  # once each: 0 doubles
        assert run.start.scheduled == at("00:52:00")
    # cron(8) does not re-run a minute after a restart: plain-a/b of 00:52 are not run,
    # each logged and counted; plain lines go on at 00:53.
    assert runs(second, "plain-a") == runs(second, "plain-b") == []
    lost = Journal(second.history).not_run()
    assert sorted((n.label.rsplit(":")[-1], n.count, n.reason) for n in lost) == [
        (str(2 * SMART + 1), 1, RESTARTED),
        (str(2 * SMART + 2), 1, RESTARTED),
        (str(2 * SMART + 3), 1, RESTARTED),
    ]
    assert {n.first for n in lost} == {at("00:52:00")}
    logged = [r.getMessage() for r in caplog.records if RESTARTED in r.getMessage()]
    assert len(logged) == 3
    assert [when for cmd, when in second.starts if cmd == "every-minute"] == ["00:53Z", "00:54Z"]


def test_minutes_no_daemon_saw_make_open_smart_firings_pending_and_count_the_rest(tmp_path, caplog):
    crontab = (
        "#@smart window=1h\n50 1 * * * smart-open\n"  # 00:50Z, window to 01:50Z
        "#@smart window=2m\n45 1 * * * smart-closed\n"  # 00:45Z, window to 00:47Z
        "50 1 * * * plain\n"
        "*/5 * * * * every-5\n"
    )
    first = make(tmp_path, crontab, start=at("00:38:30"))
    first.run_until(at("00:40:30"))
    assert first.starts == [("every-5", "00:40Z")]
    # killed while it slept until 00:45; the same boot: the daemon was down, not the
    # machine (a power-off would catch smart-closed up: tests/test_catchup.py)
    later = at("00:55:30")
    mono = first.clock.monotonic() + (later - first.clock.now()).total_seconds()
    clock = FakeClock(later, monotonic=mono, boot_id=first.clock.boot_id())
    del first
    with caplog.at_level(logging.WARNING, logger="smartcron"):
        second = make(tmp_path, crontab, clock=clock)
    second.run_until(at("00:57:30"))
    assert second.starts == [("smart-open", "00:55Z")]
    (run,) = runs(second, "smart-open")
    assert run.start.scheduled == at("00:50:00")
    lost = {n.label.rsplit(":")[-1]: n for n in Journal(second.history).not_run()}
    assert sorted(lost) == ["4", "5", "6"]  # smart-closed, plain, every-5
    assert (lost["4"].count, lost["4"].reason) == (1, CLOSED)
    assert (lost["5"].count, lost["5"].reason, lost["5"].first) == (1, DOWN, at("00:50:00"))
    # every-5: 00:45 and 00:50 while down, 00:55 the minute the new daemon started in
    assert (lost["6"].count, lost["6"].first, lost["6"].last) == (
        3,
        at("00:45:00"),
        at("00:55:00"),
    )
    assert len([r for r in caplog.records if DOWN in r.getMessage()]) == 2
    assert len([r for r in caplog.records if CLOSED in r.getMessage()]) == 1


# ------------------------------------------------------------------ finding 9


def test_a_crontab_installed_mid_minute_first_fires_at_the_next_minute(tmp_path):
    daemon, clock, rec = make_daemon(tmp_path, "", at("00:31:30"))
    run_until(daemon, clock, at("00:31:45"))
    clock.advance(at("00:32:02") - clock.now())  # asleep: nothing was due at 00:32:00
    time.sleep(0.02)  # the kernel stamps files with a coarse clock
    (tmp_path / "crontab").write_text("* * * * * every-minute\n")
    daemon._next_rescan = clock.now()  # inotify woke the loop (Daemon.run does this)
    daemon.step()
    assert rec.runs == []  # installed at 00:32:02: not part of minute 00:32
    run_until(daemon, clock, at("00:34:30"))
    assert rec.runs == [("every-minute", "00:33Z"), ("every-minute", "00:34Z")]


def test_a_crontab_changed_before_the_top_of_a_minute_fires_in_it_even_if_noticed_later(
    tmp_path,
):
    daemon, clock, rec = make_daemon(tmp_path, "", at("00:31:30"))
    clock.set(at("00:33:59.900"))
    time.sleep(0.02)
    (tmp_path / "crontab").write_text("* * * * * every-minute\n")
    os.utime(tmp_path / "crontab")  # written before 00:34:00; seen only at the wake-up
    clock.set(at("00:34:00.200"))
    time.sleep(0.02)
    daemon._next_rescan = clock.now()
    daemon.step()
    assert rec.runs == [("every-minute", "00:34Z")]
    # while asleep since 00:31:30, nothing is replayed for 00:32 and 00:33 either
    run_until(daemon, clock, at("00:35:30"))
    assert rec.runs == [("every-minute", "00:34Z"), ("every-minute", "00:35Z")]


class FilesAhead(FakeClock):
    """A clock set back after the files were written: their stamps are an hour ahead."""

    def file_time(self, stamp_ns: int) -> datetime:
        return super().file_time(stamp_ns) + timedelta(hours=1)


def test_the_first_load_after_the_top_of_the_first_minute_runs_that_minute(tmp_path):
    # The kill -9 loop found it (libfaketime's clock is behind the files' stamps): a
    # daemon started at 00:57:59.5 whose first load came at 00:58:00.5 took its files
    # for changed in 00:58, so neither the plain line nor the smart firing of 00:58 was
    # ever made; and it slept to 00:59 before looking at 00:58 at all. cron.c loads its
    # database before its first minute and wakes at that minute's top; so does the daemon.
    crontab = "#@smart window=1h\n* * * * * smart\n* * * * * plain\n"
    h = make(tmp_path, crontab, clock=FilesAhead(at("00:57:59.500")), load=False)
    h.clock.advance(timedelta(seconds=1))
    h.daemon.reload(force=True)  # as smartcron.daemon.service does once the daemon is made
    h.run_until(at("00:58:30"))
    assert sorted(h.starts) == [("plain", "00:58Z"), ("smart", "00:58Z")]
    assert [s.firing.nominal for s in h.firings("smart")] == [at("00:58:00")]
    # a later change is still first used in the minute after it (finding 9)
    h.clock.advance(at("00:59:00.500") - h.clock.now())
    time.sleep(0.02)
    (tmp_path / "crontab").write_text("* * * * * other\n")
    h.daemon._next_rescan = h.clock.now()  # inotify woke the loop (Daemon.run does this)
    h.daemon.step()
    h.run_until(at("01:00:30"))
    assert h.starts[2:] == [("other", "01:00Z")]


def test_the_first_wake_up_is_at_once_when_a_minute_began_during_the_start_and_only_once(
    tmp_path,
):
    h = make(tmp_path, "* * * * * plain\n", start=at("00:57:59.500"), load=False)
    h.clock.advance(timedelta(seconds=1))
    h.daemon.reload(force=True)
    assert h.daemon.next_wake() == at("00:58:00.500")  # 00:58 began since the start
    # asked again (as after a wake-up that failed before it observed): the next fire,
    # never "at once" again, so such a failure cannot make the loop spin
    assert h.daemon.next_wake() == at("00:59:00")
