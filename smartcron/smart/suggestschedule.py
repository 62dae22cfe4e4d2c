"""When a job described in words runs: the schedule rules of `smartcronctl suggest`.

Each rule records a facet on the draft (how often, at what time, on which days, ...);
smartcron.smart.suggestfields turns the facets into the five cron fields. Two facets
that disagree ("at 1am ... at noon") are a conflict: the sentence is refused, naming both.
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
    if re.search(r"week-?days?|working days|work-?days|business days", text):
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


Clock = tuple[int, int, bool]  # hour, minute, and whether the hour is bare (1 to 12)


def _clock(text: str) -> Clock:
    """A time as said; bare when no am, pm, noon or midnight pins the hour: a part of
    the day may move it ("at 7 in the evening"). "1400" is 14:00."""
    text = text.strip()
    if re.fullmatch(r"\d{3,4}", text):
        hour, minute = divmod(int(text), 100)
        return (*clock(f"{hour}:{minute:02d}"), False)
    hour, minute = clock(text + ":00" if text.isdigit() else text)
    return hour, minute, not re.search(r"am|pm|noon|midday|midnight", text) and 1 <= hour <= 12


_HOUR = r"(?:\d{1,2}|[01]\d[0-5]\d|2[0-3][0-5]\d)(?![\w:.%])"


@rule(rf"(?:from |between )({TIME}|{_HOUR}) (?:and|to|till|until) ({TIME}|{_HOUR})")
def _between(draft: Draft, m: re.Match[str]) -> None:
    start, end = _clock(m.group(1)), _clock(m.group(2))
    if start[2] and end[2] and end[0] <= start[0] < end[0] + 12:  # "from 9 to 5"
        end = (end[0] + 12, end[1], False)
    draft.set("between", (start, end), m.group(0))


@rule(rf"(?:(?:finish(?:ed)? )?start(?:ing|ed)? )?(?:by|no later than|not after) ({TIME})")
def _deadline(draft: Draft, m: re.Match[str]) -> None:
    draft.set("deadline", ((*clock(m.group(1)), False),), m.group(0))


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


@rule(rf"(?:every (?:({NUM}) )?(?:hours?|hrs?)|(hourly))(?: on the hour)?")
def _hours(draft: Draft, m: re.Match[str]) -> None:
    step = number(m.group(1)) if m.group(1) else 1.0
    _every(draft, ("hours", _step(step, 24, m.group(0))), m.group(0))


@rule(r"every (?:other|\d{1,3}|two|three|four|five|six|seven) days?")
def _day_steps(draft: Draft, m: re.Match[str]) -> None:
    raise SuggestError(
        f"{m.group(0)!r}: cron cannot repeat that evenly (a day-of-month step restarts"
        " each month); name the days instead (on mondays, wednesdays and fridays)"
    )


@rule(r"(?:on )?the last day of (?:the|every|each) month|at the end of (?:the|every|each) month")
def _last_day(draft: Draft, m: re.Match[str]) -> None:
    raise SuggestError(f"{m.group(0)!r}: crontab(5) has no last day of the month")


@rule(rf"({COUNT}) (?:a|per|each|every) week")
def _per_week(draft: Draft, m: re.Match[str]) -> None:
    if count(m.group(1)) != 1:
        raise SuggestError(f"{m.group(0)!r}: say which days (on mondays and thursdays)")
    _every(draft, ("week",), m.group(0))


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
    rf"|week-?days?|week-?ends?|working days|work-?days|business days)(?: ({_PART})s?)?"
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
    rf"|(?:at|around|about)(?: around| about)? ({_HOUR}(?:(?: ,)? (?:and )?{_HOUR})*)"
)
def _times(draft: Draft, m: re.Match[str]) -> None:
    said = re.findall(r"\d+", m.group(2)) if m.group(2) else re.findall(TIME, m.group(1))
    draft.set("times", tuple(_clock(t) for t in said), m.group(0))


@rule(rf"(?:(?:at|in the|this|during the) )?({_PART})")
def _part(draft: Draft, m: re.Match[str]) -> None:
    _daypart(draft, m.group(1), m.group(0))


RULES: list[Rule] = [
    _working_hours,
    _between,
    _deadline,
    _minutes,
    _hours,
    _day_steps,
    _last_day,
    _per_week,
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
