"""The check before a crontab is installed: smartcrontab's -T, -n and -e, and the daemon's
install request. crontab(1)'s syntax check (its line limit included), then the smart
layer's #@smart lines; every problem is found, each `path:line: reason`.
"""

from __future__ import annotations

import contextlib
import difflib
import pwd
import re
from collections.abc import Callable, Iterable
from datetime import UTC
from pathlib import Path

from smartcron.cron.crontab import Crontab, Entry, Kind, parse
from smartcron.cron.schedule import entry_zone
from smartcron.daemon.install import MAX_CRONTAB_BYTES
from smartcron.errors import AnnotationError, CrontabSyntaxError, LineProblem, SmartcronError

Verdict = tuple[list[str], list[str]]  # (problems, warnings), each `path:line: reason`


def check(
    data: bytes,
    path: str,
    kind: Kind = Kind.USER,
    companion: bool = False,
    fleet: bool | None = None,
) -> Verdict:
    """crontab(1)'s check before installing: syntax (crontab.c's line limit), then the
    smart layer's #@smart lines (with `companion`, also `path.smart.yaml`; the daemon
    never reads one, as `path` comes from the client). `fleet`: whether the daemon that
    runs the file has a history_url (False: fleet=once is a warning; None: not known)."""
    problems, warnings = check_lines(data, path, kind, companion, fleet)
    return [str(p) for p in problems], [str(w) for w in warnings]


Finding = LineProblem | str  # a str names no line (a file too large, an unreadable one)


def check_lines(
    data: bytes,
    path: str,
    kind: Kind = Kind.USER,
    companion: bool = False,
    fleet: bool | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """check()'s verdict unformatted, each list in line_order(path). Every problem is
    found, even in a file with bad lines. A system line whose user does not exist and
    an unknown CRON_TZ are warnings: the daemon skips that line, or uses its own zone."""
    if len(data) > MAX_CRONTAB_BYTES:
        return [f"{path}: crontab too large ({len(data)} bytes, at most {MAX_CRONTAB_BYTES})"], []
    problems: list[Finding] = []
    try:
        tab = parse(data, kind, path, install=True)
    except CrontabSyntaxError as err:
        problems += err.problems
        if not isinstance(err.partial, Crontab):  # pragma: no cover - parse() always sets it
            return problems, []
        tab = err.partial
    warnings: list[Finding] = [*tab.warnings, *zone_warnings(tab, path), *near_misses(data, path)]
    if kind is Kind.SYSTEM:
        for entry in tab.entries:
            if entry.user is not None and not _user_exists(entry.user):
                # Debian refuses the file; the daemon skips the line, in these words (loader).
                reason = f"bad username {entry.user!r}: skipped"
                warnings.append(LineProblem(path, entry.line, reason))
    smart_problems, smart_warnings = _annotation_problems(tab.entries, path, companion, fleet)
    problems += smart_problems
    warnings += smart_warnings
    key = line_order(path)
    return sorted(problems, key=key), sorted(warnings, key=key)


def line_order(path: str) -> Callable[[Finding], tuple[int, int]]:
    """A sort key: `path`'s lines in order, then anything else (its companion file)."""

    def key(finding: Finding) -> tuple[int, int]:
        if isinstance(finding, LineProblem) and finding.path == path:
            return 0, finding.line
        return 1, 0

    return key


def zone_warnings(tab: Crontab, path: str) -> list[LineProblem]:
    """An unknown CRON_TZ, in the daemon's words: its lines run on the system zone."""
    warnings = []
    for assignment in tab.env:
        if assignment.name == "CRON_TZ":
            try:
                entry_zone([(assignment.name, assignment.value)], UTC)
            except SmartcronError as err:
                reason = f"{err}; using the system zone"
                warnings.append(LineProblem(path, assignment.line, reason))
    return warnings


def _user_exists(name: str) -> bool:
    with contextlib.suppress(KeyError):
        return bool(pwd.getpwnam(name))
    return False


def near_misses(data: bytes, path: str) -> list[LineProblem]:
    """A comment that looks like a mistyped ``#@smart`` (``#@smrt``, ``# @smart``,
    ``#Smart window=2h``): cron reads it as a comment, so the job would silently run
    as plain cron. Close to "smart" and either an ``@`` or a ``key=`` word."""
    hints = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        text = raw.decode("utf-8", "replace").lstrip(" \t").rstrip("\r")
        if text.startswith("#@smart") and text[7:8] in ("", " ", "\t"):
            continue  # a real #@smart line (its own grammar reports the rest)
        found = _NEAR_MISS.match(text)
        if found is None or not (found.group(1) or "=" in found.group(3)):
            continue
        word = found.group(2).lower()
        if word == "smart" or difflib.SequenceMatcher(None, word, "smart").ratio() >= 0.75:
            head = text[: found.end(2)]
            reason = f"{head!r} is read as a comment: did you mean '#@smart'?"
            hints.append(LineProblem(path, number, reason))
    return hints


_NEAR_MISS = re.compile(r"#\s*(@?)\s*([A-Za-z]+)(.*)")


def _annotation_problems(
    entries: Iterable[Entry], path: str, with_companion: bool, fleet: bool | None
) -> tuple[list[Finding], list[Finding]]:
    """Bad #@smart lines and companion (problems); names given twice, companion jobs
    no line names and fleet=once with no fleet (warnings, in the daemon's words:
    `smartcronctl status` shows them)."""
    try:
        from smartcron.smart import smartspec
    except ImportError:  # the smart layer is optional here: syntax alone still decides
        return [], []
    companion = None
    problems: list[Finding] = []
    warnings: list[Finding] = []
    companion_file = Path(path + ".smart.yaml") if with_companion and path != "-" else None
    if companion_file is not None and companion_file.is_file():
        try:
            text = companion_file.read_bytes().decode("utf-8", "surrogateescape")
            companion = smartspec.load_companion(text, str(companion_file))
        except AnnotationError as err:
            problems += err.problems
        except OSError as err:
            problems.append(f"{companion_file}: {err.strerror}")
    named: dict[str, int] = {}
    specs = []  # for after= (smartcron.daemon.dependcheck)
    for entry in entries:
        try:
            spec = smartspec.smart_spec_for(entry, path, companion, None)
        except AnnotationError as err:
            problems += err.problems
            continue
        if spec is not None:
            specs.append((entry, spec))
        if spec is None or not spec.name:
            continue
        if spec.name in named:
            twice = f"name={spec.name} also names line {named[spec.name]}"
            warnings.append(LineProblem(path, entry.line, twice))
        named.setdefault(spec.name, entry.line)
    if companion is not None:
        warnings += companion.unknown_job_problems(named)
    from smartcron.daemon.dependcheck import after_problems

    problems += after_problems(specs, path)
    if fleet is False:
        from smartcron.smart.fleetcheck import once_problems

        warnings += once_problems(specs, path)
    return problems, warnings
