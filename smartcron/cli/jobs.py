"""smartcronctl list and explain: the jobs, their pending firings, and why each did what.

Both read the crontabs (or the running daemon's status file) and the history database,
read-only, so they work whether or not the daemon runs and never block it.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from smartcron.cli.common import CONTEXT, print_json, user_errors
from smartcron.cli.inspect import live_status, load_config, with_config
from smartcron.config import Config
from smartcron.firings import Decision, FiringStore, StoredFiring
from smartcron.history import HistoryStore

REFRESH_S = 2.0
_PAST = {"run": "ran", "skip": "skipped", "missed": "missed", "failed": "failed"}


def _jobs_document(config: Config) -> dict[str, Any]:
    """The running daemon's status file, else what it would load now."""
    from smartcron.service import lock_holder, read_status

    doc = read_status(config) if lock_holder(config.lock_file) is not None else None
    return doc if doc is not None else live_status(config)


def _open_store(config: Config) -> HistoryStore | None:
    path = config.history_db
    return HistoryStore.open(path, readonly=True) if Path(path).exists() else None


def _zone(job: dict[str, Any] | None) -> tzinfo:
    from zoneinfo import ZoneInfo

    from smartcron.schedule import local_zone

    return ZoneInfo(job["zone"]) if job and job.get("zone") else local_zone()


def _next_fire(job: dict[str, Any], now: datetime) -> str | None:
    from smartcron.crontab import parse_timespec
    from smartcron.errors import SmartcronError
    from smartcron.schedule import next_fires

    try:
        spec = parse_timespec(job["schedule"])
    except SmartcronError:
        return None
    zone = _zone(job)
    for when in itertools.islice(next_fires(spec, now, zone), 1):
        return when.astimezone(zone).isoformat()
    return None


def _iso(instant: datetime | None, zone: tzinfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).isoformat()


def _decision_dict(d: Decision, zone: tzinfo) -> dict[str, Any]:
    return {
        "at": _iso(d.at, zone),
        "verdict": d.verdict,
        "until": _iso(d.until, zone),
        "reason": d.reason,
        "snapshot": d.snapshot,
        "model": d.model,
    }


def _firing_dict(item: StoredFiring, zone: tzinfo) -> dict[str, Any]:
    f = item.firing
    return {
        "id": f.id,
        "nominal": _iso(f.nominal, zone),
        "deadline": _iso(f.deadline, zone),
        "state": f.state,
        "runs": f.attempt,
        "next_eval": _iso(item.next_eval, zone),
    }


