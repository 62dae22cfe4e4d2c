"""The simulator's world (SPEC §9): per-job laws of runtime and failure, ground truth.

Only the simulator and the oracle policy read a world. Loading is defensive, as for
any YAML SmartCron reads (smartcron.smart.safeyaml: size capped before parsing, aliases
counted and their expansion bounded, nesting bounded), then a JSON Schema, with every error
naming ``file:line: key.path: reason``.

Condition values (``when:``): a number is equality (booleans count as 1/0), and a
string is ``<x``, ``<=x``, ``>x``, ``>=x``, ``=x`` or an inclusive range ``a-b``. For
``hour`` (0-23) and ``weekday`` (0 = Monday) a range may wrap (``22-5``: the night).
A condition on a value the snapshot lacks (no battery) does not hold. ``hour`` and
``weekday`` are read in the world's ``timezone`` (default UTC). A quoted number
(``"9"``, ``" 0.5 "``) is the number: equality.

``machine: {cores: N, job_load: true}`` (opt-in): the jobs' own CPU loads the machine,
so a run's start state includes the runs going around it (smartcron.sim.timeline's
overlay); ``cores`` (default 8) is what ``cpu_percent`` is a share of.

``machine: {network_online: 0, cpu_pressure: 35}``: the extra trace columns (PSI
pressure in percent, network online and metered as 0/1) for a trace without them (the
generated ones): the value holds for every minute. A trace's own column wins.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smartcron.errors import SmartcronError
from smartcron.sim.tracecolumns import ALL_COLUMNS as TRACE_COLUMNS
from smartcron.sim.tracecolumns import NETWORK_COLUMNS, PRESSURE_COLUMNS
from smartcron.smart import safeyaml, schemacheck
from smartcron.smart.monitor import Snapshot

MAX_BYTES = safeyaml.MAX_BYTES
NAME = r"^[A-Za-z0-9_.-]+$"
DURATION = r"^\s*(\d+(\.\d+)?\s*[smhd]\s*)+$"
_NUM = r"\d+(\.\d+)?"
CONDITION = rf"^\s*((<=|>=|<|>|=)?\s*{_NUM}|{_NUM}\s*-\s*{_NUM})\s*$"
# what a condition can test: the trace columns (the extra ones too: a job that needs the
# network fails offline), load15, and the local hour and weekday
COLUMNS = (*TRACE_COLUMNS[1:], "load15", "hour", "weekday")
_CYCLIC = {"hour": 24, "weekday": 7}
DEFAULT_CORES = 8

_PROB = {"type": "number", "minimum": 0, "maximum": 1}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["when", "p"],
    "properties": {
        "when": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": list(COLUMNS)},
            "additionalProperties": {
                "anyOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "boolean"},
                    {"type": "string", "pattern": CONDITION},
                ]
            },
        },
        "p": _PROB,
    },
}
_JOB = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "runtime": {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": DURATION},
            ]
        },
        "cpu": {"type": "number", "minimum": 0},
        "slowdown_per_load": {"type": "number", "minimum": 0},
        "base_fail": _PROB,
        "fail": {"type": "array", "items": _RULE},
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["jobs"],
    "properties": {
        "seed": {"type": "integer"},
        "active_idle_below": {"type": "number", "minimum": 0},
        "timezone": {"type": "string"},
        "machine": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cores": {"type": "integer", "minimum": 1},
                "job_load": {"type": "boolean"},
                **{
                    name: {"type": "number", "minimum": 0, "maximum": 100}
                    for name in PRESSURE_COLUMNS
                },
                **{name: {"enum": [0, 1, True, False]} for name in NETWORK_COLUMNS},
            },
        },
        "jobs": {
            "type": "object",
            "propertyNames": {"type": "string", "pattern": NAME},
            "additionalProperties": _JOB,
        },
    },
}


class WorldError(SmartcronError):
    """A bad world file; the message names the file, line and key path."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    column: str
    op: str  # "==", "<", "<=", ">", ">=", "range"
    low: float
    high: float = math.nan  # the range's upper bound

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.op == "range":
            if self.low <= self.high:
                return self.low <= value <= self.high
            return value >= self.low or value <= self.high  # wraps (hour, weekday)
        return {
            "==": value == self.low,
            "<": value < self.low,
            "<=": value <= self.low,
            ">": value > self.low,
            ">=": value >= self.low,
        }[self.op]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailRule:
    when: tuple[Condition, ...]
    p: float


