"""The words `smartcronctl suggest` reads: numbers, durations, times of day, and the
draft a sentence is read into, one rule at a time (smartcron.smart.suggest).

A rule is a regular expression over the normalised sentence (lower case, one blank
between words, commas as words of their own) and a function that records what it
matched on a Draft. The words a rule matched are used up, so no later rule reads them
again; what no rule matched is what `suggest` did not understand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smartcron.errors import SmartcronError

MAX_CHARS = 2000  # longer text is refused before any rule runs: bounded time, clear message


class SuggestError(SmartcronError):
    """A sentence `suggest` cannot turn into a crontab line; the message says why."""


class Skip(Exception):
    """Raised by a rule's action: leave these words for the rules after it."""


_NUMBER_WORDS = {
    "zero": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100,
}  # fmt: skip
_COUNT_WORDS = {"once": 1, "twice": 2, "thrice": 3}
NUM = r"(?:\d{1,9}(?:\.\d{1,6})?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + ")"
# "twice", "3 times", "three times", "once"
COUNT = rf"(?:once|twice|thrice|{NUM} times?)"
_UNIT = r"(?:seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DUR = (
    r"(?:half an? hour|half hour|an? hour and a half"
    rf"|{NUM} ?{_UNIT}(?: and (?:a half|{NUM} ?{_UNIT}))*(?![\w/])"
    r"|(?:\d{1,9}[smhd]){2,4}(?!\w))"
)
PCT = r"(?:\d{1,9}(?:\.\d{1,6})?) ?(?:%|percent|per cent)"
NAMECHARS = r"[a-z0-9_.-]+"
PATH = r"/[\w./+-]*"
BELOW = (
    r"(?:(?:is|are|stays?|remains?|goes|drops) )?"
    r"(?:below|under|less than|lower than|at most|no more than|not above|not over|<=?)"
)
ABOVE = (
    r"(?:(?:is|are|stays?|remains?|has) )?"
    r"(?:above|over|more than|greater than|higher than|at least|no less than|>=?)"
)
_AMPM = r"(?: ?(?:am|pm)(?!\w))"
TIME = (
    r"(?:noon|midday|midnight"
    rf"|(?:a )?quarter (?:past|after) \d{{1,2}}{_AMPM}?|half past \d{{1,2}}{_AMPM}?"
    rf"|(?:a )?quarter to \d{{1,2}}{_AMPM}?"
    rf"|\d{{1,2}}(?::[0-5]\d)?{_AMPM}|\d{{1,2}}:[0-5]\d(?!\w)|\d{{1,2}} o'clock)"
)


def number(text: str) -> float:
    """A number written in digits or words ("2", "1.5", "two", "a")."""
    text = text.strip()
    if text in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[text])
    return float(text)


def count(text: str) -> int:
    """How many times: "once", "twice", "3 times", "three times"."""
    text = text.strip()
    if text in _COUNT_WORDS:
        return _COUNT_WORDS[text]
    value = number(re.sub(r" times?$", "", text))
    if not value.is_integer():
        raise SuggestError(f"{text!r} is not a whole number of times")
    return int(value)


def seconds(text: str) -> float:
    """The length of a duration phrase matched by DUR."""
    text = text.strip()
    if re.fullmatch(r"half an? hour|half hour", text):
        return 1800
    if re.fullmatch(r"an? hour and a half", text):
        return 5400
    total = 0.0
    for amount, unit in re.findall(rf"({NUM}) ?({_UNIT})(?![a-z])", text):
        total += number(amount) * _UNIT_SECONDS[unit[0]]
    if text.endswith("and a half") and total:
        unit = re.findall(_UNIT, text)[-1]
        total += _UNIT_SECONDS[unit[0]] / 2
    return total


def duration_text(total: float) -> str:
    """Seconds as the annotation grammar writes them: 1h30m, 10m, 2d, 45s."""
    left = round(total)
    if left <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def number_text(value: float) -> str:
    return f"{value:g}"


