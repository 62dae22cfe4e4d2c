"""Next firing times written by hand from crontab(5) and cron.c, in UTC.

Calendar anchors: 2026-01-01 is a Thursday, 2026-02-01 a Sunday, 2027-01-01 a Friday;
2028 and 2032 are leap years, and 2032-02-29 is the first Sunday the 29th of February
after 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from smartcron.cron.crontab import parse_timespec
from smartcron.cron.schedule import next_fires

NEW_YEAR = "2026-01-01T00:00:00+00:00"

# (why, expression, after, expected instants); an empty list means "never fires".
# fmt: off
CASES = [
    # The day rule: restricted day fields are ORed...
    ("crontab(5): 1st, 15th and every Friday", "30 4 1,15 * 5", "2026-01-01T05:00:00+00:00",
     ["2026-01-02T04:30:00+00:00", "2026-01-09T04:30:00+00:00", "2026-01-15T04:30:00+00:00",
      "2026-01-16T04:30:00+00:00"]),
    ("the 1st or a Monday", "0 0 1 * mon", "2026-01-25T00:00:00+00:00",
     ["2026-01-26T00:00:00+00:00", "2026-02-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00"]),
    ("the 13th or a Friday, not only Friday the 13th", "0 0 13 * fri", "2026-02-05T00:00:00+00:00",
     ["2026-02-06T00:00:00+00:00", "2026-02-13T00:00:00+00:00", "2026-02-20T00:00:00+00:00"]),
    ("1-31/2 does not start with *: odd days OR Mondays", "0 0 1-31/2 * mon",
     "2026-01-09T12:00:00+00:00",
     ["2026-01-11T00:00:00+00:00", "2026-01-12T00:00:00+00:00", "2026-01-13T00:00:00+00:00"]),
    ("January 1st or a Monday in January", "0 0 1 1 mon", "2026-12-31T00:00:00+00:00",
     ["2027-01-01T00:00:00+00:00", "2027-01-04T00:00:00+00:00", "2027-01-11T00:00:00+00:00"]),
    # ...but ANDed when either starts with *, */2 included.
    ("*/2 starts with *: odd-numbered Mondays only", "0 0 */2 * mon", NEW_YEAR,
     ["2026-01-05T00:00:00+00:00", "2026-01-19T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
      "2026-02-23T00:00:00+00:00"]),
    ("a * day-of-month leaves the day of week alone", "0 0 * * 1-5/2", NEW_YEAR,
     ["2026-01-02T00:00:00+00:00", "2026-01-05T00:00:00+00:00", "2026-01-07T00:00:00+00:00"]),
    ("*/7 in day of week is 0 and 7: Sundays, ANDed with Feb 29", "0 0 29 2 */7", NEW_YEAR,
     ["2032-02-29T00:00:00+00:00", "2060-02-29T00:00:00+00:00"]),
    # Sundays and names.
    ("7 is Sunday", "0 0 * * 7", NEW_YEAR,
     ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]),
    ("0 is Sunday", "0 0 * * 0", NEW_YEAR,
     ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]),
    ("names in any case", "0 0 * * sun,SAT", NEW_YEAR,
     ["2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00", "2026-01-10T00:00:00+00:00"]),
    ("month and day names in ranges", "0 12 * jan-mar mon-fri", "2026-03-30T13:00:00+00:00",
     ["2026-03-31T12:00:00+00:00", "2027-01-01T12:00:00+00:00", "2027-01-04T12:00:00+00:00"]),
    # The @keywords.
    ("@weekly is Sunday midnight", "@weekly", NEW_YEAR,
     ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]),
    ("@monthly", "@monthly", NEW_YEAR, ["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"]),
    ("@yearly", "@yearly", NEW_YEAR, ["2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"]),
    ("@annually", "@annually", NEW_YEAR, ["2027-01-01T00:00:00+00:00"]),
    ("@daily", "@daily", NEW_YEAR, ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]),
    ("@midnight", "@midnight", "2026-01-01T23:59:59+00:00", ["2026-01-02T00:00:00+00:00"]),
    ("@hourly", "@hourly", "2026-01-01T00:30:00+00:00",
     ["2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]),
    # Month lengths and leap years.
    ("Feb 29 only in leap years", "0 0 29 2 *", NEW_YEAR,
     ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
    ("the 31st skips short months", "0 0 31 * *", NEW_YEAR,
     ["2026-01-31T00:00:00+00:00", "2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00"]),
    ("30th and 31st skip February", "0 0 30,31 * *", "2026-01-29T00:00:00+00:00",
     ["2026-01-30T00:00:00+00:00", "2026-01-31T00:00:00+00:00", "2026-03-30T00:00:00+00:00"]),
    ("the last days of February", "0 0 28-31 2 *", NEW_YEAR,
     ["2026-02-28T00:00:00+00:00", "2027-02-28T00:00:00+00:00", "2028-02-28T00:00:00+00:00",
      "2028-02-29T00:00:00+00:00"]),
    ("no 31st in Feb or Apr, so ORed Mondays alone", "0 0 31 2,4 mon", NEW_YEAR,
     ["2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00", "2026-02-16T00:00:00+00:00"]),
    ("New Year's Eve a minute before midnight", "59 23 31 12 *", "2026-12-31T23:59:00+00:00",
     ["2027-12-31T23:59:00+00:00"]),
    # Steps.
    ("1-31/10 is 1, 11, 21, 31", "0 0 1-31/10 * *", NEW_YEAR,
     ["2026-01-11T00:00:00+00:00", "2026-01-21T00:00:00+00:00", "2026-01-31T00:00:00+00:00",
      "2026-02-01T00:00:00+00:00"]),
    ("*/10 in day of month is the same set", "0 0 */10 * *", NEW_YEAR,
     ["2026-01-11T00:00:00+00:00", "2026-01-21T00:00:00+00:00", "2026-01-31T00:00:00+00:00",
      "2026-02-01T00:00:00+00:00"]),
    ("steps in minutes and hours", "*/20 9-17/4 * * *", "2026-01-01T16:50:00+00:00",
     ["2026-01-01T17:00:00+00:00", "2026-01-01T17:20:00+00:00", "2026-01-01T17:40:00+00:00",
      "2026-01-02T09:00:00+00:00"]),
    ("a full 1-31 list ORed with Monday is every day", "0 0 1-31 * mon", NEW_YEAR,
     ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]),
    # Starts: strictly after, seconds, other offsets.
    ("strictly after a start with seconds", "* * * * *", "2026-01-01T00:00:30+00:00",
     ["2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00"]),
    ("a start at a firing time is excluded", "0 * * * *", NEW_YEAR, ["2026-01-01T01:00:00+00:00"]),
    ("a start in another offset is the same instant", "0 0 * * *", "2026-01-01T03:00:00+05:00",
     ["2026-01-01T00:00:00+00:00"]),  # 2025-12-31T22:00Z
    # Empty fields: an empty day field leaves an ORed entry to the other one...
    ("reversed day-of-week range: the 1st only", "0 0 1 * 5-1", NEW_YEAR,
     ["2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"]),
    ("reversed day-of-month range: Mondays only", "0 0 5-1 * mon", NEW_YEAR,
     ["2026-01-05T00:00:00+00:00", "2026-01-12T00:00:00+00:00"]),
    # ...and everything else never fires.
    ("no February 30th", "0 0 30 2 *", NEW_YEAR, []),
    ("no 31st in 30-day months", "0 0 31 4,6,9,11 *", NEW_YEAR, []),
    ("reversed minute range", "10-5 * * * *", NEW_YEAR, []),
    ("reversed day of week ANDed with *", "0 0 * * 5-0", NEW_YEAR, []),
]
# fmt: on


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [pytest.param(expr, after, expected, id=why) for why, expr, after, expected in CASES],
)
def test_next_fires_in_utc_matches_cron_documented_behaviour(
    expr: str, after: str, expected: list[str]
) -> None:
    fires = next_fires(parse_timespec(expr), datetime.fromisoformat(after), UTC)
    # One more than expected is asked for, so that "never" really means never.
    got = [t.isoformat() for t in islice(fires, len(expected) + (0 if expected else 1))]
    assert got == expected
