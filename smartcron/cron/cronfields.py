"""The five time fields and the @keywords, parsed as Debian's entry.c does."""

from __future__ import annotations

from dataclasses import dataclass

from smartcron.cron.cronstream import (
    ALNUM,
    DOW_NAMES,
    EOF,
    MAX_COMMAND,
    MAX_ENVSTR,
    MONTH_NAMES,
    NL,
    Reason,
    Stream,
    as_bytes,
    as_text,
)
from smartcron.errors import CrontabSyntaxError, LineProblem


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """The expanded time fields of one entry, with the flags cron keeps beside them.

    `dom_star`/`dow_star` record that the field *started with* ``*``: Debian then ANDs
    the two day fields instead of ORing them. `min_star`/`hour_star` make a job a
    "wildcard" job for cron(8)'s clock-change rules.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]  # 0..6, Sunday = 0 (7 is folded into 0)
    dom_star: bool = False
    dow_star: bool = False
    min_star: bool = False
    hour_star: bool = False
    reboot: bool = False
    text: str = ""

    @property
    def wildcard(self) -> bool:
        """cron.c's `e->flags & (MIN_STAR|HR_STAR)`: runs on the new time after a jump."""
        return self.min_star or self.hour_star


# --------------------------------------------------------------------------- fields


def _as_char(ch: int) -> int:
    """entry.c's field functions return `char`: a 0xFF byte comes back as EOF."""
    return EOF if ch == 0xFF else ch


