"""The trace CSV's columns (SPEC 9, issue 16) and how one row is written.

COLUMNS are what every trace has, written in this order; EXTRA_COLUMNS are optional
(smartcron.sim.trace: missing or empty means unknown). smartcron.sim.trace re-exports
these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

COLUMNS = (
    "timestamp",
    "load1",
    "load5",
    "cpu_percent",
    "ram_percent",
    "battery_percent",
    "charging",
    "on_ac",
    "idle_seconds",
    "disk_free_percent",
)
PRESSURE_COLUMNS = ("cpu_pressure", "io_pressure", "mem_pressure")
NETWORK_COLUMNS = ("network_online", "network_metered")
EXTRA_COLUMNS = (*PRESSURE_COLUMNS, *NETWORK_COLUMNS)
ALL_COLUMNS = (*COLUMNS, *EXTRA_COLUMNS)
REQUIRED = ("timestamp", "load1", "load5", "cpu_percent", "ram_percent", "disk_free_percent")
PERCENT = ("cpu_percent", "ram_percent", "battery_percent", "disk_free_percent", *PRESSURE_COLUMNS)
# 1: the machine was asleep that minute (suspended, or off): nothing runs, and smart
# firings catch up when it wakes (smartcron.smart.catchup). Not a reading: no Snapshot field.
ASLEEP = "asleep"
FLAGS = ("charging", "on_ac", *NETWORK_COLUMNS, ASLEEP)


def format_row(row: Mapping[str, Any], columns: Sequence[str] = COLUMNS) -> list[str]:
    """One CSV row from a dict keyed by `columns` (datetimes, numbers, bools or None)."""
    out = []
    for name in columns:
        value = row.get(name)
        if value is None:
            out.append("")
        elif name == "timestamp":
            if value.tzinfo is None:
                raise ValueError("trace instants must be timezone-aware")
            out.append(value.astimezone(UTC).replace(second=0, microsecond=0).isoformat())
        elif isinstance(value, bool) or name in FLAGS:
            out.append("1" if value else "0")
        elif name == "idle_seconds":
            out.append(str(int(value)))
        else:
            precise = name.startswith("load") or name in PRESSURE_COLUMNS  # PSI has 2 decimals
            out.append(_num(value, 2 if precise else 1))
    return out


def _num(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
