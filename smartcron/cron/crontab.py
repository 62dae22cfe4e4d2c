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
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from smartcron.cron.cronenv import load_env_buffer, parse_env_line, split_command
from smartcron.cron.cronfields import TimeSpec, load_times, parse_timespec
from smartcron.cron.cronstream import (
    DOW_NAMES,
    EOF,
    MAX_COMMAND,
    MAX_ENVSTR,
    MAX_TAB_LINES,
    MONTH_NAMES,
    NHEADER_LINES,
    NUL,
    SMART_PREFIX,
    Annotation,
    Reason,
    Stream,
    as_bytes,
    as_text,
)
from smartcron.errors import CrontabSyntaxError, LineProblem

__all__ = [
    "DOW_NAMES",
    "MAX_COMMAND",
    "MAX_ENVSTR",
    "MAX_TAB_LINES",
    "MONTH_NAMES",
    "SMART_PREFIX",
    "Annotation",
    "Crontab",
    "Entry",
    "EnvAssignment",
    "Kind",
    "TimeSpec",
    "cron_d_name_ok",
    "parse",
    "parse_env_line",
    "parse_timespec",
    "split_command",
]


class Kind(enum.Enum):
    """User crontabs have five time fields; system ones (/etc/crontab, cron.d) add a user."""

    USER = "user"
    SYSTEM = "system"


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


# --------------------------------------------------------------------------- files


# Debian's cron.d rule (run-parts --lsbsysinit names): letters, digits, '_' and '-'.
_CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def cron_d_name_ok(name: str) -> bool:
    """Whether Debian's cron would read `/etc/cron.d/NAME` (dotted names are ignored)."""
    return bool(_CRON_D_NAME.fullmatch(name))


def _load_entry(
    s: Stream, kind: Kind, user_exists: Callable[[str], bool] | None
) -> tuple[TimeSpec, str | None, str]:
    """entry.c's load_entry from the stream position (a useful line starts here)."""
    spec, ch = load_times(s)
    s.unget(ch)
    user: str | None = None
    if kind is Kind.SYSTEM:
        # get_string(username, MAX_COMMAND, file, " \t"): no "\n" among the
        # terminators, so a line without a blank after the user runs into the next one.
        name, ch = s.get_string(MAX_COMMAND, b" \t")
        if ch == EOF:
            raise Reason("bad command")
        user = as_text(name)
        if not name or b"\n" in name or (user_exists is not None and not user_exists(user)):
            raise Reason("bad username")
    elif ch == ord("*"):
        # A user command starting with '*' is refused (a sixth time field, usually).
        raise Reason("bad command")
    command, ch = s.get_string(MAX_COMMAND, b"\n")
    if len(command) == MAX_COMMAND - 1:  # "assume that the command has been truncated"
        raise Reason("command too long")
    if ch == EOF:
        raise Reason("bad command")  # pragma: no cover - parse() always ends with "\n"
    return spec, user, as_text(command)


_CR_WARNING = "carriage return in line (CRLF file?); kept as cron does"
_NUL_WARNING = "NUL byte in line; cron reads what follows it as a new line"


def _line_text(data: bytes, pos: int) -> bytes:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return data[start : len(data) if end < 0 else end]


def _next_line(data: bytes, pos: int) -> int:
    end = data.find(b"\n", pos)
    return len(data) if end < 0 else end + 1


