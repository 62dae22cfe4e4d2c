"""A job: one crontab entry bound to the file it came from and the user it runs as."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import TYPE_CHECKING

from smartcron.crontab import Entry

if TYPE_CHECKING:
    from smartcron.smartspec import SmartSpec

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, kw_only=True)
class Job:
    id: str  # stable across edits that do not change it (see job_id)
    source: str  # the crontab file's path
    line: int
    owner: str  # the user the job runs as
    entry: Entry
    zone: tzinfo | None = None  # CRON_TZ, else None for the daemon's zone
    name: str | None = None  # `name=` from a #@smart line, when given
    smart: SmartSpec | None = None  # None: a plain cron line (or a bad annotation)
    job_file: bool = False  # a standalone job file: `entry` escapes its `%` for cron

    @property
    def label(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def command(self) -> str:
        """The command as its owner wrote it (a crontab's `%` part included)."""
        return self.entry.shell_command if self.job_file else self.entry.command


def job_document(job: Job) -> dict[str, object]:
    """A job as status.json and `smartcronctl list --json` show it."""
    return {
        "id": job.id,
        "name": job.name,
        "source": job.source,
        "line": job.line,
        "owner": job.owner,
        "schedule": job.entry.spec.text,
        "command": job.command,
        "zone": str(job.zone) if job.zone is not None else None,
        "smart": job.smart is not None,
        "settings": job.smart.as_dict() if job.smart is not None else None,
    }


def derived_id(source: str, owner: str, schedule: str, command: str) -> str:
    """An id from what makes a job itself: file, user, schedule and command.

    Moving a line, or editing others, keeps it; changing the line makes a new job
    (a `name=` job has a `named_id` instead).
    """
    key = "\0".join((source, owner, schedule, command))
    # Two independent 32-bit checksums: an id, not a secret, and zlib is already in
    # memory where hashlib would map OpenSSL's libcrypto (about 4 MB) into the daemon.
    data = key.encode("utf-8", "surrogateescape")
    digest = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    base = _NAME_CHARS.sub("_", source.rsplit("/", 1)[-1]).strip("_") or "crontab"
    return f"{base}-{owner}-{digest[:10]}"


def named_id(source: str, owner: str, name: str) -> str:
    """A `name=` job's id: file, user and name, so that editing its schedule or command
    keeps its open firings and its history (SPEC 4.1: "stable job name")."""
    base = _NAME_CHARS.sub("_", source.rsplit("/", 1)[-1]).strip("_") or "crontab"
    return f"{base}-{owner}-{name}"


def assign_ids(candidates: Iterable[tuple[str, Job]]) -> list[Job]:
    """Give identical lines distinct ids (`…#2`), in file order, so none is merged away."""
    seen: dict[str, int] = {}
    out = []
    for base, job in candidates:
        count = seen.get(base, 0) + 1
        seen[base] = count
        job_id = base if count == 1 else f"{base}#{count}"
        out.append(replace(job, id=job_id))
    return out
