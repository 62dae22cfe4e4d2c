"""misc.c's character stream, as entry.c and env.c read a crontab: bytes, one look-ahead.

Shared by the field parser (cronfields) and the environment parser (cronenv).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

SMART_PREFIX = "#@smart"


@dataclass(frozen=True, slots=True)
class Annotation:
    """A raw ``#@smart`` line; its grammar belongs to the smart layer."""

    line: int
    text: str


# Limits from Debian's cron.h, in bytes: MAX_COMMAND, MAX_ENVSTR (= MAX_TEMPSTR), MAX_TAB_LINES.
MAX_COMMAND = 1000
MAX_ENVSTR = 1000
MAX_TAB_LINES = 10000
NHEADER_LINES = 3  # the "DO NOT EDIT" header crontab(1) writes on top of a spool file

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Debian's DowNames has "Sun" twice (0 and 7); the first match wins, so "sun" is 0.
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

EOF = -1
NL, _SP, _TAB, NUL = 10, 32, 9, 0
_BLANKS = (_SP, _TAB)
QUOTES = (ord("'"), ord('"'))
C_SPACE = b" \t\n\v\f\r"  # isspace() in the C (and C.UTF-8) locale
ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NONBLANK_END = re.compile(b"[ \t\n]")


def as_text(data: bytes) -> str:
    """Crontab bytes as text; undecodable bytes survive the round trip (as_bytes)."""
    return data.decode("utf-8", "surrogateescape")


def as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


class Reason(Exception):
    """Why entry.c refuses a line; the parser turns it into a LineProblem with the line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- the stream


@functools.cache
def _terminators(terms: bytes) -> re.Pattern[bytes]:
    return re.compile(b"[\\x00" + re.escape(terms) + b"]")


class Stream:
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
            return EOF
        ch = self.data[self.pos]
        self.pos += 1
        if ch == NL:
            self.line += 1
        return ch

    def unget(self, ch: int) -> None:
        if ch != EOF:
            self.pos -= 1
            if ch == NL:
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
        if ch in (_SP, _TAB, NL, EOF):
            return ch
        match = _NONBLANK_END.search(self.data, self.pos)
        self.pos = match.start() if match else len(self.data)
        return self.get()

    def skip_comments(self) -> None:
        """Skip blank lines, leading blanks and `#` lines, noting `#@smart` ones."""
        ch = self.get()
        while ch != EOF:
            ch = self.skip_blanks(ch)
            if ch in (EOF, NL):
                ch = self.get() if ch == NL else ch
                continue
            if ch != ord("#"):
                break
            start = self.pos - 1
            end = self.data.find(b"\n", start)
            end = len(self.data) if end < 0 else end
            comment = as_text(self.data[start:end])
            if comment.startswith(SMART_PREFIX):
                self.annotations.append(Annotation(self.line, comment.rstrip("\r")))
            self.pos = end
            ch = self.get()
            ch = self.get() if ch == NL else ch
        self.unget(ch)
