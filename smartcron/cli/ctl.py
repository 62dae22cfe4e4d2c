"""smartcronctl: look at and steer SmartCron (status, next, history, explain, ...).

Subcommands live in their own modules and are imported only when run (a lazy group),
so `smartcronctl next` does not pay for what `smartcronctl train` or `list` needs.
"""

from __future__ import annotations

import itertools

import click

from smartcron.cli.common import (
    CONTEXT,
    instant_option,
    print_json,
    read_text_arg,
    user_errors,
    zone_option,
)

# name -> "module:attribute", imported on first use.
LAZY_COMMANDS = {
    "status": "smartcron.cli.inspect:status_cmd",
    "history": "smartcron.cli.inspect:history_cmd",
    "list": "smartcron.cli.jobs:list_cmd",
    "explain": "smartcron.cli.jobs:explain_cmd",
    "train": "smartcron.cli.ai:train_cmd",
    "model": "smartcron.cli.ai:model_cmd",
    "bench-ai": "smartcron.cli.ai:bench_ai_cmd",
    "simulate": "smartcron.cli.sim:simulate_cmd",
    "trace-gen": "smartcron.cli.sim:trace_gen_cmd",
    "trace-record": "smartcron.cli.sim:trace_record_cmd",
    "run": "smartcron.cli.steer:run_cmd",
    "cancel": "smartcron.cli.steer:cancel_cmd",
    "reload": "smartcron.cli.steer:reload_cmd",
    "suggest": "smartcron.cli.suggest:suggest_cmd",
    "report": "smartcron.cli.report:report_cmd",
    "dashboard": "smartcron.cli.dashboard:dashboard_cmd",
    "export": "smartcron.cli.export:export_cmd",
    "profiles": "smartcron.cli.profiles:profiles_cmd",
}


class LazyGroup(click.Group):
    """click's documented lazy-loading pattern: list names cheaply, import on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="smartcron", message="%(prog)s %(version)s")
def main() -> None:
    """Look at and steer SmartCron, the crontab-compatible scheduler.

    \b
    Examples:
      smartcronctl next --expr '*/15 9-17 * * mon-fri' --count 3
      smartcronctl next --file /etc/crontab --system
    """


@main.command("next", context_settings=CONTEXT)
@click.option("--expr", "expr", metavar="EXPR", help="A time expression: five fields or @keyword.")
@click.option("--file", "file", metavar="CRONTAB", help="A crontab file ('-' for stdin).")
@click.option("--system", is_flag=True, help="The file is in system format (a user field).")
@click.option("--after", metavar="ISO", help="Start after this instant (default: now).")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 10000))
@click.option("--tz", "tz", metavar="ZONE", help="Time zone (default: the system zone).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def next_cmd(
    expr: str | None,
    file: str | None,
    system: bool,
    after: str | None,
    count: int,
    tz: str | None,
    as_json: bool,
) -> None:
    """Print the next firing times, with exactly the daemon's semantics.

    \b
    Examples:
      smartcronctl next --expr '0 0 13 * 5' --count 4        # the 13th OR a Friday
      smartcronctl next --expr '@weekly' --tz Europe/Berlin --json
      smartcronctl next --file mycrontab --after 2026-03-29T00:00
    """
    from smartcron.cron.crontab import Kind, parse, parse_timespec
    from smartcron.cron.schedule import entry_zone, next_fires
    from smartcron.daemon import installcheck
    from smartcron.errors import SmartcronError

    if (expr is None) == (file is None):
        raise click.UsageError("give exactly one of --expr and --file")
    zone = zone_option(tz)
    start = instant_option(after, zone)
    if expr is not None:
        spec = parse_timespec(expr)
        times = [
            t.astimezone(zone).isoformat()
            for t in itertools.islice(next_fires(spec, start, zone), count)
        ]
        if as_json:
            print_json(times)
        else:
            click.echo("\n".join(times) if times else "never")
        return
    assert file is not None
    text, path = read_text_arg(file)
    tab = parse(text, Kind.SYSTEM if system else Kind.USER, path)
    # An unknown CRON_TZ is what -T and the daemon say: a warning at its line, and the
    # entries read in the default zone (--tz here, the system zone in the daemon).
    for warning in installcheck.zone_warnings(tab, path):
        click.echo(f"{warning} (warning)", err=True)
    result = []
    for entry in tab.entries:
        try:
            entry_tz = entry_zone(entry.env, zone)
        except SmartcronError:
            entry_tz = zone
        fires = itertools.islice(next_fires(entry.spec, start, entry_tz), count)
        result.append(
            {
                "line": entry.line,
                "user": entry.user,
                "command": entry.command,
                "times": [t.astimezone(entry_tz).isoformat() for t in fires],
            }
        )
    if as_json:
        print_json(result)
        return
    for item, entry in zip(result, tab.entries, strict=True):
        who = f" ({item['user']})" if item["user"] else ""
        click.echo(f"{path}:{item['line']}: {entry.spec.text}{who} {item['command']}")
        note = "at boot only" if entry.spec.reboot else "never"
        fired = item["times"]
        assert isinstance(fired, list)
        for line in fired or [note]:
            click.echo(f"  {line}")


if __name__ == "__main__":  # pragma: no cover
    main()
