"""What the history store keeps of a run: its start, its end, the stored row, and how
values are written to and read back from SQLite (instants as fixed-width UTC text)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from smartcron.store.historyguard import text

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the daemon died or stopped while the job ran
    SPAWN_ERROR = "spawn_error"  # fork/exec/setuid failed: the command never ran


class Trigger(enum.StrEnum):
    CRON = "cron"  # a plain line at its cron time
    SMART = "smart"  # an annotated firing released by the gate
    RETRY = "retry"
    REBOOT = "reboot"  # @reboot
    MANUAL = "manual"  # smartcronctl run JOB


def to_db_time(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: history stores UTC instants")
    return instant.astimezone(UTC).strftime(_TIME_FORMAT)


def from_db_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStart:
    """What is known as a job starts. `scheduled` is the nominal firing instant (None
    for @reboot); `source`/`line` the crontab file and line; `firing_id` a smart firing."""

    job_id: str
    source: str
    user: str
    command: str
    started: datetime
    trigger: Trigger | str = Trigger.CRON
    scheduled: datetime | None = None
    job_name: str | None = None
    line: int | None = None
    firing_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnd:
    """How a run ended. `output` is stored as given (the caller caps it); `output_size`
    is the full size. `note` is free text (a spawn error, an interruption reason)."""

    status: RunStatus | str
    ended: datetime
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    runtime_s: float | None = None
    cpu_s: float | None = None
    max_rss_kb: int | None = None
    output_size: int | None = None
    output: bytes | None = None
    mail_sent: bool | None = None
    mail_reason: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """A stored run; `end` is None while it runs or if the daemon died first (see `note`)."""

    id: int
    status: RunStatus
    note: str | None
    start: RunStart
    end: RunEnd | None
    host: str | None = None  # the host that ran it (a fleet's history: docs/fleet.md)


def db_values(record: RunStart | RunEnd) -> dict[str, object]:
    """A record's fields as stored: UTC text for instants, 0/1 for booleans."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    for name, value in values.items():
        if isinstance(value, datetime | bool):
            values[name] = to_db_time(value) if isinstance(value, datetime) else int(value)
    return values


START_FIELDS = tuple(f.name for f in fields(RunStart))
END_FIELDS = tuple(f.name for f in fields(RunEnd))
RUN_COLUMNS = ("id", *START_FIELDS, *END_FIELDS)


def run_row(raw: dict[str, Any]) -> RunRow:
    host = raw.pop("host", None)
    for name, value in raw.items():  # texts kept as BLOBs (not UTF-8) come back exactly
        if name != "output":
            raw[name] = text(value)
    for name in ("scheduled", "started", "ended"):
        raw[name] = from_db_time(raw[name])
    for name in ("timed_out", "mail_sent"):
        raw[name] = None if raw[name] is None else bool(raw[name])
    raw["status"], raw["trigger"] = RunStatus(raw["status"]), Trigger(raw["trigger"])
    return RunRow(
        id=raw["id"],
        status=raw["status"],
        note=raw["note"],
        start=RunStart(**{k: raw[k] for k in START_FIELDS}),
        end=None if raw["ended"] is None else RunEnd(**{k: raw[k] for k in END_FIELDS}),
        host=host,
    )
