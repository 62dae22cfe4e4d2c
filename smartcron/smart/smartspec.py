"""What a smart job may do: the #@smart keys (smartcrontab(5)) resolved from their four sources.

Precedence, highest first: the job's ``#@smart`` lines, the companion's ``jobs:``
entry of the job's ``name=``, the companion's ``defaults:``, the global config. The
companion of a crontab ``F`` is ``F.smart.yaml`` (Debian's cron ignores the dotted name
in /etc/cron.d). Lines without ``#@smart`` are plain cron and get no SmartSpec at all,
whatever the companion says. Value grammar: smartcron.smart.annotations.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from smartcron.cron.crontab import Entry, TimeSpec
from smartcron.errors import AnnotationError, LineProblem
from smartcron.smart import safeyaml
from smartcron.smart.annotations import (
    CLOCK_PATTERN,
    DURATION_PATTERN,
    ENUMS,
    KEYS,
    KINDS,
    NAME_PATTERN,
    NUMBER_PATTERN,
    PERCENT_PATTERN,
    check_settings,
    convert,
    describe,
    parse_annotations,
    problem,
    suggest,
)
from smartcron.smart.jobids import derived_id

MAX_FILE_BYTES = 256 * 1024  # companions and job files
DEFAULT_WINDOW_CAP = timedelta(hours=6)
# default_window looks at the firings of one year and a bit from a fixed instant (a
# Monday of a leap year, so Feb 29 schedules are seen), in UTC.
_REFERENCE = datetime(2024, 1, 1, tzinfo=UTC)
_HORIZON = timedelta(days=400)
_MAX_FIRINGS = 3_000
_CONSTRAINTS = ("max_load", "max_cpu", "max_ram", "min_battery", "ac", "idle", "min_disk",
                "max_cpu_pressure", "max_io_pressure", "max_mem_pressure", "network")  # fmt: skip
GLOBAL_ORIGIN = "<global config>"


# --------------------------------------------------------------------------- schemas
# One JSON Schema fragment per 4.1 key; the converters then check what a schema cannot.


def _schema(key: str) -> dict[str, Any]:
    kind = KINDS[key]
    duration: list[dict[str, Any]] = [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": DURATION_PATTERN},
    ]
    number = {"type": "string", "pattern": NUMBER_PATTERN}
    fragments: dict[str, list[dict[str, Any]]] = {
        "name": [{"type": "string", "pattern": NAME_PATTERN}],
        "window": [*duration, {"type": "string", "pattern": CLOCK_PATTERN}],
        "load": [{"type": "number", "minimum": 0}, number],
        "cost": [{"type": "number", "minimum": 0}, number],
        "percent": [
            {"type": "number", "minimum": 0, "maximum": 100},
            {"type": "string", "pattern": PERCENT_PATTERN},
        ],
        "bool": [
            {"type": "boolean"},
            {"type": "string", "pattern": "^(?i:yes|no|on|off|true|false)$"},
        ],
        "duration": duration,
        "path": [{"type": "string", "pattern": "^/", "maxLength": 4096}],
        "count": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "string"}],
        "priority": [{"type": "integer", "minimum": -1000, "maximum": 1000}, {"type": "string"}],
        "enum": [{"type": "string", "pattern": f"^(?i:{'|'.join(ENUMS.get(key, ()))})$"}],
    }
    return {"description": describe(key), "anyOf": fragments[kind]}


def settings_schema(keys: Iterable[str] = KEYS) -> dict[str, Any]:
    """An object of 4.1 keys (those in `keys`); null counts as empty."""
    return {
        "description": "a mapping of #@smart keys",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {key: _schema(key) for key in keys},
    }


# Validators whose error is best told by the subschema's description.
_DESCRIBED = {"anyOf", "type", "pattern", "minLength", "maxLength", "minItems", "maxItems"}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def schema_problems(
    data: Any, schema: dict[str, Any], path: str, root: Any, *, extra_hint: str = ""
) -> list[LineProblem]:
    """Schema errors as ``path:line: key.path: reason``; an unknown key gets a suggestion."""
    out: list[LineProblem] = []
    for err in safeyaml.schema_errors(data, schema):
        keys = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = list(err.schema.get("properties", {}))
            for extra in sorted((k for k in err.instance if k not in known), key=str):
                at = [*keys, extra]
                hint = extra_hint if extra == "name" else suggest(str(extra), known)
                reason = f"{safeyaml.keypath(at)}: unknown key{hint}"
                out.append(problem(path, safeyaml.locate(root, at), reason))
            continue
        if "propertyNames" in err.relative_schema_path:
            keys.append(err.instance)  # point at the bad key itself
        description = err.schema.get("description")
        if description and err.validator in _DESCRIBED:
            reason = f"expected {description}, got {_short(err.instance)}"
        else:
            reason = err.message if len(err.message) < 200 else err.message[:197] + "..."
        line = safeyaml.locate(root, keys)
        out.append(problem(path, line, f"{safeyaml.keypath(keys)}: {reason}"))
    return sorted(out, key=lambda p: p.line)  # stable: key-path order within a line


def convert_all(
    settings: Mapping[str, object], keys: list[Any], path: str, root: Any, out: list[LineProblem]
) -> dict[str, object]:
    """Convert a schema-valid mapping's 4.1 values; problems (with lines) go to `out`."""
    typed: dict[str, object] = {}
    for key, value in (settings or {}).items():
        try:
            typed[key] = convert(key, value)
        except ValueError as err:
            at = [*keys, key]
            out.append(problem(path, safeyaml.locate(root, at), f"{safeyaml.keypath(at)}: {err}"))
    return typed