def clock(text: str) -> tuple[int, int]:
    """(hour, minute) of a phrase matched by TIME: 1am, 9:30, 18:05, noon, quarter to 7."""
    text = text.strip()
    fixed = {"noon": (12, 0), "midday": (12, 0), "midnight": (0, 0)}
    if text in fixed:
        return fixed[text]
    ampm = re.search(r"(am|pm)$", text)
    digits = [int(n) for n in re.findall(r"\d+", text)]
    hour, minute = digits[0], digits[1] if len(digits) > 1 else 0
    if "quarter" in text or "half" in text:
        minute = 30 if "half" in text else 15
    if ampm:
        if not 1 <= hour <= 12:
            raise SuggestError(f"{text!r} is not a time of day (a 12-hour clock goes 1 to 12)")
        hour = hour % 12 + (12 if ampm.group(1) == "pm" else 0)
    elif hour > 24 or (hour == 24 and minute):
        raise SuggestError(f"{text!r} is not a time of day")
    if " to " in text:  # "quarter to 12am" is 23:45
        hour, minute = divmod((hour * 60 - 15) % 1440, 60)
    return hour % 24, minute


def clock_text(at: tuple[int, int]) -> str:
    return f"{at[0]:02d}:{at[1]:02d}"


@dataclass
class Draft:
    """What the rules have read so far: schedule facets and #@smart keys, each with the
    words it came from (to name both sides of a conflict)."""

    original: str  # the normalised sentence, case kept: names and paths come from it
    facets: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    said: dict[str, str] = field(default_factory=dict)  # facet or key -> its words

    def set(self, facet: str, value: Any, words: str) -> None:
        """Record a schedule facet; a different value for one already read is a conflict."""
        if facet in self.facets and self.facets[facet] != value:
            conflict(self.said[facet], words)
        self.facets[facet] = value
        self.said[facet] = words

    def key(self, key: str, value: str, words: str) -> None:
        """Record a #@smart key; a different value for one already read is a conflict."""
        if key in self.keys and self.keys[key] != value:
            conflict(self.said[key], words)
        self.keys[key] = value
        self.said[key] = words


def conflict(first: str, second: str) -> None:
    raise SuggestError(
        f"conflicting parts: {first!r} and {second!r}; a crontab line has one schedule and"
        " one value per key: describe each job in its own sentence"
    )


Action = Callable[[Draft, re.Match[str]], None]
Rule = tuple[re.Pattern[str], Action]


def rule(pattern: str) -> Callable[[Action], Rule]:
    """Decorator: a rule matching `pattern` as whole words."""

    def wrap(action: Action) -> Rule:
        return re.compile(rf"(?<![\w'/-])(?:{pattern})(?![\w'-])"), action

    return wrap


USED = "\x00"  # stands in for every character a rule has used up


def apply(rules: list[Rule], text: str, draft: Draft) -> str:
    """Run each rule over what earlier rules left; returns the text, used words blanked."""
    for pattern, action in rules:
        for match in list(pattern.finditer(text)):
            if USED in match.group(0):  # an earlier match of this rule used part of it
                continue
            try:
                action(draft, match)
            except Skip:
                continue
            start, end = match.span()
            text = text[:start] + USED * (end - start) + text[end:]
    return text


# Words that only join the parts of a sentence: never reported as not understood.
FILLERS = frozenset(
    {"and", "or", "but", "then", "also", "the", "a", "an", "it", "it's", "its", "please"}
    | {"only", "just", "run", "runs", "job", "when", "while", "if", "with", "should"}
    | {"must", "i", "i'd", "want", "to", "me", "my", "so", ",", ";", ".", "!", "?"}
)


def leftovers(used: str, original: str) -> list[str]:
    """The runs of words no rule used (as the user wrote them), fillers dropped."""
    kept = "".join(USED if u == USED else o for u, o in zip(used, original, strict=True))
    runs = []
    for chunk in kept.split(USED):
        words = [w for w in chunk.split() if w.lower() not in FILLERS]
        if words:
            runs.append(" ".join(words))
    return runs
