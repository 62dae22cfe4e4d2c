"""The trace on the simulator's minute grid: minute ``i`` is ``trace.start + i`` minutes.

Per-minute flags the metrics need (user-active, on battery) are computed once, as
bytes plus prefix sums, so the CPU seconds a run spends in active minutes cost O(1)
whatever its length. Past the trace's last minute the last row carries forward, as
gaps do inside a trace: a firing near the end whose window runs past it still ends.

Job load (a world with ``machine: {job_load: true}``): `Timeline.occupy` records a run's
CPU, and from then on `Timeline.snapshot` adds it to the trace's state (load1: the cores
of the runs going; load5 and load15: the same smoothed as the kernel does, e^(-1/5) and
e^(-1/15) a minute; cpu_percent: 100 * cores / world cores, clipped at 100). The hold
masks (`hold_mask`, `next_hold`, `next_fail`) come from the trace only and ignore the
overlay: a skip-ahead built on them is wrong for max_load/max_cpu with job load.

Extra columns (PSI pressure, network) come from the trace, or, for those it lacks, from
the world's ``machine:`` (World.signals), the same for every minute.
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from smartcron.sim.trace import Trace
from smartcron.sim.tracecolumns import NETWORK_COLUMNS
from smartcron.sim.world import World
from smartcron.smart import gate
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

MINUTE = timedelta(minutes=1)


_FLOATS = ("load1", "load5", "load15", "cpu_percent", "ram_percent")
_OPTIONAL = ("battery_percent", "idle_seconds", "disk_free_percent")  # NaN: None
_FLAGS = ("charging", "on_ac")  # -1: None
_Single = tuple[str, object, str]  # (constraint, value, disk_path)
# per-minute keep factors of the overlay's smoothed loads (the kernel's exp averages)
_KEEP5, _KEEP15 = math.exp(-1.0 / 5.0), math.exp(-1.0 / 15.0)
_NEGLIGIBLE = 1e-9  # a smoothed contribution below this (cores) is not recorded


class Timeline:
    """Snapshots and per-minute flags by minute index.

    One pass over the trace keeps its columns (a snapshot is then rebuilt in a few
    microseconds, equal to ``trace.at``'s) and the flags; `specs` are smart specs whose
    constraint masks (see `hold_mask`) are computed in the same pass.
    """

    def __init__(
        self,
        trace: Trace,
        world: World,
        specs: Iterable[SmartSpec] = (),
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.trace = trace
        self.start = trace.start
        self.minutes = n = len(trace)
        self._cols: dict[str, array[Any]] = {
            name: array("d", bytes(8 * n)) for name in (*_FLOATS, *_OPTIONAL)
        }
        self._cols.update({name: array("b", bytes(n)) for name in _FLAGS})
        # the extra columns (PSI, network) the trace has, or else the world sets (for
        # every minute); NaN: unknown; a flag is 0.0 or 1.0
        given = {k: v for k, v in world.signals.items() if k not in trace.extras}
        self._extras = (*trace.extras, *given)
        self._cols.update({name: array("d", bytes(8 * n)) for name in trace.extras})
        self._cols.update({name: array("d", [value]) * n for name, value in given.items()})
        active, battery = bytearray(n), bytearray(n)
        self._singles: dict[_Single, bytearray] = {}
        self._masks: dict[tuple[_Single, ...], bytes] = {}
        singles = self._new_singles(specs)
        for i in range(n):
            snap = trace.at(self.start + i * MINUTE)
            for name in _FLOATS:
                self._cols[name][i] = getattr(snap, name)
            for name in _OPTIONAL:
                value = getattr(snap, name)
                self._cols[name][i] = math.nan if value is None else value
            for name in _FLAGS:
                flag = getattr(snap, name)
                self._cols[name][i] = -1 if flag is None else flag
            for name in trace.extras:
                value = getattr(snap, name)
                self._cols[name][i] = math.nan if value is None else float(value)
            if given:  # the masks below see what the simulated monitor will
                snap = dataclasses.replace(snap, **self._extra_values(i))
            active[i] = world.is_active(snap)
            battery[i] = snap.on_ac is False
            for single, flags in singles:
                flags[i] = not gate.constraint_failures(single, snap)
            if progress is not None and i % 10_000 == 0:
                progress(i)
        self._source = snap.idle_source if n else "trace"
        self.active, self.battery = active, battery
        self.asleep = trace.asleep()  # 1: the machine slept (suspended or off) that minute
        self._active_cum, self._battery_cum = _cumulative(active), _cumulative(battery)
        self.cores = world.cores
        self._overlay: tuple[array[float], array[float], array[float]] | None = None
        self.snapshot = lru_cache(maxsize=4096)(self._snapshot)

    def asleep_at(self, i: int) -> bool:
        """Whether the machine sleeps in minute `i` (past the end: as in the last)."""
        return bool(self.asleep[max(0, min(i, self.minutes - 1))])

    def fell_asleep(self, i: int) -> int:
        """The first minute of the sleep that minute `i` is in."""
        return self.asleep.rfind(0, 0, min(i, self.minutes - 1)) + 1

    def next_awake(self, i: int) -> int | None:
        """The first minute from `i` on when the machine is awake (None: it never wakes:
        past the end the last minute repeats)."""
        n = self.minutes
        found = self.asleep.find(0, max(i, 0)) if i < n else -1
        if found >= 0:
            return found
        return None if self.asleep[n - 1] else max(i, n)

    def instant(self, i: int) -> datetime:
        return self.start + i * MINUTE

    def index(self, instant: datetime) -> int:
        """The minute holding `instant`."""
        return math.floor((instant - self.start) / MINUTE)

    def index_ceil(self, instant: datetime) -> int:
        """The first minute starting at or after `instant`."""
        return math.ceil((instant - self.start) / MINUTE)

    def _snapshot(self, i: int) -> Snapshot:
        """The snapshot of minute `i`, as ``trace.at`` gives it (past the end: the last)."""
        row, c = min(i, self.minutes - 1), self._cols
        battery, idle, disk = (
            c["battery_percent"][row],
            c["idle_seconds"][row],
            c["disk_free_percent"][row],
        )
        charging, on_ac = c["charging"][row], c["on_ac"][row]
        return Snapshot(
            at=self.start + i * MINUTE,
            load1=c["load1"][row],
            load5=c["load5"][row],
            load15=c["load15"][row],
            cpu_percent=c["cpu_percent"][row],
            ram_percent=c["ram_percent"][row],
            battery_percent=None if battery != battery else battery,  # NaN: None
            charging=None if charging < 0 else charging == 1,
            on_ac=None if on_ac < 0 else on_ac == 1,
            idle_seconds=None if idle != idle else idle,
            idle_source=self._source,
            disk_free_percent=None if disk != disk else disk,
            **self._extra_values(row),
        )

    def _extra_values(self, row: int) -> dict[str, Any]:
        """The extra columns' Snapshot values at `row` (NaN: None; flags as booleans)."""
        out: dict[str, Any] = {}
        for name in self._extras:
            value = self._cols[name][row]
            out[name] = (
                None if value != value else value == 1.0 if name in NETWORK_COLUMNS else value
            )
        return out

    def occupy(self, minute: int, runtime_s: float, cpu: float) -> None:
        """Record a run of `cpu` cores over [minute, minute + ceil(runtime_s / 60)).

        Snapshots read after this include it (those cached before are dropped); read a
        run's start snapshot before occupying, or the run sees its own load.
        """
        if cpu <= 0 or runtime_s <= 0 or minute < 0:
            return
        if self._overlay is None:
            self._overlay = (array("d"), array("d"), array("d"))
            self.snapshot = lru_cache(maxsize=4096)(self._overlaid)
        going, smooth5, smooth15 = self._overlay
        end = minute + math.ceil(runtime_s / 60.0)
        # the smoothed loads decay for ~15 * ln(cpu / 1e-9) minutes after the run ends
        tail = end + math.ceil(15.0 * math.log(max(cpu, 1.0) / _NEGLIGIBLE))
        if len(going) < tail:
            grow = array("d", bytes(8 * (tail - len(going))))
            for column in self._overlay:
                column.extend(grow)
        for i in range(minute, end):
            going[i] += cpu
        level5 = level15 = 0.0
        for i in range(minute, tail):
            x = cpu if i < end else 0.0
            level5 = level5 * _KEEP5 + x * (1.0 - _KEEP5)
            level15 = level15 * _KEEP15 + x * (1.0 - _KEEP15)
            smooth5[i] += level5
            smooth15[i] += level15
        self.snapshot.cache_clear()

    def clear_overlay(self) -> None:
        """Forget every occupied run: back to the trace's own snapshots (and speed)."""
        self._overlay = None
        self.snapshot = lru_cache(maxsize=4096)(self._snapshot)

    def _overlaid(self, i: int) -> Snapshot:
        """The trace's snapshot of minute `i` plus the occupied runs' load."""
        snap = self._snapshot(i)
        assert self._overlay is not None
        going, smooth5, smooth15 = self._overlay
        if i >= len(going):
            return snap
        busy = 100.0 * going[i] / self.cores
        return dataclasses.replace(
            snap,
            load1=snap.load1 + going[i],
            load5=snap.load5 + smooth5[i],
            load15=snap.load15 + smooth15[i],
            cpu_percent=min(100.0, snap.cpu_percent + busy),
        )

    def active_seconds(self, start: int, seconds: float) -> float:
        """Seconds of [start, start + seconds) that fall in user-active minutes."""
        return _covered(self.active, self._active_cum, start, seconds)

    def battery_seconds(self, start: int, seconds: float) -> float:
        """Seconds of [start, start + seconds) that fall in minutes on battery."""
        return _covered(self.battery, self._battery_cum, start, seconds)

    def _new_singles(self, specs: Iterable[SmartSpec]) -> list[tuple[SmartSpec, bytearray]]:
        """Empty masks for the single constraints of `specs` not seen yet, registered."""
        out = []
        for spec in specs:
            for key in _singles(spec):
                if key not in self._singles:
                    self._singles[key] = flags = bytearray(self.minutes)
                    single = SmartSpec(**{key[0]: key[1], "disk_path": key[2]})  # type: ignore[arg-type]
                    out.append((single, flags))
        return out

    def prepare(self, specs: Iterable[SmartSpec]) -> None:
        """Compute the single-constraint masks `specs` need, in one pass over the trace."""
        singles = self._new_singles(specs)
        for i in range(self.minutes) if singles else ():
            snap = self._snapshot(i)
            for single, flags in singles:
                flags[i] = not gate.constraint_failures(single, snap)

    def hold_mask(self, spec: SmartSpec) -> bytes:
        """Per minute, 1 where ``gate.constraint_failures(spec, snapshot)`` is empty.

        The AND of one mask per single constraint: the gate checks each constraint on
        its own (one reason per failed constraint), so jobs sharing a constraint share
        its mask. A spec neither given to the constructor nor `prepare`d costs a pass.
        """
        keys = _singles(spec)
        if keys in self._masks:
            return self._masks[keys]
        self.prepare([spec])
        combined = int.from_bytes(b"\x01" * self.minutes, "little")
        for key in keys:
            combined &= int.from_bytes(self._singles[key], "little")
        self._masks[keys] = mask = combined.to_bytes(self.minutes, "little")
        return mask

    def next_hold(self, mask: bytes, after: int, last: int) -> int | None:
        """The first minute in (after, last] where `mask` holds, or None."""
        return self._next(mask, 1, after, last)

    def next_fail(self, mask: bytes, after: int, last: int) -> int | None:
        """The first minute in (after, last] where `mask` does not hold, or None."""
        return self._next(mask, 0, after, last)

    def _next(self, mask: bytes, flag: int, after: int, last: int) -> int | None:
        n = self.minutes
        if after + 1 < n:
            found = mask.find(flag, after + 1, min(last, n - 1) + 1)
            if found >= 0:
                return found
        if last >= n and mask[n - 1] == flag:  # past the end the last minute repeats
            return max(after + 1, n)
        return None


def _singles(spec: SmartSpec) -> tuple[_Single, ...]:
    return tuple(
        (key, value, spec.disk_path if key == "min_disk" else "/")
        for key, value in sorted(spec.constraints.items())
    )


def _cumulative(flags: bytearray) -> array[int]:
    cum = array("q", [0]) * (len(flags) + 1)
    total = 0
    for i, flag in enumerate(flags):
        total += flag
        cum[i + 1] = total
    return cum


def _count(flags: bytearray, cum: array[int], a: int, b: int) -> int:
    """Flagged minutes in [a, b); past the end the last minute repeats."""
    n = len(flags)
    inside = cum[min(b, n)] - cum[min(a, n)]
    return inside + max(0, b - max(a, n)) * flags[n - 1]


def _covered(flags: bytearray, cum: array[int], start: int, seconds: float) -> float:
    full = int(seconds // 60)
    rest = seconds - 60 * full
    total = 60.0 * _count(flags, cum, start, start + full)
    if rest > 0:
        total += rest * _count(flags, cum, start + full, start + full + 1)
    return total
