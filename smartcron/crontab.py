"""The crontab parser: text in, entries out. Pure: no paths are opened, no clock is read.

It reproduces Debian's cron 3.0pl1-162 (entry.c, env.c) verdict for verdict, including
its oddities, because a crontab that Debian accepts must never be refused here:

* fields are parsed character by character; after a field's last range, anything up
  to the next blank is ignored (``5;`` is minute 5);
* ``a-b`` with ``a > b`` is accepted and matches nothing;
* a step needs a range (``5/10`` is "bad minute"), and ``*/0`` is rejected;
* names are the three-letter ones only, any case (``monday`` is rejected);
* a line is an environment assignment only if env.c's state machine says so
  (``FOO=`` with nothing after the ``=`` is *not* one, and so is a bad entry).

Where SmartCron knowingly differs, it says so in a warning instead of refusing:
a last line without a newline is still a job (Debian ignores the whole file).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from smartcron.errors import CrontabSyntaxError, LineProblem

# Limits from Debian's cron.h: MAX_COMMAND, MAX_ENVSTR/MAX_TEMPSTR, MAX_TAB_LINES.
MAX_COMMAND = 1000
MAX_ENVSTR = 1000
MAX_TAB_LINES = 10000

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Debian's DowNames has "Sun" twice (0 and 7); the first match wins, so "sun" is 0.
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

_END = "\n"  # what get_char returns at the end of a line
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ASCII_DIGITS = frozenset("0123456789")
# C's isspace() in the C locale.
_C_SPACE = " \t\n\v\f\r"


class Kind(enum.Enum):
    """User crontabs have five time fields; system ones (/etc/crontab, cron.d) add a user."""

    USER = "user"
    SYSTEM = "system"


class Keyword(enum.Enum):
    REBOOT = "@reboot"


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


@dataclass(frozen=True, slots=True)
class Annotation:
    """A raw ``#@smart`` line; its grammar belongs to the smart layer."""

    line: int
    text: str


@dataclass(frozen=True, slots=True)
class EnvAssignment:
    line: int
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One job line. `env` is the environment the crontab had set above this line."""

    line: int
    spec: TimeSpec
    command: str  # as cron stores it: the text after the fields, `%` and `\\` untouched
    user: str | None = None  # system crontabs only
    env: tuple[tuple[str, str], ...] = ()
    annotations: tuple[Annotation, ...] = ()

    @property
    def shell_command(self) -> str:
        """What `$SHELL -c` receives (the part before the first unescaped `%`)."""
        return split_command(self.command)[0]

    @property
    def stdin(self) -> str | None:
        """The job's standard input from the `%` part, or None when there is none."""
        return split_command(self.command)[1]


@dataclass(frozen=True, slots=True)
class Crontab:
    kind: Kind
    entries: tuple[Entry, ...]
    env: tuple[EnvAssignment, ...]
    warnings: tuple[LineProblem, ...] = field(default=())


# --------------------------------------------------------------------------- fields


class _FieldError(Exception):
    pass


def _c_atoi(digits: str) -> int:
    """atoi() as glibc does it: strtol saturates at LONG_MAX, then the int cast wraps."""
    value = min(int(digits), 2**63 - 1)
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