@dataclass(frozen=True, slots=True, kw_only=True)
class JobLaw:
    """How one job behaves. The default law: one minute, no CPU, never fails."""

    name: str
    runtime_s: float = 60.0  # at zero load
    cpu: float = 0.0  # cores used while running
    slowdown_per_load: float = 0.0
    base_fail: float = 0.0
    fail: tuple[FailRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    seed: int = 0
    active_idle_below: float = 60.0
    timezone: str = "UTC"
    job_load: bool = False  # jobs' own CPU loads the machine (Timeline.occupy)
    cores: int = DEFAULT_CORES  # what cpu_percent is a share of, with job_load
    signals: Mapping[str, float] = field(default_factory=dict)  # extra columns the world sets
    jobs: Mapping[str, JobLaw] = field(default_factory=dict)
    path: str = "<world>"

    def law_for(self, job: str) -> JobLaw:
        """The job's law, or the default law for a job the world does not name."""
        return self.jobs.get(job) or JobLaw(name=job)

    def values(self, snap: Snapshot) -> dict[str, float | None]:
        """What conditions can test: the snapshot's columns plus hour and weekday."""
        local = snap.at.astimezone(ZoneInfo(self.timezone))
        out: dict[str, float | None] = {}
        for column in COLUMNS[:-2]:
            value = getattr(snap, column)
            out[column] = None if value is None else float(value)
        out["hour"], out["weekday"] = float(local.hour), float(local.weekday())
        return out

    def p_fail(self, job: str, snap: Snapshot) -> float:
        """1 - (1 - base_fail) * prod(1 - p) over the rules whose conditions all hold."""
        law = self.law_for(job)
        values = self.values(snap)
        survive = 1.0 - law.base_fail
        for rule in law.fail:
            if all(c.holds(values[c.column]) for c in rule.when):
                survive *= 1.0 - rule.p
        return 1.0 - survive

    def runtime_s(self, job: str, snap: Snapshot) -> float:
        """runtime * (1 + slowdown_per_load * load5), in seconds."""
        law = self.law_for(job)
        return law.runtime_s * (1.0 + law.slowdown_per_load * snap.load5)

    def draw(self, job: str, nominal: datetime, seed: int | None = None) -> float:
        """This firing's uniform draw; `seed` overrides the world's (``--seed``)."""
        return draw(self.seed if seed is None else seed, job, nominal)

    def fails(self, job: str, nominal: datetime, start: Snapshot, seed: int | None = None) -> bool:
        """Whether the firing `nominal` of `job`, started in state `start`, fails."""
        return self.draw(job, nominal, seed) < self.p_fail(job, start)

    def is_active(self, snap: Snapshot) -> bool:
        """A user-active minute: idle time known and below active_idle_below."""
        return snap.idle_seconds is not None and snap.idle_seconds < self.active_idle_below

    def check_jobs(self, crontab_jobs: Iterable[str]) -> list[str]:
        """Raise if the world names a job the crontab lacks; return the unnamed ones."""
        known = set(crontab_jobs)
        extra = sorted(set(self.jobs) - known)
        if extra:
            raise WorldError(f"{self.path}: jobs not in the crontab: {', '.join(extra)}")
        return sorted(known - set(self.jobs))


def draw(seed: int, job: str, nominal: datetime) -> float:
    """Uniform in [0, 1) from (seed, job, nominal): the same dice for every policy."""
    if nominal.tzinfo is None:
        raise ValueError("nominal must be timezone-aware")
    key = f"{seed}\0{job}\0{nominal.astimezone(UTC).isoformat()}".encode()
    digest = hashlib.blake2b(key, digest_size=8, person=b"smartcron-world").digest()
    return int.from_bytes(digest, "big") / 2**64


# ----------------------------------------------------------------------- loading


def load_world(text: str, path: str = "<world>") -> World:
    """Parse and validate world YAML text. Raises WorldError naming file:line and key."""
    try:
        data, root = safeyaml.load_yaml(text, path, what="world file", max_bytes=MAX_BYTES)
    except safeyaml.YamlError as err:
        raise WorldError(str(err)) from None
    if data is None:
        raise WorldError(f"{path}: empty world file")
    errors = schemacheck.schema_errors(data, SCHEMA)
    if errors:
        lines = [
            f"{safeyaml.where(path, root, list(keys))}: {safeyaml.keypath(keys)}: {e.message}"
            for e in errors
            for keys in [e.absolute_path]
        ]
        raise WorldError("\n".join(lines))
    return _build(data, path, root)


def read_world(path: str | Path) -> World:
    """Load a world file, refusing oversized files before reading them."""
    name = str(path)
    try:
        size = Path(name).stat().st_size
        if size > MAX_BYTES:
            raise WorldError(f"{name}: world file larger than {MAX_BYTES // 1024 // 1024} MB")
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise WorldError(f"{name}: cannot read world: {err}") from None
    return load_world(text, name)


def duration_seconds(text: str | float) -> float:
    """Seconds in ``30s``, ``20m``, ``2h``, ``1d`` or ``1h30m``; a number is seconds."""
    if isinstance(text, int | float):
        return float(text)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"bad duration {text!r}")
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text))