def _wrap_int(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _c_atoi(digits: bytes) -> int:
    """atoi() as glibc does it: strtol saturates at LONG_MAX, then the int cast wraps."""
    return _wrap_int(min(int(digits), 2**63 - 1))


def _get_number(s: Stream, ch: int, low: int, names: tuple[str, ...] | None) -> tuple[int, int]:
    token = bytearray()
    while ch in ALNUM:
        if len(token) + 1 >= MAX_ENVSTR:  # "if (++len >= MAX_TEMPSTR) return EOF"
            return 0, EOF
        token.append(ch)
        ch = s.get()
    if not token:
        return 0, EOF
    if names:
        lowered = token.decode("ascii").lower()
        if lowered in names:
            return names.index(lowered) + low, _as_char(ch)
    if token.isdigit():
        return _c_atoi(bytes(token)), _as_char(ch)
    return 0, EOF


def _get_range(
    s: Stream, ch: int, low: int, high: int, names: tuple[str, ...] | None, bits: set[int]
) -> int:
    if ch == ord("*"):
        first, last = low, high
        ch = s.get()
    else:
        first, ch = _get_number(s, ch, low, names)
        if ch == EOF:
            return EOF
        if ch != ord("-"):
            # "Step specified without range, eg: 1/20 * * * *" is an error.
            if ch == ord("/") or not low <= first <= high:
                return EOF
            bits.add(first)
            return ch
        last, ch = _get_number(s, s.get(), low, names)
        if ch == EOF:
            return EOF
    step = 1
    if ch == ord("/"):
        step, ch = _get_number(s, s.get(), 0, None)
        if ch == EOF or step <= 0:
            return EOF
    if not (low <= first <= high and low <= last <= high):
        return EOF
    # `for (i = num1; i <= num2; i += num3)` on a C int: a huge step overflows to a
    # negative i, which set_element() rejects (1-59/2147483647 is "bad minute").
    i = first
    while i <= last:
        if not low <= i <= high:
            return EOF
        bits.add(i)
        i = _wrap_int(i + step)
    return _as_char(ch)  # first > last sets nothing: the range never matches


def _get_list(
    s: Stream, ch: int, low: int, high: int, names: tuple[str, ...] | None
) -> tuple[frozenset[int], int]:
    bits: set[int] = set()
    while True:
        ch = _get_range(s, ch, low, high, names, bits)
        if ch != ord(","):
            break
        ch = s.get()
    # "skip to some blanks, then skip over the blanks": trailing junk is ignored.
    ch = s.skip_blanks(s.skip_nonblanks(ch))
    return frozenset(bits), _as_char(ch)


_FULL = {
    "minutes": frozenset(range(60)),
    "hours": frozenset(range(24)),
    "doms": frozenset(range(1, 32)),
    "months": frozenset(range(1, 13)),
    "dows": frozenset(range(7)),
}

# entry.c's @keywords: the fields each one sets (the others are full), and which STAR
# flags (they matter for the day rule and for the clock-change rules: @hourly is a
# wildcard job, @daily is not).
_KEYWORDS: dict[str, tuple[dict[str, set[int]], frozenset[str]]] = {
    "yearly": ({"minutes": {0}, "hours": {0}, "doms": {1}, "months": {1}}, frozenset({"dow"})),
    "annually": ({"minutes": {0}, "hours": {0}, "doms": {1}, "months": {1}}, frozenset({"dow"})),
    "monthly": ({"minutes": {0}, "hours": {0}, "doms": {1}}, frozenset({"dow"})),
    "weekly": ({"minutes": {0}, "hours": {0}, "dows": {0}}, frozenset({"dom"})),
    "daily": ({"minutes": {0}, "hours": {0}}, frozenset()),
    "midnight": ({"minutes": {0}, "hours": {0}}, frozenset()),
    "hourly": ({"minutes": {0}}, frozenset({"hour"})),
}


def _keyword_spec(word: str) -> TimeSpec | None:
    if word == "reboot":
        empty: frozenset[int] = frozenset()
        return TimeSpec(empty, empty, empty, empty, empty, reboot=True, text="@reboot")
    if word not in _KEYWORDS:
        return None
    fields, stars = _KEYWORDS[word]

    def values(name: str) -> frozenset[int]:
        return frozenset(fields.get(name, _FULL[name]))

    return TimeSpec(
        values("minutes"),
        values("hours"),
        values("doms"),
        values("months"),
        values("dows"),
        dom_star="dom" in stars,
        dow_star="dow" in stars,
        hour_star="hour" in stars,
        text="@" + word,
    )


_LAYOUT = (
    ("minutes", 0, 59, None, "bad minute"),
    ("hours", 0, 23, None, "bad hour"),
    ("doms", 1, 31, None, "bad day-of-month"),
    ("months", 1, 12, MONTH_NAMES, "bad month"),
    ("dows", 0, 7, DOW_NAMES, "bad day-of-week"),
)


_SHARED: dict[frozenset[int], frozenset[int]] = {}
_MAX_SHARED = 4096  # distinct sets kept; beyond that, entries keep their own


def _shared(values: frozenset[int]) -> frozenset[int]:
    known = _SHARED.get(values)
    if known is not None:
        return known
    if len(_SHARED) < _MAX_SHARED:
        _SHARED[values] = values
    return values


def load_times(s: Stream) -> tuple[TimeSpec, int]:
    """load_entry's time part: return the spec and the first character after the blanks."""
    start = s.pos
    ch = s.get()
    if ch == ord("@"):
        word, ch = s.get_string(MAX_COMMAND, b" \t\n")
        spec = _keyword_spec(as_text(word))
        if spec is None:
            raise Reason("bad time specifier")
        return spec, s.skip_blanks(ch)
    values: dict[str, frozenset[int]] = {}
    stars: dict[str, bool] = {}
    for name, low, high, names, reason in _LAYOUT:
        stars[name] = ch == ord("*")
        values[name], ch = _get_list(s, ch, low, high, names)
        if ch == EOF:
            raise Reason(reason)
    dows = values["dows"]
    if 7 in dows:  # "make sundays equivilent"
        dows = (dows - {7}) | {0}
    # Most entries share their field sets (`*`, `0`, `1-5`): keep one copy of each, so a
    # daemon with thousands of entries does not hold thousands of equal sets.
    values = {name: _shared(value) for name, value in values.items()}
    dows = _shared(dows)
    text = as_text(s.data[start : s.pos - 1]).rstrip(" \t\n")
    spec = TimeSpec(
        minutes=values["minutes"],
        hours=values["hours"],
        doms=values["doms"],
        months=values["months"],
        dows=dows,
        dom_star=stars["doms"],
        dow_star=stars["dows"],
        min_star=stars["minutes"],
        hour_star=stars["hours"],
        text=text,
    )
    return spec, ch


def parse_timespec(text: str) -> TimeSpec:
    """Parse a bare time expression (`*/5 * * * *` or `@daily`), as `next --expr` takes it.

    Raises CrontabSyntaxError (path "<expr>", line 1) with cron's reason.
    """
    s = Stream(as_bytes(text.strip(" \t")) + b"\n")
    try:
        spec, ch = load_times(s)
    except Reason as err:
        raise CrontabSyntaxError([LineProblem("<expr>", 1, err.reason)]) from None
    if ch != NL:
        rest = as_text(s.data[s.pos - 1 : -1])
        raise CrontabSyntaxError(
            [LineProblem("<expr>", 1, f"unexpected text after the time fields: {rest!r}")]
        )
    return spec
