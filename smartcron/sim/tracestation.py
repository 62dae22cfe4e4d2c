"""The ``workstation`` trace kind of smartcron.sim.tracegen (see smartcron.sim.tracekinds).

``workstation`` (12 cores, a tower on mains: no battery, left on at night): one
developer and video editor at the desk in sessions of 1-3 hours on weekdays (about
09:00-18:00, short breaks, a lunch break), a long game or editing session some
evenings, sparse sessions at weekends. Load comes from the user, compiles (short,
heavy bursts), video renders (all cores for 10-60 minutes; some exports are left
running after the user goes home), games, a 01:45 off-site backup (a system timer) and
small noise. RAM: a browser that grows over the day until the user closes it, the open
editor/IDE, renders and games. Free disk (one volume with the render scratch): render
caches and proxies fill it, a 04:30 timer trims the cache to its quota, footage imports
eat space and the user archives old projects to the NAS at weekends.

With ``Machine(ups=True)`` the tower sits on a UPS: a battery column (the UPS charge) and,
a few times a month, a mains outage of 5-60 minutes (on_ac false, the UPS draining).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from smartcron.sim.tracekinds import DEFAULT, Machine, State, clip, row, step_load


def _workstation_day(
    rng: random.Random, weekday: int, workdays: tuple[int, ...]
) -> list[tuple[int, int, str]]:
    """The day's sessions at the desk: (first minute, end minute, work/edit/game)."""
    sessions: list[tuple[int, int, str]] = []
    if weekday in workdays and rng.random() > 0.06:  # a day off now and then
        at, leave = int(rng.gauss(540, 20)), int(rng.gauss(1080, 30))
        lunch: int | None = int(rng.gauss(735, 15))
        while at < leave - 20:
            end = min(leave, at + rng.randint(60, 180))
            if lunch is not None and end >= lunch - 20:
                end = max(at + 30, lunch)
                sessions.append((at, end, "work"))
                at, lunch = end + rng.randint(40, 75), None
                continue
            sessions.append((at, end, "work"))
            gap = (30, 60) if rng.random() < 0.2 else (10, 30)  # a meeting, or a break
            at = end + rng.randint(*gap)
        if rng.random() < 0.4:
            start = int(rng.gauss(1230, 30))
            sessions.append((start, min(1435, start + rng.randint(60, 200)), "evening"))
    elif weekday not in workdays:
        at = rng.randint(600, 720)
        for _ in range(rng.choice((0, 1, 1, 2))):
            end = min(1435, at + rng.randint(30, 180))
            sessions.append((at, end, rng.choice(("edit", "game", "game"))))
            at = end + rng.randint(60, 300)
            if at > 1380:
                break
    evening = ("edit", "game")
    return [(a, b, evening[rng.random() < 0.5] if k == "evening" else k) for a, b, k in sessions]