# --------------------------------------------------------------------------- resolving


@dataclass(frozen=True, kw_only=True, slots=True)
class SmartSpec:
    """One smart job's settings (smartcrontab(5)). Exactly one of window/window_clock is set."""

    name: str | None = None
    window: timedelta | None = None  # how long after the nominal time a firing may run
    window_clock: tuple[time, time] | None = None  # or a daily clock window (may wrap)
    max_load: float | None = None
    max_cpu: float | None = None  # percent
    max_ram: float | None = None  # percent
    min_battery: float | None = None  # percent
    ac: bool = False
    idle: timedelta | None = None
    min_disk: float | None = None  # percent free on disk_path
    disk_path: str = "/"
    ai: bool = True
    explore: bool = True  # start at a random minute while learning (smart.explore)
    # The advisor's expected cost of a start (docs/ai.md): a failed run costs fail_cost,
    # a CPU-minute while the user is active interference_cost, an hour of delay delay_cost.
    fail_cost: float = 1.0
    interference_cost: float = 0.05
    delay_cost: float = 0.01
    retry: int = 0
    retry_delay: timedelta = timedelta(minutes=5)
    timeout: timedelta | None = None
    priority: int = 0
    on_deadline: Literal["run", "skip"] = "run"
    overlap: Literal["allow", "skip", "queue"] = "allow"
    mail: Literal["output", "error", "never"] = "output"
    # Linux PSI (/proc/pressure/*, `some avg10`), percent; smartcron.smart.pressure.
    max_cpu_pressure: float | None = None
    max_io_pressure: float | None = None
    max_mem_pressure: float | None = None
    network: Literal["online", "unmetered"] | None = None  # smartcron.smart.network

    @property
    def constraints(self) -> dict[str, object]:
        """The hard constraints that are set (`ac` only when required), in 4.1 order."""
        values = {key: getattr(self, key) for key in _CONSTRAINTS}
        return {key: value for key, value in values.items() if value not in (None, False)}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: durations in seconds, a clock window as ``HH:MM-HH:MM``."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, timedelta):
                seconds = value.total_seconds()
                value = int(seconds) if seconds.is_integer() else seconds
            elif isinstance(value, tuple):
                value = "-".join(t.strftime("%H:%M") for t in value)
            out[item.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class Companion:
    """A crontab's ``F.smart.yaml``: typed ``defaults`` and ``jobs`` by name."""

    path: str
    defaults: Mapping[str, object] = field(default_factory=dict)
    jobs: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    job_lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def unknown_jobs(self, names: Iterable[str]) -> list[str]:
        """Companion jobs no ``name=`` refers to (worth a warning: likely a typo)."""
        return sorted(set(self.jobs) - set(names))

    def unknown_job_problems(self, names: Iterable[str]) -> list[LineProblem]:
        """unknown_jobs() as ``path:line`` warnings, each with the nearest ``name=``."""
        names = list(names)
        return [
            problem(
                self.path,
                self.job_lines.get(name),
                f"jobs: {name!r} is no annotated line's name={suggest(name, names)}",
            )
            for name in self.unknown_jobs(names)
        ]


_SETTINGS = settings_schema(KEYS[1:])
_NAME_HINT = " (a companion job's name is its key under jobs:)"
COMPANION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "a mapping with defaults: and jobs:",
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "defaults": _SETTINGS,
        "jobs": {
            "type": ["object", "null"],
            "propertyNames": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": "a job name of letters, digits, '_', '.' and '-'",
            },
            "additionalProperties": _SETTINGS,
        },
    },
}