class _Cursor:
    """A line read one character at a time, like entry.c reads its FILE."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str, pos: int = 0) -> None:
        self.text = text
        self.pos = pos

    def get(self) -> str:
        if self.pos >= len(self.text):
            self.pos = len(self.text) + 1
            return _END
        ch = self.text[self.pos]
        self.pos += 1
        return ch


def _get_number(cur: _Cursor, ch: str, low: int, names: tuple[str, ...] | None) -> tuple[int, str]:
    token = []
    while ch in _ASCII_ALNUM:
        token.append(ch)
        if len(token) >= MAX_ENVSTR:
            raise _FieldError
        ch = cur.get()
    if not token:
        raise _FieldError
    word = "".join(token)
    if names:
        lowered = word.lower()
        for index, name in enumerate(names):
            if lowered == name:
                return index + low, ch
    if all(c in _ASCII_DIGITS for c in word):
        return _c_atoi(word), ch
    raise _FieldError


def _get_range(
    cur: _Cursor, ch: str, low: int, high: int, names: tuple[str, ...] | None, bits: set[int]
) -> str:
    if ch == "*":
        first, last = low, high
        ch = cur.get()
    else:
        first, ch = _get_number(cur, ch, low, names)
        if ch != "-":
            # Debian: "Step specified without range, eg: 1/20 * * * *" is an error.
            if ch == "/" or not low <= first <= high:
                raise _FieldError
            bits.add(first)
            return ch
        ch = cur.get()
        last, ch = _get_number(cur, ch, low, names)
    step = 1
    if ch == "/":
        ch = cur.get()
        step, ch = _get_number(cur, ch, 0, None)
        if step <= 0:
            raise _FieldError
    if not (low <= first <= high and low <= last <= high):
        raise _FieldError
    bits.update(range(first, last + 1, step))  # empty when first > last: never matches
    return ch


def _get_list(
    cur: _Cursor, ch: str, low: int, high: int, names: tuple[str, ...] | None
) -> tuple[frozenset[int], str]:
    bits: set[int] = set()
    while True:
        ch = _get_range(cur, ch, low, high, names, bits)
        if ch != ",":
            break
        ch = cur.get()
    # entry.c: "skip to some blanks, then skip over the blanks" -- trailing junk is ignored.
    while ch not in " \t\n":
        ch = cur.get()
    while ch in " \t":
        ch = cur.get()
    return frozenset(bits), ch


_FULL = {
    "minutes": frozenset(range(60)),
    "hours": frozenset(range(24)),
    "doms": frozenset(range(1, 32)),
    "months": frozenset(range(1, 13)),
    "dows": frozenset(range(7)),
}

# entry.c's @keywords; note which STAR flags each one sets (they matter for the day
# rule and for the clock-change rules: @hourly is a wildcard job, @daily is not).
_KEYWORDS: dict[str, dict[str, object]] = {
    "yearly": {"minutes": {0}, "hours": {0}, "doms": {1}, "months": {1}, "dow_star": True},
    "annually": {"minutes": {0}, "hours": {0}, "doms": {1}, "months": {1}, "dow_star": True},
    "monthly": {"minutes": {0}, "hours": {0}, "doms": {1}, "dow_star": True},
    "weekly": {"minutes": {0}, "hours": {0}, "dows": {0}, "dom_star": True},
    "daily": {"minutes": {0}, "hours": {0}},
    "midnight": {"minutes": {0}, "hours": {0}},
    "hourly": {"minutes": {0}, "hour_star": True},
}


def _keyword_spec(word: str) -> TimeSpec | None:
    if word == "reboot":
        empty: frozenset[int] = frozenset()
        return TimeSpec(empty, empty, empty, empty, empty, reboot=True, text="@reboot")
    fields = _KEYWORDS.get(word)
    if fields is None:
        return None
    values = {name: frozenset(fields.get(name, full)) for name, full in _FULL.items()}  # type: ignore[arg-type]
    flags = {k: bool(fields.get(k, False)) for k in ("dom_star", "dow_star", "hour_star")}
    return TimeSpec(**values, **flags, text="@" + word)


def _parse_times(cur: _Cursor) -> tuple[TimeSpec, str]:
    """Parse the time part at the cursor; return it and the first character after it.

    Raises _ReasonError with cron's reason ("bad minute", ...) on failure.
    """
    start = cur.pos
    ch = cur.get()
    if ch == "@":
        word = []
        ch = cur.get()
        while ch not in " \t\n":
            word.append(ch)
            ch = cur.get()
        spec = _keyword_spec("".join(word))
        if spec is None:
            raise _ReasonError("bad time specifier")
        while ch in " \t":
            ch = cur.get()
        return spec, ch

    layout = (
        ("minutes", 0, 59, None, "bad minute"),
        ("hours", 0, 23, None, "bad hour"),
        ("doms", 1, 31, None, "bad day-of-month"),
        ("months", 1, 12, MONTH_NAMES, "bad month"),
        ("dows", 0, 7, DOW_NAMES, "bad day-of-week"),
    )
    values: dict[str, frozenset[int]] = {}
    stars: dict[str, bool] = {}
    for name, low, high, names, reason in layout:
        stars[name] = ch == "*"
        try:
            values[name], ch = _get_list(cur, ch, low, high, names)
        except _FieldError:
            raise _ReasonError(reason) from None
    dows = values["dows"]
    if 7 in dows:  # "make sundays equivalent"
        dows = (dows - {7}) | {0}
    text = cur.text[start : cur.pos - 1].rstrip(" \t") if cur.pos > start else ""
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


class _ReasonError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timespec(text: str) -> TimeSpec:
    """Parse a bare time expression (`*/5 * * * *` or `@daily`), as `next --expr` takes it.

    Raises CrontabSyntaxError (path "<expr>", line 1) with cron's reason.
    """
    cur = _Cursor(text.strip(" \t"))
    try:
        spec, ch = _parse_times(cur)
    except _ReasonError as err:
        raise CrontabSyntaxError([LineProblem("<expr>", 1, err.reason)]) from None
    if ch != _END:
        rest = cur.text[cur.pos - 1 :]
        raise CrontabSyntaxError(
            [LineProblem("<expr>", 1, f"unexpected text after the time fields: {rest!r}")]
        )
    return spec


# --------------------------------------------------------------------------- environment


def parse_env_line(line: str) -> tuple[str, str] | None:
    """env.c's load_env on one line (leading blanks already skipped).

    Returns (name, value) when cron would take the line as an assignment, else None.
    Quirks kept: `FOO=` is not an assignment; `FOO="a" # c` is not one either (only
    blanks may follow a closing quote); strdtb() then strips trailing blanks even from
    inside quotes (`"a  "` gives `a`), and a value that still starts and ends with the
    same quote loses that pair too (`'"a"'` gives `a`).
    """
    line = line[: MAX_ENVSTR - 2]  # get_string(envstr, MAX_ENVSTR - 1) keeps 998 chars
    nul = line.find("\0")
    if nul >= 0:
        line = line[:nul]
    name: list[str] = []
    value: list[str] = []
    out = name
    state = "NAMEI"
    quote = ""
    i = 0
    n = len(line)
    while state != "ERROR" and i < n:
        c = line[i]
        if state in ("NAMEI", "VALUEI"):
            if c in "'\"":
                quote = c
                i += 1
            state = "NAME" if state == "NAMEI" else "VALUE"
            if i >= n:
                break
            c = line[i]
        if state in ("NAME", "VALUE"):
            if quote:
                if c == quote:
                    state = "EQ1" if state == "NAME" else "FINI"
                    i += 1
                    continue
                if state == "NAME" and c == "=":
                    state = "ERROR"
                    continue
            elif state == "NAME":
                if c in _C_SPACE:
                    i += 1
                    state = "EQ1"
                    continue
                if c == "=":
                    state = "EQ1"
                    continue
            out.append(c)
            i += 1
        elif state == "EQ1":
            if c == "=":
                state = "EQ2"
                out = value
                quote = ""
            elif c not in _C_SPACE:
                state = "ERROR"
            i += 1
        elif state in ("EQ2", "FINI"):
            if c in _C_SPACE:
                i += 1
            else:
                state = "VALUEI" if state == "EQ2" else "ERROR"
    if state != "FINI" and not (state == "VALUE" and not quote):
        return None
    val = "".join(value).rstrip(_C_SPACE)  # the VALUE trim and strdtb() agree
    if len(val) >= 2 and val[0] in "'\"" and val[-1] == val[0]:
        val = val[1:-1]
    key = "".join(name)
    if len(key) + 1 + len(val) >= MAX_ENVSTR - 1:
        return None
    return key, val


# --------------------------------------------------------------------------- commands


def split_command(command: str) -> tuple[str, str | None]:
    """do_command.c: the first unescaped `%` ends the command; the rest is stdin.

    In the command, `\\%` becomes `%` and `\\\\` becomes `\\`. In the input, each further
    `%` becomes a newline, `\\%` a literal `%`, and a newline is added at the end
    unless the input already ends with one. Returns (command, stdin or None).
    """
    out: list[str] = []
    escaped = False
    rest: str | None = None
    for index, ch in enumerate(command):
        if escaped:
            if ch in "%\\":
                out[-1] = ch
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            out.append(ch)
            continue
        if ch == "%":
            rest = command[index + 1 :]
            break
        out.append(ch)
    if rest is None:
        return "".join(out), None
    data: list[str] = []
    escaped = False
    need_newline = False
    for ch in rest:
        if escaped:
            if ch != "%":
                data.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            data.append(ch)
            need_newline = ch != "\n"
    if escaped:
        data.append("\\")
    if need_newline:
        data.append("\n")
    return "".join(out), "".join(data)


# --------------------------------------------------------------------------- files

SMART_PREFIX = "#@smart"

# Debian's cron.d rule (run-parts --lsbsysinit names): letters, digits, '_' and '-'.
_CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def cron_d_name_ok(name: str) -> bool:
    """Whether Debian's cron would read `/etc/cron.d/NAME` (dotted names are ignored)."""
    return bool(_CRON_D_NAME.fullmatch(name))


