"""smartcronctl run, cancel and reload: steer the running daemon through its socket.

The daemon does the work (smartcron.daemon.steering): it starts the job as its user,
with its environment, on the same path as a cron tick, and it alone knows the pending
firings. Who asks is what the kernel says of the connecting process, so a user may steer
only their own jobs, root any.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from smartcron.cli.common import CONTEXT, fail, load_config, user_errors, with_config
from smartcron.config import Config
from smartcron.daemon.controlclient import Unreachable, call

TIMEOUT = 20.0  # seconds: the daemon answers once its main thread has acted (ms, usually)


def complete_job(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Job names and ids the CLI can see (as `explain JOB` finds them), for the shells."""
    from smartcron.daemon.status import loaded_status

    try:
        config = load_config(ctx.params.get("config_file"), ctx.params.get("user_mode"))
        jobs = loaded_status(config).jobs
    except Exception:  # a completion must never print a traceback into the shell
        return []
    keys: dict[str, str] = {}
    for job in jobs:
        if job.name:
            keys.setdefault(job.name, f"{job.owner}: {job.command}")
        keys.setdefault(job.id, f"{job.owner}: {job.command}")
    return [
        CompletionItem(key, help=help) for key, help in keys.items() if key.startswith(incomplete)
    ]


def ask(config: Config, request: dict[str, Any]) -> dict[str, Any]:
    """The daemon's reply; exit 1 with its errors when it refused or is not there."""
    try:
        reply = call(config.socket_path, request, timeout=TIMEOUT, retry_for=5.0)
    except Unreachable as err:
        mode = " --user" if config.user_mode else ""
        fail(f"no SmartCron daemon answers ({err}); is it running? (smartcronctl{mode} status)")
        raise AssertionError from err  # fail exits
    if not reply["ok"]:
        fail("\n".join(f"smartcronctl: {e}" for e in reply.get("errors") or ["refused"]))
    return reply


@click.command("run", context_settings=CONTEXT)
@with_config
@click.argument("job", metavar="JOB", shell_complete=complete_job)
@user_errors
def run_cmd(config_file: str | None, user_mode: bool | None, job: str) -> None:
    """Run JOB now, once, recorded in the history as a manual run.

    JOB is a job's id (see `smartcronctl list`) or its name= from a #@smart line. The
    daemon starts it as the job's user, with its environment, as at a cron tick; a smart
    job's gate is not asked, and its pending firings stay pending. Only the job's owner,
    or root, may.

    \b
    Examples:
      smartcronctl run nightly_backup
      smartcronctl run --user crontab-alice-1a2b3c4d5e
    """
    reply = ask(load_config(config_file, user_mode), {"op": "run", "job": job})
    click.echo(f"{reply['job']}: started (history run {reply.get('run_id')})")


@click.command("cancel", context_settings=CONTEXT)
@with_config
@click.argument("job", metavar="JOB", shell_complete=complete_job)
@user_errors
def cancel_cmd(config_file: str | None, user_mode: bool | None, job: str) -> None:
    """Drop JOB's pending smart firings: they will not run.

    Each is recorded as a skip decision, reason "cancelled by USER" (see `smartcronctl
    explain JOB`). A run already going is not stopped; the next cron tick makes a new
    firing. Exits 1 when JOB has no pending firing. Only the job's owner, or root, may.

    \b
    Examples:
      smartcronctl cancel nightly_backup
    """
    reply = ask(load_config(config_file, user_mode), {"op": "cancel", "job": job})
    for nominal in reply.get("cancelled") or []:
        click.echo(f"{reply['job']}: firing of {nominal} cancelled")


@click.command("reload", context_settings=CONTEXT)
@with_config
@user_errors
def reload_cmd(config_file: str | None, user_mode: bool | None) -> None:
    """Make the daemon reread every crontab and its model now, as SIGHUP does.

    Only root (or, in user mode, the daemon's own user) may. The daemon reloads at its
    next wake-up, at once.

    \b
    Examples:
      sudo smartcronctl reload
      smartcronctl reload --user
    """
    ask(load_config(config_file, user_mode), {"op": "reload"})
    click.echo("reload requested")
