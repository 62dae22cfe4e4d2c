"""The machines behind smartcron.sim.tracegen: one minute-by-minute generator per trace
kind, and the state they carry from one minute to the next. Each takes a seeded
``random.Random`` and draws from it in a fixed order (determinism is tracegen's promise).

``laptop`` (8 cores): weekday work sessions 09-12 and 13-18 with a lunch gap, some
evenings, sparse weekends; the user steps away in short breaks (idle time grows by 60
s a minute when away, a few seconds when active). Plugged in at the desk, unplugged for
the commute and often on the couch; overnight on the charger about half the time.
Battery drains with CPU use when unplugged (never rises then) and charges, fast then
slowly, on AC. Load comes from the user, builds (bursty, heavy), a morning update and
small noise; load1/load5 are the kernel's exponential averages of runnable tasks.
RAM follows open applications and builds; free disk shrinks with build caches and
downloads and recovers with weekend clean-ups.

``server`` (16 cores): diurnal load peaking mid-afternoon and lighter at weekends,
spikes at the top of each hour (every cron job on the box), a 02:00 backup, a Sunday
03:00 maintenance, rare traffic surges; a slow memory leak reset by a weekly restart;
logs filling the disk between rotations; no battery; an admin logs in now and then.

``workstation`` (12 cores, a tower on mains): smartcron.sim.tracestation.

Every kind takes a `Machine`: the scenario family's knobs (the user's day shifted, other
workdays, more or less demand, cores, RAM pressure, a filling disk, a UPS). Its defaults
are the kinds as first written: the same seed gives the same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Kernel load averages are exponential averages; per minute the decay is e^(-1/period).
DECAY1 = math.exp(-1.0)
DECAY5 = math.exp(-1.0 / 5.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    """A kind's knobs; the defaults reproduce the kind as shipped."""

    cores: int | None = None  # None: the kind's own (laptop 8, server 16, workstation 12)
    shift: int = 0  # minutes the user's day runs late (+) or early (-); system timers stay
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # the user's working weekdays (0 = Monday)
    intensity: float = 1.0  # scales the user's demand (and builds, traffic)
    ram: float = 0.0  # RAM pressure: percentage points added to the RAM level
    disk: float | None = None  # free disk % at the start (None: the kind's own)
    disk_fill: float = 0.0  # extra disk % used per day
    ups: bool = False  # workstation: on a UPS (a battery) with mains outages now and then

    def user_clock(self, start: datetime, minute: int) -> tuple[int, int]:
        """The user's minute of day and weekday at `minute` (their day is shifted)."""
        local = start + timedelta(minutes=minute - self.shift)
        return (minute - self.shift) % 1440, local.weekday()


DEFAULT = Machine()


def clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


@dataclass(slots=True)
class State:
    """What carries over from one minute to the next."""

    load1: float = 0.2
    load5: float = 0.2
    ram: float = 30.0
    disk: float = 40.0
    battery: float = 80.0
    on_ac: bool = True
    idle: float = 8 * 3600.0
    active: bool = False
    bursts: list[tuple[int, float]] = field(default_factory=list)  # (minutes left, tasks)
    cache: float = 0.0  # laptop: disk % taken by build caches since the last clean-up


def step_load(st: State, rng: random.Random, demand: float, cores: int) -> float:
    """Advance the load averages by a minute; returns the CPU % of that minute."""
    runnable = max(0.0, demand)
    st.load1 = st.load1 * DECAY1 + runnable * (1 - DECAY1)
    st.load5 = st.load5 * DECAY5 + runnable * (1 - DECAY5)
    busy = min(runnable, cores) / cores * 100.0
    return clip(busy + rng.uniform(0.3, 2.0), 0.0, 100.0)


def take_bursts(st: State) -> float:
    """The tasks of running bursts (builds, backups...), ageing them by a minute."""
    total = sum(tasks for _, tasks in st.bursts)
    st.bursts = [(left - 1, tasks) for left, tasks in st.bursts if left > 1]
    return total


def row(at: datetime, st: State, cpu: float, battery: bool, charging: bool) -> dict[str, Any]:
    return {
        "timestamp": at,
        "load1": round(st.load1, 2),
        "load5": round(st.load5, 2),
        "cpu_percent": round(cpu, 1),
        "ram_percent": round(st.ram, 1),
        "battery_percent": round(st.battery, 1) if battery else None,
        "charging": charging,
        "on_ac": st.on_ac,
        "idle_seconds": float(int(st.idle)),
        "disk_free_percent": round(st.disk, 1),
    }


