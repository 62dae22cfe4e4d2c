"""smartcrontab: crontab(1)'s interface to SmartCron."""

from __future__ import annotations

import click

from smartcron.cli.common import CONTEXT, fail, read_text_arg, user_errors


def check_text(text: str, path: str, system: bool) -> list[str]:
    """Every problem of a crontab as `path:line: reason` lines (empty when valid)."""
    import pwd

    from smartcron.crontab import Kind, parse
    from smartcron.errors import CrontabSyntaxError

    def user_exists(name: str) -> bool:
        try:
            pwd.getpwnam(name)
        except KeyError:
            return False
        return True

    kind = Kind.SYSTEM if system else Kind.USER
    try:
        tab = parse(text, kind, path, user_exists if system else None, install=True)
    except CrontabSyntaxError as err:
        return [str(p) for p in err.problems]
    for warning in tab.warnings:
        click.echo(f"{warning} (warning)", err=True)
    return []


@click.command(context_settings=CONTEXT)
@click.option("-T", "check", metavar="FILE", help="Check FILE ('-' for stdin); install nothing.")
@click.option("--system", is_flag=True, help="With -T: the file is in system format.")
@click.argument("file", required=False)
@user_errors
def main(check: str | None, system: bool, file: str | None) -> None:
    """Install, list, edit or check crontabs for SmartCron (like crontab(1)).

    \b
    Examples:
      smartcrontab -T mycrontab            # check only: silent and exit 0 when valid
      smartcrontab -T /etc/cron.d/backup --system
    """
    if check is None:
        raise click.UsageError("only -T FILE is available in this version")
    text, path = read_text_arg(check)
    problems = check_text(text, path, system)
    if problems:
        fail("\n".join(problems))


if __name__ == "__main__":  # pragma: no cover
    main()
