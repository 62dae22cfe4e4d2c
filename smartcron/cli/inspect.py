"""smartcronctl status and history: what the daemon is doing and what it did.

Both work whether or not the daemon runs: status reads the daemon's status file when
it runs and loads the crontabs itself when it does not; history reads the SQLite
store read-only (WAL: never blocks the daemon). Both lean on jobs.py, imported when
needed: status for the pending firings `list` shows, `history --job` for finding a
job by id or name= as `explain` does.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from smartcron.cli.common import CONTEXT, print_json, user_errors
from smartcron.config import Config

config_options = [
    click.option("--config", "config_file", metavar="FILE", help="Configuration file (TOML)."),
    click.option("--user", "user_mode", is_flag=True, default=None, help="User mode."),
]


def with_config(func: Any) -> Any:
    for option in reversed(config_options):
        func = option(func)
    return func


def load_config(config_file: str | None, user_mode: bool | None) -> Config:
    from smartcron import config as configuration

    return configuration.load(config_file, user_mode=True if user_mode else None)


def live_status(config: Config) -> dict[str, Any]:
    """What a daemon would load right now (the daemon is not running)."""
    from smartcron.daemon import initial_mode
    from smartcron.jobs import job_document
    from smartcron.loader import Database
    from smartcron.schedule import entry_zone, local_zone

    zone = local_zone()
    db = Database(config, zone_of=lambda env: entry_zone(env, zone))
    db.refresh()
    mode, why = initial_mode(config)
    model = retrain = None
    if config.mode == "smart":  # what the daemon would make of the model files now
        from smartcron.modelwatch import ModelWatch

        watch = ModelWatch.from_config(config)
        watch.refresh(datetime.now(UTC))
        mode, why, model = watch.mode, watch.reason, watch.document()
        if config.retrain_spec is not None:
            retrain = {"schedule": config.retrain_spec, "next": None, "running": False}
    return {
        "pid": None,
        "mode": mode,
        "mode_reason": why,
        "zone": str(zone),
        "user_mode": config.user_mode,
        "mail": {"command": config.mail_command, "available": _mail_available(config)},
        "files": [loaded.document() for loaded in db.files.values()],
        "jobs": [job_document(job) for job in db.jobs],
        "running": 0,
        "model": model,
        "retrain": retrain,
    }


def _mail_available(config: Config) -> bool:
    from smartcron.mail import SendmailMailer

    return SendmailMailer(config.mail_command).available()


def next_firings(doc: dict[str, Any], now: datetime, limit: int) -> list[dict[str, Any]]:
    """The soonest firings of the jobs in a status document."""
    from zoneinfo import ZoneInfo

    from smartcron.crontab import parse_timespec
    from smartcron.errors import SmartcronError
    from smartcron.schedule import local_zone, next_fires

    default = local_zone()
    upcoming = []
    for job in doc["jobs"]:
        try:
            spec = parse_timespec(job["schedule"])
        except SmartcronError:
            continue
        zone = ZoneInfo(job["zone"]) if job.get("zone") else default
        for when in itertools.islice(next_fires(spec, now, zone), 1):
            upcoming.append({"at": when.astimezone(zone).isoformat(), "job": job["id"], **job})
    upcoming.sort(key=lambda item: datetime.fromisoformat(item["at"]))
    return upcoming[:limit]


def pending_list(config: Config, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The open firings of the jobs in a status document, oldest first (as `list` has them)."""
    from smartcron.cli.jobs import pending_firings

    by_job = pending_firings(config, doc["jobs"])
    items = [
        {"job": job["id"], "name": job["name"], **entry}
        for job in doc["jobs"]
        for entry in by_job.get(job["id"], [])
    ]
    items.sort(key=lambda item: datetime.fromisoformat(item["nominal"]))
    return items


