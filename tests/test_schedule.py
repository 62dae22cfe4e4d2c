"""Properties of smartcron.cron.schedule against oracles written from cron's own words.

The oracles read the *field text* (not the parser's TimeSpec), as crontab(5) describes
it: `*` is first-last, `a-b/n` steps through a range, names and 0/7 for Sunday, and
the day rule "if either day field starts with `*`, both must match, else either may"
(cron.c find_jobs). The DST oracle replays cron.c's main loop minute by minute.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.cron.crontab import parse_timespec
from smartcron.cron.schedule import entry_zone, local_zone, matches, next_fires
from smartcron.errors import SmartcronError

MINUTE = timedelta(minutes=1)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (low, high, names, name of the first) per field, from crontab(5)'s table.
FIELDS = (
    (0, 59, (), 0),
    (0, 23, (), 0),
    (1, 31, (), 1),
    (1, 12, MONTHS, 1),
    (0, 7, DAYS, 0),
)

# --------------------------------------------------------------------------- oracle


def allowed(text: str, index: int) -> frozenset[int]:
    """The values a field's text allows, read item by item the way crontab(5) puts it."""
    low, high, names, base = FIELDS[index]

    def number(word: str) -> int:
        return names.index(word.lower()) + base if word.lower() in names else int(word)

    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        else:
            a, _, b = span.partition("-")
            first = number(a)
            last = number(b) if b else first
        values.update(
            v for v in range(low, high + 1) if first <= v <= last and (v - first) % step == 0
        )
    if index == 4 and 7 in values:  # "0 or 7 is Sun"
        values.add(0)
    return frozenset(values)


def oracle_matcher(expr: str) -> tuple[Callable[[datetime], bool], Callable[[datetime], bool]]:
    """(does the day match, does the minute match) for a five-field expression."""
    texts = expr.split()
    sets = [allowed(text, i) for i, text in enumerate(texts)]
    both = texts[2].startswith("*") or texts[4].startswith("*")

    def day_ok(wall: datetime) -> bool:
        dom = wall.day in sets[2]
        dow = wall.isoweekday() % 7 in sets[4]
        return wall.month in sets[3] and ((dom and dow) if both else (dom or dow))

    def match(wall: datetime) -> bool:
        return wall.minute in sets[0] and wall.hour in sets[1] and day_ok(wall)

    return day_ok, match


def oracle_utc(expr: str, after: datetime, count: int, horizon: datetime) -> list[str]:
    """Walk UTC minutes after `after`, stepping over days whose day fields do not match."""
    day_ok, match = oracle_matcher(expr)
    wall = after.replace(tzinfo=None, second=0, microsecond=0) + MINUTE
    end = horizon.replace(tzinfo=None)
    found: list[str] = []
    while wall < end and len(found) < count:
        if not day_ok(wall):
            wall = wall.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if match(wall):
            found.append(wall.replace(tzinfo=UTC).isoformat())
        wall += MINUTE
    return found


def replay_cron(expr: str, tz: ZoneInfo, begin: datetime, end: datetime) -> list[datetime]:
    """cron.c's main loop, woken at every real minute from `begin` to `end`.

    Its clocks count minutes of local wall time; the difference between the wall clock
    and the "virtual" clock picks one of cron.c's cases. A job queued several times in
    one wake-up runs once here, as schedule.py documents.
    """
    match = oracle_matcher(expr)[1]
    texts = expr.split()
    wildcard = texts[0].startswith("*") or texts[1].startswith("*")
    epoch = datetime(1970, 1, 1)

    def wall_minutes(instant: datetime) -> int:
        return int((instant.astimezone(tz).replace(tzinfo=None) - epoch) / MINUTE)

    def run(vtime: int, wild: bool, fixed: bool) -> bool:
        return (wild if wildcard else fixed) and match(epoch + vtime * MINUTE)

    fired: list[datetime] = []
    now = begin
    virtual = wall_minutes(now)
    while now < end:
        now += MINUTE
        running = wall_minutes(now)
        diff = running - virtual
        due = False
        if diff == 1:
            virtual = running
            due = run(virtual, True, True)
        elif 1 < diff <= 5:  # woke up late: every missed minute
            while virtual < running:
                virtual += 1
                due = run(virtual, True, True) or due
        elif 5 < diff <= 180:  # DST begins: wildcard now, fixed-time for each minute
            due = run(running, True, False)
            while virtual < running:
                virtual += 1
                due = run(virtual, False, True) or due
        elif -180 < diff <= 0:  # DST ends: wildcard only, virtual time waits
            due = run(running, True, False)
        else:  # a big jump: start again from the new time
            virtual = running
            due = run(running, True, True)
        if due:
            fired.append(now)
    return fired


