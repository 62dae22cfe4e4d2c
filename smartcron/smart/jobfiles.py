"""Standalone job files (SPEC 4.2): ``jobs/*.yaml`` and ``jobs/*.json``, one job each.

The concept paper's format, validated with a JSON Schema (unknown keys are errors):
``job_name`` (or ``name``) and ``command`` are required; optional are ``schedule`` (a
cron expression or @keyword), ``preferred_time`` (``["01:00", "03:00"]`` or
``"01:00-03:00"``: a daily clock window, the same as ``window: 01:00-03:00``), ``user``
(system files only), the paper's ``ai_aware`` (= ``ai``) and ``retry_on_fail``
(``true`` = ``retry: 1``, ``false`` = ``retry: 0``; use ``retry`` for more), and any
key of 4.1. A paper key and its 4.1 twin together are an error. Without ``schedule``
the job runs daily at the start of its clock window (``01:00`` -> ``0 1 * * *``).

The command is what ``SHELL -c`` gets: it is not a crontab line, so ``%`` is a plain
character (`JobFileEntry.entry` escapes it for code that wants an Entry). JSON is read
with the json module, YAML through smartcron.smart.safeyaml; the extension decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smartcron.cron.crontab import Entry, TimeSpec, parse_timespec
from smartcron.errors import AnnotationError, CrontabSyntaxError
from smartcron.smart import safeyaml
from smartcron.smart.annotations import (
    CLOCK_PATTERN,
    HHMM_PATTERN,
    KEYS,
    NAME_PATTERN,
    convert,
    parse_bool,
    problem,
)
from smartcron.smart.smartspec import (
    MAX_FILE_BYTES,
    SmartSpec,
    resolve,
    schema_problems,
    settings_schema,
)

# The concept paper's keys and the 4.1 keys they stand for.
ALIASES = {
    "job_name": "name",
    "preferred_time": "window",
    "ai_aware": "ai",
    "retry_on_fail": "retry",
}
_BOOL = settings_schema(["ai"])["properties"]["ai"]
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "a mapping of job keys (job_name, command, schedule, ...)",
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "job_name": {
            "description": "a job name of letters, digits, '_', '.' and '-'",
            "type": "string",
            "pattern": NAME_PATTERN,
        },
        "command": {
            "description": "a command of 1 to 999 characters",
            "type": "string",
            "pattern": r"^[^\x00]*\S[^\x00]*$",
            "maxLength": 999,
        },
        "schedule": {
            "description": "a cron expression (0 1 * * *) or @keyword",
            "type": "string",
            "minLength": 1,
            "maxLength": 999,
        },
        "user": {
            "description": "a user name",
            "type": "string",
            "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$",
        },
        "preferred_time": {
            "description": 'a daily window ["01:00", "03:00"] or "01:00-03:00"',
            "anyOf": [
                {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {"type": "string", "pattern": HHMM_PATTERN},
                },
                {"type": "string", "pattern": CLOCK_PATTERN},
            ],
        },
        "ai_aware": _BOOL,
        "retry_on_fail": _BOOL,
        **settings_schema(KEYS)["properties"],
    },
}


JOB_FILE_SUFFIXES = (".yaml", ".yml", ".json")  # what a jobs directory holds


@dataclass(frozen=True, kw_only=True)
class JobFileEntry:
    """One standalone job. `settings` holds typed 4.1 keys, as parse_annotations returns."""

    path: str
    name: str
    command: str
    schedule: str  # as written, or derived from preferred_time
    timespec: TimeSpec
    user: str | None = None  # system files only; None: the file's owner
    settings: Mapping[str, object] = field(default_factory=dict)

    def smart_spec(self, global_defaults: Mapping[str, object] | None = None) -> SmartSpec:
        """The resolved settings: the file's keys over the global config."""
        return resolve(
            self.settings, None, global_defaults, spec=self.timespec, origin=(self.path, None)
        )

    @property
    def entry(self) -> Entry:
        """An Entry running this command verbatim (``\\`` and ``%`` escaped for cron)."""
        escaped = self.command.replace("\\", "\\\\").replace("%", "\\%")
        return Entry(1, self.timespec, escaped, self.user)


def _raw(key: str, value: object) -> object:
    """A paper key's value in its 4.1 key's grammar."""
    if key == "preferred_time" and isinstance(value, list):
        return "-".join(str(v) for v in value)
    if key == "retry_on_fail":
        return 1 if parse_bool(value) else 0
    return value


def load_job_file(text: str, path: str, *, system: bool = False) -> JobFileEntry:
    """Parse and validate one job file (JSON if `path` ends in .json, else YAML).

    `system`: a file of /etc/smartcron/jobs (may name a `user`). Raises AnnotationError
    listing every problem as ``path:line: key: reason``.
    """
    load = safeyaml.load_json if path.lower().endswith(".json") else safeyaml.load_yaml
    try:
        data, root = load(text, path, what="job file", max_bytes=MAX_FILE_BYTES)
    except safeyaml.YamlError as err:
        raise AnnotationError([problem(path, err.line, err.reason)]) from None
    if data is None:
        raise AnnotationError([problem(path, None, "empty job file")])
    problems = schema_problems(data, SCHEMA, path, root)
    if problems:
        raise AnnotationError(problems)

    def bad(key: str | None, reason: str) -> None:
        line = safeyaml.locate(root, [key]) if key else None
        problems.append(problem(path, line, f"{key}: {reason}" if key else reason))

    settings: dict[str, object] = {}
    for key, value in data.items():
        if key in ("command", "schedule", "user"):
            continue
        target = ALIASES.get(key, key)
        if key in ALIASES and target in data:
            bad(key, f"give {key} or {target}, not both")
            continue
        try:
            settings[target] = convert(target, _raw(key, value))
        except ValueError as err:
            bad(key, str(err))
    if "job_name" not in data and "name" not in data:
        bad(None, "job_name is required")
    user = data.get("user")
    if user is not None and not system:
        bad("user", "only system job files (/etc/smartcron/jobs) may name a user")
    schedule, timespec = _schedule(data.get("schedule"), settings.get("window"), bad)
    if problems or timespec is None:
        raise AnnotationError(problems)
    return JobFileEntry(
        path=path,
        name=str(settings["name"]),
        command=data["command"],
        schedule=schedule,
        timespec=timespec,
        user=user,
        settings=settings,
    )


def _schedule(
    given: object, window: object, bad: Callable[[str | None, str], None]
) -> tuple[str, TimeSpec | None]:
    """The schedule as written, or daily at the clock window's start."""
    if isinstance(given, str):
        try:
            return given, parse_timespec(given)
        except CrontabSyntaxError as err:
            bad("schedule", "; ".join(p.reason for p in err.problems))
            return given, None
    if isinstance(window, tuple):
        start = window[0]
        derived = f"{start.minute} {start.hour} * * *"
        return derived, parse_timespec(derived)
    bad(None, "schedule is required (or preferred_time, for a daily job)")
    return "", None
