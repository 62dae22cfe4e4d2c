"""Properties of `smartcronctl suggest` (issue 16, point 7): every line it prints passes
the checks of `smartcrontab -T` (installcheck, in process), and the schedule it prints
fires when the sentence says (smartcron.cron.schedule's next firings)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.cron.cronfields import parse_timespec
from smartcron.cron.crontab import Kind
from smartcron.cron.schedule import next_fires
from smartcron.daemon import installcheck
from smartcron.smart.annotations import KINDS
from smartcron.smart.suggest import suggest
from smartcron.smart.suggestwords import SuggestError

Check = Callable[[list[datetime]], None]
START = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


def firings(schedule: str, count: int = 40) -> list[datetime]:
    return list(itertools.islice(next_fires(parse_timespec(schedule), START, UTC), count))


def cron_weekday(at: datetime) -> int:
    return (at.weekday() + 1) % 7


def passes_T(lines: list[str], after: str = "") -> None:
    """installcheck (smartcrontab -T) finds nothing; a job each after= names is in the file
    too, as it must be in the user's crontab."""
    named = [f"#@smart name={name}\n0 0 * * * true" for name in after.split(",") if name]
    text = "\n".join([*named, *lines]) + "\n"
    problems, warnings = installcheck.check_lines(text.encode(), "suggested", Kind.USER)
    assert (problems, warnings) == ([], []), lines


@st.composite
def minute_steps(draw: st.DrawFn) -> tuple[str, Check]:
    step = draw(st.sampled_from([1, 2, 3, 5, 10, 15, 20, 30]))
    text = "every minute" if step == 1 else f"every {step} minutes"

    def check(times: list[datetime]) -> None:
        assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=step)}

    return text, check


@st.composite
def hour_steps(draw: st.DrawFn) -> tuple[str, Check]:
    step = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12]))
    text = draw(st.sampled_from(["every hour", "hourly"])) if step == 1 else f"every {step} hours"

    def check(times: list[datetime]) -> None:
        assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(hours=step)}
        assert {t.minute for t in times} == {0}

    return text, check


@st.composite
def clock_times(draw: st.DrawFn) -> tuple[str, Check]:
    hour, minute = draw(st.integers(0, 23)), draw(st.sampled_from([0, 5, 15, 30, 45]))
    digits = f"{hour % 12 or 12}:{minute:02d}" if minute else f"{hour % 12 or 12}"
    twelve = f"{digits}{'am' if hour < 12 else 'pm'}"
    clock = draw(st.sampled_from([twelve, f"{hour}:{minute:02d}"]))
    days, allowed = draw(
        st.sampled_from(
            [
                ("every day", set(range(7))),
                ("daily", set(range(7))),
                ("on weekdays", {1, 2, 3, 4, 5}),
                ("weekdays", {1, 2, 3, 4, 5}),
                ("on weekends", {0, 6}),
                *((f"every {name}", {n}) for n, name in enumerate(DAYS)),
                *((f"on {DAYS[a]}s and {DAYS[b]}s", {a, b}) for a, b in [(1, 4), (2, 6), (0, 3)]),
            ]
        )
    )
    text = draw(st.sampled_from([f"{days} at {clock}", f"at {clock} {days}"]))

    def check(times: list[datetime]) -> None:
        assert {(t.hour, t.minute) for t in times} == {(hour, minute)}
        assert {cron_weekday(t) for t in times} == allowed
        assert len({t.date() for t in times}) == len(times)  # once a day

    return text, check


@st.composite
def month_days(draw: st.DrawFn) -> tuple[str, Check]:
    day = draw(st.integers(1, 28))
    suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(day, "th")
    text = f"on the {day}{suffix} of every month at noon"

    def check(times: list[datetime]) -> None:
        assert {(t.day, t.hour, t.minute) for t in times} == {(day, 12, 0)}
        assert len({(t.year, t.month) for t in times}) == len(times)

    return text, check


@st.composite
def times_a_day(draw: st.DrawFn) -> tuple[str, Check]:
    count = draw(st.sampled_from([2, 3, 4, 6]))
    text = {2: "twice a day", 3: "three times a day"}.get(count, f"{count} times a day")

    def check(times: list[datetime]) -> None:
        per_day = {day: len(list(group)) for day, group in itertools.groupby(times, datetime.date)}
        assert set(list(per_day.values())[1:-1]) == {count}
        assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(hours=24 // count)}

    return text, check


@st.composite
def ranged_steps(draw: st.DrawFn) -> tuple[str, Check]:
    start, length = draw(st.integers(0, 23)), draw(st.integers(1, 12))
    end = (start + length) % 24
    step = draw(st.sampled_from([5, 10, 15, 30]))

    def twelve(hour: int) -> str:
        return "midnight" if hour == 0 else f"{hour % 12 or 12}{'am' if hour < 12 else 'pm'}"

    text = f"every {step} minutes between {twelve(start)} and {twelve(end)}"
    hours = {(start + i) % 24 for i in range(length)}

    def check(times: list[datetime]) -> None:
        assert {t.hour for t in times} <= hours
        assert {t.minute for t in times} == set(range(0, 60, step)) or len(times) < 60 // step

    return text, check


@st.composite
def parts_of_the_day(draw: st.DrawFn) -> tuple[str, Check]:
    part, low, high = draw(
        st.sampled_from([("morning", 0, 11), ("afternoon", 12, 18), ("evening", 16, 23)])
    )
    hour = draw(st.integers(low, high))
    said = hour % 12 or 12 if part != "morning" else hour  # "at 7 in the evening"
    text = draw(st.sampled_from([f"every {part} at {said}", f"at {said} in the {part}"]))

    def check(times: list[datetime]) -> None:
        assert {(t.hour, t.minute) for t in times} == {(hour, 0)}

    return text, check


MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]  # fmt: skip