def _condition(column: str, value: Any) -> Condition:
    if isinstance(value, bool | int | float):
        return Condition(column=column, op="==", low=float(value))
    text = value.strip().replace(" ", "")
    for op in ("<=", ">=", "<", ">", "="):
        if text.startswith(op):
            number = float(text[len(op) :])
            return Condition(column=column, op="==" if op == "=" else op, low=number)
    if "-" not in text:  # a quoted number ("9", " 0.5 "): equality, as the bare number
        return Condition(column=column, op="==", low=float(text))
    low, high = (float(part) for part in text.split("-"))
    if low > high and column not in _CYCLIC:
        raise ValueError(f"range {value!r} is empty ({low:g} > {high:g})")
    if column in _CYCLIC and max(low, high) >= _CYCLIC[column]:
        raise ValueError(f"{column} goes from 0 to {_CYCLIC[column] - 1}")
    return Condition(column=column, op="range", low=low, high=high)


def _build(data: Mapping[str, Any], path: str, root: Any) -> World:
    zone = data.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorldError(
            f"{safeyaml.where(path, root, ['timezone'])}: unknown time zone {zone!r}"
        ) from None
    machine = data.get("machine") or {}
    jobs: dict[str, JobLaw] = {}
    for name, spec in (data.get("jobs") or {}).items():
        rules = []
        for i, rule in enumerate(spec.get("fail", [])):
            conditions = []
            for column, value in rule["when"].items():
                try:
                    conditions.append(_condition(column, value))
                except ValueError as err:
                    keys = ["jobs", name, "fail", i, "when", column]
                    raise WorldError(
                        f"{safeyaml.where(path, root, keys)}: {safeyaml.keypath(keys)}: {err}"
                    ) from None
            rules.append(FailRule(when=tuple(conditions), p=float(rule["p"])))
        runtime = duration_seconds(spec.get("runtime", 60))
        if runtime <= 0:
            keys = ["jobs", name, "runtime"]
            raise WorldError(
                f"{safeyaml.where(path, root, keys)}: {safeyaml.keypath(keys)}: must be > 0"
            )
        jobs[name] = JobLaw(
            name=name,
            runtime_s=runtime,
            cpu=float(spec.get("cpu", 0.0)),
            slowdown_per_load=float(spec.get("slowdown_per_load", 0.0)),
            base_fail=float(spec.get("base_fail", 0.0)),
            fail=tuple(rules),
        )
    return World(
        seed=int(data.get("seed", 0)),
        active_idle_below=float(data.get("active_idle_below", 60.0)),
        timezone=zone,
        job_load=bool(machine.get("job_load", False)),
        cores=int(machine.get("cores", DEFAULT_CORES)),
        signals={k: float(v) for k, v in machine.items() if k not in ("cores", "job_load")},
        jobs=jobs,
        path=path,
    )
