"""Shared by start-latency and burst-200: jobs that stamp their own start time.

Each job's first instruction is `date +%s.%N >> FILE` (`%` escaped as `\\%` in the
crontab), so the stamp is taken after the daemon's fork and exec of `/bin/sh -c` and
sh's exec of date: the latency a job itself sees. A stamp belongs to the minute it
falls in (latencies are far below a minute), and only the minute boundaries chosen
before they happen are counted, so a job of an earlier minute cannot be mistaken.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.daemon import next_boundary, running, wait_until

STAMP_COMMAND = "date +%s.%N"
READY_MARGIN_S = 5.0  # a measured boundary is at least this long after the daemon is ready
COLLECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Params:
    """A run's size: jobs per minute, measured minute boundaries, baseline spawns."""

    jobs: int
    boundaries: int
    baseline_runs: int
    beside_debian: bool = True  # also measure Debian's cron (benchmarks/debiancron.py)


@dataclass
class Starts:
    """Stamps per measured minute boundary, as offsets from the boundary (seconds)."""

    jobs: int
    boundaries: list[float]
    offsets: dict[float, list[float]]

    @property
    def all_offsets(self) -> list[float]:
        return [o for b in self.boundaries for o in self.offsets[b]]

    @property
    def expected(self) -> int:
        return self.jobs * len(self.boundaries)

    @property
    def started(self) -> int:
        return len(self.all_offsets)


def crontab(jobs: int, stamps: Path) -> str:
    escaped = STAMP_COMMAND.replace("%", "\\%")
    line = f"* * * * * {escaped} >> {stamps}\n"
    return "MAILTO=''\n" + line * jobs


def read_stamps(stamps: Path) -> list[float]:
    try:
        return [float(x) for x in stamps.read_text().split()]
    except FileNotFoundError:
        return []


# A daemon started on a directory and a crontab's text, ready when entered.
DaemonOn = Callable[[Path, str], AbstractContextManager[object]]


def measure(jobs: int, boundaries: int, daemon: DaemonOn = running) -> Starts:
    """Run `daemon` (SmartCron unless told) over `boundaries` minute boundaries with `jobs`
    stamping jobs."""
    with tempfile.TemporaryDirectory(prefix="bench-fire-") as tmp:
        stamps = Path(tmp, "stamps")
        with daemon(Path(tmp), crontab(jobs, stamps)):
            first = next_boundary(time.time(), READY_MARGIN_S)
            chosen = [first + 60.0 * i for i in range(boundaries)]
            wait_until(chosen[-1])
            deadline = time.time() + COLLECT_TIMEOUT_S
            while time.time() < deadline:
                seen = Counter(math.floor(s / 60) * 60.0 for s in read_stamps(stamps))
                if seen[chosen[-1]] >= jobs:
                    break
                time.sleep(0.2)
        offsets: dict[float, list[float]] = {b: [] for b in chosen}
        for stamp in read_stamps(stamps):
            minute = math.floor(stamp / 60) * 60.0
            if minute in offsets:
                offsets[minute].append(stamp - minute)
    return Starts(jobs, chosen, offsets)


def spawn_one() -> float:
    """From Python: the delay until `sh -c 'date +%s.%N'` stamps (fork, exec sh, exec date)."""
    t0 = time.time()
    out = subprocess.run(["sh", "-c", STAMP_COMMAND], capture_output=True, text=True, check=True)
    return float(out.stdout) - t0


def spawn_many(count: int) -> list[float]:
    """From Python: start `count` stamping shells back to back; their delays from the start."""
    with tempfile.TemporaryDirectory(prefix="bench-spawn-") as tmp:
        stamps = Path(tmp, "stamps")
        command = f"{STAMP_COMMAND} >> {stamps}"
        t0 = time.time()
        procs = [subprocess.Popen(["sh", "-c", command]) for _ in range(count)]
        for proc in procs:
            proc.wait()
        return sorted(s - t0 for s in read_stamps(stamps))