# ------------------------------------------------------------------------ laptop


def _laptop_day(
    rng: random.Random, weekday: int, workdays: tuple[int, ...]
) -> tuple[list[tuple[int, int]], dict[int, str]]:
    """The day's sessions (minute-of-day ranges at the machine) and power events."""
    sessions: list[tuple[int, int]] = []
    power: dict[int, str] = {}
    off = weekday not in workdays
    workday = not off and rng.random() > 0.05  # a day off now and then
    if workday:
        arrive = int(rng.gauss(530, 15))  # ~08:50
        lunch = int(rng.gauss(720, 8))
        back = lunch + int(clip(rng.gauss(55, 10), 30, 80))
        leave = int(rng.gauss(1080, 25))  # ~18:00
        sessions += [(arrive, lunch), (back, leave)]
        power[arrive - rng.randint(25, 45)] = "unplug"  # commute
        where = rng.random()
        if where < 0.75:
            power[arrive + rng.randint(0, 8)] = "plug"
        elif where < 0.85:
            power[back + rng.randint(0, 30)] = "plug"  # forgot the charger until lunch
        elif where < 0.95:
            power[rng.randint(840, 990)] = "plug"  # meetings all day, on battery
        power[leave + rng.randint(0, 5)] = "unplug"
        if rng.random() < 0.4:
            start = int(rng.gauss(1230, 25))
            sessions.append((start, start + rng.randint(40, 140)))
            if rng.random() < 0.3:
                power[start + 1] = "plug"
    else:
        for _ in range(rng.choice((0, 0, 1, 1, 2)) if off else 1):
            start = rng.randint(600, 1230)
            sessions.append((start, min(1430, start + rng.randint(25, 150))))
            if rng.random() < 0.4:
                power[start + 2] = "plug"
    bedtime = max([1380] + [end + 5 for _, end in sessions])
    power[min(1439, bedtime)] = "plug" if rng.random() < 0.5 else "plug_if_low"
    return sessions, power


def laptop(
    rng: random.Random, start: datetime, days: int, machine: Machine = DEFAULT
) -> Iterator[dict[str, Any]]:
    cores, workdays = machine.cores or 8, machine.workdays
    disk = 33.0 if machine.disk is None else machine.disk
    st = State(ram=30.0, disk=disk, battery=85.0, on_ac=True)
    sessions: list[tuple[int, int]] = []
    power: dict[int, str] = {}
    update_at = 0
    for minute in range(days * 1440):
        at = start + timedelta(minutes=minute)
        mod, (umod, weekday) = minute % 1440, machine.user_clock(start, minute)
        if umod == 0:
            sessions, power = _laptop_day(rng, weekday, workdays)
            update_at = rng.randint(570, 690) if sessions else -1
            if weekday not in workdays and st.cache > 0 and rng.random() < 0.5:
                freed = st.cache * rng.uniform(0.7, 1.0)  # weekend clean-up
                st.disk, st.cache = st.disk + freed, st.cache - freed
        present = any(a <= umod < b for a, b in sessions)
        # power: planned events, and the user reaching for the charger when low
        event = power.get(umod)
        if event == "plug" or (event == "plug_if_low" and st.battery < 35):
            st.on_ac = True
        elif event == "unplug":
            st.on_ac = False
        if present and not st.on_ac and st.battery < 15 and rng.random() < 0.3:
            st.on_ac = True
        # the user: present for the session, stepping away now and then
        if present:
            st.active = rng.random() > 0.12 if st.active else rng.random() < 0.2
        else:
            st.active = False
        st.idle = float(rng.randint(0, 25)) if st.active else st.idle + 60.0
        # demand in runnable tasks
        demand = 0.08 + rng.expovariate(12.0)
        if st.active:
            demand += machine.intensity * clip(rng.gauss(0.5, 0.3), 0.0, 2.0)
            if umod < 1140 and weekday in workdays and rng.random() < 0.012:
                length = rng.randint(4, 20)  # drawn before the size, as ever
                st.bursts.append((length, machine.intensity * rng.uniform(3.0, 7.5)))  # a build
        elif present:
            demand += 0.1
        if umod == update_at:
            st.bursts.append((rng.randint(8, 15), rng.uniform(0.8, 1.6)))  # updates
        if mod == 190:
            st.bursts.append((3, 0.7))  # 03:10 man-db, fstrim
        if rng.random() < 0.01:
            st.bursts.append((rng.randint(1, 3), rng.uniform(0.5, 1.5)))
        building = any(tasks > 2.5 for _, tasks in st.bursts)
        demand += take_bursts(st)
        cpu = step_load(st, rng, demand, cores)
        # RAM: applications stay open while the user was here in the last few hours
        target = 30.0 + (22.0 if st.idle < 4 * 3600 else 6.0) + (12.0 if building else 0.0)
        target += machine.ram
        st.ram = clip(st.ram + 0.15 * (target - st.ram) + rng.gauss(0, 0.4), 10.0, 97.0)
        # disk: build caches, downloads, a slow baseline
        used = (0.1 + machine.disk_fill) / 1440 + (0.015 if building else 0.0)
        if st.active and rng.random() < 0.0006:
            used += rng.uniform(0.3, 1.5)
        st.cache += 0.015 if building else 0.0
        st.disk = clip(st.disk - used, 2.0, 98.0)
        # battery: charge on AC (fast to 80 %, then slowly), drain with use otherwise
        charging = st.on_ac and st.battery < 100.0
        if st.on_ac:
            st.battery = min(100.0, st.battery + (0.9 if st.battery < 80 else 0.25))
        else:
            drain = (0.1 if present else 0.03) + 0.004 * cpu
            st.battery = max(0.0, st.battery - drain)
        yield row(at, st, cpu, battery=True, charging=charging)