# --------------------------------------------------------------------------- strategies


def field_text(index: int) -> st.SearchStrategy[str]:
    low, high, names, _ = FIELDS[index]
    value = st.integers(low, high)
    if names:
        value_text = st.one_of(
            value.map(str),
            st.sampled_from(names).map(lambda n: n.title() if len(n) % 2 else n.upper()),
        )
    else:
        value_text = value.map(str)
    step = st.integers(1, high - low + 1)
    item = st.one_of(
        value_text,
        st.tuples(value_text, value_text).map("-".join),  # may be reversed: matches nothing
        st.tuples(value_text, value_text, step).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.just("*"),
        step.map(lambda n: f"*/{n}"),
    )
    return st.lists(item, min_size=1, max_size=3).map(",".join)


# Minutes and hours are free; the day fields lean on `*` so that most entries fire
# often enough for the walk, but every form still appears.
def day_text(index: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), field_text(index))


expressions = st.tuples(field_text(0), field_text(1), day_text(2), day_text(3), day_text(4)).map(
    " ".join
)
instants = st.datetimes(datetime(1999, 1, 1), datetime(2060, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(expr=expressions, after=instants)
def test_next_fires_in_utc_equals_a_minute_by_minute_walk(expr: str, after: datetime) -> None:
    horizon = after + timedelta(days=2 * 366)
    fires = next_fires(parse_timespec(expr), after, UTC)
    got = [t.isoformat() for t in takewhile(lambda t: t < horizon, islice(fires, 20))]
    assert got == oracle_utc(expr, after, 20, horizon)


@settings(max_examples=300, deadline=None)
@given(expr=expressions, after=instants)
def test_next_fires_is_strictly_increasing_and_after_the_start(expr: str, after: datetime) -> None:
    got = list(islice(next_fires(parse_timespec(expr), after, ZoneInfo("Europe/Berlin")), 30))
    assert all(t.tzinfo is not None for t in got)
    assert all(a < b for a, b in zip([after, *got], got, strict=False))


@settings(max_examples=500, deadline=None)
@given(expr=expressions, wall=st.datetimes(datetime(2000, 1, 1), datetime(2050, 1, 1)))
def test_matches_agrees_with_crontab5_reading_of_the_fields(expr: str, wall: datetime) -> None:
    wall = wall.replace(second=0, microsecond=0)
    assert matches(parse_timespec(expr), wall) == oracle_matcher(expr)[1](wall)


# Transitions to start near (UTC instants from tzdata; see test_schedule_dst.py):
TRANSITIONS = (
    ("Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # 02:00 CET -> 03:00 CEST
    ("Europe/Berlin", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),  # 03:00 CEST -> 02:00 CET
    ("America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT
    ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),  # 02:00 -> 02:30
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)),  # 02:00 -> 01:30
    ("America/Santiago", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),  # 00:00 -> 01:00
    ("America/Santiago", datetime(2026, 4, 5, 3, 0, tzinfo=UTC)),  # 00:00 -> 23:00
    ("Pacific/Apia", datetime(2011, 12, 30, 10, 0, tzinfo=UTC)),  # Dec 30 skipped (24 h)
)


@settings(max_examples=200, deadline=None)
@given(
    expr=st.tuples(field_text(0), field_text(1), st.just("*"), st.just("*"), day_text(4)).map(
        " ".join
    ),
    transition=st.sampled_from(TRANSITIONS),
    lead=st.integers(0, 36 * 60),
)
def test_next_fires_near_dst_equals_a_replay_of_cron_c_main_loop(
    expr: str, transition: tuple[str, datetime], lead: int
) -> None:
    name, moment = transition
    tz = ZoneInfo(name)
    after = moment - lead * MINUTE
    end = after + timedelta(hours=48)
    # Start the replay a day early, so the virtual clock is where a running cron's is.
    replay = [t for t in replay_cron(expr, tz, after - timedelta(days=1), end) if t > after]
    got = list(takewhile(lambda t: t <= end, next_fires(parse_timespec(expr), after, tz)))
    assert [t.isoformat() for t in got] == [t.isoformat() for t in replay]


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 30 2 *",  # February never has a 30th
        "0 0 31 4,6,9,11 *",  # nor do these months have a 31st
        "10-5 * * * *",  # a reversed range is accepted and matches nothing
        "0 0 5-1 * 6-2",  # both day fields empty: neither can match
        "0 0 */2 * 6-2",  # ANDed with an empty day of week
        "0 0 30-31 2 mon-sun",  # ORed: no such day in February, and mon-sun is reversed
        "@reboot",  # fires at start-up, never at a time
    ],
)
def test_next_fires_of_a_spec_that_never_fires_ends_at_once(expr: str) -> None:
    assert list(next_fires(parse_timespec(expr), datetime(2026, 1, 1, tzinfo=UTC), UTC)) == []


