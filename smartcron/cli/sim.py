"""smartcronctl simulate, trace-gen and trace-record: the simulator's commands (SPEC 9).

Thin: the work is in smartcron.sim.simulator, smartcron.sim.tracegen and smartcron.sim.trace.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, time, tzinfo
from typing import Any

import click

from smartcron.cli.common import CONTEXT, instant_option, print_json, user_errors, zone_option
from smartcron.cli.progress import plural, progress_bar
from smartcron.errors import SmartcronError

POLICIES = ("cron", "random", "rules", "oracle", "gated-oracle", "smart")
_UNNAMED = "runs for one minute, no CPU, never fails"


@click.command("simulate", context_settings=CONTEXT)
@click.option("--crontab", "crontab", required=True, metavar="F", help="The crontab to simulate.")
@click.option("--system", is_flag=True, help="The crontab is in system format (a user field).")
@click.option("--jobs", "jobs_dir", metavar="DIR", help="Standalone job files (*.yaml, *.json).")
@click.option("--trace", "trace_path", required=True, metavar="T", help="Trace CSV (.csv.gz too).")
@click.option("--world", "world_path", required=True, metavar="W", help="World YAML.")
@click.option(
    "--policy", type=click.Choice(POLICIES), default="rules", show_default=True,
    help="gated-oracle: the oracle keeping the jobs' hard constraints (smartcronctl(1)).",
)  # fmt: skip
@click.option("--from", "start", metavar="ISO", help="Period start (default: trace start).")
@click.option("--to", "end", metavar="ISO", help="Period end, exclusive (default: trace end).")
@click.option("--tz", "tz", default="UTC", show_default=True, help="The crontab's time zone.")
@click.option("--seed", type=int, help="Override the world's seed (the failure dice).")
@click.option("--history", "history", metavar="DB", help="Write decisions and runs to DB.")
@click.option("--model", "model", metavar="DIR", help="Model directory (policy smart).")
@click.option(
    "--explore/--no-explore", default=True, show_default=True,
    help="Policy smart explores as the daemon does (random starts while a job learns).",
)  # fmt: skip
@click.option("--max-concurrent", default=8, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@user_errors
def simulate_cmd(
    crontab: str,
    system: bool,
    jobs_dir: str | None,
    trace_path: str,
    world_path: str,
    policy: str,
    start: str | None,
    end: str | None,
    tz: str,
    seed: int | None,
    history: str | None,
    model: str | None,
    explore: bool,
    max_concurrent: int,
    as_json: bool,
) -> None:
    """Replay a crontab on a recorded trace under a policy; print the metrics
    (docs/simulator.md).

    The daemon's own schedule, annotations and gate run on a virtual clock; the world
    decides runtimes and failures (the same dice for every policy). A progress bar goes
    to stderr when it is a terminal.

    \b
    Examples:
      smartcronctl simulate --crontab fixtures/crontabs/laptop.crontab \\
        --trace fixtures/traces/laptop-8w.csv.gz --world fixtures/worlds/laptop.yaml \\
        --policy rules
      smartcronctl simulate ... --policy oracle --from 2026-01-12T00:00Z --json
    """
    from smartcron.sim import simulator
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world

    zone = zone_option(tz)
    first, last = _period(start, end, zone)
    _check_model(policy, model)
    advisor, on_run = simulation_advisor(model, explore) if model is not None else (None, None)
    world = read_world(world_path)
    scenario = simulator.load_scenario(crontab, zone=zone, jobs_dir=jobs_dir, system=system)
    for warning in scenario.warnings:
        click.echo(f"warning: {warning}", err=True)
    unnamed = _unnamed(world_path, world, scenario)
    trace = read_trace(trace_path)
    with progress_bar("simulating") as bar:
        timeline = simulator.Timeline(trace, world, scenario.specs())
        result = simulator.simulate(
            scenario,
            timeline,
            world,
            policy,
            start=first,
            end=last,
            seed=seed,
            advisor=advisor,
            history=history,
            max_concurrent=max_concurrent,
            on_run=on_run,
            progress=bar.update if bar.shown else None,
        )
    metrics = result.metrics()
    if as_json:
        metrics["scenario"] = {
            "policy": result.policy.value,
            "crontab": crontab,
            "trace": trace_path,
            "world": world_path,
            "from": result.start.isoformat(),
            "to": result.end.isoformat(),
            "seed": result.seed,
            "unnamed_jobs": unnamed,
            "evaluations": result.evaluations,
        }
        print_json(metrics)
        return
    _print_table(metrics, result)


def _unnamed(world_path: str, world: Any, scenario: Any) -> list[str]:
    """The jobs the world does not name. A plain line among them is expected (the default
    law); a smart job is a world that forgot one: only that is worth a warning."""
    from smartcron.sim import simulator

    unnamed = simulator.check_world(world, scenario)
    smart = {job.id for job in scenario.jobs if job.smart is not None}
    forgotten = [job for job in unnamed if job in smart]
    if forgotten:
        click.echo(f"{world_path}: not in the world ({_UNNAMED}): {', '.join(forgotten)}", err=True)
    return unnamed


def _period(
    start: str | None, end: str | None, zone: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """--from and --to as instants (None: the trace's own start or end)."""
    first = instant_option(start, zone, "--from") if start else None
    last = instant_option(end, zone, "--to") if end else None
    if first is not None and last is not None and first >= last:
        raise SmartcronError(f"--from {start} is not before --to {end}")
    return first, last


def _check_model(policy: str, model: str | None) -> None:
    """--model goes with --policy smart, and only with it."""
    if policy == "smart" and model is None:
        raise SmartcronError("--policy smart needs --model DIR (a model from smartcronctl train)")
    if model is not None and policy != "smart":
        raise SmartcronError("--model is for --policy smart only")


def simulation_advisor(model: str, explore: bool = True) -> tuple[Any, Callable[..., None]]:
    """The model advisor for --policy smart (inside the daemon's exploration unless
    `explore` is off), and the hook that tells it each simulated run (the job's record
    is one of the model's features, and what ends its learning period)."""
    from smartcron.ai.advisor import load_advisor
    from smartcron.ai.jobstats import MemoryStats
    from smartcron.smart.explore import Explorer

    stats = MemoryStats()
    advisor = load_advisor(model, stats)
    return (Explorer(advisor, stats) if explore else advisor), stats.add


# Short headers and human durations, so that the table fits 100 columns (--json keeps
# the long names and the seconds); the man page spells each header out.
_COLUMNS = (
    ("firings", "fired"),
    ("runs", "ran"),
    ("failures", "fail"),
    ("failure_rate", "fail%"),
    ("wasted_cpu_s", "wasted"),
    ("interference_cpu_s", "interf"),
    ("on_battery_cpu_s", "battery"),
    ("window_misses", "missed"),
    ("skipped", "skip"),
    ("not_done", "undone"),
    ("delay_mean_s", "delay"),
    ("delay_p95_s", "p95"),
)
_SECONDS = {"wasted_cpu_s", "interference_cpu_s", "on_battery_cpu_s"}
_SECONDS |= {"delay_mean_s", "delay_p95_s"}


def _cells(row: dict[str, Any]) -> list[str]:
    from smartcron.cli.tables import duration

    out = []
    for key, _ in _COLUMNS:
        value = row[key]
        if key == "failure_rate":
            out.append(f"{100 * value:.1f}")
        elif key in _SECONDS:
            out.append(duration(value) if value else "0")
        else:
            out.append(f"{value:,}")
    return out


def _print_table(metrics: dict[str, Any], result: Any) -> None:
    from smartcron.cli.tables import console, grid

    out = console()
    out.print(
        f"policy {result.policy.value}: {result.start:%Y-%m-%d %H:%M} to"
        f" {result.end:%Y-%m-%d %H:%M} UTC, seed {result.seed}"
    )
    columns = ["job", *(header for _, header in _COLUMNS)]
    rows = [[name, *_cells(row)] for name, row in metrics["jobs"].items()]
    rows.append(["all", *_cells(metrics)])
    table = grid(columns, rows, out.width, [("job", 10)])
    for column in table.columns[1:]:
        column.justify = "right"
    table.rows[-1].style = "bold"
    out.print(table)


@click.command("trace-gen", context_settings=CONTEXT)
@click.argument("kind", required=False, type=click.Choice(("laptop", "server", "workstation")))
@click.option("--days", default=56, show_default=True, type=click.IntRange(1, 4 * 365))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--start", metavar="ISO", help="First minute (default: 2026-01-05T00:00Z).")
@click.option(
    "--family", type=click.IntRange(1), metavar="N", help="N scenario-family members instead."
)
@click.option(
    "--out",
    required=True,
    metavar="F",
    help="Output CSV (.gz: gzipped; - stdout); a DIR with --family.",
)
@click.option("--closed", metavar="HH:MM-HH:MM",
              help="The lid is shut daily then: an asleep column (e.g. 23:00-08:00).")  # fmt: skip
@user_errors
def trace_gen_cmd(
    kind: str | None, days: int, seed: int, start: str | None, family: int | None, out: str,
    closed: str | None,
) -> None:  # fmt: skip
    """Write a synthetic minute-level trace (deterministic for a seed), or with --family N
    the scenario family's members for seeds S..S+N-1: each a crontab, a world and a trace
    in DIR/seed-S/, one line per member on stdout (docs/ai.md: which seeds report).
    A progress bar goes to stderr when it is a terminal.

    \b
    Examples:
      smartcronctl trace-gen laptop --days 56 --seed 1 --out laptop-8w.csv.gz
      smartcronctl trace-gen server --days 365 --seed 3 --out server-1y.csv.gz
      smartcronctl trace-gen --family 20 --seed 1 --days 56 --out family/
      smartcronctl trace-gen laptop --days 7 --closed 23:00-08:00 --out lid.csv
    """
    if family is not None:
        if kind is not None or start is not None:
            raise click.UsageError("--family draws its own machines: no KIND and no --start")
        from pathlib import Path

        from smartcron.sim import family as fam

        with progress_bar("generating the family's members", family) as bar:
            for member_seed in range(seed, seed + family):
                member = fam.generate(member_seed, Path(out) / f"seed-{member_seed}", days=days)
                bar.advance()
                click.echo(member.description)
        return
    if kind is None:
        raise click.UsageError("give a KIND (laptop, server or workstation) or --family N")
    from smartcron.sim import tracegen

    first = tracegen.DEFAULT_START if start is None else instant_option(start, UTC, "--start")
    with progress_bar(f"generating {kind}", days * 1440) as bar:
        generated = _counted(tracegen.generate(kind, first, days, seed), bar.update)
        if closed is not None:  # a laptop shut at night: the simulator catches up after
            generated = tracegen.lid_closed(generated, _clock_window(closed))
        if out == "-":
            from smartcron.sim.trace import write_rows

            rows = write_rows(generated, sys.stdout)
        else:
            rows = tracegen.write_csv(generated, out)
    click.echo(f"{out}: {plural(rows, 'row')}", err=True)


def _clock_window(text: str) -> tuple[time, time]:
    from smartcron.smart.annotations import parse_clock_window

    try:
        return parse_clock_window(text)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--closed") from None


def _counted(
    rows: Iterable[Mapping[str, Any]], report: Callable[[int], None], every: int = 1440
) -> Iterator[Mapping[str, Any]]:
    """`rows`, reporting how many went by every `every` rows (a day of minutes)."""
    for count, row in enumerate(rows, 1):
        yield row
        if count % every == 0:
            report(count)


@click.command("trace-record", context_settings=CONTEXT)
@click.option("--minutes", required=True, type=click.IntRange(1), help="How many minutes.")
@click.option("--out", required=True, metavar="F", help="Output CSV (.gz: gzipped; - stdout).")
@click.option(
    "--disk-path",
    default="/",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Disk to measure (a directory on it).",
)
@user_errors
def trace_record_cmd(minutes: int, out: str, disk_path: str) -> None:
    """Record this machine's state once a minute as a trace (each row flushed). Says on
    stderr what it records and until when, then shows the minutes recorded of the total
    (a bar, when stderr is a terminal).

    \b
    Example:
      smartcronctl trace-record --minutes 1440 --out today.csv
    """
    from datetime import timedelta

    from smartcron.clock import SystemClock
    from smartcron.sim.trace import record_trace
    from smartcron.smart.monitor import SystemMonitor

    monitor, clock = SystemMonitor(disk_path=disk_path), SystemClock()
    until = (clock.now() + timedelta(minutes=minutes)).astimezone()
    click.echo(
        f"recording {plural(minutes, 'minute')} of this machine's state into {out}, one row"
        f" at the start of each minute, until about {until:%Y-%m-%d %H:%M %Z}",
        err=True,
    )
    with progress_bar("minutes recorded", minutes) as bar:
        if out == "-":
            rows = record_trace(monitor, clock, minutes, sys.stdout, bar.update)
        else:
            opener: Any = gzip.open if out.endswith(".gz") else open
            with opener(out, "wt", encoding="utf-8", newline="") as fh:
                rows = record_trace(monitor, clock, minutes, fh, bar.update)
    click.echo(f"{out}: {plural(rows, 'row')}", err=True)
