"""The scenario family (issue 13): varied machines drawn from a seed, each a crontab, a
world and a trace that the real loaders read.

``generate(seed, out_dir)`` draws, from ``random.Random(seed)`` alone (never the global
RNG), a machine (laptop, desktop or server; the user's hours shifted, other workdays,
more or less demand, cores, RAM pressure, a filling disk, a battery, a UPS or none),
4-8 smart jobs (schedules, windows, runtimes, CPU, timeouts, retries, hard constraints
naming only part of their causes) and 1-3 plain lines, and per job a failure law
(smartcron.sim.familylaws). The same seed gives the same bytes.

Develop on seeds 1-20; seeds 101-120 are the report seeds (docs/ai.md): never tune on them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from smartcron.sim import tracegen
from smartcron.sim.familylaws import Cause, Columns, draw_causes
from smartcron.sim.trace import read_trace
from smartcron.sim.tracekinds import Machine

KINDS = ("laptop", "desktop", "server")
_TRACE_KIND = {"laptop": "laptop", "desktop": "workstation", "server": "server"}
_CORES = {"laptop": (4, 8, 8, 12), "desktop": (8, 12, 16, 24), "server": (8, 16, 32)}
_WORKDAYS = ((0, 1, 2, 3, 4),) * 4 + ((1, 2, 3, 4, 5), (0, 1, 2, 3, 4, 5), (6, 0, 1, 2, 3))
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_NAMES = (
    "backup", "photo_sync", "mail_index", "updatedb", "build_cache", "thumbnails",
    "vacuum_db", "mirror_repo", "scrub", "report", "log_compress", "virus_scan",
    "fetch_feeds", "dedupe", "sync_notes", "podcast_fetch",
)  # fmt: skip
_PLAIN = (
    "*/10 * * * * $HOME/bin/fetch-mail >/dev/null 2>&1",
    "0 8 * * 1-5 $HOME/bin/morning-digest",
    "*/5 * * * * $HOME/bin/heartbeat",
    "@daily $HOME/bin/rotate-notes",
    "20 * * * * $HOME/bin/check-vpn",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One generated scenario: where its files are and what it is."""

    seed: int
    kind: str  # laptop, desktop or server
    crontab: Path
    world: Path
    trace: Path
    description: str


@dataclass(frozen=True, slots=True)
class _Job:
    name: str
    line: str  # the crontab's time fields
    smart: str  # the #@smart line
    runtime_min: int
    cpu: float
    slowdown: float
    base_fail: float
    causes: tuple[Cause, ...]


