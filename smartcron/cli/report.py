"""smartcronctl report --html OUT: the dashboard's views as one self-contained HTML file
(styles, scripts and plotly.js inline: nothing is fetched when it is opened).

Thin over smartcron.dash (collect, render_page), imported only when this command runs."""

from __future__ import annotations

from pathlib import Path

import click

from smartcron.cli.common import CONTEXT, user_errors, with_config
from smartcron.cli.dashopts import dash_query, view_options


@click.command("report", context_settings=CONTEXT)
@with_config
@click.option("--html", "out", required=True, metavar="OUT", help="Write the HTML report here.")
@click.option("--job", metavar="JOB", help="Only this job (its id or name).")
@view_options
@user_errors
def report_cmd(
    config_file: str | None,
    user_mode: bool | None,
    out: str,
    history: str | None,
    days: int,
    job: str | None,
    trace: str | None,
    crontab: str | None,
    world: str | None,
) -> None:
    """Write the dashboard's views (jobs, timeline, runs, model, what-if) as one HTML file
    that opens offline. Only your own jobs and runs unless you are root.

    \b
    Examples:
      smartcronctl report --html week.html
      smartcronctl report --user --html backup.html --job nightly_backup --days 30
      smartcronctl report --html whatif.html --trace fixtures/traces/laptop-8w.csv.gz \\
        --world fixtures/worlds/laptop.yaml --crontab fixtures/crontabs/laptop.crontab
    """
    from smartcron.dash.data import collect
    from smartcron.dash.page import render_page

    query = dash_query(
        config_file,
        user_mode,
        history=history,
        days=days,
        trace=trace,
        crontab=crontab,
        world=world,
        job=job,
    )
    page = render_page(collect(query))
    Path(out).write_text(page, encoding="utf-8")
    click.echo(f"{out}: {len(page.encode()) / 1e6:.1f} MB")
