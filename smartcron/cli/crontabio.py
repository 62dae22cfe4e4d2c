"""smartcrontab on the terminal: its name, its stderr lines, exit 1 and the y/n questions,
in crontab.c's words (shared by the command and its edit session)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click


def prog_name() -> str:
    name = os.path.basename(sys.argv[0])
    return "crontab" if name == "crontab" else "smartcrontab"


def err(*lines: str) -> None:
    click.echo("".join(line + "\n" for line in lines), err=True, nl=False)


def die(*lines: str) -> NoReturn:
    err(*lines)
    sys.exit(1)  # crontab.c's ERROR_EXIT for everything


def yes_no(question: str, again: str, repeat: bool) -> bool | None:
    """crontab.c's y/n loops; None at end of input (where Debian would loop forever)."""
    click.echo(question, nl=False)
    while True:
        sys.stdout.flush()
        answer = sys.stdin.readline()
        if not answer:
            err("")
            return None
        if answer[:1] in ("y", "Y", "n", "N"):
            return answer[:1] in ("y", "Y")
        click.echo(again, err=True, nl=not again.endswith(": "))
        if repeat:
            click.echo(question, nl=False)