def pending_firings(config: Config, jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The open (pending or running) firings of `jobs`, by job id, oldest first, each with
    its last decision (without the snapshot); what `list` and `status` show."""
    store = _open_store(config)
    if store is None:
        return {}
    zones = {job["id"]: _zone(job) for job in jobs}
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        fstore = FiringStore(store)
        for item in fstore.open_firings():
            zone = zones.get(item.firing.job_id)
            if zone is None:  # no longer in any crontab
                continue
            entry = _firing_dict(item, zone)
            decisions = fstore.decisions(item.firing.id) if item.firing.id else []
            entry["last"] = _decision_dict(decisions[-1], zone) if decisions else None
            if entry["last"] is not None:
                del entry["last"]["snapshot"]
            out.setdefault(item.firing.job_id, []).append(entry)
    finally:
        store.close()
    return out


def list_document(config: Config, now: datetime) -> dict[str, Any]:
    """What `smartcronctl list --json` prints."""
    doc = _jobs_document(config)
    pending = pending_firings(config, doc["jobs"])
    jobs = [
        {**job, "next": _next_fire(job, now), "pending": pending.get(job["id"], [])}
        for job in doc["jobs"]
    ]
    return {"mode": doc["mode"], "mode_reason": doc["mode_reason"], "jobs": jobs}


def _pending_text(item: dict[str, Any]) -> str:
    at = item["nominal"][11:16]
    last = item["last"]
    if item["state"] == "running":
        return f"{at} running"
    if last is None:
        return f"{at} pending"
    if last["verdict"] == "defer" and last["until"]:
        return f"{at} deferred until {last['until'][11:16]}: {last['reason']}"
    return f"{at} pending: {last['reason']}"


def _list_table(data: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in ("job", "kind", "schedule", "next", "pending firings", "command"):
        table.add_column(column, overflow="fold")
    for job in data["jobs"]:
        kind = "smart" if job["smart"] and data["mode"] != "cron" else "plain"
        pending = "\n".join(_pending_text(item) for item in job["pending"])
        table.add_row(
            job["name"] or job["id"], kind, job["schedule"], (job["next"] or "never")[:16],
            pending, job["command"],
        )  # fmt: skip
    head = Text(f"mode: {data['mode']} ({data['mode_reason']})")
    return Group(head, table)


@click.command("list", context_settings=CONTEXT)
@with_config
@click.option("--watch", is_flag=True, help=f"Refresh in place every {REFRESH_S:g} s (Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def list_cmd(config_file: str | None, user_mode: bool | None, watch: bool, as_json: bool) -> None:
    """List the jobs: smart or plain, next firing, pending firings and why they wait.

    \b
    Examples:
      smartcronctl list
      smartcronctl list --watch
      smartcronctl list --user --json
    """
    if watch and as_json:
        raise click.UsageError("--watch shows a table: leave out --json")
    config = load_config(config_file, user_mode)
    if as_json:
        print_json(list_document(config, datetime.now(UTC)))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not watch:
        console.print(_list_table(list_document(config, datetime.now(UTC))))
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                live.update(_list_table(list_document(config, datetime.now(UTC))), refresh=True)
                time.sleep(REFRESH_S)
        except KeyboardInterrupt:
            pass


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


def _find_job(doc: dict[str, Any], store: FiringStore | None, key: str) -> tuple[Any, list[str]]:
    """(the loaded job or None, the job ids it may have had in the history), for a job's
    id or name= (`explain JOB`, `history --job JOB`); exit 1 when neither knows it."""
    for job in doc["jobs"]:
        if key in (job["id"], job["name"]):
            return job, [job["id"]]
    ids = [] if store is None else store.job_ids(key)
    if not ids:
        raise click.ClickException(f"{key}: no such job (give its id or name=)")
    return None, ids


def explain_document(config: Config, key: str, limit: int) -> dict[str, Any]:
    """What `smartcronctl explain JOB --json` prints."""
    from smartcron.cli.inspect import _run_dict

    doc = _jobs_document(config)
    history = _open_store(config)
    try:
        store = FiringStore(history) if history is not None else None
        job, ids = _find_job(doc, store, key)
        zone = _zone(job)
        firings = []
        for item in store.firings(ids, limit=limit) if store is not None else []:
            fid = item.firing.id
            assert fid is not None and history is not None
            decisions = store.decisions(fid)  # type: ignore[union-attr]
            runs = [history.run(rid, with_output=False) for rid in store.run_ids(fid)]  # type: ignore[union-attr]
            entry = _firing_dict(item, zone)
            entry["decisions"] = [_decision_dict(d, zone) for d in decisions]
            entry["trail"] = trail_lines(decisions, zone)
            entry["run_records"] = [_run_dict(r, False) for r in runs if r is not None]
            firings.append(entry)
        plain_runs = []
        if history is not None and (job is None or not job["smart"]):
            for job_id in ids:
                plain_runs += [_run_dict(r, False) for r in history.runs(job_id, limit=limit)]
    finally:
        if history is not None:
            history.close()
    return {
        "job": job,
        "job_ids": ids,
        "mode": doc["mode"],
        "firings": firings,
        "runs": plain_runs,
    }


@click.command("explain", context_settings=CONTEXT)
@with_config
@click.argument("job", metavar="JOB")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many recent firings.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with each decision's snapshot).")
@user_errors
def explain_cmd(
    config_file: str | None, user_mode: bool | None, job: str, limit: int, as_json: bool
) -> None:
    """Explain a job's recent firings: each decision of the gate in plain words.

    JOB is a job's id (see `smartcronctl list`) or its name= from a #@smart line.

    \b
    Examples:
      smartcronctl explain nightly_backup
      smartcronctl explain crontab-alice-1a2b3c4d5e --limit 20
      smartcronctl explain nightly_backup --json
    """
    config = load_config(config_file, user_mode)
    data = explain_document(config, job, limit)
    if as_json:
        print_json(data)
        return
    found = data["job"]
    title = (
        job
        if found is None
        else f"{found['name'] or found['id']} ({found['source']}:{found['line']})"
    )
    click.echo(title)
    if found is not None and not found["smart"]:
        click.echo("  a plain cron line: it never passes through the gate")
    elif found is not None and data["mode"] == "cron":
        click.echo("  mode cron: its annotations are ignored, it runs at its cron time")
    elif found is None:
        click.echo("  no longer in any crontab; its history:")
    for firing in data["firings"]:
        click.echo(
            f"firing {firing['nominal'][:16].replace('T', ' ')}"
            f" (deadline {firing['deadline'][11:16]}): {firing['state']}"
        )
        for line in firing["trail"]:
            click.echo(f"  {line}")
    if not data["firings"]:
        click.echo("  no smart firings recorded")
    for run in data["runs"][:limit]:
        click.echo(
            f"  run {run['id']} {run['started'][:16]} {run['status']} exit {run['exit_code']}"
        )
