"""The Timeline view's data: per job, each smart firing in the window with its window
(nominal to deadline), the stretches it waited coloured by why, its runs (retries
included), and the `explain` trail and snapshot of its decisions; a plain job's runs.

Decisions are read with smartcron.smart.firings.FiringStore and put in words by
smartcron.daemon.explain.trail_lines: the words `smartcronctl explain` prints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from smartcron.daemon.explain import trail_lines
from smartcron.dash.historyread import HistoryPart
from smartcron.dash.records import FIRINGS_PER_JOB, Row
from smartcron.smart.firings import Decision, FiringStore, StoredFiring
from smartcron.store.history import HistoryStore

# Why a firing waited: the first failed constraint of a deferral (SPEC 4.1's order), the
# cap on concurrent smart jobs, the model, or a window/retry back-off. Prefixes of the
# reasons smartcron.smart.constraints, gate and ai.advisor write.
REASONS: tuple[tuple[str, str], ...] = (
    ("load5 ", "load"),
    ("cpu ", "cpu"),
    ("ram ", "ram"),
    ("battery ", "battery"),
    ("on battery", "ac"),
    ("power source", "ac"),
    ("user idle", "idle"),
    ("disk free", "disk"),
    ("waiting:", "capacity"),
    ("model:", "model"),
    ("window opens", "backoff"),
    ("retry ", "backoff"),
)
KINDS = (
    "battery",
    "ac",
    "load",
    "cpu",
    "ram",
    "idle",
    "disk",
    "capacity",
    "model",
    "backoff",
    "other",
)


def reason_kind(reason: str) -> str:
    for prefix, kind in REASONS:
        if reason.startswith(prefix):
            return kind
    return "capacity" if "max_concurrent" in reason else "other"


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def waits(decisions: Sequence[Decision], closed: datetime) -> list[Row]:
    """The stretches the firing waited: from each deferral to the next decision (or
    `closed`), consecutive ones of the same kind merged."""
    out: list[Row] = []
    for i, d in enumerate(decisions):
        if d.verdict != "defer":
            continue
        to = decisions[i + 1].at if i + 1 < len(decisions) else max(closed, d.at)
        kind = reason_kind(d.reason)
        if out and out[-1]["kind"] == kind and out[-1]["to"] == d.at.isoformat():
            out[-1]["to"] = to.isoformat()
            continue
        out.append(
            {"from": d.at.isoformat(), "to": to.isoformat(), "kind": kind, "reason": d.reason}
        )
    return out


def _snapshot(decisions: Sequence[Decision]) -> tuple[Row | None, Row | None]:
    """The deciding decision (the last run/skip/defer with a snapshot) and its snapshot."""
    for d in reversed(decisions):
        if d.snapshot is not None:
            shown = {
                "at": d.at.isoformat(),
                "verdict": d.verdict,
                "reason": d.reason,
                "model": dict(d.model) if d.model else None,
            }
            return shown, dict(d.snapshot)
    return None, None


def firing_item(
    store: HistoryStore,
    fs: FiringStore,
    item: StoredFiring,
    job: Row,
    zone: tzinfo,
    now: datetime,
) -> Row:
    """A smart firing on the timeline; `now`: the end of the period shown."""
    f = item.firing
    assert f.id is not None
    decisions = fs.decisions(f.id)
    runs = [store.run(rid, with_output=False) for rid in fs.run_ids(f.id)]
    shown = []
    for run in runs:
        if run is None:
            continue
        end = run.end
        shown.append(
            {
                "id": run.id,
                "start": run.start.started.isoformat(),
                "end": _iso(end.ended) if end else None,
                "status": str(run.status),
                "trigger": str(run.start.trigger),
                "exit_code": end.exit_code if end else None,
            }
        )
    # A closed firing waited until its last update; an open one is still waiting now.
    closed = item.updated if f.state not in ("pending", "running") else max(now, f.nominal)
    decision, snapshot = _snapshot(decisions)
    return {
        "key": f"f{f.id}",
        "job": job["key"],
        "job_id": f.job_id,
        "smart": True,
        "nominal": f.nominal.isoformat(),
        "deadline": f.deadline.isoformat(),
        "state": f.state,
        "waits": waits(decisions, closed),
        "runs": shown,
        "trail": trail_lines(decisions, zone),
        "decision": decision,
        "snapshot": snapshot,
    }


def run_item(run: Row, job: Row) -> Row:
    """A plain job's run on the timeline: no window, no decision."""
    return {
        "key": f"r{run['id']}",
        "job": job["key"],
        "job_id": run["job_id"],
        "smart": False,
        "nominal": run["scheduled"],
        "deadline": None,
        "state": run["outcome"],
        "waits": [],
        "runs": [
            {
                "id": run["id"],
                "start": run["started"],
                "end": run["ended"],
                "status": run["status"],
                "trigger": run["trigger"],
                "exit_code": run["exit_code"],
            }
        ],
        "trail": [f"a plain cron line ({run['trigger']}): it never passes through the gate"],
        "decision": None,
        "snapshot": None,
    }


def timeline(
    store: HistoryStore, part: HistoryPart, jobs: list[Row], zones: dict[str, Any]
) -> list[Row]:
    """Every job's firings in the window, oldest first, FIRINGS_PER_JOB a job at most."""
    fs = FiringStore(store)
    out: list[Row] = []
    for job in jobs:
        ids = job["history_ids"]
        found = fs.firings(ids, limit=FIRINGS_PER_JOB) if ids else []
        inside = [i for i in found if part.start <= i.firing.nominal < part.end]
        zone = zones[job["key"]]
        out += [firing_item(store, fs, item, job, zone, part.end) for item in reversed(inside)]
        if not found:
            runs = [r for r in part.runs if r["job_id"] in ids][:FIRINGS_PER_JOB]
            out += [run_item(run, job) for run in reversed(runs)]
    return out
