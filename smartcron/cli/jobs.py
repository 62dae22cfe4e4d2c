"""smartcronctl list and explain: the jobs, their pending firings, and why each did what.

Thin click layers over smartcron.daemon.explain, which builds both documents (reading the
crontabs or the running daemon's status file, and the history database read-only).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from smartcron.cli.common import CONTEXT, load_config, print_json, user_errors, with_config
from smartcron.cli.steer import complete_job
from smartcron.config import Config
from smartcron.daemon.explain import UnknownJob, explain_job, list_jobs
from smartcron.daemon.explain import trail_lines as trail_lines  # tests import it from here

REFRESH_S = 2.0


def list_document(config: Config, now: datetime) -> dict[str, Any]:
    """What `smartcronctl list --json` prints."""
    return list_jobs(config, now).to_json()


def _pending_text(item: dict[str, Any]) -> str:
    from smartcron.cli.tables import short_time

    at = short_time(item["nominal"])[7:]
    last = item["last"]
    if item["state"] == "running":
        return f"{at} running"
    if last is None:
        return f"{at} pending"
    if last["verdict"] == "defer" and last["until"]:
        return f"{at} deferred until {short_time(last['until'])[7:]}: {last['reason']}"
    return f"{at} pending: {last['reason']}"


def _list_table(data: dict[str, Any], width: int) -> Any:
    """One line a job, and one more for each further pending firing."""
    from rich.console import Group
    from rich.text import Text

    from smartcron.cli.tables import grid, short_time

    rows = []
    for job in data["jobs"]:
        kind = "smart" if job["smart"] and data["mode"] != "cron" else "plain"
        pending = [_pending_text(item) for item in job["pending"]] or [""]
        nxt = short_time(job["next"]) if job["next"] else "never"
        rows.append([job["name"] or job["id"], kind, job["schedule"], nxt, job["command"],
                     pending[0]])  # fmt: skip
        rows += [["", "", "", "", "", more] for more in pending[1:]]
    columns = ["job", "kind", "schedule", "next", "command", "pending firings"]
    # The reason a firing waits matters more than the command's tail.
    give = [("command", 12), ("job", 14), ("pending firings", 40), ("command", 8),
            ("schedule", 9), ("pending firings", 12)]  # fmt: skip
    head = Text(f"mode: {data['mode']} ({data['mode_reason']})")
    return Group(head, grid(columns, rows, width, give))


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
    from smartcron.cli.tables import console as make_console

    console = make_console()
    if not watch:
        console.print(_list_table(list_document(config, datetime.now(UTC)), console.width))
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                doc = list_document(config, datetime.now(UTC))
                live.update(_list_table(doc, console.width), refresh=True)
                time.sleep(REFRESH_S)
        except KeyboardInterrupt:
            pass


# ------------------------------------------------------------------ explain


def explain_document(config: Config, key: str, limit: int) -> dict[str, Any]:
    """What `smartcronctl explain JOB --json` prints; an unknown JOB exits 1 ("Error: ")."""
    try:
        return explain_job(config, key, limit).to_json()
    except UnknownJob as err:
        raise click.ClickException(str(err)) from None


@click.command("explain", context_settings=CONTEXT)
@with_config
@click.argument("job", metavar="JOB", shell_complete=complete_job)
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
    offset = ((found or {}).get("settings") or {}).get("jitter_offset")
    if offset is not None:  # smartcron.smart.jitter
        click.echo(f"  jitter: on this host each firing starts {offset} s into its window")
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
