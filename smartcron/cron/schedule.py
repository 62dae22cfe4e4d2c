"""When entries fire. Pure: the caller passes instants and zones; no clock, no files.

Debian's cron (cron.c) works in local wall-clock minutes: every minute it asks whether
each entry matches the wall time, and it treats a DST change as a jump of that clock.
`matches` is its find_jobs test; `next_fires` turns it into instants, with cron.c's
clock-change rules (`smartcron.cron.clockrules`) applied at a zone's transitions:

* spring forward: the skipped wall minutes run for the jobs the rules say catch up
  (all of them on a small jump, fixed-time jobs on a DST-sized one, none on a
  correction). Skipped minutes of one job collapse into one firing at the first instant
  after the gap: Debian queues them all at that moment (running them ~10 s apart), and
  one run is what a job can usefully see.
* fall back: a repeated wall time runs at its first occurrence, and again at the second
  for the jobs the rules say repeat (wildcard jobs; every job on a correction).

croniter does the calendar search over naive wall time; it lives only in this module.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from smartcron.cron.clockrules import classify, transition_jump
from smartcron.cron.crontab import TimeSpec
from smartcron.errors import SmartcronError

_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
# The longest a month can be, leap years included: a day-of-month that no listed month
# has (`30 2`, `31 4,6`) can never match.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ALL_DOMS = frozenset(range(1, 32))
_ALL_DOWS = frozenset(range(7))
# Only a safety net: every plan that survives _plan() fires within ~40 years (a given
# weekday on Feb 29 is the rarest), so croniter never gets near this bound.
_MAX_YEARS = 100


def matches(spec: TimeSpec, wall: datetime) -> bool:
    """Whether the naive local wall-clock minute `wall` matches, as cron.c's find_jobs says.

    If either day field started with ``*`` the two are ANDed, otherwise ORed: `0 0 1 * mon`
    runs on the 1st and on every Monday, `0 0 */2 * mon` only on odd-numbered Mondays.
    @reboot never matches a time.
    """
    if spec.reboot:
        return False
    if not (wall.minute in spec.minutes and wall.hour in spec.hours and wall.month in spec.months):
        return False
    dom_ok = wall.day in spec.doms
    dow_ok = (wall.weekday() + 1) % 7 in spec.dows  # Python's Monday=0 -> cron's Sunday=0
    if spec.dom_star or spec.dow_star:
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def next_fires(spec: TimeSpec, after: datetime, tz: tzinfo) -> Iterator[datetime]:
    """The instants, strictly after `after` and increasing, when `spec` fires in zone `tz`.

    Instants are aware and in UTC (convert with ``.astimezone(tz)`` to show them): two
    aware datetimes sharing a ZoneInfo compare by wall time, ignoring `fold`, which
    would misorder the repeated hour. Empty for @reboot, for fields that match nothing
    (`10-5`) and for dates that never exist (`0 0 30 2 *`).
    """
    if after.tzinfo is None:
        raise ValueError("next_fires needs an aware datetime")
    plan = _plan(spec)
    if plan is None:
        return
    after = after.astimezone(UTC)
    # Start the wall-clock search low enough to see a repeated hour that begins within
    # a day of `after`: its second occurrence has wall times below `after`'s.
    offset = min(_offset(after, tz), _offset(after + _DAY, tz))
    start = (after + offset).replace(tzinfo=None, second=0, microsecond=0) - _MINUTE
    pending: list[datetime] = []  # instants found but not yet known to be the next
    last = after
    for wall in _walls(plan, start):
        floor, instants = _place(wall, tz, spec.wildcard)
        for instant in instants:
            heapq.heappush(pending, instant)
        # Every later wall time maps to instants >= floor, so what is below it is final.
        while pending and pending[0] <= floor:
            instant = heapq.heappop(pending)
            if instant > last:  # also collapses skipped minutes onto one gap end
                last = instant
                yield instant


def entry_zone(env: Mapping[str, str] | Iterable[tuple[str, str]], default: tzinfo) -> tzinfo:
    """The zone an entry's times are read in: its `CRON_TZ`, else `default`.

    An empty `CRON_TZ=` counts as unset. A name zoneinfo does not know raises
    SmartcronError rather than silently running the job on another clock.
    """
    pairs = env.items() if isinstance(env, Mapping) else env
    name = ""
    for key, value in pairs:
        if key == "CRON_TZ":
            name = value  # the last assignment above the entry wins
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SmartcronError(f"CRON_TZ={name!r}: unknown time zone") from None


def local_zone() -> tzinfo:
    """The system zone as glibc's localtime() sees it: $TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ")
    if name is None:
        # Debian links /etc/localtime into /usr/share/zoneinfo: keep the zone's name.
        _, found, key = os.path.realpath("/etc/localtime").rpartition("/zoneinfo/")
        try:
            if found:
                return ZoneInfo(key)
            with open("/etc/localtime", "rb") as file:
                return ZoneInfo.from_file(file, key="localtime")
        except (OSError, ValueError, ZoneInfoNotFoundError):
            return UTC
    try:  # glibc reads an unknown (or POSIX-rule) TZ as UTC
        return ZoneInfo(name.removeprefix(":")) if name.strip(":") else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


# --------------------------------------------------------------------------- internals


