"""A tiny hand-made simulator scenario (crontab, world, trace text) for the simulator tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from smartcron.sim.trace import write_rows

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00


CRONTAB = """\
*/10 * * * * echo plain
#@smart name=backup window=20m idle=5m
0 0 * * * backup.sh
"""


WORLD = """\
seed: 3
jobs:
  backup:
    runtime: 2m
    cpu: 1.0
    fail:
      - when: {idle_seconds: "<60"}
        p: 1.0
"""


def quiet_row(i: int) -> dict[str, object]:
    """Minute `i` from T0 of a quiet machine: low load, on AC, nobody at the keyboard."""
    return {
        "timestamp": T0 + timedelta(minutes=i),
        "load1": 0.1,
        "load5": 0.1,
        "cpu_percent": 5,
        "ram_percent": 40,
        "battery_percent": 80,
        "charging": True,
        "on_ac": True,
        "idle_seconds": 3600,
        "disk_free_percent": 50,
    }


def rows_text(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    write_rows(rows, out)
    return out.getvalue()


def trace_text(minutes: int = 30, **columns: dict[int, object]) -> str:
    """A trace: user active (idle 10 s) in minutes 0-4, then idle; on AC but for 9-10.

    `columns` override single minutes: {"load5": {3: 2.5}}.
    """
    rows = []
    for i in range(minutes):
        row = quiet_row(i)
        row["charging"] = row["on_ac"] = i not in (9, 10)
        row["idle_seconds"] = 10 if i < 5 else (i - 4) * 60
        for name, values in columns.items():
            row[name] = values.get(i, row[name])
        rows.append(row)
    return rows_text(rows)