def generate(seed: int, out_dir: Path, *, days: int = 56) -> Member:
    """Write ``crontab``, ``world.yaml`` and ``trace.csv.gz`` into `out_dir` for `seed`."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = rng.choice(("laptop", "laptop", "desktop", "desktop", "server"))
    machine, power = _machine(rng, kind)
    trace_seed = rng.randrange(1 << 30)
    trace_path = out_dir / "trace.csv.gz"
    rows = tracegen.generate(_TRACE_KIND[kind], tracegen.DEFAULT_START, days, trace_seed, machine)
    tracegen.write_csv(rows, trace_path)
    cols = Columns(read_trace(trace_path))
    job_load = rng.random() < 0.5
    names = rng.sample(_NAMES, rng.randint(4, 8))
    noise = set(rng.sample(names, rng.choice((0, 1, 1, 2) if len(names) >= 6 else (0, 1))))
    jobs = [_job(rng, name, name in noise, cols, machine, power) for name in names]
    plain = rng.sample(_PLAIN, rng.randint(1, 3))
    cores = machine.cores or 8
    workdays = "-".join(_DAYS[d] for d in (machine.workdays[0], machine.workdays[-1]))
    fill = f", filling {machine.disk_fill:g} %/day" if machine.disk_fill else ""
    description = (
        f"seed {seed}: {kind} ({cores} cores, {power}), user {machine.shift / 60:+.1f} h,"
        f" works {workdays}, demand x{machine.intensity:g}, RAM {machine.ram:+g},"
        f" disk {machine.disk:g} %{fill}; job load {'on' if job_load else 'off'};"
        f" {len(jobs)} smart jobs ({len(noise)} pure noise), {len(plain)} plain"
    )
    header = (
        f"# Scenario family member {seed} (smartcron.sim.family): {description}\n"
        f"# trace: trace.csv.gz, kind {_TRACE_KIND[kind]}, trace seed {trace_seed},"
        f" {days} days from {tracegen.DEFAULT_START:%Y-%m-%d}\n"
    )
    crontab, world = out_dir / "crontab", out_dir / "world.yaml"
    crontab.write_text(header + _crontab_text(jobs, plain), encoding="utf-8")
    world.write_text(header + _world_text(rng, jobs, cores, job_load), encoding="utf-8")
    return Member(
        seed=seed,
        kind=kind,
        crontab=crontab,
        world=world,
        trace=trace_path,
        description=description,
    )


def _machine(rng: random.Random, kind: str) -> tuple[Machine, str]:
    """The machine's knobs, and its power supply in words."""
    shift = 15 * rng.randint(-12, 16)  # -3 h (early bird) .. +4 h (night owl)
    ups = kind == "desktop" and rng.random() < 0.4
    power = {"laptop": "battery", "desktop": "UPS" if ups else "mains", "server": "mains"}
    filling = rng.random() < 0.4
    machine = Machine(
        cores=rng.choice(_CORES[kind]),
        shift=shift,
        workdays=rng.choice(_WORKDAYS),
        intensity=round(rng.uniform(0.6, 1.6), 2),
        ram=round(rng.uniform(-5.0, 25.0), 1),
        disk=round(rng.uniform(15.0, 60.0), 1),
        disk_fill=round(rng.uniform(0.1, 0.6), 2) if filling else 0.0,
        ups=ups,
    )
    return machine, power[kind]


def _schedule(rng: random.Random) -> tuple[str, list[int], int, int]:
    """Cron time fields, the minutes of day it fires at, its weekday (-1: any) and the
    longest sensible window in minutes."""
    minute = rng.choice((0, 5, 10, 15, 20, 30, 40, 45))
    shape = rng.choice(("hourly", "every", "every", "daily", "daily", "daily", "weekly"))
    if shape == "hourly":
        return f"{minute} * * * *", [h * 60 + minute for h in range(24)], -1, 50
    if shape == "every":
        step = rng.randint(2, 6)
        hours = list(range(0, 24, step))
        return f"{minute} */{step} * * *", [h * 60 + minute for h in hours], -1, step * 60 - 15
    hour = rng.randint(0, 23)
    if shape == "daily":
        return f"{minute} {hour} * * *", [hour * 60 + minute], -1, 600
    day = rng.randint(0, 6)  # Python's weekday; cron counts from Sunday
    return f"{minute} {hour} * * {(day + 1) % 7}", [hour * 60 + minute], day, 600


