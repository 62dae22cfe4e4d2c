"""A job: one crontab entry bound to the file it came from and the user it runs as."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import tzinfo

from smartcron.crontab import Entry

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

    @property
    def label(self) -> str:
        return f"{self.source}:{self.line}"


def derived_id(source: str, owner: str, schedule: str, command: str) -> str:
    """An id from what makes a job itself: file, user, schedule and command.

    Moving a line, or editing others, keeps it; changing the line makes a new job.
    """
    key = "\0".join((source, owner, schedule, command))
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    base = _NAME_CHARS.sub("_", source.rsplit("/", 1)[-1]).strip("_") or "crontab"
    return f"{base}-{owner}-{digest[:10]}"


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