def _lines(text: str) -> tuple[list[str], bool]:
    lines = text.split("\n")
    has_final_newline = lines[-1] == ""
    if has_final_newline:
        lines.pop()
    return lines, has_final_newline


def parse(
    text: str,
    kind: Kind = Kind.USER,
    path: str = "-",
    user_exists: Callable[[str], bool] | None = None,
) -> Crontab:
    """Parse a whole crontab. Collects every bad line, then raises CrontabSyntaxError.

    `user_exists` checks a system line's user (cron's getpwnam); None accepts any name,
    which keeps this function pure for tests and for checking files meant for another
    machine.
    """
    lines, final_newline = _lines(text)
    problems: list[LineProblem] = []
    warnings: list[LineProblem] = []
    entries: list[Entry] = []
    env_assignments: list[EnvAssignment] = []
    env: dict[str, str] = {}
    pending: list[Annotation] = []

    if len(lines) > MAX_TAB_LINES:
        problems.append(
            LineProblem(
                path, MAX_TAB_LINES + 1, f"crontab must not be longer than {MAX_TAB_LINES} lines"
            )
        )
        lines = lines[:MAX_TAB_LINES]

    for number, raw in enumerate(lines, start=1):
        body = raw.lstrip(" \t")
        if not body or body.startswith("#"):
            if body.startswith(SMART_PREFIX):
                pending.append(Annotation(number, body))
            continue
        if "\r" in body:
            warnings.append(
                LineProblem(path, number, "carriage return in line (CRLF file?); kept as cron does")
            )
        assignment = parse_env_line(body)
        if assignment is not None:
            name, value = assignment
            env[name] = value
            env_assignments.append(EnvAssignment(number, name, value))
            if len(body) > MAX_ENVSTR - 2:
                warnings.append(
                    LineProblem(
                        path, number, f"value cut to {MAX_ENVSTR - 2} characters, as cron does"
                    )
                )
            continue
        try:
            entry = _parse_entry(body, number, kind, user_exists)
        except _ReasonError as err:
            hint = " (carriage return in line: CRLF line ends?)" if "\r" in body else ""
            problems.append(LineProblem(path, number, err.reason + hint))
            pending = []
            continue
        entries.append(
            Entry(
                line=number,
                spec=entry[0],
                command=entry[2],
                user=entry[1],
                env=tuple(env.items()),
                annotations=tuple(pending),
            )
        )
        pending = []
    for annotation in pending:
        warnings.append(
            LineProblem(path, annotation.line, "#@smart line is not followed by a job line")
        )
    if lines and not final_newline:
        warnings.append(
            LineProblem(
                path,
                len(lines),
                "no newline at end of file; the last line is still read"
                " (Debian's cron would ignore the file)",
            )
        )
    if problems:
        raise CrontabSyntaxError(problems)
    return Crontab(kind, tuple(entries), tuple(env_assignments), tuple(warnings))


def _parse_entry(
    body: str, number: int, kind: Kind, user_exists: Callable[[str], bool] | None
) -> tuple[TimeSpec, str | None, str]:
    if "\0" in body:
        raise _ReasonError("NUL byte in line (binary file?)")
    cur = _Cursor(body)
    spec, ch = _parse_times(cur)
    rest = body[cur.pos - 1 :] if ch != _END else ""
    user: str | None = None
    if kind is Kind.SYSTEM:
        # get_string(username, ..., " \t"): the user name ends at the first blank.
        cut = min((i for i in (rest.find(" "), rest.find("\t")) if i >= 0), default=-1)
        if cut < 0:
            raise _ReasonError("bad username" if rest else "bad command")
        user, rest = rest[:cut], rest[cut + 1 :]
        if user_exists is not None and not user_exists(user):
            raise _ReasonError("bad username")
    elif rest.startswith("*"):
        # entry.c rejects a user command starting with '*' (a sixth time field, usually).
        raise _ReasonError("bad command")
    if len(rest) >= MAX_COMMAND - 1:
        raise _ReasonError("command too long")
    return spec, user, rest


def format_problems(problems: Iterable[LineProblem]) -> str:
    return "\n".join(str(p) for p in problems)
