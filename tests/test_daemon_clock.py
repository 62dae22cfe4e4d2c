"""The daemon's clock handling on a fake clock, pinned to Europe/Berlin.

Expected instants are written from cron(8)'s rules (see smartcron/ticker.py):
- 2026-03-29: CET -> CEST at 02:00 local = 01:00 UTC (02:00-02:59 local never exists);
- 2026-10-25: CEST -> CET at 03:00 local = 01:00 UTC (02:00-02:59 local happens twice).
A job is "wildcard" when its minute or hour field starts with `*`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import BERLIN, make_daemon, run_until


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_spring_forward_runs_skipped_fixed_jobs_once_and_wildcard_jobs_on_the_new_time(tmp_path):
    crontab = "30 2 * * * fixed-0230\n0 3 * * * fixed-0300\n*/15 * * * * every-15\n@hourly hourly\n"
    daemon, clock, rec = make_daemon(tmp_path, crontab, utc("2026-03-29T00:20:30"))
    run_until(daemon, clock, utc("2026-03-29T01:20:30"))
    assert rec.runs == [
        ("every-15", "00:30Z"),  # 01:30 CET
        ("every-15", "00:45Z"),  # 01:45 CET
        # 01:00Z = 03:00 CEST: the clock jumped 61 local minutes.
        ("every-15", "01:00Z"),
        ("hourly", "01:00Z"),
        ("fixed-0230", "01:00Z"),  # the skipped 02:30 runs at the jump
        ("fixed-0300", "01:00Z"),
        ("every-15", "01:15Z"),
    ]


def test_fall_back_repeats_wildcard_jobs_but_not_fixed_ones(tmp_path):
    crontab = "30 2 * * * fixed-0230\n*/30 * * * * every-30\n"
    daemon, clock, rec = make_daemon(tmp_path, crontab, utc("2026-10-24T23:50:30"))
    run_until(daemon, clock, utc("2026-10-25T02:10:30"))
    assert rec.runs == [
        ("every-30", "00:00Z"),  # 02:00 CEST
        ("fixed-0230", "00:30Z"),  # 02:30 CEST, the first 02:30
        ("every-30", "00:30Z"),
        ("every-30", "01:00Z"),  # 02:00 CET: wildcard jobs run on the new time
        ("every-30", "01:30Z"),  # 02:30 CET: fixed-0230 is not repeated
        ("every-30", "02:00Z"),  # 03:00 CET
    ]


def test_the_schedule_and_the_ticker_agree_across_both_dst_changes(tmp_path):
    """`next` (schedule.next_fires) and the daemon (ticker) must name the same instants."""
    from smartcron.cron.crontab import parse_timespec
    from smartcron.cron.schedule import next_fires

    lines = ["30 2 * * *", "*/20 * * * *", "0 * * * *", "15 1-4 * * *", "@hourly", "* 2 * * *"]
    for day, start in (("spring", "2026-03-28T23:00:30"), ("fall", "2026-10-24T22:00:30")):
        crontab = "".join(f"{expr} job{i}\n" for i, expr in enumerate(lines))
        daemon, clock, rec = make_daemon(tmp_path / day, crontab, utc(start))
        end = utc(start) + timedelta(hours=5)
        run_until(daemon, clock, end)
        for i, expr in enumerate(lines):
            fires = next_fires(parse_timespec(expr), utc(start), BERLIN)
            expected = []
            for instant in fires:
                if instant > end:
                    break
                expected.append(instant.astimezone(UTC).strftime("%H:%MZ"))
            got = [when for command, when in rec.runs if command == f"job{i}"]
            assert got == expected, (day, expr)


STEP_CRONTAB = "* * * * * every-minute\n5 12 * * * fixed-1205\n55 11 * * * fixed-1155\n"


def step_runs(tmp_path: Path, jump: timedelta) -> list[tuple[str, str]]:
    """Run 11:50-12:00 CET normally, step the clock by `jump`, run two more minutes."""
    start = utc("2026-02-10T10:49:30")  # 11:49:30 CET
    daemon, clock, rec = make_daemon(tmp_path, STEP_CRONTAB, start)
    run_until(daemon, clock, utc("2026-02-10T11:00:30"))  # 12:00:30 CET
    rec.runs.clear()
    clock.set(clock.now() + jump)
    daemon.step()
    run_until(daemon, clock, clock.now() + timedelta(minutes=2))
    return rec.runs


def test_a_forward_step_of_ten_minutes_runs_wildcard_once_and_each_skipped_fixed_job(tmp_path):
    runs = step_runs(tmp_path, timedelta(minutes=10))
    assert runs == [
        ("every-minute", "11:10Z"),  # once, for the new minute 12:10 CET
        ("fixed-1205", "11:10Z"),  # the skipped 12:05
        ("every-minute", "11:11Z"),
        ("every-minute", "11:12Z"),
    ]


def test_a_forward_step_of_three_minutes_catches_up_every_job_of_every_minute(tmp_path):
    runs = step_runs(tmp_path, timedelta(minutes=3))
    assert runs == [("every-minute", "11:03Z")] * 3 + [
        ("every-minute", "11:04Z"),
        ("every-minute", "11:05Z"),
        ("fixed-1205", "11:05Z"),  # on time: 12:05 CET
    ]


def test_a_forward_step_of_two_hours_runs_the_skipped_fixed_jobs(tmp_path):
    runs = step_runs(tmp_path, timedelta(hours=2))
    assert runs[:2] == [("every-minute", "13:00Z"), ("fixed-1205", "13:00Z")]
    assert runs[2:] == [("every-minute", "13:01Z"), ("every-minute", "13:02Z")]


def test_a_forward_step_of_four_hours_is_a_correction_without_catch_up(tmp_path):
    runs = step_runs(tmp_path, timedelta(hours=4))
    assert runs == [
        ("every-minute", "15:00Z"),
        ("every-minute", "15:01Z"),
        ("every-minute", "15:02Z"),
    ]


@pytest.mark.parametrize("jump", [timedelta(minutes=-10), timedelta(hours=-2)])
def test_a_backward_step_runs_wildcard_jobs_but_never_repeats_fixed_ones(tmp_path, jump):
    runs = step_runs(tmp_path, jump)
    new = (utc("2026-02-10T11:00:30") + jump).replace(second=0)
    assert runs == [
        ("every-minute", new.strftime("%H:%MZ")),
        ("every-minute", (new + timedelta(minutes=1)).strftime("%H:%MZ")),
        ("every-minute", (new + timedelta(minutes=2)).strftime("%H:%MZ")),
    ]
    assert all(command == "every-minute" for command, _ in runs)


def test_a_backward_step_past_a_fixed_job_does_not_run_it_again(tmp_path):
    start = utc("2026-02-10T10:49:30")
    daemon, clock, rec = make_daemon(tmp_path, STEP_CRONTAB, start)
    run_until(daemon, clock, utc("2026-02-10T11:00:30"))  # 11:55 ran at 10:55Z
    assert ("fixed-1155", "10:55Z") in rec.runs
    rec.runs.clear()
    clock.set(clock.now() - timedelta(minutes=10))  # back to 11:50:30 CET
    daemon.step()
    run_until(daemon, clock, clock.now() + timedelta(minutes=16))  # to 12:06:30 CET
    assert [c for c, _ in rec.runs].count("fixed-1155") == 0
    assert [c for c, _ in rec.runs].count("fixed-1205") == 1  # 12:05 had not run yet


def test_a_backward_step_of_four_hours_is_a_correction_and_fixed_jobs_run_again(tmp_path):
    start = utc("2026-02-10T10:49:30")
    daemon, clock, rec = make_daemon(tmp_path, STEP_CRONTAB, start)
    run_until(daemon, clock, utc("2026-02-10T11:00:30"))
    rec.runs.clear()
    clock.set(utc("2026-02-10T06:54:30"))  # 07:54:30 CET, 4h06m back
    daemon.step()
    run_until(daemon, clock, utc("2026-02-10T11:06:30"))
    commands = [c for c, _ in rec.runs]
    assert commands.count("fixed-1155") == 1
    assert commands.count("fixed-1205") == 1
    assert rec.runs[0] == ("every-minute", "06:54Z")


def test_the_daemon_sleeps_until_the_next_due_instant_not_every_minute(tmp_path):
    daemon, _, _ = make_daemon(tmp_path, "0 */6 * * * six-hourly\n", utc("2026-02-10T00:30:00"))
    assert daemon.next_wake() == utc("2026-02-10T01:30:00")  # MAX_SLEEP: at most an hour
    daemon2, _, _ = make_daemon(tmp_path / "b", "45 1 * * * soon\n", utc("2026-02-10T00:30:00"))
    assert daemon2.next_wake() == utc("2026-02-10T00:45:00")  # 01:45 CET