@click.command("status", context_settings=CONTEXT)
@with_config
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def status_cmd(config_file: str | None, user_mode: bool | None, as_json: bool) -> None:
    """Show whether the daemon runs, its mode and why, files loaded and refused, pending
    firings, next firings.

    \b
    Examples:
      smartcronctl status
      smartcronctl status --user --json
    """
    from smartcron.service import lock_holder, read_status

    config = load_config(config_file, user_mode)
    pid = lock_holder(config.lock_file)
    if pid == -1:  # held through the state directory (read-only): the pid file says
        text = config.pid_file.read_text() if config.pid_file.exists() else ""
        pid = int(text) if text.strip().isdigit() else pid
    doc = read_status(config) if pid is not None else None
    if doc is None:
        doc = live_status(config)
    doc["running_daemon"] = pid is not None
    doc["pid"] = pid
    doc["pending"] = pending_list(config, doc)
    doc["next"] = next_firings(doc, datetime.now(UTC), 10)
    if as_json:
        print_json(doc)
        return
    _print_status(doc, config)


def _print_status(doc: dict[str, Any], config: Config) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if doc["running_daemon"]:
        console.print(f"smartcron: [green]running[/green] (pid {doc['pid']})")
    else:
        console.print("smartcron: [red]not running[/red] (showing what it would load)")
    console.print(f"mode: {doc['mode']} ({doc['mode_reason']})", soft_wrap=True)
    _print_model(console, doc)
    mail = doc["mail"]
    if mail["available"]:
        console.print(f"mail: {mail['command']}")
    else:
        console.print(
            "mail: [yellow]no MTA[/yellow]: job output is kept in the history and the log"
        )
    loaded = [f for f in doc["files"] if not f["refused"]]
    refused = [f for f in doc["files"] if f["refused"]]
    smart = sum(1 for job in doc["jobs"] if job.get("smart"))
    counts = f"{len(doc['jobs'])} jobs ({smart} annotated)"
    console.print(f"files: {len(loaded)} loaded, {len(refused)} refused, {counts}")
    for item in refused:
        console.print(f"  [red]refused[/red] {item['path']}: {item['refused']}", soft_wrap=True)
    for item in doc["files"]:
        companion = item.get("companion")
        if companion and companion.get("state") != "ok":
            what = f"{companion['path']}: {companion['state']}"
            console.print(f"  [yellow]companion[/yellow] {what}", soft_wrap=True)
        for warning in item["warnings"]:
            console.print(f"  [yellow]warning[/yellow] {warning}", soft_wrap=True)
    _print_reliability(console, doc)
    if doc["pending"]:
        table = Table(title="pending firings", title_justify="left")
        for column in ("job", "nominal", "state", "next check", "last reason"):
            table.add_column(column, overflow="fold")
        for item in doc["pending"]:
            last = item["last"] or {}
            check = "" if item["state"] == "running" else item["next_eval"] or last.get("until")
            table.add_row(
                item["name"] or item["job"], item["nominal"][:16].replace("T", " "),
                item["state"], (check or "")[11:16], last.get("reason") or "",
            )  # fmt: skip
        console.print(table)
    if doc["next"]:
        table = Table(title="next firings", title_justify="left")
        for column in ("at", "user", "job", "command"):
            table.add_column(column, overflow="fold")
        for item in doc["next"]:
            table.add_row(item["at"], item["owner"], item["job"], item["command"])
        console.print(table)


def _print_reliability(console: Any, doc: dict[str, Any]) -> None:
    """History down (read-only or full state directory) and how jobs are contained."""
    history = doc.get("history")
    if isinstance(history, dict) and not history.get("available", True):
        waiting = f"{history.get('pending_writes', 0)} write(s) waiting"
        dropped = f"{history.get('dropped_writes', 0)} dropped"
        console.print(
            f"history: [yellow]unavailable[/yellow] since {str(history.get('since'))[:19]}: "
            f"{history.get('reason')} ({waiting}, {dropped}); jobs still run",
            soft_wrap=True,
        )
    for path in (history or {}).get("moved_aside") or []:
        console.print(f"history: a corrupt database was moved aside to {path}", soft_wrap=True)
    if doc.get("containment"):
        console.print(f"jobs contained by: {doc['containment']}", soft_wrap=True)


