"""What every benchmark shares: results, statistics, the machine, the venv's programs."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's entry points sit beside its python
PYTHON = sys.executable


@dataclass
class Row:
    """One line of a result table; `met` is None when the metric has no goal."""

    metric: str
    value: float | int | str
    unit: str = ""
    baseline: float | None = None
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not isinstance(self.value, int | float) or not self.baseline:
            return None
        return self.value / self.baseline


@dataclass
class Result:
    """What one benchmark measured. `fields` holds the raw numbers (smoke tests check them)."""

    name: str
    config: str  # the configuration in words
    baseline: str  # what the baseline column is
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 of 100 samples is the 99th value)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> str:
    """CPU model, cores, RAM, kernel and Python: the line each section of the doc carries."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "? GiB"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM, Linux {platform.release()},"
        f" Python {platform.python_version()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ms(seconds: float) -> float:
    return seconds * 1000.0
