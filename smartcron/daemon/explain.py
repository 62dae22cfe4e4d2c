"""`smartcronctl list`, `explain` and `history`, as library results: the jobs and their
open firings, a job's recent firings with every decision in plain words, its runs.

All of it reads (the status file or the crontabs, the history database read-only), so
it works whether or not the daemon runs and never blocks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from smartcron.config import Config
from smartcron.daemon.status import (
    DecisionView,
    FiringView,
    PendingFiring,
    StatusView,
    job_zone,
    loaded_status,
    next_fire,
    open_history,
    pending_firings,
)
from smartcron.daemon.statusdoc import JobView
from smartcron.errors import SmartcronError
from smartcron.smart.firings import Decision, FiringStore
from smartcron.store.history import HistoryStore, RunRow

_PAST = {"run": "ran", "skip": "skipped", "missed": "missed", "failed": "failed"}


class UnknownJob(SmartcronError):
    """Neither the crontabs nor the history know this job id or name."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: no such job (give its id or name=)")


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


@dataclass(frozen=True, kw_only=True, slots=True)
class RunView:
    """A run as `history` and `explain` show it; `output` only when asked for."""

    row: RunRow
    output: str | None = None

    @classmethod
    def of(cls, row: RunRow, with_output: bool = False) -> RunView:
        if not with_output:
            return cls(row=row)
        end = row.end
        data = end.output if end is not None and end.output is not None else b""
        return cls(row=row, output=data.decode("utf-8", "replace"))

    def to_json(self) -> dict[str, Any]:
        row, start, end = self.row, self.row.start, self.row.end
        out: dict[str, Any] = {
            "id": row.id,
            "status": str(row.status),
            "job_id": start.job_id,
            "job_name": start.job_name,
            "source": start.source,
            "line": start.line,
            "user": start.user,
            "command": start.command,
            "trigger": str(start.trigger),
            "scheduled": _iso(start.scheduled),
            "started": start.started.isoformat(),
            "ended": _iso(end.ended) if end else None,
            "exit_code": end.exit_code if end else None,
            "signal": end.signal if end else None,
            "timed_out": end.timed_out if end else False,
            "runtime_s": end.runtime_s if end else None,
            "cpu_s": end.cpu_s if end else None,
            "max_rss_kb": end.max_rss_kb if end else None,
            "output_size": end.output_size if end else None,
            "mail_sent": end.mail_sent if end else None,
            "mail_reason": end.mail_reason if end else None,
            "note": row.note,
        }
        if self.output is not None:
            out["output"] = self.output
        return out


# ------------------------------------------------------------------ list


@dataclass(frozen=True, kw_only=True, slots=True)
class ListedJob:
    job: JobView
    next: str | None  # the next firing, in the job's zone; None: never (or @reboot)
    pending: tuple[PendingFiring, ...]

    def to_json(self) -> dict[str, Any]:
        pending = [item.to_json() for item in self.pending]
        return {**self.job.to_json(), "next": self.next, "pending": pending}


@dataclass(frozen=True, kw_only=True, slots=True)
class JobList:
    """What `smartcronctl list` shows: the mode and every job with its open firings."""

    mode: str
    mode_reason: str
    jobs: tuple[ListedJob, ...]

    def to_json(self) -> dict[str, Any]:
        jobs = [item.to_json() for item in self.jobs]
        return {"mode": self.mode, "mode_reason": self.mode_reason, "jobs": jobs}


def list_jobs(config: Config, now: datetime) -> JobList:
    status = loaded_status(config)
    pending = pending_firings(config, status.jobs)
    jobs = tuple(
        ListedJob(job=job, next=next_fire(job, now), pending=tuple(pending.get(job.id, [])))
        for job in status.jobs
    )
    return JobList(mode=status.mode, mode_reason=status.mode_reason, jobs=jobs)


# ------------------------------------------------------------------ explain


def trail_lines(decisions: list[Decision], zone: tzinfo) -> list[str]:
    """A firing's decisions in plain words; a run of identical defers is one line."""
    out: list[str] = []
    i = 0
    while i < len(decisions):
        d = decisions[i]
        at = d.at.astimezone(zone).strftime("%H:%M")
        if d.verdict == "defer" and d.until is not None:
            j = i
            while (
                j + 1 < len(decisions)
                and decisions[j + 1].verdict == "defer"
                and decisions[j + 1].reason == d.reason
                and decisions[j + 1].until is not None
            ):
                j += 1
            until = decisions[j].until.astimezone(zone).strftime("%H:%M")  # type: ignore[union-attr]
            out.append(f"{at} deferred until {until}: {d.reason}")
            i = j + 1
            continue
        if d.verdict == "defer":
            out.append(f"{at} {d.reason}")
        elif d.verdict == "run":
            line = f"{at} ran ({d.reason})"
            after = decisions[i + 1] if i + 1 < len(decisions) else None
            if after is not None and after.verdict in ("done", "failed", "retry"):
                line += f"; {after.reason}"
                i += 1
            out.append(line)
        elif d.verdict in ("done", "retry"):
            out.append(f"{at} {d.reason}")
        else:
            out.append(f"{at} {_PAST.get(d.verdict, d.verdict)}: {d.reason}")
        i += 1
    return out


