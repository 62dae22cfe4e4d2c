"""What a smart job may do: the #@smart keys (smartcrontab(5)) resolved from their four sources.

Precedence, highest first: the job's ``#@smart`` lines, the companion's ``jobs:``
entry of the job's ``name=``, the companion's ``defaults:``, the global config. A
``profile=`` (smartcron.smart.profiles) is named by one of these levels (the highest
that names one wins; profiles never mix) and sits just below it: the profile's keys
override the levels below the one naming it, and that level's own keys and those above
override the profile. So ``#@smart profile=laptop idle=30m`` takes laptop's keys but
its own idle, and a companion ``defaults: {profile: server}`` is the base of every job,
under the job's own keys and ``jobs:`` entry but over the global config. The
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
    KEYS,
    NAME_PATTERN,
    check_settings,
    convert,
    problem,
    suggest,
)
from smartcron.smart.jitter import jitter_problem
from smartcron.smart.jobids import derived_id
from smartcron.smart.settingschema import convert_all, schema_problems
from smartcron.smart.settingschema import settings_schema as settings_schema  # its old home
from smartcron.smart.smartline import parse_annotations

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


# --------------------------------------------------------------------------- resolving


@dataclass(frozen=True, kw_only=True, slots=True)
class SmartSpec:
    """One smart job's settings (smartcrontab(5)). Exactly one of window/window_clock is set."""

    name: str | None = None
    profile: str | None = None  # the profile its keys came from (smartcron.smart.profiles)
    after: tuple[str, ...] = ()  # job names whose firings must succeed first (depends)
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
    # 0.04 (was 0.05): chosen on development seeds 1-60, docs/ai.md's thirteenth round.
    fail_cost: float = 1.0
    interference_cost: float = 0.04
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
    fleet: Literal["each", "once"] = "each"  # once: one host of a fleet (smart.fleet)
    # After a suspend or a power-off (smartcron.smart.catchup); None: the window's length.
    catchup: Literal["once", "all", "no"] = "once"
    catchup_window: timedelta | None = None
    jitter: timedelta | None = None  # a per-host offset into the window (smart.jitter)

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
            elif item.name == "after":
                value = list(value)
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
    levels = [(["defaults"], defaults)] + [(["jobs", n], s) for n, s in jobs.items()]
    problems += _profile_problems(levels, path, root)
    if problems:
        raise AnnotationError(problems)
    return Companion(path=path, defaults=defaults, jobs=jobs, job_lines=_key_lines(root, "jobs"))


def _profile_problems(
    levels: list[tuple[list[Any], Mapping[str, object]]], path: str, root: Any
) -> list[LineProblem]:
    """A companion naming a profile that is unknown or broken: at the line of its key."""
    from smartcron.smart import profiles

    out = []
    for keys, settings in levels:
        name = settings.get("profile")
        if isinstance(name, str):
            try:
                profiles.keys_of(name)
            except LookupError as err:
                at = [*keys, "profile"]
                reason = f"{safeyaml.keypath(at)}: {err}"
                out.append(problem(path, safeyaml.locate(root, at), reason))
    return out


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
    origin: tuple[str, int | None] = ("<inline>", None),
) -> SmartSpec:
    """Merge the four levels (inline > companion job > companion defaults > global) and
    the profile one of them names, just below that level (the module docstring).

    Values may be typed (parse_annotations, load_companion) or raw; they are checked
    again either way. `origin`: where the inline keys were written (for errors). Raises
    AnnotationError for a bad global default or inline value, an unknown profile, or a
    job that names itself in after=.
    """
    name = inline.get("name")
    if name is not None:
        try:
            name = convert("name", name)
        except ValueError as err:
            raise AnnotationError([problem(origin[0], origin[1], f"name: {err}")]) from None
    own = check_settings({k: v for k, v in inline.items() if k != "name"}, origin[0])
    levels: list[tuple[Mapping[str, object], tuple[str, int | None]]] = [
        (check_settings(global_defaults or {}, GLOBAL_ORIGIN), (GLOBAL_ORIGIN, None))
    ]
    if companion is not None:
        levels.append((companion.defaults, (companion.path, None)))
        if isinstance(name, str):
            levels.append((companion.jobs.get(name, {}), (companion.path, None)))
    levels.append((own, origin))
    merged = _merge_levels(levels)
    if isinstance(name, str) and name in merged.get("after", ()):  # type: ignore[operator]
        itself = f"after: {name} names the job itself"
        raise AnnotationError([problem(origin[0], origin[1], itself)])
    window = merged.pop("window", None)
    if window is None:
        window = default_window(spec)
    clock = window if isinstance(window, tuple) else None
    duration = window if isinstance(window, timedelta) else None
    jitter = merged.get("jitter")  # it must fit the window (smartcron.smart.jitter)
    if isinstance(jitter, timedelta) and (why := jitter_problem(jitter, duration, clock)):
        raise AnnotationError([problem(origin[0], origin[1], why)])
    return SmartSpec(name=name, window=duration, window_clock=clock, **merged)  # type: ignore[arg-type]


def _merge_levels(
    levels: list[tuple[Mapping[str, object], tuple[str, int | None]]],
) -> dict[str, object]:
    """The levels, lowest first, merged; the profile named by the highest level naming
    one goes in just below it. Raises AnnotationError for an unknown or broken profile."""
    from smartcron.smart import profiles

    at = max((i for i, (keys, _) in enumerate(levels) if "profile" in keys), default=None)
    merged: dict[str, object] = {}
    for index, (keys, where) in enumerate(levels):
        if index == at:
            try:
                merged.update(profiles.keys_of(str(keys["profile"])))
            except LookupError as err:
                raise AnnotationError([problem(where[0], where[1], f"profile: {err}")]) from None
        merged.update(keys)
    return merged


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
    # Errors of the inline keys point at the #@smart line naming the key (profile=, after=).
    words = ("profile=", "after=", "jitter=")
    lines = [note.line for note in entry.annotations if any(w in note.text for w in words)]
    line = lines[-1] if lines else entry.annotations[-1].line
    return resolve(inline, companion, global_defaults, spec=entry.spec, origin=(path, line))


def job_name(entry: Entry, spec: SmartSpec | None, *, source: str, owner: str) -> str:
    """A job's stable identity: its ``name=``, else the loader's derived id."""
    if spec is not None and spec.name:
        return spec.name
    return derived_id(source, owner, entry.spec.text, entry.command)
