"""The crontab parser: text in, entries out. Pure: no paths are opened, no clock is read.

It ports Debian's cron 3.0pl1-162 (entry.c, env.c, misc.c) verdict for verdict, because
a crontab that Debian accepts must never be refused here. Like cron it reads the file
as a byte stream (text is encoded back to UTF-8 with surrogateescape, so every limit
counts bytes) with the same one-character look-ahead, and keeps its oddities:

* after a field's last range, anything up to the next blank is ignored (``5;`` is 5);
* ``a-b`` with ``a > b`` is accepted and matches nothing; a step needs a range
  (``5/10`` is "bad minute"); ``*/0`` is rejected; numbers go through C's atoi();
* names are the three-letter ones only, any case (``monday`` is rejected);
* a line is an environment assignment only if env.c's state machine says so
  (``FOO=`` is not one, and so is a bad entry); env.c reads its line buffer past the
  end when a line ends in an opening quote, so the previous line's leftovers count;
* get_string() stops at a NUL byte (strchr finds the terminator), so a NUL ends a
  command and what follows is read as a new line; a byte 0xFF right after a field
  reads as EOF (the field functions return `char`);
* system lines: the user name runs to the next blank, across newlines if need be.

Where SmartCron knowingly differs, it says so in a warning instead of refusing: a last
line without a newline is still read (Debian refuses the whole file). Debian stops at
the first bad line; `parse` reports every one (it restarts at the next line).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from smartcron.errors import CrontabSyntaxError, LineProblem

# Limits from Debian's cron.h, in bytes: MAX_COMMAND, MAX_ENVSTR (= MAX_TEMPSTR), MAX_TAB_LINES.
MAX_COMMAND = 1000
MAX_ENVSTR = 1000
MAX_TAB_LINES = 10000
NHEADER_LINES = 3  # the "DO NOT EDIT" header crontab(1) writes on top of a spool file

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Debian's DowNames has "Sun" twice (0 and 7); the first match wins, so "sun" is 0.
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

_EOF = -1
_NL, _SP, _TAB, _NUL = 10, 32, 9, 0
_BLANKS = (_SP, _TAB)
_QUOTES = (ord("'"), ord('"'))
_C_SPACE = b" \t\n\v\f\r"  # isspace() in the C (and C.UTF-8) locale
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NONBLANK_END = re.compile(b"[ \t\n]")


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
        """The job's standard input from the `%` part ("" for a trailing `%`), else None."""
        return split_command(self.command)[1]


@dataclass(frozen=True, slots=True)
class Crontab:
    kind: Kind
    entries: tuple[Entry, ...]
    env: tuple[EnvAssignment, ...]
    warnings: tuple[LineProblem, ...] = field(default=())


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


