"""smartcronctl: look at and steer SmartCron (status, next, history, explain, ...).

Each subcommand keeps its imports inside the function, so `smartcronctl next` does
not pay for what `smartcronctl train` needs.
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


@click.group(context_settings=CONTEXT)
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
    from smartcron.crontab import Kind, parse, parse_timespec
    from smartcron.schedule import entry_zone, next_fires

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
    result = []
    for entry in tab.entries:
        entry_tz = entry_zone(entry.env, zone)
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
        for line in item["times"] or [note]:
            click.echo(f"  {line}")


def _register() -> None:
    from smartcron.cli.ai import bench_ai_cmd, model_cmd, train_cmd
    from smartcron.cli.inspect import history_cmd, status_cmd
    from smartcron.cli.jobs import explain_cmd, list_cmd
    from smartcron.cli.sim import simulate_cmd, trace_gen_cmd, trace_record_cmd

    main.add_command(status_cmd)
    main.add_command(history_cmd)
    main.add_command(list_cmd)
    main.add_command(explain_cmd)
    main.add_command(train_cmd)
    main.add_command(model_cmd)
    main.add_command(bench_ai_cmd)
    main.add_command(simulate_cmd)
    main.add_command(trace_gen_cmd)
    main.add_command(trace_record_cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