@st.composite
def dates(draw: st.DrawFn) -> tuple[str, Check]:
    month, day, hour = draw(st.integers(1, 12)), draw(st.integers(1, 28)), draw(st.integers(1, 11))
    name = MONTHS[month - 1]
    text = draw(st.sampled_from([f"on {name} {day} at {hour}am", f"on the {day}th of {name}"]))
    at = (hour, 0) if "am" in text else (0, 0)

    def check(times: list[datetime]) -> None:
        assert {(t.month, t.day, t.hour, t.minute) for t in times} == {(month, day, *at)}
        assert len({t.year for t in times}) == len(times)  # once a year

    return text, check


SCHEDULES = st.one_of(
    minute_steps(), hour_steps(), clock_times(), month_days(), times_a_day(), ranged_steps(),
    parts_of_the_day(), dates(),
)  # fmt: skip

# (phrase, key, value); a sentence draws at most one of each key.
CLAUSES = [
    ("when I'm idle", "idle", "10m"),
    ("when I've been idle for 20 minutes", "idle", "20m"),
    ("on AC power", "ac", "yes"),
    ("only when the battery is above 40%", "min_battery", "40%"),
    ("when load is below 2.5", "max_load", "2.5"),
    ("when cpu usage is under 30%", "max_cpu", "30%"),
    ("when memory use is below 75%", "max_ram", "75%"),
    ("with at least 15% free disk space", "min_disk", "15%"),
    ("within 3 hours", "window", "3h"),
    ("kill it after 45 minutes", "timeout", "45m"),
    ("retry twice", "retry", "2"),
    ("retry 3 times", "retry", "3"),
    ("at low priority", "priority", "-100"),
    ("skip it if the previous run is still going", "overlap", "skip"),
    ("only mail me on errors", "mail", "error"),
    ("never mail me", "mail", "never"),
    ("without the model", "ai", "no"),
    ("never explore", "explore", "no"),
    ("call it job_1", "name", "job_1"),
    ("no rush", "delay_cost", "0"),
    ("a failure costs 3", "fail_cost", "3"),
    ("with up to 5 minutes of jitter", "jitter", "5m"),
    ("when io pressure is under 20%", "max_io_pressure", "20%"),
    ("when the network is up", "network", "online"),
    ("after the backup job", "after", "backup"),
    ("with the server profile", "profile", "server"),
    ("don't catch up", "catchup", "no"),
    ("on only one host", "fleet", "once"),
]


@st.composite
def sentences(draw: st.DrawFn) -> tuple[str, Check, dict[str, str]]:
    schedule, check = draw(SCHEDULES)
    clauses = draw(st.lists(st.sampled_from(CLAUSES), max_size=5, unique_by=lambda c: c[1]))
    clauses = [c for c in clauses if c[1] in KINDS]
    parts = draw(st.permutations([schedule, *(phrase for phrase, _, _ in clauses)]))
    joiner = draw(st.sampled_from([", ", " and ", " "]))
    return joiner.join(parts), check, {key: value for _, key, value in clauses}


@settings(max_examples=150, deadline=None)
@given(sentences())
def test_a_described_job_prints_lines_smartcrontab_T_accepts_firing_as_described(case):
    text, check, keys = case
    try:
        found = suggest(text)
    except SuggestError as err:  # jitter longer than a short job's window: -T refuses it too
        assert "jitter" in keys and "is longer than the job's window" in str(err), text
        return
    assert (found.annotation, found.unparsed) == (keys, []), text
    passes_T(found.lines(), found.annotation.get("after", ""))
    check(firings(found.schedule))


_WORDS = """every night at 1am noon 9:30 weekdays weekends sunday monday first of month hourly
daily twice a day 15 minutes hours when i'm idle on ac power battery above 50% load below 2
within 3 retry kill it after skip previous run is still going mail me on errors low priority
between and 4am by 5am the 31st february 45 call named x/y backup job jitter , ."""
VOCABULARY = [*_WORDS.split(), "half an hour", "not while I'm using the computer"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=25))
def test_whatever_words_come_in_a_printed_line_passes_smartcrontab_T_or_nothing_is_printed(words):
    try:
        found = suggest(" ".join(words))
    except SuggestError as err:
        assert str(err)  # refused with a message, never a traceback
        return
    passes_T(found.lines(), found.annotation.get("after", ""))
    assert firings(found.schedule, 1), found.schedule  # and it fires some day


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_at_all_is_refused_with_a_message_or_gives_lines_that_pass(text):
    try:
        found = suggest(text)
    except SuggestError as err:
        assert str(err)
        return
    passes_T(found.lines(), found.annotation.get("after", ""))
