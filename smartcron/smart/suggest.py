"""A job described in plain words, as a crontab line and its `#@smart` line
(`smartcronctl suggest`, issue 16 point 7).

A deterministic grammar, no model and no network: rule tables of regular expressions
over the normalised sentence, the #@smart keys first (their phrases are the more
specific: "kill it after 30 minutes" is not a schedule), then the schedule
(smartcron.smart.suggestschedule). Every value is checked by the annotation grammar
itself (grammar.convert), so what is printed is what `smartcrontab -T` accepts.
Words no rule used are reported, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smartcron.smart import annotations as grammar
from smartcron.smart.suggestfields import cron_fields
from smartcron.smart.suggestkeys import KEY_RULES
from smartcron.smart.suggestschedule import RULES as SCHEDULE_RULES
from smartcron.smart.suggestwords import (
    MAX_CHARS,
    Draft,
    SuggestError,
    apply,
    leftovers,
)

PLACEHOLDER = "/path/to/command"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A sentence read: the five cron fields, the #@smart keys (as written on the line,
    in smartcrontab(5)'s order) and the runs of words not understood."""

    schedule: str
    annotation: dict[str, str]
    unparsed: list[str]

    def lines(self, command: str = PLACEHOLDER) -> list[str]:
        """The #@smart line (when there are keys) and the job line."""
        smart = [" ".join(["#@smart", *(f"{k}={v}" for k, v in self.annotation.items())])]
        return [*(smart if self.annotation else []), f"{self.schedule} {command}"]


def normalise(text: str) -> str:
    """One blank between words, clause marks as words of their own, "a.m." as "am"."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"(?i)(?<![A-Za-z_/.-])([ap])\.m\.?(?!\w)", r"\1m", text)  # not in a path
    text = re.sub(r"([,;!?]|\.(?=\s|$))", r" \1 ", text)
    return " ".join(text.split())


def _fires(schedule: str) -> None:
    """Refuse a date that never comes ("the 31st of February"): cron would keep the line
    and never run it."""
    from datetime import UTC, datetime

    from smartcron.cron.cronfields import parse_timespec
    from smartcron.cron.schedule import next_fires

    if next(next_fires(parse_timespec(schedule), datetime.now(UTC), UTC), None) is None:
        raise SuggestError(f"{schedule!r} never fires: that day does not exist in that month")


def suggest(text: str) -> Suggestion:
    """Read a job described in words. Raises SuggestError: text too long, no schedule,
    conflicting parts, or a value the annotation grammar refuses."""
    if len(text) > MAX_CHARS:
        raise SuggestError(
            f"the description is {len(text)} characters long; at most {MAX_CHARS}:"
            " describe one job in a sentence or two"
        )
    original = normalise(text)
    # Lower case one character at a time, so offsets in both strings agree.
    lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
    draft = Draft(original)
    used = apply(KEY_RULES + SCHEDULE_RULES, lowered, draft)
    unparsed = leftovers(used, original)
    if not draft.keys and not draft.facets:
        raise SuggestError(
            f"nothing recognised in {text.strip()[:80]!r}: say when the job runs (every"
            " night at 1am, weekdays at 9:30, ...) and, if you like, when it may"
            " (when I'm idle, on AC power, ...)"
        )
    schedule = cron_fields(draft)
    _fires(schedule)
    order = {key: index for index, key in enumerate(grammar.KINDS)}
    for key, value in draft.keys.items():
        try:
            grammar.convert(key, value)
        except ValueError as err:
            raise SuggestError(f"{draft.said[key]!r}: {key}: {err}") from None
    keys = dict(sorted(draft.keys.items(), key=lambda item: order[item[0]]))
    found = Suggestion(schedule, keys, unparsed)
    check_lines(found.lines())
    return found


def check_lines(lines: list[str]) -> None:
    """The checks of `smartcrontab -T` that look at a whole line, not one key: crontab(5)'s
    syntax and the smart layer's (jitter longer than the window, ...). after= names are
    the user's crontab's business: this line alone cannot know them."""
    from smartcron.cron.crontab import Kind, parse
    from smartcron.errors import AnnotationError, CrontabSyntaxError
    from smartcron.smart.smartspec import smart_spec_for

    try:
        for entry in parse(("\n".join(lines) + "\n").encode(), Kind.USER, install=True).entries:
            smart_spec_for(entry, "-", None, None)
    except (AnnotationError, CrontabSyntaxError) as err:
        reasons = "; ".join(problem.reason for problem in err.problems)
        raise SuggestError(f"the lines would not pass smartcrontab -T: {reasons}") from None