@dataclass
class _Reading:
    """What `parse` has made of the lines so far."""

    path: str
    entries: list[Entry] = field(default_factory=list)
    assignments: list[EnvAssignment] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    warnings: list[LineProblem] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    odd_lines: set[int] = field(default_factory=set)  # lines already warned about (CR, NUL)
    # load_env's envstr: what it holds after the NUL matters (see the module docstring).
    envbuf: bytearray = field(default_factory=lambda: bytearray(MAX_ENVSTR))


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
    data = as_bytes(text)
    reading = _Reading(path)
    reading.warnings.extend(_last_line_warning(data, path))
    if not data.endswith(b"\n"):
        data += b"\n"
    s = Stream(data)
    # crontab.c: "while (... LineNumber < MAX_TAB_LINES + 2)"; user.c adds NHEADER_LINES
    # but leaves at end of file before it checks (so a long comment tail is fine).
    limit = MAX_TAB_LINES + 2 + (0 if install else NHEADER_LINES)
    at_eof = False
    while s.line < limit:
        s.skip_comments()
        if s.pos >= len(data):
            at_eof = True
            break
        _read_line(s, reading, kind, user_exists)
    if s.line >= limit and (install or not at_eof):
        reading.problems.append(
            LineProblem(path, limit - 1, f"crontab must not be longer than {MAX_TAB_LINES} lines")
        )
    for annotation in s.annotations:
        reading.warnings.append(
            LineProblem(path, annotation.line, "#@smart line is not followed by a job line")
        )
    reading.warnings.sort(key=lambda w: w.line)
    tab = Crontab(kind, tuple(reading.entries), tuple(reading.assignments), tuple(reading.warnings))
    if reading.problems:
        raise CrontabSyntaxError(reading.problems, partial=tab)
    return tab


def _last_line_warning(data: bytes, path: str) -> list[LineProblem]:
    last = data.rsplit(b"\n", 1)[-1].lstrip(b" \t")
    if not last or last.startswith(b"#"):
        return []  # a blank or comment last line Debian accepts silently
    # Debian refuses the file ("missing newline before EOF").
    reason = (
        "no newline at end of file; the last line is still read"
        " (Debian's cron would ignore the file)"
    )
    return [LineProblem(path, data.count(b"\n") + 1, reason)]


def _read_line(
    s: Stream, reading: _Reading, kind: Kind, user_exists: Callable[[str], bool] | None
) -> None:
    """One useful line from the stream position: an assignment, an entry or a problem."""
    number, start = s.line, s.pos
    raw = _line_text(s.data, start)
    _note_odd_bytes(reading, number, raw)
    if _read_assignment(s, reading, number, start):
        return
    s.pos, s.line = start, number
    pending, s.annotations = s.annotations, []
    try:
        spec, user, command = _load_entry(s, kind, user_exists)
    except Reason as err:
        hint = " (carriage return in line: CRLF line ends?)" if b"\r" in raw else ""
        if b"\0" in raw:
            hint = " (NUL byte in line: binary file?)"
        reading.problems.append(LineProblem(reading.path, number, err.reason + hint))
        # Debian stops here; we go on from the next line to report every bad one.
        s.pos, s.line = _next_line(s.data, start), number + 1
        return
    env = tuple(reading.env.items())
    reading.entries.append(Entry(number, spec, command, user, env, annotations=tuple(pending)))


def _note_odd_bytes(reading: _Reading, number: int, raw: bytes) -> None:
    if number in reading.odd_lines or not (b"\r" in raw or b"\0" in raw):
        return
    reading.odd_lines.add(number)
    if b"\r" in raw:
        reading.warnings.append(LineProblem(reading.path, number, _CR_WARNING))
    if b"\0" in raw:
        reading.warnings.append(LineProblem(reading.path, number, _NUL_WARNING))


def _read_assignment(s: Stream, reading: _Reading, number: int, start: int) -> bool:
    """env.c's load_env on the line at `start`; True (and the stream past it) if it is one."""
    envbuf = reading.envbuf
    line, _ = s.get_string(MAX_ENVSTR - 1, b"\n")
    envbuf[: len(line) + 1] = line + b"\0"
    envbuf[MAX_ENVSTR - 1] = NUL
    assignment = load_env_buffer(envbuf)
    if assignment is None:
        return False
    key, value = assignment
    setting = key + b"=" + value
    envbuf[: len(setting) + 1] = setting + b"\0"  # sprintf(envstr, "%s=%s", ...)
    reading.env[as_text(key)] = as_text(value)
    reading.assignments.append(EnvAssignment(number, as_text(key), as_text(value)))
    if s.pos - start > MAX_ENVSTR - 1:
        reason = f"value cut to {MAX_ENVSTR - 2} bytes, as cron does"
        reading.warnings.append(LineProblem(reading.path, number, reason))
    return True
