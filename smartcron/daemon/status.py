"""`smartcronctl status`, as a library result: the daemon's status (its status.json when
it runs, else what it would load now), the open firings, the next firings.

Everything here reads: the status file, the crontabs, the history database (read-only,
WAL: never blocks the daemon), so it works whether or not the daemon runs.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from smartcron.config import Config
from smartcron.daemon.statusdoc import DaemonStatus, JobView, JsonObject, LiveStatus, MailView
from smartcron.smart.firings import Decision, FiringStore, StoredFiring
from smartcron.store.history import HistoryStore

StatusView = DaemonStatus | LiveStatus


def _iso(instant: datetime | None, zone: tzinfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).isoformat()


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionView:
    """One decision of the gate (or outcome the engine recorded), in the job's zone."""

    at: str
    verdict: str
    until: str | None
    reason: str
    snapshot: JsonObject | None
    model: JsonObject | None

    @classmethod
    def of(cls, decision: Decision, zone: tzinfo) -> DecisionView:
        return cls(
            at=decision.at.astimezone(zone).isoformat(),
            verdict=decision.verdict,
            until=_iso(decision.until, zone),
            reason=decision.reason,
            snapshot=decision.snapshot,
            model=decision.model,
        )

    def to_json(self, with_snapshot: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at, "verdict": self.verdict, "until": self.until}
        out["reason"] = self.reason
        if with_snapshot:
            out["snapshot"] = self.snapshot
        out["model"] = self.model
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class FiringView:
    """A smart firing as stored, in the job's zone; `runs` made so far."""

    id: int | None
    nominal: str
    deadline: str
    state: str
    runs: int
    next_eval: str | None

    @classmethod
    def of(cls, item: StoredFiring, zone: tzinfo) -> FiringView:
        f = item.firing
        return cls(
            id=f.id,
            nominal=f.nominal.astimezone(zone).isoformat(),
            deadline=f.deadline.astimezone(zone).isoformat(),
            state=f.state,
            runs=f.attempt,
            next_eval=_iso(item.next_eval, zone),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "nominal": self.nominal,
            "deadline": self.deadline,
            "state": self.state,
            "runs": self.runs,
            "next_eval": self.next_eval,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingFiring:
    """An open (pending or running) firing and its last decision, shown without the
    snapshot (`list` and `status`)."""

    job: JobView
    firing: FiringView
    last: DecisionView | None

    def to_json(self) -> dict[str, Any]:
        last = None if self.last is None else self.last.to_json(with_snapshot=False)
        return {**self.firing.to_json(), "last": last}


@dataclass(frozen=True, kw_only=True, slots=True)
class NextFiring:
    at: str  # in the job's zone
    job: JobView

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "job": self.job.id, **self.job.to_json()}


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusReport:
    """What `smartcronctl status` shows: the daemon's own status (or what it would load),
    whether it runs and its pid, the open firings oldest first, the soonest firings."""

    status: StatusView
    running_daemon: bool
    pid: int | None
    pending: tuple[PendingFiring, ...]
    next: tuple[NextFiring, ...]

    def to_json(self) -> dict[str, Any]:
        # The status's own keys first, in its order (pid among them), then the report's.
        shown = self.status.to_json()
        shown.pop("next_fires", None)  # the daemon's cache of what "next" shows
        return {
            **shown,
            "running_daemon": self.running_daemon,
            "pid": self.pid,
            "pending": [
                {"job": item.job.id, "name": item.job.name, **item.to_json()}
                for item in self.pending
            ],
            "next": [item.to_json() for item in self.next],
        }


def job_zone(job: JobView | None) -> tzinfo:
    """A job's CRON_TZ, else the system zone (what the daemon uses)."""
    from zoneinfo import ZoneInfo

    from smartcron.cron.schedule import local_zone

    return ZoneInfo(job.zone) if job is not None and job.zone else local_zone()


def next_fire(job: JobView, now: datetime) -> str | None:
    """The job's next firing after `now`, in its zone; None for @reboot or a bad schedule."""
    at = _next_instant(job.schedule, job_zone(job), now)
    return None if at is None else at.astimezone(job_zone(job)).isoformat()


def _next_instant(text: str, zone: tzinfo, now: datetime) -> datetime | None:
    from smartcron.cron.crontab import parse_timespec
    from smartcron.cron.schedule import next_fires
    from smartcron.errors import SmartcronError

    try:
        spec = parse_timespec(text)
    except SmartcronError:
        return None
    return next(itertools.islice(next_fires(spec, now, zone), 1), None)


