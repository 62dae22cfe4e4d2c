"""Minute-level system traces (SPEC §9): load, replay and record.

A trace is ground truth for the simulator, so loading is strict: a bad value, a
duplicate or out-of-order minute is an error naming ``path:row`` (the CSV line), not
something silently fixed. Timestamps need a UTC offset; seconds are dropped (a row
belongs to its minute). Gaps between rows carry the previous row forward. Columns are
stored compactly (``array``) and the file is streamed, so a year of minutes costs a
few tens of MB at most. ``.csv.gz`` files are read transparently.

Optional columns: ``battery_percent``, ``charging``, ``on_ac`` (missing or empty
battery: no battery, and then on mains unless ``on_ac`` says otherwise) and
``idle_seconds`` (missing or empty: unknown). The trace has no 15-minute load:
snapshots report ``load15 = load5``.

Extra columns (EXTRA_COLUMNS, issue 16), each optional, missing or empty: unknown,
and then the key that reads it is ignored: ``cpu_pressure``, ``io_pressure``,
``mem_pressure`` (Linux PSI ``some avg10``, percent) and ``network_online``,
``network_metered`` (0/1). Traces without them load as before; writers add them when
the rows carry them (`write_rows`) and `record_trace` always does.

``asleep`` (0/1, missing or empty: 0): the machine was suspended or off that minute;
the simulator runs nothing then and catches up smart firings when it wakes.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from smartcron.clock import Clock
from smartcron.errors import SmartcronError
from smartcron.sim.tracecolumns import (
    ALL_COLUMNS,
    ASLEEP,
    COLUMNS,
    EXTRA_COLUMNS,
    FLAGS,
    PERCENT,
    PRESSURE_COLUMNS,
    REQUIRED,
    format_row,
)
from smartcron.smart.monitor import Monitor, Snapshot

MAX_SPAN_DAYS = 4 * 366  # the minute index costs 4 bytes a minute: ~8 MB at most
MINUTE = timedelta(minutes=1)
_NONE = -1  # charging/on_ac stored as signed bytes: -1 = unknown


class TraceError(SmartcronError):
    """A bad trace file; the message starts with ``path:row:``."""


class TraceRangeError(TraceError, LookupError):
    """An instant outside the trace."""


def _minute(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("trace instants must be timezone-aware")
    return instant.astimezone(UTC).replace(second=0, microsecond=0)


class Trace:
    """Replayable columns, one slot per recorded row, and a minute -> row index."""

    def __init__(self, path: str, extras: Iterable[str] = ()) -> None:
        self.path = path
        # the EXTRA_COLUMNS the file has: pressures as floats (NaN: unknown), flags -1
        self._extra: dict[str, array[Any]] = {
            name: array("f") if name in PRESSURE_COLUMNS else array("b") for name in extras
        }
        self._floats = {name: array("f") for name in ("load1", "load5", "cpu", "ram", "disk")}
        self._battery = array("f")  # NaN: no battery
        self._idle = array("d")  # NaN: unknown
        self._charging = array("b")
        self._on_ac = array("b")
        self._asleep = array("b")  # the `asleep` column (missing or empty: 0, awake)
        self._index = array("I")  # minute offset from start -> row
        self._start: datetime | None = None

    @property
    def start(self) -> datetime:
        """The first minute of the trace (UTC)."""
        if self._start is None:
            raise TraceError(f"{self.path}: trace is empty")
        return self._start

    @property
    def end(self) -> datetime:
        """The minute after the last row: the trace covers ``start <= t < end``."""
        return self.start + len(self._index) * MINUTE

    def __len__(self) -> int:
        """Minutes covered, gaps included."""
        return len(self._index)

    @property
    def rows(self) -> int:
        """Rows actually recorded."""
        return len(self._idle)

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def at(self, instant: datetime) -> Snapshot:
        """The state during the minute holding `instant`; O(1). Raises TraceRangeError."""
        offset = (_minute(instant) - self.start) // MINUTE
        if not 0 <= offset < len(self._index):
            raise TraceRangeError(
                f"{self.path}: {instant.isoformat()} is outside the trace"
                f" ({self.start.isoformat()} to {self.end.isoformat()})"
            )
        row = self._index[offset]
        f = self._floats
        extra: dict[str, Any] = {n: _extra(n, col[row]) for n, col in self._extra.items()}
        battery = self._battery[row]
        idle = self._idle[row]
        has_battery = not math.isnan(battery)
        return Snapshot(
            at=instant.astimezone(UTC),
            load1=_r(f["load1"][row]),
            load5=_r(f["load5"][row]),
            load15=_r(f["load5"][row]),
            cpu_percent=_r(f["cpu"][row]),
            ram_percent=_r(f["ram"][row]),
            battery_percent=_r(battery) if has_battery else None,
            charging=_flag(self._charging[row]) if has_battery else None,
            on_ac=_flag(self._on_ac[row]),
            idle_seconds=None if math.isnan(idle) else idle,
            idle_source="trace",
            disk_free_percent=_r(f["disk"][row]),
            **extra,
        )

    def asleep(self) -> bytearray:
        """Per minute (gaps carry the row before forward), 1 where the machine slept."""
        return bytearray(self._asleep[row] for row in self._index)

    @property
    def extras(self) -> tuple[str, ...]:
        """The EXTRA_COLUMNS this trace has."""
        return tuple(self._extra)

    def _append(self, minute: datetime, values: Mapping[str, Any]) -> None:
        if self._start is None:
            self._start = minute
        else:
            offset = (minute - self._start) // MINUTE
            last = len(self._idle) - 1
            # carry the previous row forward over the gap
            self._index.extend(array("I", [last]) * (offset - len(self._index)))
        self._index.append(len(self._idle))
        for key, name in (
            ("load1", "load1"),
            ("load5", "load5"),
            ("cpu", "cpu_percent"),
            ("ram", "ram_percent"),
            ("disk", "disk_free_percent"),
        ):
            self._floats[key].append(values[name])
        battery = values.get("battery_percent")
        self._battery.append(math.nan if battery is None else battery)
        idle = values.get("idle_seconds")
        self._idle.append(math.nan if idle is None else idle)
        self._charging.append(_NONE if values.get("charging") is None else values["charging"])
        on_ac = values.get("on_ac")
        if on_ac is None and battery is None:
            on_ac = 1  # no battery at all: the machine runs on mains
        self._on_ac.append(_NONE if on_ac is None else on_ac)
        self._asleep.append(values.get(ASLEEP) or 0)
        for name, column in self._extra.items():
            value = values.get(name)
            column.append((math.nan if name in PRESSURE_COLUMNS else _NONE) if value is None
                          else value)  # fmt: skip


def _r(value: float) -> float:
    # float32 storage: give back the 2-decimal value that was written, not 0.30000001
    return round(float(value), 4)


def _flag(value: int) -> bool | None:
    return None if value == _NONE else bool(value)


def _extra(name: str, value: float) -> float | bool | None:
    if name in PRESSURE_COLUMNS:
        return None if math.isnan(value) else _r(value)
    return _flag(int(value))


def load_trace(source: str | Iterable[str], path: str = "<trace>") -> Trace:
    """Parse trace CSV text (a string, or an iterable of lines such as an open file)."""
    lines: Iterable[str] = io.StringIO(source) if isinstance(source, str) else source
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise TraceError(f"{path}:1: empty trace: a header line is required") from None
    except csv.Error as err:
        raise TraceError(f"{path}:1: {err}") from None
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        hint = "" if "timestamp" in header else " (the header line is required)"
        raise TraceError(f"{path}:1: missing column(s) {', '.join(missing)}{hint}")
    if len(set(header)) != len(header):
        raise TraceError(f"{path}:1: duplicate column names in the header")
    where = {name: header.index(name) for name in (*ALL_COLUMNS, ASLEEP) if name in header}
    trace = Trace(path, [name for name in EXTRA_COLUMNS if name in where])
    last: datetime | None = None
    try:
        for record in reader:
            row = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if len(record) != len(header):
                raise TraceError(
                    f"{path}:{row}: {len(record)} fields, the header has {len(header)}"
                )
            minute, values = _parse_row(record, where, path, row)
            if last is not None and minute <= last:
                what = "duplicate minute" if minute == last else "rows out of order"
                raise TraceError(f"{path}:{row}: {what}: {minute.isoformat()} after {last}")
            if trace._start is not None and minute - trace._start > MAX_SPAN_DAYS * 1440 * MINUTE:
                raise TraceError(f"{path}:{row}: trace spans more than {MAX_SPAN_DAYS} days")
            trace._append(minute, values)
            last = minute
    except csv.Error as err:
        raise TraceError(f"{path}:{reader.line_num}: {err}") from None
    if trace._start is None:
        raise TraceError(f"{path}:2: trace has a header but no rows")
    return trace


def _parse_row(
    record: list[str], where: Mapping[str, int], path: str, row: int
) -> tuple[datetime, dict[str, Any]]:
    text = record[where["timestamp"]].strip()
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(f"{path}:{row}: bad timestamp {text!r} (ISO 8601 expected)") from None
    if stamp.tzinfo is None:
        raise TraceError(f"{path}:{row}: timestamp {text!r} has no UTC offset (add Z or +00:00)")
    values: dict[str, Any] = {}
    for name, col in where.items():
        if name == "timestamp":
            continue
        cell = record[col].strip()
        if not cell:
            if name in REQUIRED:
                raise TraceError(f"{path}:{row}: {name} is empty")
            values[name] = None
        elif name in FLAGS:
            if cell not in ("0", "1"):
                raise TraceError(f"{path}:{row}: {name} must be 0 or 1, not {cell!r}")
            values[name] = int(cell)
        else:
            values[name] = _number(name, cell, path, row)
    if values.get("battery_percent") is None:
        values["charging"] = None  # no battery: charging does not apply
    return _minute(stamp), values


def _number(name: str, cell: str, path: str, row: int) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TraceError(f"{path}:{row}: {name} is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise TraceError(f"{path}:{row}: {name} must be a finite number, not {cell!r}")
    if value < 0 or (name in PERCENT and value > 100):
        bounds = "between 0 and 100" if name in PERCENT else "at least 0"
        raise TraceError(f"{path}:{row}: {name} must be {bounds}, not {cell}")
    return value


def read_trace(path: str | Path) -> Trace:
    """Load a trace file; ``*.gz`` is decompressed while streaming."""
    name = str(path)
    try:
        if name.endswith(".gz"):
            with gzip.open(name, "rt", encoding="utf-8", newline="") as fh:
                return load_trace(fh, name)
        with open(name, encoding="utf-8", newline="") as fh:
            return load_trace(fh, name)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise TraceError(f"{name}: cannot read trace: {err}") from None


class TraceMonitor:
    """A Monitor that replays a trace (the simulator's view of the machine)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def snapshot(self, now: datetime) -> Snapshot:
        return self.trace.at(now)


# ----------------------------------------------------------------------- writing


def write_rows(
    rows: Iterable[Mapping[str, Any]], out: IO[str], columns: Sequence[str] | None = None
) -> int:
    """Write the header and rows as trace CSV; returns the number of rows.

    `columns`: default COLUMNS and the EXTRA_COLUMNS the first row has a key for (so the
    generators' traces stay byte for byte what they were).
    """
    items = iter(rows)
    first = next(items, None)
    if columns is None:
        extras = [name for name in (*EXTRA_COLUMNS, ASLEEP) if first is not None and name in first]
        columns = (*COLUMNS, *extras)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in itertools.chain([first] if first is not None else [], items):
        writer.writerow(format_row(row, columns))
        count += 1
    return count


def snapshot_row(snap: Snapshot) -> dict[str, Any]:
    """The trace columns of a snapshot."""
    return {
        "timestamp": snap.at,
        "load1": snap.load1,
        "load5": snap.load5,
        "cpu_percent": snap.cpu_percent,
        "ram_percent": snap.ram_percent,
        "battery_percent": snap.battery_percent,
        "charging": snap.charging if snap.battery_percent is not None else False,
        "on_ac": snap.on_ac,
        "idle_seconds": snap.idle_seconds,
        "disk_free_percent": snap.disk_free_percent,
        **{name: getattr(snap, name) for name in EXTRA_COLUMNS},
    }


def _sampled(monitor: Monitor, clock: Clock, minutes: int) -> Iterator[dict[str, Any]]:
    target = _minute(clock.now())
    if target < clock.now():
        target += MINUTE
    for _ in range(minutes):
        clock.sleep_until(target)
        minute = _minute(clock.now())  # late wake-ups (suspend) leave a gap, no duplicate
        row = snapshot_row(monitor.snapshot(clock.now()))
        row["timestamp"] = minute
        yield row
        target = minute + MINUTE


def record_trace(
    monitor: Monitor,
    clock: Clock,
    minutes: int,
    out: IO[str],
    on_row: Callable[[int], None] | None = None,
) -> int:
    """Sample `monitor` at the start of each of the next `minutes` minutes into `out`.

    For ``smartcronctl trace-record``. Each row is flushed, so an interrupted
    recording is still a valid trace. `on_row` gets the rows written so far after each
    (its progress). Returns the number of rows written.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ALL_COLUMNS)
    count = 0
    for row in _sampled(monitor, clock, minutes):
        writer.writerow(format_row(row, ALL_COLUMNS))
        out.flush()
        count += 1
        if on_row is not None:
            on_row(count)
    return count
