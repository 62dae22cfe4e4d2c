"""Simulator speed: firings per second over a year, many jobs (``python -m smartcron.sim.bench``).

Builds a synthetic scenario in a temporary directory: a year-long laptop trace from
smartcron.sim.tracegen, and a crontab of `copies` copies of the laptop demo's five smart
jobs (staggered minutes, distinct names) with a world giving each copy its original's
law. Prints the setup time (trace and timeline) and the event loop's firings/s.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import UTC
from functools import partial
from pathlib import Path

from smartcron.sim import simulator, tracegen
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _stagger(by: int, match: re.Match[str]) -> str:
    return f"{(int(match[1]) + by) % 60}{match[2]}"


def build(directory: Path, copies: int, days: int, seed: int = 1) -> tuple[Path, Path, Path]:
    """Write crontab, world and trace for the benchmark; return their paths."""
    base = (FIXTURES / "crontabs" / "laptop.crontab").read_text()
    world = (FIXTURES / "worlds" / "laptop.yaml").read_text()
    smart = base[base.index("# smart jobs") :]
    names = re.findall(r"name=(\w+)", smart)
    tab, laws = [], world[world.index("jobs:\n") + len("jobs:\n") :]
    world_jobs = []
    for i in range(copies):
        block = smart
        for name in names:
            block = block.replace(f"name={name}", f"name={name}_{i:03d}")
        # stagger minutes so the copies do not all start at once
        block = re.sub(r"^(\d+)( \S+ \S+ \S+ \S+ )", partial(_stagger, i), block, flags=re.M)
        tab.append(block)
        copy = laws
        for name in names:
            copy = re.sub(rf"^  {name}:", f"  {name}_{i:03d}:", copy, flags=re.M)
        world_jobs.append(copy)
    crontab = directory / "bench.crontab"
    crontab.write_text("".join(tab))
    companion = FIXTURES / "crontabs" / "laptop.crontab.smart.yaml"
    if companion.exists():  # the companion's job keys name the originals: defaults only
        text = companion.read_text()
        (directory / "bench.crontab.smart.yaml").write_text(text[: text.index("jobs:")])
    world_path = directory / "bench.yaml"
    world_path.write_text("seed: 7\nactive_idle_below: 60\njobs:\n" + "".join(world_jobs))
    trace = directory / "year.csv.gz"
    tracegen.write_csv(tracegen.generate("laptop", tracegen.DEFAULT_START, days, seed), trace)
    return crontab, world_path, trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartcron.sim.bench")
    parser.add_argument("--copies", type=int, default=20, help="copies of the 5 smart jobs")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--policy", default="rules")
    parser.add_argument("--dir", help="keep the generated files here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.dir or tmp)
        where.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        crontab, world_path, trace_path = build(where, args.copies, args.days)
        t1 = time.perf_counter()
        world = read_world(world_path)
        scenario = simulator.load_scenario(crontab, zone=UTC)
        timeline = simulator.Timeline(read_trace(trace_path), world, scenario.specs())
        t2 = time.perf_counter()
        result = simulator.simulate(scenario, timeline, world, args.policy)
        firings = result.firings
        print(
            f"{len(scenario.jobs)} jobs, {args.days} days, policy {args.policy}:"
            f" {firings} firings, {result.evaluations} evaluations in {result.seconds:.1f} s"
            f" = {firings / result.seconds:,.0f} firings/s"
            f" (trace generation {t1 - t0:.1f} s, loading {t2 - t1:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