def _windows(cols: Columns, at: list[int], weekday: int, length: int) -> list[range]:
    """Sampled firings' windows as minute ranges of the trace (it starts on a Monday)."""
    starts = [
        day * 1440 + mod
        for day in range(cols.minutes // 1440)
        for mod in at
        if weekday < 0 or day % 7 == weekday
    ]
    if not starts:  # a trace shorter than a week: the other days stand in
        starts = [day * 1440 + mod for day in range(cols.minutes // 1440) for mod in at]
    step = max(1, len(starts) // 40)
    return [range(s, min(s + length + 1, cols.minutes)) for s in starts[::step]]


def _job(
    rng: random.Random, name: str, noise: bool, cols: Columns, machine: Machine, power: str
) -> _Job:
    line, at, weekday, longest = _schedule(rng)
    window = int(math.exp(rng.uniform(math.log(15), math.log(longest))))
    runtime = rng.randint(1, max(1, min(60, longest // 4, window)))
    cpu = round(rng.uniform(0.2, min(4.0, machine.cores or 8)), 1)
    battery = power != "mains"
    causes = (
        []
        if noise
        else draw_causes(rng, cols, _windows(cols, at, weekday, window), battery=battery)
    )
    keys = [f"name={name}", _window_key(rng, line, window)]
    named = _constraint(rng.choice(causes)) if len(causes) >= 2 else None
    if named:
        keys.append(named)  # part of the causes only: the model has the rest to find
    if rng.random() < 0.15:
        keys.append(f"max_load={rng.choice((4, 6, 8)) * (machine.cores or 8) // 8}")
    if rng.random() < 0.3:
        keys.append(f"timeout={math.ceil(runtime * rng.uniform(1.5, 3.0))}m")
    if window >= 45 and rng.random() < 0.3:
        keys.append(f"retry={rng.randint(1, 2)} retry_delay={rng.randint(5, 20)}m")
    return _Job(
        name=name,
        line=line,
        smart=" ".join(keys),
        runtime_min=runtime,
        cpu=cpu,
        slowdown=round(rng.uniform(0.0, 0.5), 2),
        base_fail=round(rng.uniform(0.0, 0.04), 3),
        causes=tuple(causes),
    )


def _window_key(rng: random.Random, line: str, window: int) -> str:
    """``window=Nm``, or for a daily job with a long window now and then a clock window
    opening at its nominal hour (the same span, written as the clock reads it)."""
    fields = line.split()
    if fields[1].isdigit() and window >= 120 and rng.random() < 0.3:
        hour = int(fields[1])
        close = (hour + window // 60) % 24
        return f"window={hour:02d}:00-{close:02d}:00"
    return f"window={window}m"


def _constraint(cause: Cause) -> str | None:
    """The #@smart hard constraint that states `cause`, if one can."""
    cond = cause.when[0]
    if cond.column == "load5":
        return f"max_load={cond.value:g}"
    if cond.column == "ram_percent":
        return f"max_ram={cond.value:g}%"
    if cond.column == "disk_free_percent":
        return f"min_disk={cond.value:g}"
    if cond.column == "on_ac":
        return "ac=yes"
    if cond.column == "battery_percent":
        return f"min_battery={cond.value:g}"
    if cond.column == "idle_seconds":
        return f"idle={math.ceil(cond.value / 60)}m"
    return None  # hour, weekday, load1: no constraint says it


def _crontab_text(jobs: list[_Job], plain: list[str]) -> str:
    lines = ["SHELL=/bin/sh", "PATH=/usr/local/bin:/usr/bin:/bin", 'MAILTO=""', ""]
    lines += ["# plain cron lines: never gated", *plain, "", "# smart jobs"]
    for job in jobs:
        lines += [f"#@smart {job.smart}", f"{job.line} $HOME/bin/{job.name.replace('_', '-')}"]
    return "\n".join(lines) + "\n"


def _world_text(rng: random.Random, jobs: list[_Job], cores: int, job_load: bool) -> str:
    out = [f"seed: {rng.randrange(1000)}", "active_idle_below: 60", "timezone: UTC"]
    if job_load:
        out.append(f"machine: {{cores: {cores}, job_load: true}}")
    out.append("jobs:")
    for job in jobs:
        out += [
            f"  {job.name}:",
            f"    runtime: {job.runtime_min}m",
            f"    cpu: {job.cpu:g}",
            f"    slowdown_per_load: {job.slowdown:g}",
            f"    base_fail: {job.base_fail:g}",
        ]
        if job.causes:
            out += ["    fail:", *(cause.yaml() for cause in job.causes)]
        else:
            out.append("    # pure noise: no state explains its failures")
    return "\n".join(out) + "\n"
