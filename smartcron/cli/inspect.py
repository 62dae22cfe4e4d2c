"""smartcronctl status and history: what the daemon is doing and what it did.

Thin click layers over smartcron.daemon.status and smartcron.daemon.explain, which read the daemon's
status file (or load the crontabs when it does not run) and the history database
read-only (WAL: never blocks the daemon).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smartcron.cli.common import CONTEXT, load_config, print_json, user_errors, with_config
from smartcron.cli.steer import complete_job
from smartcron.config import Config


@click.command("status", context_settings=CONTEXT)
@with_config
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def status_cmd(config_file: str | None, user_mode: bool | None, as_json: bool) -> None:
    """Show whether the daemon runs, its mode and why, files loaded and refused, pending
    firings, next firings. Exits 1 when a crontab file is refused.

    \b
    Examples:
      smartcronctl status
      smartcronctl status --user --json
    """
    from smartcron.daemon.status import status_report

    config = load_config(config_file, user_mode)
    doc = status_report(config, datetime.now(UTC)).to_json()
    if as_json:
        print_json(doc)
    else:
        _print_status(doc, config)
    if any(f["refused"] for f in doc["files"]):
        sys.exit(1)  # a refused file is a job that will not run: scripts must see it


def _print_status(doc: dict[str, Any], config: Config) -> None:
    from smartcron.cli.tables import console as make_console
    from smartcron.cli.tables import grid, short_time

    console = make_console()
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
        console.print("pending firings", style="bold")
        console.print(_pending_table(doc["pending"], console.width))
    if doc["next"]:
        console.print("next firings", style="bold")
        rows = [[short_time(item["at"]), item["owner"], _jittered(item), item["command"]]
                for item in doc["next"]]  # fmt: skip
        give = [("command", 24), ("job", 16), ("command", 10)]
        console.print(grid(["at", "user", "job", "command"], rows, console.width, give))


def _jittered(item: dict[str, Any]) -> str:
    """The job, and with jitter= the offset this host adds to its start (`+12m34s`)."""
    offset = (item.get("settings") or {}).get("jitter_offset")
    if offset is None:
        return str(item["job"])
    from smartcron.smart.constraints import duration_text

    return f"{item['job']} +{duration_text(timedelta(seconds=offset))}"


def _pending_table(pending: list[dict[str, Any]], width: int) -> Any:
    from smartcron.cli.tables import grid, short_time

    rows = []
    for item in pending:
        last = item["last"] or {}
        check = "" if item["state"] == "running" else item["next_eval"] or last.get("until")
        rows.append([
            item["name"] or item["job"], short_time(item["nominal"]), item["state"],
            short_time(check)[7:], last.get("reason") or "",
        ])  # fmt: skip
    columns = ["job", "nominal", "state", "next check", "last reason"]
    return grid(columns, rows, width, [("last reason", 24), ("job", 16), ("last reason", 10)])


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
    if doc.get("starter"):
        console.print(f"jobs started by: {doc['starter']}", soft_wrap=True)


def _print_model(console: Any, doc: dict[str, Any]) -> None:
    """The model card in use (or last used) and the retraining schedule."""
    from smartcron.ai.modelwatch import summary_text

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
@click.option(
    "--job", metavar="JOB", shell_complete=complete_job, help="Only this job (its id or name)."
)
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
    from smartcron.daemon.explain import UnknownJob, job_ids, recent_runs
    from smartcron.daemon.status import open_history

    config = load_config(config_file, user_mode)
    store = open_history(config)
    try:
        ids = None if job is None else job_ids(config, store, job)
        runs = [] if store is None else recent_runs(store, ids, limit, with_output)
    except UnknownJob as err:
        raise click.ClickException(str(err)) from None
    finally:
        if store is not None:
            store.close()
    items = [run.to_json() for run in runs]
    if as_json:
        print_json(items)
        return
    if not items:
        click.echo("no runs recorded" + ("" if job is None else f" for {job}"))
        return
    from smartcron.cli.tables import console

    out = console()
    out.print(_history_table(items, out.width))
    if with_output:
        for item in items:
            click.echo(f"--- run {item['id']} ---\n{item['output'] or ''}")


def _delay(item: dict[str, Any]) -> str:
    """How late the run started after its nominal (cron) time: `3m12s`, `0s`."""
    from smartcron.cli.tables import duration

    if not item["scheduled"]:
        return ""  # a manual or @reboot run has no nominal time
    late = (
        datetime.fromisoformat(item["started"]) - datetime.fromisoformat(item["scheduled"])
    ).total_seconds()
    return "0s" if late < 1 else duration(late)


def _history_table(items: list[dict[str, Any]], width: int) -> Any:
    from smartcron.cli.tables import duration, grid, short_time

    columns = ["id", "nominal", "started", "delay", "user", "job", "status", "exit",
               "runtime", "mail", "command"]  # fmt: skip
    one_user = len({item["user"] for item in items}) == 1
    if one_user:  # the column would say the same on every row
        columns.remove("user")
    rows = []
    for item in items:
        exit_text = "" if item["exit_code"] is None else str(item["exit_code"])
        if item["signal"]:
            exit_text = f"sig {item['signal']}"
        mail = "sent" if item["mail_sent"] else (item["mail_reason"] or "")
        nominal, started = short_time(item["scheduled"]), short_time(item["started"])
        if nominal[:6] == started[:6]:
            started = started[7:]  # the same day: its time says it
        cells = [str(item["id"]), nominal, started, _delay(item), item["user"],
                 item["job_name"] or item["job_id"], item["status"], exit_text,
                 duration(item["runtime_s"]), mail, item["command"]]  # fmt: skip
        if one_user:
            del cells[4]
        rows.append(cells)
    give = [("command", 24), ("mail", 10), ("job", 16), ("command", 10), ("job", 10)]
    return grid(columns, rows, width, give)
