"""A cron time spec as systemd OnCalendar= expressions (systemd.time(7)), exactly.

The expanded field sets are written out (`00,15,30,45`, ranges as `a..b`), so steps,
ranges, names and @keywords need no translation of their own. The day rule is Debian's
entry.c/cron.c one that smartcron.cron.schedule implements: when either day field
*started with* ``*`` the two are ANDed (one expression restricts both), otherwise a day
matches if either field does, and a union is what systemd gives for several
OnCalendar= lines in one timer: one line per day field.

Days no listed month has (`30 2`) are dropped first, as schedule._plan does, so that no
line is written that could never elapse.
"""

from __future__ import annotations

from collections.abc import Iterable

from smartcron.cron.crontab import TimeSpec

_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def runs(values: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted values as (first, last) runs of consecutive numbers."""
    out: list[tuple[int, int]] = []
    for value in sorted(values):
        if out and value == out[-1][1] + 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def _field(values: frozenset[int], low: int, high: int, width: int = 2) -> str:
    """`*` for a full set, else runs as `a..b` (two values as a list) joined by commas."""
    if values == frozenset(range(low, high + 1)):
        return "*"
    parts = []
    for first, last in runs(values):
        if first == last:
            parts.append(f"{first:0{width}d}")
        elif last == first + 1:
            parts.append(f"{first:0{width}d},{last:0{width}d}")
        else:
            parts.append(f"{first:0{width}d}..{last:0{width}d}")
    return ",".join(parts)


def _weekdays(dows: frozenset[int]) -> str:
    """Weekday names, Monday first as systemd lists them; '' for every day."""
    if dows == frozenset(range(7)):
        return ""
    monday_first = sorted((d - 1) % 7 for d in dows)  # Mon=0 .. Sun=6
    parts = []
    for first, last in runs(monday_first):
        a, b = _DOW[(first + 1) % 7], _DOW[(last + 1) % 7]
        parts.append(a if first == last else f"{a},{b}" if last == first + 1 else f"{a}..{b}")
    return ",".join(parts)


def on_calendar(spec: TimeSpec, zone: str | None = None) -> list[str]:
    """The OnCalendar= values that fire exactly when `spec` does (their union), in
    `zone` (an IANA name; None: the system's zone, as the daemon uses). [] when the
    spec never fires. @reboot has no calendar: ValueError."""
    if spec.reboot:
        raise ValueError("@reboot has no calendar time")
    if not (spec.minutes and spec.hours and spec.months):
        return []
    longest = max(_MONTH_DAYS[m - 1] for m in spec.months)
    doms = frozenset(d for d in spec.doms if d <= longest)
    month = _field(spec.months, 1, 12)
    clock = f"{_field(spec.hours, 0, 23)}:{_field(spec.minutes, 0, 59)}:00"
    tail = f" {zone}" if zone else ""
    all_doms = frozenset(range(1, 32))
    if spec.dom_star or spec.dow_star:  # "if either day field starts with *, AND them"
        if not doms or not spec.dows:
            return []
        days = [(_weekdays(spec.dows), _field(doms, 1, 31))]
    else:  # OR: the union of a day-of-month line and a day-of-week line
        days = []
        if doms:
            days.append(("", _field(doms, 1, 31) if doms != all_doms else "*"))
        if spec.dows:
            days.append((_weekdays(spec.dows), "*"))
    out = []
    for weekdays, day in days:
        head = f"{weekdays} " if weekdays else ""
        line = f"{head}*-{month}-{day} {clock}{tail}"
        if line not in out:
            out.append(line)
    return out
