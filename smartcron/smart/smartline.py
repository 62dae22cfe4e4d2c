"""The ``#@smart`` line grammar (smartcrontab(5)); the keys' values: smartcron.smart.annotations.

``#@smart`` then blank-separated ``key=value`` words, split the way a POSIX shell splits
them: ``'...'`` and ``"..."`` quote (``name="a b"``), a backslash escapes the next
character, and an unquoted ``#`` at the start of a word begins a trailing comment
(``#@smart window=2h # nightly``; inside a word it is a plain character). ``#@smart``
alone marks the job smart with every default. Keys are lower case; a key given twice
keeps its last value, on one line or across the lines before a job.
"""

from __future__ import annotations

from collections.abc import Sequence

from smartcron.cron.crontab import SMART_PREFIX, Annotation
from smartcron.errors import AnnotationError, LineProblem
from smartcron.smart.annotations import KEYS, KINDS, convert, describe, suggest

_BLANKS = " \t\r\n\v\f"


def split_words(text: str) -> list[str]:
    """Split like a POSIX shell (see the module docstring). Raises ValueError."""
    words: list[str] = []
    word: list[str] = []
    quote, in_word, i = "", False, 0
    while i < len(text):
        ch = text[i]
        if quote == "'":
            quote = "" if ch == "'" else quote
            word += [] if ch == "'" else [ch]
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == "\\" and text[i + 1 : i + 2] in ('"', "\\"):
                word.append(text[i + 1])
                i += 1
            else:
                word.append(ch)
        elif ch in _BLANKS:
            if in_word:
                words.append("".join(word))
            word, in_word = [], False
        elif ch == "#" and not in_word:
            break
        elif ch in "'\"":
            quote, in_word = ch, True
        elif ch == "\\":
            if i + 1 == len(text):
                raise ValueError("a backslash ends the line")
            word.append(text[i + 1])
            i, in_word = i + 1, True
        else:
            word.append(ch)
            in_word = True
        i += 1
    if quote:
        raise ValueError(f"no closing {quote}")
    if in_word:
        words.append("".join(word))
    return words


def _parse_line(text: str) -> tuple[list[tuple[str, object]], list[str]]:
    """(key, typed value) pairs and problems of one ``#@smart`` line."""
    rest = text.removeprefix(SMART_PREFIX)
    if not text.startswith(SMART_PREFIX) or (rest and rest[0] not in _BLANKS):
        return [], [f"{text[:20]!r} is not a #@smart line (put a blank after #@smart)"]
    try:
        words = split_words(rest)
    except ValueError as err:
        return [], [f"cannot split the line: {err}"]
    pairs: list[tuple[str, object]] = []
    problems: list[str] = []
    for word in words:
        key, equals, raw = word.partition("=")
        if not equals:
            known = key in KINDS
            hint = f" ({key}=...)" if known else suggest(key, KEYS)
            problems.append(f"expected key=value, got {word!r}{hint}")
        elif key not in KINDS:
            problems.append(f"unknown key {key!r}{suggest(key, KEYS)}")
        elif not raw:
            problems.append(f"{key}: empty value (expected {describe(key)})")
        else:
            try:
                pairs.append((key, convert(key, raw)))
            except ValueError as err:
                problems.append(f"{key}: {err}")
    return pairs, problems


def parse_annotations(annotations: Sequence[Annotation], path: str) -> dict[str, object]:
    """Key -> typed value from one job's ``#@smart`` lines; later keys win.

    Raises AnnotationError listing every problem of every line as ``path:line: reason``.
    """
    values: dict[str, object] = {}
    problems: list[LineProblem] = []
    for note in annotations:
        pairs, reasons = _parse_line(note.text)
        values.update(pairs)
        problems += [LineProblem(path, note.line, reason) for reason in reasons]
    if problems:
        raise AnnotationError(problems)
    return values
