"""The status file: what the running daemon publishes and `smartcronctl status` reads.

status.json goes to the state directory, else (read-only, full) to the run directory;
the reader takes the newer of the two. The document itself is statusdoc.DaemonStatus.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartcron.config import Config
from smartcron.cron import schedule
from smartcron.daemon.statusdoc import DaemonStatus, JobView, MailView
from smartcron.store.atomicfile import write_atomic

if TYPE_CHECKING:
    from smartcron.daemon.loop import Daemon
    from smartcron.smart.jobs import Job

__all__ = [
    "daemon_status",
    "history_document",
    "job_next_fires",
    "publish_status",
    "read_status",
    "status_document",
]

log = logging.getLogger("smartcron")

# What publish_status() last wrote to each primary path, without "updated": a document
# that did not change is not rewritten (2-3 MB at 10,000 jobs).
_published: dict[Path, str] = {}


def daemon_status(daemon: Daemon, started: datetime) -> DaemonStatus:
    """What `smartcronctl status` shows, as the daemon sees it."""
    history = history_document(daemon.history)
    return DaemonStatus(
        pid=os.getpid(),
        started=started.isoformat(),
        updated=daemon.clock.now().isoformat(),
        user_mode=daemon.config.user_mode,
        mode=daemon.mode,
        mode_reason=daemon.mode_reason,
        zone=str(daemon.zone),
        mail=MailView(
            command=getattr(daemon.mailer, "shown_as", None) or daemon.config.mail_command,
            available=daemon.mailer.available(),
        ),
        files=tuple(loaded.view() for loaded in daemon.db.files.values()),
        jobs=tuple(JobView.of(job) for job in daemon.db.jobs),
        running=len(daemon.running),
        containment=getattr(daemon.runner, "containment", None),  # cgroup v2 or pgid
        starter=getattr(daemon.runner, "starter", None),
        pending_firings=len(daemon.engine.slots),
        model=None if daemon.models is None else daemon.models.document(),
        retrain=None if daemon.retrainer is None else daemon.retrainer.document(),
        history=history,
        next_fires=job_next_fires(daemon.db.jobs, daemon.clock.now(), daemon.zone),
    )


def job_next_fires(
    jobs: list[Job] | tuple[Job, ...], now: datetime, zone: tzinfo
) -> dict[str, int]:
    """Each job's next firing after `now` (epoch seconds); @reboot and never-firing
    schedules are left out. Jobs sharing a schedule and zone share one computation."""
    memo: dict[tuple[str, str], int | None] = {}
    out: dict[str, int] = {}
    for job in jobs:
        job_zone = job.zone or zone
        key = (job.entry.spec.text, str(job_zone))
        if key not in memo:
            when = next(schedule.next_fires(job.entry.spec, now, job_zone), None)
            memo[key] = None if when is None else int(when.timestamp())
        at = memo[key]
        if at is not None:
            out[job.id] = at
    return out


def status_document(daemon: Daemon, started: datetime) -> dict[str, object]:
    """daemon_status() as status.json has it."""
    return daemon_status(daemon, started).to_json()


def history_document(history: object) -> dict[str, object] | None:
    """Whether runs are recorded (a damaged, read-only or full state directory: not)."""
    document = getattr(history, "document", None)
    return None if document is None else document()


def publish_status(config: Config, document: dict[str, object]) -> None:
    """Write status.json to the state directory, else (read-only, full) to the run
    directory, so that `smartcronctl status` can still say why history is down.
    Compact, and only when something besides "updated" changed (or the file went)."""
    primary, fallback = config.status_files
    same = json.dumps({**document, "updated": None}, separators=(",", ":"))
    if _published.get(primary) == same and (primary.exists() or fallback.exists()):
        return
    text = json.dumps(document, separators=(",", ":"))
    _published.pop(primary, None)  # until written
    try:
        write_atomic(primary, text)
    except OSError as err:
        try:
            write_atomic(fallback, text)
        except OSError as err2:
            log.error(
                "cannot write %s (%s) nor %s (%s)", primary, err.strerror, fallback, err2.strerror
            )
        else:
            _published[primary] = same
        return
    _published[primary] = same
    with contextlib.suppress(OSError):
        fallback.unlink()  # a stale fallback must not win over the fresh primary


def read_status(config: Config) -> dict[str, Any] | None:
    """The running daemon's published status (the newer of its two places), or None."""
    found = []
    for path in config.status_files:
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(found, reverse=True):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            return doc
    return None