def _offset(instant: datetime, tz: tzinfo) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _place(wall: datetime, tz: tzinfo, wildcard: bool) -> tuple[datetime, list[datetime]]:
    """A matching wall time's firing instants, and a floor no later wall time goes below."""
    early = wall.replace(tzinfo=tz)  # fold=0: the offset in force before a transition
    late = wall.replace(tzinfo=tz, fold=1)
    off0 = early.utcoffset() or timedelta(0)
    off1 = late.utcoffset() or timedelta(0)
    first = (wall - off0).replace(tzinfo=UTC)
    if off0 == off1:
        return first, [first]
    second = (wall - off1).replace(tzinfo=UTC)
    jump = classify(transition_jump(off1 - off0))
    if off0 > off1:  # fall back: `wall` happens twice, at `first` then `second`
        return first, [first, second] if jump.runs_repeated(wildcard) else [first]
    # Spring forward: `wall` never happens; cron meets the jump at the gap's end.
    if not jump.runs_skipped(wildcard):
        return second, []
    end = _gap_end(second, first, tz, off1)
    return end, [end]


def _gap_end(low: datetime, high: datetime, tz: tzinfo, after_offset: timedelta) -> datetime:
    """The first whole local minute from the transition in (low, high], by bisection."""
    lo, hi = int(low.timestamp()), int(high.timestamp())  # transitions are whole seconds
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), tz) == after_offset:
            hi = mid
        else:
            lo = mid
    end = datetime.fromtimestamp(hi, UTC)
    second = end.astimezone(tz).second  # only pre-1900 offsets have seconds
    return end + timedelta(seconds=60 - second) if second else end


def _field(values: frozenset[int], low: int, high: int) -> str:
    """A set as croniter text: `*` when full, else runs `a-b` joined by commas."""
    if len(values) == high - low + 1:
        return "*"
    parts: list[str] = []
    ordered = sorted(values)
    begin = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(begin) if begin == prev else f"{begin}-{prev}")
        if value is not None:
            begin = prev = value
    return ",".join(parts)


class _Plan(NamedTuple):
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    days: str | None  # croniter's "dom month dow", or None for every day
    day_or: bool


@lru_cache(maxsize=16384)
def _plan(spec: TimeSpec) -> _Plan | None:
    """How to search for `spec`'s wall times, or None when it can never fire.

    croniter only finds the days (as "0 0 dom month dow"); the minutes of a day are a
    plain loop, which keeps croniter's costly search to one call per firing day. Its
    day rule is settled here: croniter ORs the day fields only when neither is `*`
    after expansion, so a full set (`1-31`) would silently turn Debian's OR into an
    AND; and its OR searches 50 years for a side that cannot match.
    """
    if spec.reboot or not (spec.minutes and spec.hours and spec.months):
        return None
    longest = max(_MONTH_DAYS[m - 1] for m in spec.months)
    doms = frozenset(d for d in spec.doms if d <= longest)  # `30 2` never happens
    dows = spec.dows
    if spec.dom_star or spec.dow_star:  # "if either day field starts with *, AND them"
        if not doms or not dows:
            return None
        dom, dow, day_or = _field(doms, 1, 31), _field(dows, 0, 6), False
    elif spec.doms == _ALL_DOMS or dows == _ALL_DOWS:
        dom, dow, day_or = "*", "*", False  # one side always matches
    elif not doms and not dows:
        return None
    elif not doms:  # one side never matches (`31 4`, `5-1`): the other decides alone
        dom, dow, day_or = "*", _field(dows, 0, 6), False
    elif not dows:
        dom, dow, day_or = _field(doms, 1, 31), "*", False
    else:
        dom, dow, day_or = _field(doms, 1, 31), _field(dows, 0, 6), True
    days = f"{dom} {_field(spec.months, 1, 12)} {dow}"
    return _Plan(
        tuple(sorted(spec.hours)),
        tuple(sorted(spec.minutes)),
        None if days == "* * *" else days,
        day_or,
    )


def _walls(plan: _Plan, start: datetime) -> Iterator[datetime]:
    """The matching naive wall minutes strictly after `start`, in order."""
    midnight = start.replace(hour=0, minute=0)
    if plan.days is None:
        days: Iterator[datetime] = _every_day(midnight)
    else:
        cron = copy.copy(_template(plan.days, plan.day_or))  # a private cursor
        cron.set_current(midnight - _MINUTE, force=True)
        days = _matching_days(cron)
    for day in days:
        first = day == midnight
        for hour in plan.hours:
            if first and hour < start.hour:
                continue
            for minute in plan.minutes:
                if not (first and hour == start.hour and minute <= start.minute):
                    yield day.replace(hour=hour, minute=minute)


def _every_day(day: datetime) -> Iterator[datetime]:
    with contextlib.suppress(OverflowError):  # year 9999 ends the calendar
        while True:
            yield day
            day += _DAY


def _matching_days(cron: croniter) -> Iterator[datetime]:
    # CroniterBadDateError: nothing within _MAX_YEARS; past year 9999 dateutil raises
    # ValueError (CroniterBadDateError's base) and datetime OverflowError.
    with contextlib.suppress(ValueError, OverflowError):
        while True:
            yield cron.get_next(datetime)


@lru_cache(maxsize=4096)
def _template(days: str, day_or: bool) -> croniter:
    """A parsed croniter to copy: parsing costs more than the search it then does."""
    return croniter(
        f"0 0 {days}",
        datetime(2000, 1, 1),
        day_or=day_or,
        max_years_between_matches=_MAX_YEARS,
    )
