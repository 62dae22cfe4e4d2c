"""When a job described in words runs: the schedule rules of `smartcronctl suggest` and
the five cron fields they make.

Each rule records a facet (how often, at what time, on which days, ...); `cron_fields`
turns the facets into one crontab(5) time expression. The defaults a phrase leaves
open are cron's own: "daily" is midnight (`@daily`), "weekly" Sunday, "monthly" the 1st;
a part of the day without a time is a fixed hour (night 01:00, morning 08:00,
afternoon 15:00, evening 18:00). Two facets that disagree ("at 1am ... at noon") are a
conflict: the sentence is refused, naming both.
"""

from __future__ import annotations

import re
from typing import Any

from smartcron.smart.suggestwords import (
    COUNT,
    NUM,
    TIME,
    Draft,
    Rule,
    SuggestError,
    clock,
    clock_text,
    conflict,
    count,
    number,
    rule,
)

_DAYS = {
    "sunday": 0, "sun": 0, "monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "tues": 2,
    "wednesday": 3, "wed": 3, "thursday": 4, "thu": 4, "thur": 4, "thurs": 4,
    "friday": 5, "fri": 5, "saturday": 6, "sat": 6,
}  # fmt: skip
_MONTHS = {
    name: index + 1
    for index, names in enumerate(
        ("january jan", "february feb", "march mar", "april apr", "may", "june jun",
         "july jul", "august aug", "september sep sept", "october oct", "november nov",
         "december dec")
    )
    for name in names.split()
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "fifteenth": 15, "twentieth": 20,
}  # fmt: skip
# A part of the day: the hour it means alone, and the hours an explicit time may take.
DAYPARTS = {
    "night": (1, {*range(20, 24), *range(0, 6)}),
    "morning": (8, set(range(4, 12))),
    "afternoon": (15, set(range(12, 19))),
    "evening": (18, set(range(16, 24))),
}
_DAY = r"(?:" + "|".join(sorted(_DAYS, key=len, reverse=True)) + r")s?"
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")"
_ORD = r"(?:\d{1,2}(?:st|nd|rd|th)?|" + "|".join(_ORDINALS) + r")"
_PART = r"(?:night|morning|afternoon|evening)"
_EACH = r"(?:every|each|per|a|once a|once per|once every)"
_WORKDAYS = frozenset(range(1, 6))
_WEEKEND = frozenset({0, 6})


def _day_number(word: str) -> int:
    return _DAYS[word.removesuffix("s") if word.removesuffix("s") in _DAYS else word]


def _days(text: str) -> frozenset[int]:
    """The weekdays named in `text`: lists, "monday to friday", weekdays, weekends."""
    if re.search(r"week-?ends?", text):
        return _WEEKEND
    if re.search(r"week-?days?|working days|work days|business days", text):
        return _WORKDAYS
    span = re.search(rf"({_DAY}) (?:to|through|thru|till|until|-) ({_DAY})", text)
    if span:
        first, last = _day_number(span.group(1)), _day_number(span.group(2))
        return frozenset(d % 7 for d in range(first, last + (1 if last >= first else 8)))
    return frozenset(_day_number(w) for w in re.findall(_DAY, text))


def _ordinal(text: str) -> int:
    day = _ORDINALS.get(text) or int(re.sub(r"\D", "", text))
    if not 1 <= day <= 31:
        raise SuggestError(f"{text!r} is not a day of the month")
    return day


def _every(draft: Draft, value: tuple[Any, ...], words: str) -> None:
    draft.set("every", value, words)


def _daypart(draft: Draft, part: str | None, words: str) -> None:
    if part:
        draft.set("daypart", part, words)


@rule(r"during (?:working|business|office|work) hours")
def _working_hours(draft: Draft, m: re.Match[str]) -> None:
    draft.set("hours", (9, 17), m.group(0))
    draft.set("dows", _WORKDAYS, m.group(0))


@rule(rf"(?:from |between )({TIME}) (?:and|to|till|until) ({TIME})")
def _between(draft: Draft, m: re.Match[str]) -> None:
    draft.set("between", (clock(m.group(1)), clock(m.group(2))), m.group(0))


