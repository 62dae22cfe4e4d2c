"""When and whether a smart firing may start (SPEC 4.1, 5): its window (earliest start,
deadline) and its hard constraints against a snapshot. Pure: no clock, no I/O. The gate
(smartcron.smart.gate) re-exports these names.

Unknown readings: a `None` in the snapshot never fails a constraint, with one
exception: `ac=yes` needs evidence of mains power (`on_ac` True, or `on_ac` None on a
machine without a battery, which can only be on mains). `min_battery` is ignored
without a battery (SPEC 4.1); `min_disk` is ignored when the snapshot measured another
path than the job's `disk_path` (the engine measures the job's path when it can).
No PSI (`max_*_pressure`) and an unknown network or metered state (`network=`) count
like a missing battery: the key is ignored (the monitor says so once in the log).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

__all__ = ["constraint_failures", "deadline_for", "duration_text", "window_for"]


# ------------------------------------------------------------------ windows


def _at(day: datetime, clock: time, zone: tzinfo, days: int = 0) -> datetime:
    """Wall time `clock` on `day` (+days) in `zone` (a DST gap resolves as zoneinfo does)."""
    date = day.date() + timedelta(days=days)
    return datetime.combine(date, clock, tzinfo=zone).astimezone(UTC)


def window_for(spec: SmartSpec, nominal: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """(earliest start, deadline) of the firing at `nominal`.

    A duration window opens at the nominal time. A clock window `HH:MM-HH:MM` is the one
    that contains or follows the nominal time in `zone`; it may wrap midnight. Both in
    UTC: arithmetic on one zone's datetimes is wall-clock arithmetic, wrong across DST.
    """
    nominal = nominal.astimezone(UTC)
    if spec.window_clock is None:
        return nominal, nominal + (spec.window or timedelta(0))
    start, end = spec.window_clock
    local = nominal.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:  # same day
        if now < end:
            opens = _at(local, start, zone)
            return max(nominal, opens), _at(local, end, zone)
        return _at(local, start, zone, 1), _at(local, end, zone, 1)
    if now < end:  # inside a window that opened yesterday
        return nominal, _at(local, end, zone)
    if now >= start:  # inside a window that closes tomorrow
        return nominal, _at(local, end, zone, 1)
    return _at(local, start, zone), _at(local, end, zone, 1)


def deadline_for(spec: SmartSpec, nominal: datetime, zone: tzinfo) -> datetime:
    """The last instant the firing at `nominal` may start (then on_deadline applies)."""
    return window_for(spec, nominal, zone)[1]


# ------------------------------------------------------------------ constraints


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def duration_text(delta: timedelta) -> str:
    """`1h30m`, `10m`, `45s`: the annotation grammar's own units."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _on_mains(snap: Snapshot) -> bool:
    if snap.on_ac is not None:
        return snap.on_ac
    return snap.battery_percent is None  # no battery: nothing else to run on


def constraint_failures(spec: SmartSpec, snap: Snapshot) -> tuple[str, ...]:
    """One plain-words reason per failed hard constraint, in SPEC 4.1's order."""
    out = []
    if spec.max_load is not None and snap.load5 > spec.max_load:
        out.append(f"load5 {_num(snap.load5)} > max_load {_num(spec.max_load)}")
    if spec.max_cpu is not None and snap.cpu_percent > spec.max_cpu:
        out.append(f"cpu {_num(snap.cpu_percent)}% > max_cpu {_num(spec.max_cpu)}%")
    if spec.max_ram is not None and snap.ram_percent > spec.max_ram:
        out.append(f"ram {_num(snap.ram_percent)}% > max_ram {_num(spec.max_ram)}%")
    battery = snap.battery_percent
    if spec.min_battery is not None and battery is not None and battery < spec.min_battery:
        out.append(f"battery {_num(battery)}% < min_battery {_num(spec.min_battery)}%")
    if spec.ac and not _on_mains(snap):
        out.append(
            "on battery (ac=yes)" if snap.on_ac is False else "power source unknown (ac=yes)"
        )
    idle = snap.idle_seconds
    if spec.idle is not None and idle is not None and idle < spec.idle.total_seconds():
        shown = duration_text(timedelta(seconds=idle))
        out.append(f"user idle {shown} < idle {duration_text(spec.idle)}")
    free = snap.disk_free_percent
    if (
        spec.min_disk is not None
        and free is not None
        and snap.disk_path == spec.disk_path
        and free < spec.min_disk
    ):
        where = "" if spec.disk_path == "/" else f" on {spec.disk_path}"
        out.append(f"disk free {_num(free)}%{where} < min_disk {_num(spec.min_disk)}%")
    # The simulator asks this for every minute of a trace: no call for unset keys.
    if (
        spec.max_cpu_pressure is not None
        or spec.max_io_pressure is not None
        or spec.max_mem_pressure is not None
    ):
        out += _pressure_failures(spec, snap)
    if spec.network is not None:
        out += _network_failures(spec, snap)
    return tuple(out)


_PRESSURES = (
    ("cpu", "max_cpu_pressure", "cpu_pressure"),
    ("io", "max_io_pressure", "io_pressure"),
    ("memory", "max_mem_pressure", "mem_pressure"),
)


def _pressure_failures(spec: SmartSpec, snap: Snapshot) -> list[str]:
    """PSI `some avg10` above its limit; no PSI (None) passes, as no battery does."""
    out = []
    for label, key, column in _PRESSURES:
        limit, value = getattr(spec, key), getattr(snap, column)
        if limit is not None and value is not None and value > limit:
            out.append(f"{label} pressure {_num(value)}% > {key} {_num(limit)}%")
    return out


def _network_failures(spec: SmartSpec, snap: Snapshot) -> list[str]:
    """`network=`: offline fails both values; metered fails `unmetered`. Unknown passes."""
    if snap.network_online is False:
        return [f"network offline (network={spec.network})"]
    if spec.network == "unmetered" and snap.network_metered is True:
        return ["network metered (network=unmetered)"]
    return []
