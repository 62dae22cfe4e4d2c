"""The status document: what a running daemon publishes (status.json) and what it would
load when none runs, as typed values with `to_json()`.

Shared by the daemon (service.py writes it) and `smartcronctl` (status.py reads it),
so it imports neither. `model`, `retrain` and `history` are the documents of modelwatch,
retrain and history, carried as they give them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartcron.smart.jobs import Job

JsonObject = Mapping[str, Any]


def _opaque(value: object) -> JsonObject | None:
    return value if isinstance(value, Mapping) else None


@dataclass(frozen=True, kw_only=True, slots=True)
class JobView:
    """A job as status.json and `smartcronctl list --json` show it."""

    id: str
    name: str | None
    source: str
    line: int
    owner: str
    schedule: str
    command: str
    zone: str | None  # CRON_TZ; None: the daemon's zone
    smart: bool
    settings: JsonObject | None  # the SmartSpec's keys, for an annotated job

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            name=job.name,
            source=job.source,
            line=job.line,
            owner=job.owner,
            schedule=job.entry.spec.text,
            command=job.command,
            zone=str(job.zone) if job.zone is not None else None,
            smart=job.smart is not None,
            settings=_settings(job),
        )

    @classmethod
    def from_json(cls, data: JsonObject) -> JobView:
        return cls(**{key: data[key] for key in _JOB_KEYS})

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _JOB_KEYS}


def _settings(job: Job) -> dict[str, Any] | None:
    """The SmartSpec's keys, and with jitter= this host's offset (`jitter_offset`, s)."""
    if job.smart is None:
        return None
    out = job.smart.as_dict()
    if job.smart.jitter:
        from smartcron.smart.jitter import jitter_offset

        out["jitter_offset"] = int(jitter_offset(job.smart.jitter, job.id).total_seconds())
    return out


# Once, not per job: dataclasses.fields() was a fifth of `status` at 10,000 jobs.
_JOB_KEYS = tuple(item.name for item in fields(JobView))


@dataclass(frozen=True, kw_only=True, slots=True)
class CompanionView:
    """F.smart.yaml beside a crontab F: ok, broken or refused, and why."""

    path: str
    state: str
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "state": self.state, "problems": list(self.problems)}


@dataclass(frozen=True, kw_only=True, slots=True)
class FileView:
    """A crontab file as loaded: refused (and why) or used, its warnings, its job count."""

    path: str
    refused: str | None
    warnings: tuple[str, ...]
    jobs: int
    companion: CompanionView | None

    @classmethod
    def from_json(cls, data: JsonObject) -> FileView:
        companion = data.get("companion")
        return cls(
            path=data["path"],
            refused=data["refused"],
            warnings=tuple(data["warnings"]),
            jobs=data["jobs"],
            companion=None
            if companion is None
            else CompanionView(
                path=companion["path"],
                state=companion["state"],
                problems=tuple(companion["problems"]),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "refused": self.refused,
            "warnings": list(self.warnings),
            "jobs": self.jobs,
            "companion": None if self.companion is None else self.companion.to_json(),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class MailView:
    command: str
    available: bool  # False: no MTA, output stays in the history and the log

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "available": self.available}


@dataclass(frozen=True, kw_only=True, slots=True)
class DaemonStatus:
    """What a running daemon publishes in status.json (keys in this order)."""

    pid: int
    started: str  # ISO 8601 instants, as published
    updated: str
    user_mode: bool
    mode: str
    mode_reason: str
    zone: str
    mail: MailView
    files: tuple[FileView, ...]
    jobs: tuple[JobView, ...]
    running: int
    containment: str | None  # cgroup v2 or process groups
    starter: str | None  # the spawner process (its pid), or the daemon itself and why
    pending_firings: int
    model: JsonObject | None
    retrain: JsonObject | None
    history: JsonObject | None  # None: a history store that does not say
    # Each job's next firing after `updated` (epoch seconds; absent: never), so that
    # `smartcronctl status` need not recompute 10,000 schedules. Not shown by status.
    next_fires: Mapping[str, int] | None = None

    @classmethod
    def from_json(cls, data: JsonObject) -> DaemonStatus:
        """status.json as read back (by `smartcronctl`, from the same version)."""
        return cls(
            pid=data["pid"],
            started=data["started"],
            updated=data["updated"],
            user_mode=data["user_mode"],
            mode=data["mode"],
            mode_reason=data["mode_reason"],
            zone=data["zone"],
            mail=MailView(**data["mail"]),
            files=tuple(FileView.from_json(item) for item in data["files"]),
            jobs=tuple(JobView.from_json(item) for item in data["jobs"]),
            running=data["running"],
            containment=data.get("containment"),
            starter=data.get("starter"),
            pending_firings=data.get("pending_firings", 0),
            model=_opaque(data.get("model")),
            retrain=_opaque(data.get("retrain")),
            history=_opaque(data.get("history")),
            next_fires=_opaque(data.get("next_fires")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "started": self.started,
            "updated": self.updated,
            "user_mode": self.user_mode,
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "zone": self.zone,
            "mail": self.mail.to_json(),
            "files": [item.to_json() for item in self.files],
            "jobs": [item.to_json() for item in self.jobs],
            "running": self.running,
            "containment": self.containment,
            "starter": self.starter,
            "pending_firings": self.pending_firings,
            "model": self.model,
            "retrain": self.retrain,
            "history": self.history,
            "next_fires": self.next_fires,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveStatus:
    """What a daemon would load right now, when none runs (keys in this order)."""

    mode: str
    mode_reason: str
    zone: str
    user_mode: bool
    mail: MailView
    files: tuple[FileView, ...]
    jobs: tuple[JobView, ...]
    model: JsonObject | None
    retrain: JsonObject | None

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": None,
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "zone": self.zone,
            "user_mode": self.user_mode,
            "mail": self.mail.to_json(),
            "files": [item.to_json() for item in self.files],
            "jobs": [item.to_json() for item in self.jobs],
            "running": 0,
            "model": self.model,
            "retrain": self.retrain,
        }
