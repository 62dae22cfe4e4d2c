"""DST behaviour of next_fires, as Debian's cron daemon (cron.c) has it.

Europe/Berlin in 2026 (from tzdata):
  spring forward 2026-03-29T01:00:00Z: 02:00 CET (+01:00) -> 03:00 CEST (+02:00);
      wall times 02:00..02:59 do not exist that day.
  fall back      2026-10-25T01:00:00Z: 03:00 CEST (+02:00) -> 02:00 CET (+01:00);
      wall times 02:00..02:59 happen twice, at 00:00Z..00:59Z and 01:00Z..01:59Z.
Other zones used:
  Australia/Lord_Howe 2026-10-03T15:30:00Z: 02:00 (+10:30) -> 02:30 (+11:00), a 30-min gap.
  America/Santiago   2026-09-06T04:00:00Z: 00:00 (-04:00) -> 01:00 (-03:00), midnight gap;
                     2026-04-05T03:00:00Z: 00:00 (-03:00) -> 23:00 (-04:00) on Apr 4.
  Pacific/Apia       2011-12-30T10:00:00Z: Dec 29 24:00 (-10:00) -> Dec 31 00:00 (+14:00),
                     a whole day skipped: cron.c sees a jump of more than 3 hours.

cron.c: a jump forward of 6..180 minutes runs wildcard jobs (minute or hour field
starting with `*`) for the new minute only and fixed-time jobs for every skipped
minute (here: once, at the end of the gap); a jump back of up to 180 minutes runs only
wildcard jobs until the clock has caught up, so fixed-time jobs do not repeat.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from smartcron.cron.crontab import parse_timespec
from smartcron.cron.schedule import next_fires


def fires(expr: str, after: str, zone: str, count: int) -> list[str]:
    tz = ZoneInfo(zone)
    instants = next_fires(parse_timespec(expr), datetime.fromisoformat(after), tz)
    return [t.astimezone(tz).isoformat() for t in islice(instants, count)]


BERLIN = "Europe/Berlin"
SPRING_EVE = "2026-03-28T12:00:00+00:00"
AUTUMN_EVE = "2026-10-24T12:00:00+00:00"


# --------------------------------------------------------------------------- spring forward


def test_fixed_job_in_the_skipped_hour_fires_once_at_the_end_of_the_gap() -> None:
    assert fires("30 2 * * *", SPRING_EVE, BERLIN, 3) == [
        "2026-03-29T03:00:00+02:00",  # = 01:00Z, the transition itself
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_fixed_job_on_the_hour_in_the_gap_catches_up() -> None:
    assert fires("0 2 * * *", SPRING_EVE, BERLIN, 2) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_several_skipped_minutes_of_one_fixed_job_collapse_into_one_firing() -> None:
    assert fires("0,15,30,45 2 * * *", SPRING_EVE, BERLIN, 2) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_a_skipped_fixed_time_and_the_one_at_the_gap_end_fire_once() -> None:
    assert fires("0,30 2,3 * * *", SPRING_EVE, BERLIN, 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_wildcard_job_does_not_fire_in_the_skipped_hour() -> None:
    assert fires("*/15 * * * *", "2026-03-29T00:40:00+00:00", BERLIN, 3) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("30 * * * *", ["2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"]),
        ("@hourly", ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]),
        # The minute field starts with *, so this is a wildcard job: nothing on the 29th.
        ("*/30 2 * * *", ["2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    ],
)
def test_wildcard_forms_skip_the_gap(expr: str, expected: list[str]) -> None:
    assert fires(expr, "2026-03-28T23:59:00+00:00", BERLIN, 2) == expected


def test_daily_job_away_from_the_gap_is_unaffected() -> None:
    assert fires("@daily", SPRING_EVE, BERLIN, 2) == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]


def test_a_start_inside_the_gap_end_is_strictly_after() -> None:
    # 01:00Z is the catch-up instant itself, so the next one is the next day.
    assert fires("30 2 * * *", "2026-03-29T01:00:00+00:00", BERLIN, 1) == [
        "2026-03-30T02:30:00+02:00"
    ]


def test_half_hour_gap_of_lord_howe_runs_fixed_jobs_at_its_end() -> None:
    assert fires("15 2 * * *", "2026-10-03T00:00:00+00:00", "Australia/Lord_Howe", 2) == [
        "2026-10-04T02:30:00+11:00",
        "2026-10-05T02:15:00+11:00",
    ]


def test_midnight_gap_moves_a_daily_job_to_one_oclock() -> None:
    assert fires("@daily", "2026-09-05T12:00:00+00:00", "America/Santiago", 2) == [
        "2026-09-06T01:00:00-03:00",
        "2026-09-07T00:00:00-03:00",
    ]


def test_a_skipped_day_is_a_clock_correction_with_no_catch_up() -> None:
    assert fires("0 12 * * *", "2011-12-28T23:00:00+00:00", "Pacific/Apia", 2) == [
        "2011-12-29T12:00:00-10:00",
        "2011-12-31T12:00:00+14:00",
    ]


# --------------------------------------------------------------------------- fall back


def test_fixed_job_in_the_repeated_hour_fires_only_the_first_time() -> None:
    assert fires("30 2 * * *", AUTUMN_EVE, BERLIN, 2) == [
        "2026-10-25T02:30:00+02:00",  # = 00:30Z; not again at 01:30Z
        "2026-10-26T02:30:00+01:00",
    ]


def test_wildcard_job_fires_in_both_passes_of_the_repeated_hour() -> None:
    assert fires("*/30 * * * *", "2026-10-24T23:45:00+00:00", BERLIN, 5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_hour_star_job_fires_in_both_passes() -> None:
    assert fires("15 * * * *", "2026-10-24T23:00:00+00:00", BERLIN, 4) == [
        "2026-10-25T01:15:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:15:00+01:00",
        "2026-10-25T03:15:00+01:00",
    ]


def test_a_start_late_in_the_first_pass_still_sees_the_second() -> None:
    # 00:50Z is 02:50 CEST; the second pass begins at 01:00Z with wall time 02:00.
    assert fires("*/30 * * * *", "2026-10-25T00:50:00+00:00", BERLIN, 3) == [
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_a_start_in_the_second_pass_does_not_run_fixed_jobs_again() -> None:
    # 01:10Z is 02:10 CET, the second time round.
    assert fires("30 2 * * *", "2026-10-25T01:10:00+00:00", BERLIN, 1) == [
        "2026-10-26T02:30:00+01:00"
    ]
    assert fires("*/30 * * * *", "2026-10-25T01:10:00+00:00", BERLIN, 2) == [
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_repeated_hour_across_midnight_runs_a_fixed_job_once() -> None:
    # Santiago's 23:00..23:59 on 2026-04-04 happens twice.
    assert fires("30 23 * * *", "2026-04-04T12:00:00+00:00", "America/Santiago", 2) == [
        "2026-04-04T23:30:00-03:00",
        "2026-04-05T23:30:00-04:00",
    ]


# --------------------------------------------------------------------------- no DST


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (SPRING_EVE, ["2026-03-29T02:30:00+09:00", "2026-03-30T02:30:00+09:00"]),
        (AUTUMN_EVE, ["2026-10-25T02:30:00+09:00", "2026-10-26T02:30:00+09:00"]),
    ],
)
def test_zone_without_dst_fires_at_the_same_time_every_day(after: str, expected: list[str]) -> None:
    assert fires("30 2 * * *", after, "Asia/Tokyo", 2) == expected


def test_instants_are_utc_so_the_repeated_hour_sorts_in_order() -> None:
    # Two datetimes sharing a ZoneInfo compare by wall time, ignoring fold: 02:00 CET
    # would sort before 02:30 CEST. UTC instants do not have that trap.
    after = datetime.fromisoformat("2026-10-25T00:20:00+00:00")
    got = list(islice(next_fires(parse_timespec("0,30 * * * *"), after, ZoneInfo(BERLIN)), 3))
    assert all(t.tzinfo is UTC for t in got)
    assert [t.isoformat() for t in got] == [
        "2026-10-25T00:30:00+00:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T01:30:00+00:00",
    ]