class _Reason(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- the stream


@functools.cache
def _terminators(terms: bytes) -> re.Pattern[bytes]:
    return re.compile(b"[\\x00" + re.escape(terms) + b"]")


class _Stream:
    """misc.c's get_char/unget_char/get_string/skip_comments over bytes, with LineNumber."""

    __slots__ = ("annotations", "data", "found", "line", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.line = 1
        self.annotations: list[Annotation] = []
        self.found: dict[bytes, tuple[int, int, int]] = {}

    def get(self) -> int:
        if self.pos >= len(self.data):
            return _EOF
        ch = self.data[self.pos]
        self.pos += 1
        if ch == _NL:
            self.line += 1
        return ch

    def unget(self, ch: int) -> None:
        if ch != _EOF:
            self.pos -= 1
            if ch == _NL:
                self.line -= 1

    def get_string(self, size: int, terms: bytes) -> tuple[bytes, int]:
        """Read up to a byte of `terms` (or NUL: strchr finds the terminator); keep size-1."""
        # Memo: a user name's search may run over many lines (see _load_entry) and the
        # next line's search then ends at the same place: do not scan (or count) again.
        start, end, newlines = self.found.get(terms, (-1, -1, 0))
        if start <= self.pos <= end:
            newlines -= self.data.count(b"\n", start, self.pos)
        else:
            match = _terminators(terms).search(self.data, self.pos)
            end = match.start() if match else len(self.data)
            newlines = self.data.count(b"\n", self.pos, end)
        self.found[terms] = (self.pos, end, newlines)
        text = self.data[self.pos : min(end, self.pos + size - 1)]
        self.line += newlines
        self.pos = end
        return text, self.get()

    def skip_blanks(self, ch: int) -> int:
        while ch in _BLANKS:
            ch = self.get()
        return ch

    def skip_nonblanks(self, ch: int) -> int:
        if ch in (_SP, _TAB, _NL, _EOF):
            return ch
        match = _NONBLANK_END.search(self.data, self.pos)
        self.pos = match.start() if match else len(self.data)
        return self.get()

    def skip_comments(self) -> None:
        """Skip blank lines, leading blanks and `#` lines, noting `#@smart` ones."""
        ch = self.get()
        while ch != _EOF:
            ch = self.skip_blanks(ch)
            if ch in (_EOF, _NL):
                ch = self.get() if ch == _NL else ch
                continue
            if ch != ord("#"):
                break
            start = self.pos - 1
            end = self.data.find(b"\n", start)
            end = len(self.data) if end < 0 else end
            comment = _text(self.data[start:end])
            if comment.startswith(SMART_PREFIX):
                self.annotations.append(Annotation(self.line, comment.rstrip("\r")))
            self.pos = end
            ch = self.get()
            ch = self.get() if ch == _NL else ch
        self.unget(ch)


# --------------------------------------------------------------------------- fields


def _as_char(ch: int) -> int:
    """entry.c's field functions return `char`: a 0xFF byte comes back as EOF."""
    return _EOF if ch == 0xFF else ch


def _wrap_int(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _c_atoi(digits: bytes) -> int:
    """atoi() as glibc does it: strtol saturates at LONG_MAX, then the int cast wraps."""
    return _wrap_int(min(int(digits), 2**63 - 1))


def _get_number(s: _Stream, ch: int, low: int, names: tuple[str, ...] | None) -> tuple[int, int]:
    token = bytearray()
    while ch in _ALNUM:
        if len(token) + 1 >= MAX_ENVSTR:  # "if (++len >= MAX_TEMPSTR) return EOF"
            return 0, _EOF
        token.append(ch)
        ch = s.get()
    if not token:
        return 0, _EOF
    if names:
        lowered = token.decode("ascii").lower()
        if lowered in names:
            return names.index(lowered) + low, _as_char(ch)
    if token.isdigit():
        return _c_atoi(bytes(token)), _as_char(ch)
    return 0, _EOF


def _get_range(
    s: _Stream, ch: int, low: int, high: int, names: tuple[str, ...] | None, bits: set[int]
) -> int:
    if ch == ord("*"):
        first, last = low, high
        ch = s.get()
    else:
        first, ch = _get_number(s, ch, low, names)
        if ch == _EOF:
            return _EOF
        if ch != ord("-"):
            # "Step specified without range, eg: 1/20 * * * *" is an error.
            if ch == ord("/") or not low <= first <= high:
                return _EOF
            bits.add(first)
            return ch
        last, ch = _get_number(s, s.get(), low, names)
        if ch == _EOF:
            return _EOF
    step = 1
    if ch == ord("/"):
        step, ch = _get_number(s, s.get(), 0, None)
        if ch == _EOF or step <= 0:
            return _EOF
    if not (low <= first <= high and low <= last <= high):
        return _EOF
    # `for (i = num1; i <= num2; i += num3)` on a C int: a huge step overflows to a
    # negative i, which set_element() rejects (1-59/2147483647 is "bad minute").
    i = first
    while i <= last:
        if not low <= i <= high:
            return _EOF
        bits.add(i)
        i = _wrap_int(i + step)
    return _as_char(ch)  # first > last sets nothing: the range never matches


def _get_list(
    s: _Stream, ch: int, low: int, high: int, names: tuple[str, ...] | None
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


_LAYOUT = (
    ("minutes", 0, 59, None, "bad minute"),
    ("hours", 0, 23, None, "bad hour"),
    ("doms", 1, 31, None, "bad day-of-month"),
    ("months", 1, 12, MONTH_NAMES, "bad month"),
    ("dows", 0, 7, DOW_NAMES, "bad day-of-week"),
)


def _load_times(s: _Stream) -> tuple[TimeSpec, int]:
    """load_entry's time part: return the spec and the first character after the blanks."""
    start = s.pos
    ch = s.get()
    if ch == ord("@"):
        word, ch = s.get_string(MAX_COMMAND, b" \t\n")
        spec = _keyword_spec(_text(word))
        if spec is None:
            raise _Reason("bad time specifier")
        return spec, s.skip_blanks(ch)
    values: dict[str, frozenset[int]] = {}
    stars: dict[str, bool] = {}
    for name, low, high, names, reason in _LAYOUT:
        stars[name] = ch == ord("*")
        values[name], ch = _get_list(s, ch, low, high, names)
        if ch == _EOF:
            raise _Reason(reason)
    dows = values["dows"]
    if 7 in dows:  # "make sundays equivilent"
        dows = (dows - {7}) | {0}
    text = _text(s.data[start : s.pos - 1]).rstrip(" \t\n")
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
    s = _Stream(_bytes(text.strip(" \t")) + b"\n")
    try:
        spec, ch = _load_times(s)
    except _Reason as err:
        raise CrontabSyntaxError([LineProblem("<expr>", 1, err.reason)]) from None
    if ch != _NL:
        rest = _text(s.data[s.pos - 1 : -1])
        raise CrontabSyntaxError(
            [LineProblem("<expr>", 1, f"unexpected text after the time fields: {rest!r}")]
        )
    return spec


# --------------------------------------------------------------------------- environment


def _load_env_buffer(buf: bytearray) -> tuple[bytes, bytes] | None:
    """env.c's state machine over its `envstr` buffer (NUL-terminated, maybe with leftovers).

    A line ending in an opening quote makes env.c copy the NUL and read on into what
    the previous, longer lines left in the buffer; that is reproduced, not fixed.
    """

    def at(i: int) -> int:
        return buf[i] if i < len(buf) else _NUL

    name, value = bytearray(), bytearray()
    out, state, quote, i = name, "NAMEI", 0, 0
    while state != "ERROR" and at(i) != _NUL:
        if state in ("NAMEI", "VALUEI"):
            if at(i) in _QUOTES:
                quote = at(i)
                i += 1
            state = "NAME" if state == "NAMEI" else "VALUE"
        if state in ("NAME", "VALUE"):
            c = at(i)
            if quote:
                if c == quote:
                    state, i = ("EQ1" if state == "NAME" else "FINI"), i + 1
                    continue
                if state == "NAME" and c == ord("="):
                    state = "ERROR"
                    continue
            elif state == "NAME":
                if c in _C_SPACE:
                    state, i = "EQ1", i + 1
                    continue
                if c == ord("="):
                    state = "EQ1"
                    continue
            out.append(c)
            i += 1
        elif state == "EQ1":
            if at(i) == ord("="):
                state, out, quote = "EQ2", value, 0
            elif at(i) not in _C_SPACE:
                state = "ERROR"
            i += 1
        elif at(i) in _C_SPACE:  # EQ2, FINI
            i += 1
        else:
            state = "VALUEI" if state == "EQ2" else "ERROR"
    if state != "FINI" and not (state == "VALUE" and not quote):
        return None
    key = bytes(name).split(b"\0", 1)[0]
    # The unquoted-value trim and strdtb() both strip trailing isspace(), even inside
    # quotes ("a  " gives a); then one pair of matching quotes still around it goes.
    val = bytes(value).split(b"\0", 1)[0].rstrip(_C_SPACE)
    if len(val) >= 2 and val[0] in _QUOTES and val[-1] == val[0]:
        val = val[1:-1]
    if len(key) + 1 + len(val) >= MAX_ENVSTR - 1:
        return None
    return key, val


def parse_env_line(line: str, *, leftovers: bytes = b"") -> tuple[str, str] | None:
    """env.c's load_env on one line (leading blanks already skipped).

    Returns (name, value) when cron would take the line as an assignment, else None.
    Quirks kept: `FOO=` is not an assignment; `FOO="a" # c` is not one either (only
    blanks may follow a closing quote); trailing blanks go even from inside quotes
    (`"a  "` gives `a`); a value still wrapped in the same quote loses that pair too
    (`'"a"'` gives `a`); only the first 998 bytes of the line are read. `leftovers`
    is what follows the line's NUL in cron's buffer (see _load_env_buffer).
    """
    data = _bytes(line).split(b"\0", 1)[0][: MAX_ENVSTR - 2]
    buf = bytearray(MAX_ENVSTR)
    buf[: len(data) + 1 + len(leftovers)] = data + b"\0" + leftovers
    buf[MAX_ENVSTR - 1 :] = b"\0"
    found = _load_env_buffer(buf[:MAX_ENVSTR])
    return None if found is None else (_text(found[0]), _text(found[1]))


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


def _load_entry(
    s: _Stream, kind: Kind, user_exists: Callable[[str], bool] | None
) -> tuple[TimeSpec, str | None, str]:
    """entry.c's load_entry from the stream position (a useful line starts here)."""
    spec, ch = _load_times(s)
    s.unget(ch)
    user: str | None = None
    if kind is Kind.SYSTEM:
        # get_string(username, MAX_COMMAND, file, " \t"): no "\n" among the
        # terminators, so a line without a blank after the user runs into the next one.
        name, ch = s.get_string(MAX_COMMAND, b" \t")
        if ch == _EOF:
            raise _Reason("bad command")
        user = _text(name)
        if not name or b"\n" in name or (user_exists is not None and not user_exists(user)):
            raise _Reason("bad username")
    elif ch == ord("*"):
        # A user command starting with '*' is refused (a sixth time field, usually).
        raise _Reason("bad command")
    command, ch = s.get_string(MAX_COMMAND, b"\n")
    if len(command) == MAX_COMMAND - 1:  # "assume that the command has been truncated"
        raise _Reason("command too long")
    if ch == _EOF:
        raise _Reason("bad command")  # pragma: no cover - parse() always ends with "\n"
    return spec, user, _text(command)


_CR_WARNING = "carriage return in line (CRLF file?); kept as cron does"
_NUL_WARNING = "NUL byte in line; cron reads what follows it as a new line"


def _line_text(data: bytes, pos: int) -> bytes:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return data[start : len(data) if end < 0 else end]


def _next_line(data: bytes, pos: int) -> int:
    end = data.find(b"\n", pos)
    return len(data) if end < 0 else end + 1


def parse(
    text: str | bytes,
    kind: Kind = Kind.USER,
    path: str = "-",
    user_exists: Callable[[str], bool] | None = None,
    *,
    install: bool = False,
) -> Crontab:
    """Parse a whole crontab. Collects every bad line, then raises CrontabSyntaxError.

    `text` is the file decoded as UTF-8 with errors="surrogateescape" (or its bytes).
    `user_exists` checks a system line's user (cron's getpwnam); None accepts any name,
    which keeps this function pure for tests and for checking files meant for another
    machine. The line limit differs: `install=True` applies crontab(1)'s check (no more
    than MAX_TAB_LINES lines, comments included); the default is the daemon's (user.c:
    refused only if a job or assignment starts after line MAX_TAB_LINES + 3, as the
    spool copy has a 3-line header; trailing comments never count).
    """
    data = _bytes(text)
    problems: list[LineProblem] = []
    warnings: list[LineProblem] = []
    entries: list[Entry] = []
    assignments: list[EnvAssignment] = []
    env: dict[str, str] = {}

    last = data.rsplit(b"\n", 1)[-1]
    if last.lstrip(b" \t") and not last.lstrip(b" \t").startswith(b"#"):
        # Debian refuses the file ("missing newline before EOF"); a blank or comment
        # last line it accepts silently.
        warnings.append(
            LineProblem(
                path,
                data.count(b"\n") + 1,
                "no newline at end of file; the last line is still read"
                " (Debian's cron would ignore the file)",
            )
        )
    if not data.endswith(b"\n"):
        data += b"\n"

    s = _Stream(data)
    odd_lines: set[int] = set()  # lines already warned about (CR, NUL)
    envbuf = bytearray(MAX_ENVSTR)  # load_env's envstr; what it holds after the NUL matters
    # crontab.c: "while (... LineNumber < MAX_TAB_LINES + 2)"; user.c adds NHEADER_LINES
    # but leaves at end of file before it checks (so a long comment tail is fine).
    limit = MAX_TAB_LINES + 2 + (0 if install else NHEADER_LINES)
    at_eof = False
    while s.line < limit:
        s.skip_comments()
        if s.pos >= len(data):
            at_eof = True
            break
        number, start = s.line, s.pos
        raw = _line_text(data, start)
        if number not in odd_lines and (b"\r" in raw or b"\0" in raw):
            odd_lines.add(number)
            if b"\r" in raw:
                warnings.append(LineProblem(path, number, _CR_WARNING))
            if b"\0" in raw:
                warnings.append(LineProblem(path, number, _NUL_WARNING))
        line, _ = s.get_string(MAX_ENVSTR - 1, b"\n")
        envbuf[: len(line) + 1] = line + b"\0"
        envbuf[MAX_ENVSTR - 1] = _NUL
        assignment = _load_env_buffer(envbuf)
        if assignment is not None:
            key, value = assignment
            setting = key + b"=" + value
            envbuf[: len(setting) + 1] = setting + b"\0"  # sprintf(envstr, "%s=%s", ...)
            env[_text(key)] = _text(value)
            assignments.append(EnvAssignment(number, _text(key), _text(value)))
            if s.pos - start > MAX_ENVSTR - 1:
                warnings.append(
                    LineProblem(path, number, f"value cut to {MAX_ENVSTR - 2} bytes, as cron does")
                )
            continue
        s.pos, s.line = start, number
        pending, s.annotations = s.annotations, []
        try:
            spec, user, command = _load_entry(s, kind, user_exists)
        except _Reason as err:
            hint = " (carriage return in line: CRLF line ends?)" if b"\r" in raw else ""
            if b"\0" in raw:
                hint = " (NUL byte in line: binary file?)"
            problems.append(LineProblem(path, number, err.reason + hint))
            # Debian stops here; we go on from the next line to report every bad one.
            s.pos, s.line = _next_line(data, start), number + 1
            continue
        entries.append(
            Entry(number, spec, command, user, tuple(env.items()), annotations=tuple(pending))
        )
    if s.line >= limit and (install or not at_eof):
        problems.append(
            LineProblem(path, limit - 1, f"crontab must not be longer than {MAX_TAB_LINES} lines")
        )
    for annotation in s.annotations:
        warnings.append(
            LineProblem(path, annotation.line, "#@smart line is not followed by a job line")
        )
    if problems:
        raise CrontabSyntaxError(problems)
    warnings.sort(key=lambda w: w.line)
    return Crontab(kind, tuple(entries), tuple(assignments), tuple(warnings))


def format_problems(problems: Iterable[LineProblem]) -> str:
    return "\n".join(str(p) for p in problems)