def workstation(
    rng: random.Random, start: datetime, days: int, machine: Machine = DEFAULT
) -> Iterator[dict[str, Any]]:
    cores = machine.cores or 12
    st = State(load1=0.3, load5=0.3, ram=30.0, disk=30.0, on_ac=True, idle=8 * 3600.0)
    st.cache, st.battery = 4.0, 100.0  # disk % taken by render caches; the UPS's charge
    base = 22.0 if machine.disk is None else machine.disk + 4.0  # free disk % w/o caches
    browser = 8.0  # RAM % the browser holds
    renders: list[tuple[int, float]] = []  # (minutes left, tasks), like st.bursts
    sessions: list[tuple[int, int, str]] = []
    offsite, outage = -1, (-1, -1)  # the backup's minute; the mains outage (a UPS only)
    kind_before: str | None = None
    for minute in range(days * 1440):
        at = start + timedelta(minutes=minute)
        mod, (umod, weekday) = minute % 1440, machine.user_clock(start, minute)
        if umod == 0:
            sessions = _workstation_day(rng, weekday, machine.workdays)
            offsite = 105 + rng.randint(0, 15)  # the 01:45 off-site backup timer, jittered
            if weekday == 5 and base < 20 and rng.random() < 0.7:
                base += rng.uniform(3.0, 8.0)  # old projects archived to the NAS
            if machine.ups and rng.random() < 0.1:
                begin = rng.randint(0, 1380)
                outage = (begin, begin + rng.randint(5, 60))
        kind = next((k for a, b, k in sessions if a <= umod < b), None)
        last_end = max((b for _, b, _ in sessions), default=-1)
        # the user: at the desk for the session, stepping away now and then
        if kind is not None:
            stay = 0.985 if kind == "game" else 0.94
            st.active = rng.random() < stay if st.active else rng.random() < 0.3
        else:
            st.active = False
        st.idle = float(rng.randint(0, 20)) if st.active else st.idle + 60.0
        # demand in runnable tasks
        demand = 0.15 + rng.expovariate(10.0)
        if st.active:
            demand += machine.intensity * clip(rng.gauss(0.6, 0.3), 0.0, 2.0)  # browser, IDE
            browser = min(30.0, browser + 0.03)
        if kind == "game":
            demand += clip(rng.gauss(4.0, 0.8), 2.0, 6.0)
        elif kind is not None and st.active:
            if kind == "work" and rng.random() < 0.012:
                length = rng.randint(3, 12)  # drawn before the size, as ever
                st.bursts.append((length, machine.intensity * rng.uniform(5.0, 11.0)))  # compile
            if not renders and rng.random() < (0.003 if kind == "work" else 0.01):
                length = rng.randint(10, 60)
                renders.append((length, rng.uniform(9.0, 12.0) * (cores / 12)))  # a render
        leaving = kind is None and kind_before not in (None, "game")  # the desk, not a game
        if leaving and rng.random() < (0.35 if umod == last_end else 0.06) and not renders:
            length = rng.randint(40, 240)
            renders.append((length, rng.uniform(10.0, 12.0) * (cores / 12)))  # an export
        if umod == last_end and rng.random() < 0.45:
            browser = 3.0  # the user closes the browser for the night
        kind_before = kind
        if mod == offsite:
            st.bursts.append((rng.randint(30, 80), -rng.uniform(1.2, 2.0)))
        backing_up = any(tasks < 0 for _, tasks in st.bursts)
        compiling = any(tasks > 0 for _, tasks in st.bursts)
        rendering = bool(renders)
        demand += sum(abs(tasks) for _, tasks in st.bursts) + sum(t for _, t in renders)
        st.bursts = [(left - 1, tasks) for left, tasks in st.bursts if left > 1]
        renders = [(left - 1, tasks) for left, tasks in renders if left > 1]
        if rng.random() < 0.01:
            demand += rng.uniform(0.5, 1.5)
        cpu = step_load(st, rng, demand, cores)
        # RAM: the browser, the open editor/IDE while the user was here lately, the rest
        target = 20.0 + browser + (10.0 if st.idle < 3 * 3600 else 0.0)
        target += 18.0 * rendering + 25.0 * (kind == "game") + 8.0 * compiling
        target += 6.0 * backing_up + machine.ram
        st.ram = clip(st.ram + 0.15 * (target - st.ram) + rng.gauss(0, 0.4), 10.0, 97.0)
        # disk: render caches and proxies; the 04:30 timer trims them to 4 %; imports
        st.cache += (0.025 if rendering else 0.0) + (0.003 if st.active else 0.0)
        if mod == 270:
            st.cache = min(st.cache, 4.0)
        if st.active and kind != "game" and rng.random() < 0.002:
            base -= rng.uniform(0.3, 1.5)  # footage imported
        base = clip(base, 10.0, 60.0)
        base -= machine.disk_fill / 1440
        st.disk = clip(base - st.cache, 1.0, 99.0)
        charging = _ups(st, machine.ups and outage[0] <= umod < outage[1], cpu)
        yield row(at, st, cpu, battery=machine.ups, charging=charging)


def _ups(st: State, out: bool, cpu: float) -> bool:
    """Mains or the UPS for this minute (charge drains with CPU); whether it charges."""
    st.on_ac = not out
    if out:
        st.battery = max(0.0, st.battery - 1.0 - 0.03 * cpu)
    else:
        st.battery = min(100.0, st.battery + 0.5)
    return st.on_ac and st.battery < 100.0