def find_job(
    status: StatusView, store: FiringStore | None, key: str
) -> tuple[JobView | None, list[str]]:
    """(the loaded job or None, the job ids it may have had in the history), for a job's
    id or name= (`explain JOB`, `history --job JOB`). Raises UnknownJob."""
    for job in status.jobs:
        if key in (job.id, job.name):
            return job, [job.id]
    ids = [] if store is None else store.job_ids(key)
    if not ids:
        raise UnknownJob(key)
    return None, ids


def job_ids(config: Config, history: HistoryStore | None, key: str) -> list[str]:
    """The ids of job `key` (an id or a name=), as `explain` finds them."""
    store = None if history is None else FiringStore(history)
    return find_job(loaded_status(config), store, key)[1]


@dataclass(frozen=True, kw_only=True, slots=True)
class FiringRecord:
    """One smart firing with its decisions (snapshots included), the trail they make in
    plain words, and the runs it made."""

    firing: FiringView
    decisions: tuple[DecisionView, ...]
    trail: tuple[str, ...]
    runs: tuple[RunView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.firing.to_json(),
            "decisions": [item.to_json() for item in self.decisions],
            "trail": list(self.trail),
            "run_records": [item.to_json() for item in self.runs],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    """What `smartcronctl explain JOB` shows. `job` is None for a job no longer in any
    crontab (found in the history by `job_ids`); `runs` are a plain job's runs."""

    job: JobView | None
    job_ids: tuple[str, ...]
    mode: str
    firings: tuple[FiringRecord, ...]
    runs: tuple[RunView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "job": None if self.job is None else self.job.to_json(),
            "job_ids": list(self.job_ids),
            "mode": self.mode,
            "firings": [item.to_json() for item in self.firings],
            "runs": [item.to_json() for item in self.runs],
        }


def _firing_records(
    history: HistoryStore, store: FiringStore, ids: list[str], zone: tzinfo, limit: int
) -> list[FiringRecord]:
    records = []
    for item in store.firings(ids, limit=limit):
        fid = item.firing.id
        assert fid is not None  # a stored firing has its row id
        decisions = store.decisions(fid)
        runs = [history.run(rid, with_output=False) for rid in store.run_ids(fid)]
        records.append(
            FiringRecord(
                firing=FiringView.of(item, zone),
                decisions=tuple(DecisionView.of(d, zone) for d in decisions),
                trail=tuple(trail_lines(decisions, zone)),
                runs=tuple(RunView.of(run) for run in runs if run is not None),
            )
        )
    return records


def explain_job(config: Config, key: str, limit: int) -> Explanation:
    """Job `key` (an id or a name=) and its `limit` latest firings (or plain runs).
    Raises UnknownJob."""
    status = loaded_status(config)
    history = open_history(config)
    firings: list[FiringRecord] = []
    plain_runs: list[RunView] = []
    try:
        store = FiringStore(history) if history is not None else None
        job, ids = find_job(status, store, key)
        if history is not None and store is not None:
            firings = _firing_records(history, store, ids, job_zone(job), limit)
            if job is None or not job.smart:
                for job_id in ids:
                    plain_runs += [RunView.of(r) for r in history.runs(job_id, limit=limit)]
    finally:
        if history is not None:
            history.close()
    return Explanation(
        job=job,
        job_ids=tuple(ids),
        mode=status.mode,
        firings=tuple(firings),
        runs=tuple(plain_runs),
    )


# ------------------------------------------------------------------ history


def recent_runs(
    history: HistoryStore, ids: list[str] | None, limit: int, with_output: bool
) -> list[RunView]:
    """The `limit` latest runs, newest first: of all jobs (ids None), or of these ids."""
    if ids is None:
        rows = history.runs(limit=limit, with_output=with_output)
    else:
        rows = [r for i in ids for r in history.runs(i, limit=limit, with_output=with_output)]
        rows = sorted(rows, key=lambda row: row.id, reverse=True)[:limit]
    return [RunView.of(row, with_output) for row in rows]
