"""A job: one crontab entry bound to the file it came from and the user it runs as."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import TYPE_CHECKING

from smartcron.cron.crontab import Entry
from smartcron.smart.jobids import derived_id as derived_id  # its old home (a test imports it here)

if TYPE_CHECKING:
    from smartcron.smart.smartspec import SmartSpec


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