@rule(rf"(?:(?:finish(?:ed)? )?start(?:ing|ed)? )?(?:by|no later than|not after) ({TIME})")
def _deadline(draft: Draft, m: re.Match[str]) -> None:
    draft.set("deadline", clock(m.group(1)), m.group(0))


def _step(step: float, cycle: int, words: str) -> int:
    """A step cron repeats evenly: `*/7` restarts at each hour (0, 7, ..., 56, then 0
    again), so only the divisors of 60 minutes or 24 hours mean "every N"."""
    unit = "minutes" if cycle == 60 else "hours"
    if not step.is_integer() or not 1 <= step < cycle or cycle % step:
        steps = ", ".join(str(n) for n in range(1, cycle) if cycle % n == 0)
        raise SuggestError(
            f"{words!r}: cron cannot repeat that evenly; every N {unit} needs N in {steps}"
        )
    return int(step)


@rule(rf"every (?:({NUM}) )?(?:minutes?|mins?)|every (half|quarter) (?:an |of an )?hour")
def _minutes(draft: Draft, m: re.Match[str]) -> None:
    step = number(m.group(1)) if m.group(1) else 1.0
    if m.group(2):
        step = 30.0 if m.group(2) == "half" else 15.0
    if step % 60 == 0 and 60 <= step <= 23 * 60:
        return _every(draft, ("hours", _step(step // 60, 24, m.group(0))), m.group(0))
    _every(draft, ("minutes", _step(step, 60, m.group(0))), m.group(0))


@rule(rf"every (?:({NUM}) )?(?:hours?|hrs?)|(hourly)")
def _hours(draft: Draft, m: re.Match[str]) -> None:
    step = number(m.group(1)) if m.group(1) else 1.0
    _every(draft, ("hours", _step(step, 24, m.group(0))), m.group(0))


@rule(rf"({COUNT}) (?:a|per|each|every) day")
def _per_day(draft: Draft, m: re.Match[str]) -> None:
    times = count(m.group(1))
    if times == 1:
        return _every(draft, ("day",), m.group(0))
    if times < 1 or 24 % times:
        raise SuggestError(f"{m.group(0)!r}: only 1, 2, 3, 4, 6, 8, 12 or 24 times a day")
    _every(draft, ("per_day", times), m.group(0))


@rule(rf"(?:{_EACH} ({_PART})|(night)ly)")
def _every_part(draft: Draft, m: re.Match[str]) -> None:
    _every(draft, ("day",), m.group(0))
    _daypart(draft, m.group(1) or m.group(2), m.group(0))


@rule(rf"{_EACH} day|daily|{_EACH} week|weekly|{_EACH} month|monthly|{_EACH} year|yearly|annually")
def _period(draft: Draft, m: re.Match[str]) -> None:
    word = m.group(0).split()[-1]
    period = {"daily": "day", "weekly": "week", "monthly": "month"}.get(word, word)
    _every(draft, ("year",) if period in ("yearly", "annually") else (period,), m.group(0))


@rule(rf"(?:on |every )?(?:({_MONTH}) (?:the )?({_ORD})|the ({_ORD}) of ({_MONTH}))")
def _month_day(draft: Draft, m: re.Match[str]) -> None:
    month, day = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    draft.set("months", frozenset({_MONTHS[month]}), m.group(0))
    draft.set("doms", frozenset({_ordinal(day)}), m.group(0))


@rule(
    rf"on the ({_ORD}(?:(?: ,)? (?:and )?(?:the )?{_ORD})*)"
    r"(?: (?:day )?of (?:every|each|the) month)?"
)
def _month_days(draft: Draft, m: re.Match[str]) -> None:
    days = re.findall(_ORD, m.group(1))
    draft.set("doms", frozenset(_ordinal(d) for d in days), m.group(0))


@rule(
    r"(?:(?:every|each|on|on the) )?"
    rf"({_DAY}(?:(?: ,)? (?:and|or|to|through|thru|till|until|-) {_DAY}| , {_DAY})*"
    rf"|week-?days?|week-?ends?|working days|work days|business days)(?: ({_PART})s?)?"
)
def _weekdays(draft: Draft, m: re.Match[str]) -> None:
    draft.set("dows", _days(m.group(1)), m.group(0))
    _daypart(draft, m.group(2), m.group(0))


@rule(rf"(?:in|every|during) ({_MONTH}(?:(?: ,)? (?:and )?{_MONTH})*)")
def _months(draft: Draft, m: re.Match[str]) -> None:
    months = re.findall(_MONTH, m.group(1))
    draft.set("months", frozenset(_MONTHS[w] for w in months), m.group(0))


@rule(
    rf"(?:(?:at|around|about|@) )*({TIME}(?:(?: ,)? (?:and )?{TIME})*)"
    r"|(?:at|around|about)(?: around| about)? (\d{1,2})(?![\w:.%])"
)
def _times(draft: Draft, m: re.Match[str]) -> None:
    if m.group(2):
        found = [clock(m.group(2) + ":00")]
    else:
        found = [clock(t) for t in re.findall(TIME, m.group(1))]
    draft.set("times", tuple(found), m.group(0))


@rule(rf"(?:(?:at|in the|this|during the) )?({_PART})")
def _part(draft: Draft, m: re.Match[str]) -> None:
    _daypart(draft, m.group(1), m.group(0))


RULES: list[Rule] = [
    _working_hours,
    _between,
    _deadline,
    _minutes,
    _hours,
    _per_day,
    _every_part,
    _month_day,
    _month_days,
    _period,
    _weekdays,
    _months,
    _times,
    _part,
]


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


def _time(draft: Draft) -> tuple[int, ...] | None:
    """The explicit time's hours (one shared minute first), checked against the part of
    the day ("every night at noon" is a conflict)."""
    times: tuple[tuple[int, int], ...] | None = draft.facets.get("times")
    between = draft.facets.get("between")
    if between and not times:
        times = (between[0],)
    part = draft.facets.get("daypart")
    if not times:
        return (0, DAYPARTS[part][0]) if isinstance(part, str) else None
    if len({minute for _, minute in times}) > 1:
        conflict(draft.said["times"], "(one minute for all the hours of a line)")
    if isinstance(part, str) and any(hour not in DAYPARTS[part][1] for hour, _ in times):
        conflict(draft.said["daypart"], draft.said["times"])
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
        if "between" in facets:
            (start, _), (end, end_minute) = facets["between"]
            facets["hours"] = (start, end + (1 if end_minute else 0))
        low, high = facets.get("hours") or (0, 24)
        hours = "*" if (low, high) == (0, 24) else f"{low}-{high - 1}"
        step = every[1]
        if every[0] == "minutes":
            minute, hour = ("*" if step == 1 else f"*/{step}"), hours
        else:
            hour = f"{hours}/{step}" if hours != "*" else ("*" if step == 1 else f"*/{step}")
    elif every[:1] == ("per_day",):
        first_minute, first_hour = (time[0], time[1]) if time else (0, 0)
        step = 24 // int(every[1])
        minute = str(first_minute)
        hour = ",".join(str(h) for h in sorted((first_hour + i * step) % 24 for i in range(
            int(every[1]))))  # fmt: skip
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


def _window_keys(draft: Draft, time: tuple[int, ...] | None) -> None:
    """A clock range ("between 1am and 4am") or a deadline ("by 5am") of a job that runs
    at one time is its clock window (smartcrontab(5)'s window=HH:MM-HH:MM)."""
    facets = draft.facets
    every = facets.get("every") or ()
    if "between" in facets and every[:1] not in (("minutes",), ("hours",)):
        start, end = facets["between"]
        draft.key("window", f"{clock_text(start)}-{clock_text(end)}", draft.said["between"])
    if "deadline" in facets:
        if time is None or len(time) != 2:
            raise SuggestError(f"{draft.said['deadline']!r} needs one time of day to start from")
        start, end = (time[1], time[0]), facets["deadline"]
        if start == end:
            conflict(draft.said["deadline"], "(the same time as the start)")
        draft.key("window", f"{clock_text(start)}-{clock_text(end)}", draft.said["deadline"])
