"""The five cron fields of what the schedule rules of `smartcronctl suggest` read
(smartcron.smart.suggestschedule), and the window keys a clock range implies.

The defaults a phrase leaves open are cron's own: "daily" is midnight (`@daily`),
"weekly" Sunday, "monthly" the 1st; a part of the day without a time is a fixed hour
(night 01:00, morning 08:00, afternoon 15:00, evening 18:00).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from smartcron.smart.suggestwords import Draft, SuggestError, clock_text, conflict


class Part(NamedTuple):
    """A part of the day: the hour it means alone, the hours an explicit time may take,
    the hours a step ("every 5 minutes at night") runs in, and where a bare hour moves
    ("at 7 in the evening" is 19:00)."""

    alone: int
    allowed: frozenset[int]
    span: frozenset[int]
    shift: Callable[[int], int]


DAYPARTS = {
    "night": Part(1, frozenset({*range(18, 24), *range(0, 7)}),
                  frozenset({22, 23, *range(0, 6)}), lambda h: h + 12 if 7 <= h < 12 else h % 12),
    "morning": Part(8, frozenset(range(0, 12)), frozenset(range(6, 12)), lambda h: h % 12),
    "afternoon": Part(15, frozenset(range(12, 19)), frozenset(range(12, 18)),
                      lambda h: h + 12 if h < 12 else h),
    "evening": Part(18, frozenset(range(16, 24)), frozenset(range(18, 23)),
                    lambda h: h + 12 if h < 12 else h),
}  # fmt: skip


def _list(values: frozenset[int] | None) -> str:
    """Cron's list for a set of values, runs of three or more as ranges (1-5)."""
    if not values:
        return "*"
    ordered, parts = sorted(values), []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(f"{start}-{previous}" if previous - start >= 2 else
                     ",".join(str(v) for v in range(start, previous + 1)))  # fmt: skip
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _clocks(draft: Draft, facet: str) -> list[tuple[int, int]]:
    """A facet's times, a bare hour moved into the part of the day said."""
    part = DAYPARTS.get(draft.facets.get("daypart") or "")
    return [
        (part.shift(hour) if part and bare else hour, minute)
        for hour, minute, bare in draft.facets.get(facet) or ()
    ]


def _time(draft: Draft) -> tuple[int, ...] | None:
    """The explicit time's hours (one shared minute first), checked against the part of
    the day ("every night at noon" is a conflict)."""
    times = _clocks(draft, "times") or _clocks(draft, "between")[:1]
    part = draft.facets.get("daypart")
    if not times:
        return (0, DAYPARTS[part].alone) if isinstance(part, str) else None
    if len({minute for _, minute in times}) > 1:
        conflict(draft.said["times"], "(one minute for all the hours of a line)")
    if isinstance(part, str) and any(hour not in DAYPARTS[part].allowed for hour, _ in times):
        conflict(draft.said["daypart"], draft.said.get("times") or draft.said["between"])
    return (times[0][1], *sorted({hour for hour, _ in times}))


def cron_fields(draft: Draft) -> str:
    """The five fields of what was read; the window keys a clock range or deadline implies
    are added to the draft. Raises SuggestError when no schedule was said."""
    facets = draft.facets
    if not facets.keys() - {"deadline"}:
        raise SuggestError(
            "no schedule found: say when the job runs (every 15 minutes, every night at"
            " 1am, weekdays at 9:30, on the first of every month, ...)"
        )
    every: tuple[Any, ...] = facets.get("every") or ()
    time = _time(draft)
    minute, hour = "0", "0"
    if every[:1] in (("minutes",), ("hours",)):
        if "times" in facets:
            conflict(draft.said["every"], draft.said["times"])
        hours = _step_hours(draft)
        step = every[1]
        if every[0] == "minutes":
            minute, hour = ("*" if step == 1 else f"*/{step}"), hours
        else:
            hour = hours if step == 1 else f"{'*' if hours == '*' else hours}/{step}"
    elif every[:1] == ("per_day",):
        first_minute, first_hour = (time[0], time[1]) if time else (0, 0)
        step = 24 // int(every[1])
        minute = str(first_minute)
        hour = _list(frozenset((first_hour + i * step) % 24 for i in range(int(every[1]))))
    elif time:
        minute, hour = str(time[0]), ",".join(str(h) for h in time[1:])
    doms = facets.get("doms")
    dows = facets.get("dows")
    months = facets.get("months")
    if every == ("week",) and not dows:
        dows = frozenset({0})
    if every in (("month",), ("year",)) and not doms:
        doms = frozenset({1})
    if every == ("year",) and not months:
        months = frozenset({1})
    _window_keys(draft, time)
    return f"{minute} {hour} {_list(doms)} {_list(months)} {_list(dows)}"


def _step_hours(draft: Draft) -> str:
    """The hours a step runs in: a range said ("between 9am and 5pm" runs 9:00 to 16:59,
    or to 17:59 when the end has minutes), else the part of the day, else all."""
    if "between" in draft.facets:
        (start, _), (end, end_minute) = _clocks(draft, "between")
        draft.facets["hours"] = (start, end + (1 if end_minute else 0))
    if "hours" in draft.facets:
        low, high = draft.facets["hours"]
        return f"{low}-{high - 1}" if high > low else f"{low}-23,0-{high - 1}".replace(",0--1", "")
    part = draft.facets.get("daypart")
    return _list(DAYPARTS[part].span) if part else "*"


def _window_keys(draft: Draft, time: tuple[int, ...] | None) -> None:
    """A clock range ("between 1am and 4am") or a deadline ("by 5am") of a job that runs
    at one time is its clock window (smartcrontab(5)'s window=HH:MM-HH:MM)."""
    facets = draft.facets
    every = facets.get("every") or ()
    if "between" in facets and every[:1] not in (("minutes",), ("hours",)):
        start, end = _clocks(draft, "between")
        draft.key("window", f"{clock_text(start)}-{clock_text(end)}", draft.said["between"])
    if "deadline" in facets:
        if time is None or len(time) != 2:
            raise SuggestError(f"{draft.said['deadline']!r} needs one time of day to start from")
        start, end = (time[1], time[0]), _clocks(draft, "deadline")[0]
        if start == end:
            conflict(draft.said["deadline"], "(the same time as the start)")
        draft.key("window", f"{clock_text(start)}-{clock_text(end)}", draft.said["deadline"])