def companion_path(crontab_path: Path) -> Path:
    """``F.smart.yaml`` beside the crontab ``F``."""
    return crontab_path.with_name(crontab_path.name + ".smart.yaml")


def load_companion(text: str, path: str) -> Companion:
    """Parse and validate companion YAML. Raises AnnotationError (``path:line: key: why``)."""
    try:
        data, root = safeyaml.load_yaml(text, path, what="companion file", max_bytes=MAX_FILE_BYTES)
    except safeyaml.YamlError as err:
        raise AnnotationError([problem(path, err.line, err.reason)]) from None
    problems = schema_problems(data, COMPANION_SCHEMA, path, root, extra_hint=_NAME_HINT)
    if problems:
        raise AnnotationError(problems)
    data = data or {}
    defaults = convert_all(data.get("defaults") or {}, ["defaults"], path, root, problems)
    jobs = {
        name: convert_all(settings or {}, ["jobs", name], path, root, problems)
        for name, settings in (data.get("jobs") or {}).items()
    }
    if problems:
        raise AnnotationError(problems)
    return Companion(path=path, defaults=defaults, jobs=jobs, job_lines=_key_lines(root, "jobs"))


def _key_lines(root: Any, section: str) -> dict[str, int]:
    """The 1-based line of each key of a top-level mapping (``jobs:``), for warnings."""
    import yaml

    if not isinstance(root, yaml.MappingNode):
        return {}
    node = next((v for k, v in root.value if k.value == section), None)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


@functools.lru_cache(maxsize=4096)
def default_window(spec: TimeSpec) -> timedelta:
    """Half the smallest gap between consecutive firings, at most 6h; 0 for @reboot.

    The gap is measured over the firings of a year and a bit from 2024-01-01 in UTC. It
    stops early at a one-minute gap, or after 3000 firings: a schedule that dense shows
    its smallest gap within days.
    """
    from smartcron.cron.schedule import next_fires  # croniter: only when needed

    if spec.reboot:
        return timedelta(0)
    smallest: timedelta | None = None
    previous: datetime | None = None
    for count, fire in enumerate(next_fires(spec, _REFERENCE, UTC)):
        if count >= _MAX_FIRINGS or fire > _REFERENCE + _HORIZON:
            break
        if previous is not None:
            gap = fire - previous
            smallest = gap if smallest is None else min(smallest, gap)
            if smallest <= timedelta(minutes=1):
                break
        previous = fire
    if smallest is None:  # fires at most once a year (or never)
        return DEFAULT_WINDOW_CAP
    return min(smallest / 2, DEFAULT_WINDOW_CAP)


def resolve(
    inline: Mapping[str, object],
    companion: Companion | None,
    global_defaults: Mapping[str, object] | None,
    *,
    spec: TimeSpec,
) -> SmartSpec:
    """Merge the four levels (inline > companion job > companion defaults > global).

    Values may be typed (parse_annotations, load_companion) or raw; they are checked
    again either way. Raises AnnotationError for a bad global default or inline value.
    """
    merged = check_settings(global_defaults or {}, GLOBAL_ORIGIN)
    name = inline.get("name")
    if name is not None:
        try:
            name = convert("name", name)
        except ValueError as err:
            raise AnnotationError([problem("<inline>", None, f"name: {err}")]) from None
    if companion is not None:
        merged.update(companion.defaults)
        if isinstance(name, str):
            merged.update(companion.jobs.get(name, {}))
    merged.update(check_settings({k: v for k, v in inline.items() if k != "name"}, "<inline>"))
    window = merged.pop("window", None)
    if window is None:
        window = default_window(spec)
    clock = window if isinstance(window, tuple) else None
    duration = window if isinstance(window, timedelta) else None
    return SmartSpec(name=name, window=duration, window_clock=clock, **merged)  # type: ignore[arg-type]


def smart_spec_for(
    entry: Entry,
    path: str,
    companion: Companion | None,
    global_defaults: Mapping[str, object] | None,
) -> SmartSpec | None:
    """The entry's SmartSpec, or None for a plain cron line (no ``#@smart`` line).

    Raises AnnotationError: the daemon logs it and runs the line as plain cron;
    ``smartcrontab -T`` reports it.
    """
    if not entry.annotations:
        return None
    inline = parse_annotations(entry.annotations, path)
    return resolve(inline, companion, global_defaults, spec=entry.spec)


def job_name(entry: Entry, spec: SmartSpec | None, *, source: str, owner: str) -> str:
    """A job's stable identity: its ``name=``, else the loader's derived id."""
    if spec is not None and spec.name:
        return spec.name
    return derived_id(source, owner, entry.spec.text, entry.command)