# ------------------------------------------------------------------------ server


def server(
    rng: random.Random, start: datetime, days: int, machine: Machine = DEFAULT
) -> Iterator[dict[str, Any]]:
    cores = machine.cores or 16
    disk = 27.0 if machine.disk is None else machine.disk
    st = State(load1=2.0, load5=2.0, ram=55.0 + machine.ram, disk=disk, idle=3 * 86400.0)
    admin: tuple[int, int] = (-1, -1)
    for minute in range(days * 1440):
        at = start + timedelta(minutes=minute)
        mod, weekday = minute % 1440, at.weekday()
        umod = machine.user_clock(start, minute)[0]  # the users' (and admin's) day
        hour = umod / 60.0
        if mod == 0:
            admin = (-1, -1)
            if weekday < 5 and rng.random() < 0.3:
                begin = rng.randint(600, 960)
                admin = (begin, begin + rng.randint(10, 60))
        # diurnal demand, peaking mid-afternoon, lighter at weekends
        shape = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4.0) / 24.0)
        demand = machine.intensity * (1.2 + 5.0 * shape) * (0.55 if weekday >= 5 else 1.0)
        demand *= max(0.2, rng.gauss(1.0, 0.12))
        if mod % 60 < 3:
            demand += 3.0 - (mod % 60)  # every hourly cron job starts at :00
        elif mod % 15 == 0:
            demand += 1.0
        if mod == 120:
            st.bursts.append((rng.randint(40, 55), rng.uniform(4.5, 6.5)))  # 02:00 backup
        if weekday == 6 and mod == 180:
            st.bursts.append((90, 4.0))  # Sunday 03:00 maintenance
        if rng.random() < 0.0004:
            st.bursts.append((rng.randint(20, 90), rng.uniform(6.0, 10.0)))  # traffic surge
        demand += take_bursts(st)
        cpu = step_load(st, rng, demand, cores)
        # RAM: page cache follows traffic; a leak until the Sunday 04:30 restart
        if weekday == 6 and mod == 270:
            st.ram = 50.0 + machine.ram
        st.ram = clip(st.ram + 0.6 / 1440 + 0.02 * (shape - 0.5) + rng.gauss(0, 0.05), 20, 97)
        # disk: logs grow with traffic; nightly rotation and weekly pruning free space
        st.disk -= (0.25 + 0.35 * shape) / 1440 * (0.6 if weekday >= 5 else 1.0)
        st.disk -= machine.disk_fill / 1440
        if mod == 5:
            st.disk += 0.15
        if weekday == 6 and mod == 200:
            st.disk += rng.uniform(0.8, 1.8)
        st.disk = clip(st.disk, 1.0, 99.0)
        in_ssh = admin[0] <= umod < admin[1]
        st.idle = float(rng.randint(0, 40)) if in_ssh else st.idle + 60.0
        yield row(at, st, cpu, battery=False, charging=False)
