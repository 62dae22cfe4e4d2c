"""smartcronctl suggest: a job described in plain words, as the lines to put in a crontab.

The grammar is smartcron.smart.suggest (rule tables, no model, no network). The lines go
to stdout, ready to paste; what needs the user's eye (words not understood, a
placeholder command) goes to stderr, so `suggest ... >> my.crontab` stays clean.
"""

from __future__ import annotations

import click

from smartcron.cli.common import CONTEXT, print_json, user_errors
from smartcron.errors import SmartcronError


def cron_command(command: str) -> str:
    """The command as a crontab line keeps it: crontab(5) turns an unescaped '%' into a
    newline (and what follows into stdin), so each '%' is written '\\%'."""
    command = command.strip()
    if not command:
        raise SmartcronError("--command: empty")
    if "\n" in command or "\r" in command:
        raise SmartcronError("--command: one line only (a crontab line ends at a newline)")
    out, escaped = [], False
    for ch in command:
        out.append("\\%" if ch == "%" and not escaped else ch)
        escaped = ch == "\\" and not escaped
    return "".join(out)


@click.command("suggest", context_settings=CONTEXT)
@click.argument("text", nargs=-1, required=True, metavar="TEXT")
@click.option(
    "--command",
    "command",
    metavar="CMD",
    help="The command the line runs (default: a placeholder to replace).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def suggest_cmd(text: tuple[str, ...], command: str | None, as_json: bool) -> None:
    """Turn a job described in plain words into a crontab line and its #@smart line.

    Words it did not understand are listed on stderr; nothing is guessed. Two schedules
    in one sentence, or two values for one key, are refused.

    \b
    Examples:
      smartcronctl suggest "back up every night around 1am when I'm idle and on AC
        power, retry twice, give up after 6 hours" --command ~/bin/backup.sh
      smartcronctl suggest weekdays at 9:30, only mail me on errors
    """
    from smartcron.smart.suggest import PLACEHOLDER, check_lines, suggest

    found = suggest(" ".join(text))
    lines = found.lines(cron_command(command) if command is not None else PLACEHOLDER)
    check_lines(lines)  # the user's command too: what is printed is what -T accepts
    if as_json:
        print_json(
            {
                "schedule": found.schedule,
                "annotation": found.annotation,
                "line": "\n".join(lines),
                "unparsed": found.unparsed,
            }
        )
    else:
        for line in lines:
            click.echo(line)
    if found.unparsed:
        words = ", ".join(repr(run) for run in found.unparsed)
        click.echo(f"smartcronctl: not understood, left out: {words}", err=True)
    if command is None:
        click.echo(
            f"smartcronctl: replace {PLACEHOLDER} with the command to run (or pass --command)",
            err=True,
        )