def _print_model(console: Any, doc: dict[str, Any]) -> None:
    """The model card in use (or last used) and the retraining schedule."""
    from smartcron.modelwatch import summary_text

    model = doc.get("model")
    if model:
        card = model.get("card")
        if card:
            used = "in use" if model.get("in_use") else "not in use"
            if not doc.get("running_daemon", True):
                used = "would be used" if model.get("in_use") else "would not be used"
                used += ": the daemon is not running"
            where = model.get("source") or model.get("dir")
            console.print(f"model: {where} ({used})", soft_wrap=True)
            console.print(f"  {summary_text(card)}", soft_wrap=True)
        else:
            console.print(f"model: none usable in {model.get('dir')}", soft_wrap=True)
    retrain = doc.get("retrain")
    if retrain:
        text = f"retrain: {retrain['schedule']}"
        if retrain.get("running"):
            text += ", running now"
        elif retrain.get("next"):
            text += f", next {retrain['next']}"
        last = retrain.get("last")
        if last:
            text += f"; last {last['at']}: {last['result']} ({last['why']})"
        console.print(text, soft_wrap=True)


@click.command("history", context_settings=CONTEXT)
@with_config
@click.option("--job", metavar="JOB", help="Only this job (its id or name).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100000))
@click.option("--output", "with_output", is_flag=True, help="Include each run's output.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def history_cmd(
    config_file: str | None,
    user_mode: bool | None,
    job: str | None,
    limit: int,
    with_output: bool,
    as_json: bool,
) -> None:
    """Show recent runs: when, how long, how they ended, whether mail was sent.

    \b
    Examples:
      smartcronctl history --limit 5
      smartcronctl history --job nightly_backup --json
    """
    from smartcron.history import HistoryStore

    config = load_config(config_file, user_mode)
    path = config.history_db
    store = HistoryStore.open(path, readonly=True) if Path(path).exists() else None
    try:
        ids = None if job is None else _job_ids(config, store, job)
        rows = [] if store is None else _runs(store, ids, limit, with_output)
    finally:
        if store is not None:
            store.close()
    items = [_run_dict(row, with_output) for row in rows]
    if as_json:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("id", "started", "user", "job", "status", "exit", "runtime", "mail", "command"):
        table.add_column(column, overflow="fold")
    for item in items:
        runtime = "" if item["runtime_s"] is None else f"{item['runtime_s']:.1f}s"
        exit_text = "" if item["exit_code"] is None else str(item["exit_code"])
        if item["signal"]:
            exit_text = f"sig {item['signal']}"
        mail = "sent" if item["mail_sent"] else (item["mail_reason"] or "")
        table.add_row(
            str(item["id"]), item["started"], item["user"], item["job_name"] or item["job_id"],
            item["status"], exit_text, runtime, mail, item["command"],
        )  # fmt: skip
    Console().print(table)
    if with_output:
        for item in items:
            click.echo(f"--- run {item['id']} ---\n{item['output'] or ''}")


def _job_ids(config: Config, store: Any, key: str) -> list[str]:
    """The ids of job `key` (an id or a name=), as `explain` finds them; exit 1 if none."""
    from smartcron.cli.jobs import _find_job, _jobs_document
    from smartcron.firings import FiringStore

    _, ids = _find_job(_jobs_document(config), None if store is None else FiringStore(store), key)
    return ids


def _runs(store: Any, job_ids: list[str] | None, limit: int, with_output: bool) -> list[Any]:
    """The latest runs (of some job ids), newest first."""
    if job_ids is None:
        return store.runs(limit=limit, with_output=with_output)  # type: ignore[no-any-return]
    rows = [row for i in job_ids for row in store.runs(i, limit=limit, with_output=with_output)]
    return sorted(rows, key=lambda row: row.id, reverse=True)[:limit]


def _run_dict(row: Any, with_output: bool) -> dict[str, Any]:
    start, end = row.start, row.end
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
        "scheduled": start.scheduled.isoformat() if start.scheduled else None,
        "started": start.started.isoformat(),
        "ended": end.ended.isoformat() if end else None,
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
    if with_output:
        data = end.output if end and end.output is not None else b""
        out["output"] = data.decode("utf-8", "replace")
    return out
