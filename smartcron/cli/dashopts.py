"""The options `report` and `dashboard` share: which history, how many days, and the
What-if view's trace, crontab and world; and the DashQuery they make."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from smartcron.dash.records import DashQuery

F = TypeVar("F", bound=Callable[..., Any])


def view_options(func: F) -> F:
    """--history, --days, --trace, --crontab, --world."""
    options = [
        click.option(
            "--history", metavar="DB", help="The history database (default: the config's)."
        ),
        click.option(
            "--days",
            default=7,
            show_default=True,
            type=click.IntRange(1, 366),
            metavar="N",
            help="How many days, up to now (or to the history's newest record).",
        ),
        click.option("--trace", metavar="T", help="A trace for the What-if view (needs --world)."),
        click.option(
            "--crontab",
            metavar="C",
            help="The crontab the What-if view replays (default: the config's).",
        ),
        click.option(
            "--world", metavar="W", help="The world of the What-if view (runtimes, failures)."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def dash_query(
    config_file: str | None,
    user_mode: bool | None,
    *,
    history: str | None,
    days: int,
    trace: str | None,
    crontab: str | None,
    world: str | None,
    job: str | None = None,
) -> DashQuery:
    """What the views show: the invoking user's rights (os.getuid()), never more."""
    from smartcron.dash.records import DashQuery

    if (crontab or world) and not trace:
        raise click.UsageError("--crontab and --world go with --trace")

    def path(name: str | None) -> Path | None:
        return Path(name) if name else None

    return DashQuery(
        history=path(history),
        config=path(config_file),
        user_mode=bool(user_mode),
        days=days,
        job=job,
        viewer_uid=os.getuid(),
        trace=path(trace),
        crontab=path(crontab),
        world=path(world),
    )
