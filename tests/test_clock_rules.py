"""cron(8)'s clock-change rules, and their two users agreeing: the daemon's minute-by-minute
`Ticker` + `due`, and `schedule.next_fires`, which applies the same rules in closed form.

A clock step is modelled as a zone whose UTC offset changes once by the step (a fixed
base offset, so the step is the only change): cron sees a step of the system clock and
a zone transition alike, as a jump of its local minute counter. Real DST transitions
(UTC instants from tzdata) are checked too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from itertools import takewhile

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartcron.cron.clockrules import DST_JUMP, SMALL_JUMP, WakeupKind, classify, transition_jump
from smartcron.cron.crontab import Entry, parse_timespec
from smartcron.cron.schedule import next_fires
from smartcron.daemon.ticker import Tick, Ticker, due, local_minute
from smartcron.smart.jobs import Job

MINUTE = timedelta(minutes=1)


class SteppedZone(tzinfo):
    """A fixed offset `base` until the instant `at`, then `base + step`: one clock step.

    Wall times the step skips or repeats follow zoneinfo's convention: fold=0 reads
    the offset before the step, fold=1 the one after.
    """

    def __init__(self, base: timedelta, at: datetime, step: timedelta) -> None:
        self.base, self.at, self.step = base, at.replace(tzinfo=None), step
        edges = (self.at + base, self.at + base + step)  # the wall clock before and after
        self.low, self.high = min(edges), max(edges)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        assert dt is not None
        wall = dt.replace(tzinfo=None)
        if wall < self.low:
            return self.base
        if wall >= self.high:
            return self.base + self.step
        return self.base + self.step if dt.fold else self.base

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return f"step {self.step} at {self.at}"

    def fromutc(self, dt: datetime) -> datetime:
        utc = dt.replace(tzinfo=None)
        if utc < self.at:
            return (utc + self.base).replace(tzinfo=self)
        wall = utc + self.base + self.step
        second = self.step < timedelta(0) and wall < self.high  # a repeated wall time again
        return wall.replace(tzinfo=self, fold=int(second))


def job(expr: str) -> Job:
    entry = Entry(1, parse_timespec(expr), "true")
    return Job(id="j", source="crontab", line=1, owner="root", entry=entry)


def ticker_fires(expr: str, zone: tzinfo, after: datetime, end: datetime) -> list[str]:
    """The daemon's choice: the instants at which a minute-by-minute Ticker starts the job.

    The ticker starts a day early so its virtual clock is where a running daemon's is;
    several ticks due in one wake-up are one start at that instant, as in next_fires.
    """
    jobs = [job(expr)]
    first = int((after - timedelta(days=1)).timestamp()) // 60
    ticker = Ticker(local_minute(first, zone))
    fires = []
    for utc_minute in range(first + 1, int(end.timestamp()) // 60 + 1):
        ticks = ticker.observe(local_minute(utc_minute, zone), utc_minute)
        instant = datetime.fromtimestamp(utc_minute * 60, UTC)
        if instant > after and any(due(jobs, tick, zone) for tick in ticks):
            fires.append(instant.isoformat())
    return fires


def schedule_fires(expr: str, zone: tzinfo, after: datetime, end: datetime) -> list[str]:
    fires = next_fires(parse_timespec(expr), after, zone)
    return [t.isoformat() for t in takewhile(lambda t: t <= end, fires)]


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("jump", "verdict"),
    [
        (1, WakeupKind.NEXT),
        (2, WakeupKind.LATE),
        (SMALL_JUMP, WakeupKind.LATE),
        (SMALL_JUMP + 1, WakeupKind.FORWARD),
        (DST_JUMP, WakeupKind.FORWARD),
        (DST_JUMP + 1, WakeupKind.CORRECTION),
        (0, WakeupKind.BACK),
        (-DST_JUMP + 1, WakeupKind.BACK),
        (-DST_JUMP, WakeupKind.CORRECTION),
        (-10_000, WakeupKind.CORRECTION),
    ],
)
def test_classify_reads_a_jump_as_cron_c_does(jump: int, verdict: WakeupKind) -> None:
    assert classify(jump) is verdict


@pytest.mark.parametrize(
    ("verdict", "wild_skipped", "fixed_skipped", "wild_repeated", "fixed_repeated"),
    [
        (WakeupKind.NEXT, False, False, False, False),
        (WakeupKind.LATE, True, True, False, False),
        (WakeupKind.FORWARD, False, True, False, False),
        (WakeupKind.BACK, False, False, True, False),
        (WakeupKind.CORRECTION, False, False, True, True),
    ],
)
def test_which_jobs_run_skipped_and_repeated_minutes(
    verdict: WakeupKind,
    wild_skipped: bool,
    fixed_skipped: bool,
    wild_repeated: bool,
    fixed_repeated: bool,
) -> None:
    assert verdict.runs_skipped(wildcard=True) is wild_skipped
    assert verdict.runs_skipped(wildcard=False) is fixed_skipped
    assert verdict.runs_repeated(wildcard=True) is wild_repeated
    assert verdict.runs_repeated(wildcard=False) is fixed_repeated


@pytest.mark.parametrize(
    ("change", "jump"),
    [
        (timedelta(hours=1), 61),  # CET -> CEST: 01:59 is followed by 03:00
        (timedelta(hours=-1), -59),  # CEST -> CET: 02:59 is followed by 02:00
        (timedelta(minutes=30), 31),  # Lord Howe's half-hour DST
        (timedelta(minutes=6, seconds=32), 8),  # Berlin's LMT +0:53:28 -> CET, in 1893
        (timedelta(minutes=-1, seconds=-15), -1),  # a repeat of a minute and a bit
        (timedelta(hours=-3), -179),
        (timedelta(hours=-3, minutes=-1), -180),
    ],
)
def test_a_zone_transition_is_a_jump_of_one_more_than_the_offset_change(
    change: timedelta, jump: int
) -> None:
    assert transition_jump(change) == jump


def test_the_ticker_holds_virtual_time_back_after_a_step_back_and_catches_up_late_minutes() -> None:
    ticker = Ticker(100)
    assert ticker.observe(101, 7) == [Tick(101, utc_minute=7)]
    assert ticker.observe(104, 10) == [Tick(102), Tick(103), Tick(104, utc_minute=10)]
    assert ticker.observe(95, 11) == [Tick(95, fixed=False, utc_minute=11)]  # back 10
    assert ticker.virtual == 104
    assert ticker.observe(115, 12) == [
        Tick(115, fixed=False, utc_minute=12),  # forward 11 from virtual: wildcard once
        *(Tick(m, wild=False) for m in range(105, 116)),  # fixed-time: every minute
    ]
    assert ticker.observe(115 + DST_JUMP + 1, 13) == [Tick(115 + DST_JUMP + 1, utc_minute=13)]


# --------------------------------------------------------------------------- agreement

# Fixed-time, wildcard (minute or hour field starting with `*`) and hourly lines.
EXPRESSIONS = (
    "30 2 * * *",
    "0 3 * * *",
    "15 1-4 * * *",
    "0,20,40 * * * *",
    "5 */2 * * *",
    "*/20 * * * *",
    "* 2 * * *",
    "*/7 * * * *",
    "@hourly",
    "@daily",
    "59 23 * * *",
)
STEP = datetime(2026, 2, 10, 1, 0, tzinfo=UTC)  # no DST anywhere near, in either base


@pytest.mark.parametrize("minutes", [2, 5, 6, 10, 61, 180, 181, 600, -1, -10, -60, -179, -180])
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_ticker_and_next_fires_agree_on_a_clock_step(minutes: int, expr: str) -> None:
    zone = SteppedZone(timedelta(hours=1), STEP, minutes * MINUTE)
    after, end = STEP - timedelta(hours=3), STEP + timedelta(hours=6)
    assert ticker_fires(expr, zone, after, end) == schedule_fires(expr, zone, after, end)


# Real DST transitions (UTC instants from tzdata):
TRANSITIONS = (
    ("Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # 02:00 CET -> 03:00 CEST
    ("Europe/Berlin", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),  # 03:00 CEST -> 02:00 CET
    ("America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT
    ("America/New_York", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),  # 02:00 -> 02:30
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)),  # 02:00 -> 01:30
    ("Antarctica/Troll", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # 01:00 +00 -> 03:00 +02
    ("Antarctica/Troll", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),  # 03:00 +02 -> 01:00 +00
)

fields = st.tuples(
    st.sampled_from(["*", "0", "30", "0,30", "*/7", "*/15", "5-10", "59"]),
    st.sampled_from(["*", "0", "1", "2", "3", "1-4", "*/2", "23"]),
).map(lambda f: f"{f[0]} {f[1]} * * *")
expressions = st.one_of(fields, st.sampled_from(EXPRESSIONS))
steps = st.one_of(
    st.sampled_from([1, 2, 4, 5, 6, 7, 179, 180, 181, 182]),
    st.integers(1, 12 * 60),
).flatmap(lambda m: st.sampled_from([m, -m]))


@settings(max_examples=150, deadline=None)
@given(
    expr=expressions,
    step=steps,
    base=st.integers(-12 * 60, 14 * 60),
    at=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
    lead=st.integers(0, 6 * 60),
)
def test_ticker_plus_due_equals_next_fires_across_any_clock_step(
    expr: str, step: int, base: int, at: datetime, lead: int
) -> None:
    assume(abs(base + step) < 24 * 60)  # what a tzinfo may say
    moment = at.replace(second=0, microsecond=0, tzinfo=UTC)
    zone = SteppedZone(base * MINUTE, moment, step * MINUTE)
    after = moment - lead * MINUTE
    end = after + timedelta(hours=12)
    assert ticker_fires(expr, zone, after, end) == schedule_fires(expr, zone, after, end)


@settings(max_examples=100, deadline=None)
@given(expr=expressions, transition=st.sampled_from(TRANSITIONS), lead=st.integers(0, 8 * 60))
def test_ticker_plus_due_equals_next_fires_across_dst(
    expr: str, transition: tuple[str, datetime], lead: int
) -> None:
    from zoneinfo import ZoneInfo

    name, moment = transition
    zone = ZoneInfo(name)
    after = moment - lead * MINUTE
    end = after + timedelta(hours=12)
    assert ticker_fires(expr, zone, after, end) == schedule_fires(expr, zone, after, end)


def test_a_fixed_offset_zone_has_no_jump() -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    after = datetime(2026, 2, 10, tzinfo=UTC)
    end = after + timedelta(hours=30)
    got = ticker_fires("30 2 * * *", zone, after, end)
    assert got == schedule_fires("30 2 * * *", zone, after, end) == ["2026-02-10T21:00:00+00:00"]