def test_next_fires_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        next(next_fires(parse_timespec("* * * * *"), datetime(2026, 1, 1), UTC))


def test_next_fires_iterators_of_one_spec_do_not_share_a_cursor() -> None:
    spec = parse_timespec("0 0 1 * *")
    first = next_fires(spec, datetime(2026, 1, 1, tzinfo=UTC), UTC)
    second = next_fires(spec, datetime(2030, 1, 1, tzinfo=UTC), UTC)
    assert next(first).isoformat() == "2026-02-01T00:00:00+00:00"
    assert next(second).isoformat() == "2030-02-01T00:00:00+00:00"
    assert next(first).isoformat() == "2026-03-01T00:00:00+00:00"


@pytest.mark.parametrize("expr", ["0 0 * * *", "0 0 31 12 *", "0 0 */2 * fri"])
def test_next_fires_ends_quietly_at_the_end_of_the_calendar(expr: str) -> None:
    after = datetime(9999, 12, 30, tzinfo=UTC)  # 9999-12-31 is a Friday
    assert [t.isoformat() for t in next_fires(parse_timespec(expr), after, UTC)] == [
        "9999-12-31T00:00:00+00:00"
    ]


# --------------------------------------------------------------------------- zones


BERLIN = ZoneInfo("Europe/Berlin")


def test_entry_zone_is_the_default_without_cron_tz() -> None:
    assert entry_zone((("MAILTO", "root"),), BERLIN) is BERLIN


def test_entry_zone_reads_cron_tz_from_pairs_and_mappings() -> None:
    assert entry_zone((("CRON_TZ", "Asia/Tokyo"),), BERLIN) == ZoneInfo("Asia/Tokyo")
    assert entry_zone({"CRON_TZ": "UTC"}, BERLIN) == ZoneInfo("UTC")


def test_entry_zone_takes_the_last_cron_tz_assignment() -> None:
    env = (("CRON_TZ", "Asia/Tokyo"), ("CRON_TZ", "America/New_York"))
    assert entry_zone(env, BERLIN) == ZoneInfo("America/New_York")


def test_entry_zone_treats_an_empty_cron_tz_as_unset() -> None:
    assert entry_zone({"CRON_TZ": ""}, BERLIN) is BERLIN


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", "/etc/localtime"])
def test_entry_zone_refuses_an_unknown_cron_tz_naming_it(name: str) -> None:
    with pytest.raises(SmartcronError, match="CRON_TZ") as err:
        entry_zone({"CRON_TZ": name}, BERLIN)
    assert repr(name) in str(err.value)


def test_a_cron_tz_entry_fires_on_its_own_zone_clock() -> None:
    tz = entry_zone({"CRON_TZ": "America/New_York"}, BERLIN)
    after = datetime(2026, 3, 7, 12, tzinfo=UTC)
    got = [
        t.astimezone(tz).isoformat()
        for t in islice(next_fires(parse_timespec("0 9 * * *"), after, tz), 2)
    ]
    # New York moves to EDT on 2026-03-08 at 07:00 UTC.
    assert got == ["2026-03-07T09:00:00-05:00", "2026-03-08T09:00:00-04:00"]


def test_local_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    assert local_zone() == ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize("value", ["", "Nowhere/Land", "CET-1CEST,M3.5.0,M10.5.0/3"])
def test_local_zone_reads_a_tz_it_cannot_use_as_utc_like_glibc(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TZ", value)
    assert local_zone().utcoffset(datetime(2026, 7, 1)) == timedelta(0)


def test_local_zone_without_tz_is_a_usable_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TZ", raising=False)
    assert datetime(2026, 7, 1, tzinfo=local_zone()).utcoffset() is not None
