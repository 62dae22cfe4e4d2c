"""Seeded generator of realistic minute-level traces for the simulator (SPEC §9).

Deterministic: the same (kind, start, days, seed) always yields the same rows, on any
machine (one ``random.Random`` seeded with a string). Times are read as the machine's
local time, so work hours are 09:00-18:00 in the trace's own clock.

The kinds (laptop, server, workstation) are described, and generated, in
smartcron.sim.tracekinds (and tracestation).

Regenerate the shipped fixtures (see fixtures/traces/README.md)::

    python -m smartcron.sim.tracegen laptop --days 56 --seed 1 --out fixtures/traces/laptop-8w.csv
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from smartcron.sim.trace import write_rows
from smartcron.sim.tracecolumns import ASLEEP
from smartcron.sim.tracekinds import DEFAULT, Machine, laptop, server
from smartcron.sim.tracestation import workstation

KINDS = ("laptop", "server", "workstation")
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def generate(
    kind: str, start: datetime, days: int, seed: int, machine: Machine = DEFAULT
) -> Iterator[dict[str, Any]]:
    """Yield one row dict per minute (keys: trace.COLUMNS), `days` days from `start`.

    `machine` varies the kind (smartcron.sim.tracekinds.Machine; the scenario family);
    the default is the kind as shipped.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown trace kind {kind!r} (expected one of {', '.join(KINDS)})")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if days < 0:
        raise ValueError("days must be >= 0")
    rng = random.Random(f"smartcron-tracegen:{kind}:{seed}")
    begin = start.astimezone(UTC).replace(second=0, microsecond=0)
    kinds = {"laptop": laptop, "server": server, "workstation": workstation}
    return kinds[kind](rng, begin, days, machine)


def lid_closed(
    rows: Iterable[Mapping[str, Any]], closed: tuple[time, time]
) -> Iterator[dict[str, Any]]:
    """`rows` with the `asleep` column: 1 in the minutes of `closed` (a daily clock window
    of the trace's own clock, may wrap midnight: a laptop shut at night), else 0."""
    start, end = (t.hour * 60 + t.minute for t in closed)
    for item in rows:
        at = item["timestamp"]
        minute = at.hour * 60 + at.minute
        inside = start <= minute < end if start < end else minute >= start or minute < end
        yield {**item, ASLEEP: int(inside)}


def write_csv(rows: Iterable[Mapping[str, Any]], out: str | Path) -> int:
    """Write rows as trace CSV (gzip when the name ends in .gz); returns the row count."""
    path = Path(out)
    if path.suffix == ".gz":
        # mtime=0 and no file name in the header: byte-identical reruns
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            io.TextIOWrapper(gz, encoding="utf-8", newline="") as text,
        ):
            return write_rows(rows, text)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        return write_rows(rows, fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartcron.sim.tracegen", description="Generate a synthetic trace."
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=datetime.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--out", required=True, help="CSV file (.gz: gzipped)")
    args = parser.parse_args(argv)
    if args.start.tzinfo is None:
        parser.error("--start needs a UTC offset")
    count = write_csv(generate(args.kind, args.start, args.days, args.seed), args.out)
    print(f"{args.out}: {count} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