def next_firings(
    jobs: tuple[JobView, ...],
    now: datetime,
    limit: int,
    published: Mapping[str, int] | None = None,
) -> list[NextFiring]:
    """The soonest firings of `jobs`, one per job at most. `published`: the daemon's
    next firing of each job (epoch seconds), exact while still ahead of `now`; only the
    others are computed, once per schedule and zone."""
    published = published or {}
    after = now.timestamp()
    zones: dict[str | None, tzinfo] = {}
    memo: dict[tuple[str, str | None], float | None] = {}
    upcoming: list[tuple[float, int, JobView]] = []
    for index, job in enumerate(jobs):
        at: float | None = published.get(job.id)
        if at is None or at <= after:
            key = (job.schedule, job.zone)
            if key not in memo:
                zone = zones.setdefault(job.zone, job_zone(job))
                when = _next_instant(job.schedule, zone, now)
                memo[key] = None if when is None else when.timestamp()
            at = memo[key]
        if at is not None:
            upcoming.append((at, index, job))
    soonest = heapq.nsmallest(limit, upcoming)
    return [
        NextFiring(
            at=datetime.fromtimestamp(at, zones.setdefault(job.zone, job_zone(job))).isoformat(),
            job=job,
        )
        for at, _, job in soonest
    ]


def open_history(config: Config) -> HistoryStore | None:
    """The history database read-only, or None when there is none yet."""
    path = config.history_db
    return HistoryStore.open(path, readonly=True) if Path(path).exists() else None


def pending_firings(config: Config, jobs: tuple[JobView, ...]) -> dict[str, list[PendingFiring]]:
    """The open (pending or running) firings of `jobs`, by job id, oldest first, each with
    its last decision."""
    store = open_history(config)
    if store is None:
        return {}
    by_id = {job.id: job for job in jobs}
    out: dict[str, list[PendingFiring]] = {}
    try:
        fstore = FiringStore(store)
        for item in fstore.open_firings():
            job = by_id.get(item.firing.job_id)
            if job is None:  # no longer in any crontab
                continue
            zone = job_zone(job)
            decisions = fstore.decisions(item.firing.id) if item.firing.id else []
            last = DecisionView.of(decisions[-1], zone) if decisions else None
            pending = PendingFiring(job=job, firing=FiringView.of(item, zone), last=last)
            out.setdefault(job.id, []).append(pending)
    finally:
        store.close()
    return out


def live_status(config: Config) -> LiveStatus:
    """What a daemon would load right now (the daemon is not running)."""
    from smartcron.cron.schedule import entry_zone, local_zone
    from smartcron.daemon.loader import Database
    from smartcron.daemon.loop import initial_mode
    from smartcron.run.mail import SendmailMailer

    zone = local_zone()
    db = Database(config, zone_of=lambda env: entry_zone(env, zone))
    db.refresh()
    mode, why = initial_mode(config)
    model = retrain = None
    if config.mode == "smart":  # what the daemon would make of the model files now
        from smartcron.ai.modelwatch import ModelWatch

        watch = ModelWatch.from_config(config)
        watch.refresh(datetime.now(UTC))
        mode, why, model = watch.mode, watch.reason, watch.document()
        if config.retrain_spec is not None:
            retrain = {"schedule": config.retrain_spec, "next": None, "running": False}
    mailer = SendmailMailer(config.mail_command)
    return LiveStatus(
        mode=mode,
        mode_reason=why,
        zone=str(zone),
        user_mode=config.user_mode,
        mail=MailView(command=config.mail_command, available=mailer.available()),
        files=tuple(loaded.view() for loaded in db.files.values()),
        jobs=tuple(JobView.of(job) for job in db.jobs),
        model=model,
        retrain=retrain,
    )


def daemon_pid(config: Config) -> int | None:
    """The running daemon's pid, or None when none holds the lock."""
    from smartcron.daemon.daemonlock import lock_holder

    pid = lock_holder(config.lock_file)
    if pid == -1:  # held through the state directory (read-only): the pid file says
        text = config.pid_file.read_text() if config.pid_file.exists() else ""
        pid = int(text) if text.strip().isdigit() else pid
    return pid


def current_status(config: Config, pid: int | None) -> StatusView:
    """The running daemon's status file (pid: its lock holder), else what it would load."""
    from smartcron.daemon.statusfile import read_status

    data = read_status(config) if pid is not None else None
    if data is not None and pid not in (-1, data.get("pid")):
        data = None  # a previous daemon's file, not this one's: load the files instead
    return DaemonStatus.from_json(data) if data is not None else live_status(config)


def loaded_status(config: Config) -> StatusView:
    """current_status() of whichever daemon holds the lock (`list` and `explain`)."""
    from smartcron.daemon.daemonlock import lock_holder

    return current_status(config, lock_holder(config.lock_file))


def status_report(config: Config, now: datetime) -> StatusReport:
    """What `smartcronctl status` shows at `now`."""
    pid = daemon_pid(config)
    status = current_status(config, pid)
    by_job = pending_firings(config, status.jobs)
    pending = [item for job in status.jobs for item in by_job.get(job.id, [])]
    pending.sort(key=lambda item: datetime.fromisoformat(item.firing.nominal))
    return StatusReport(
        status=status,
        running_daemon=pid is not None,
        pid=pid,
        pending=tuple(pending),
        next=tuple(next_firings(status.jobs, now, 10, getattr(status, "next_fires", None))),
    )
