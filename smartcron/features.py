"""The model's inputs (SPEC 6): one fixed-width vector per evaluation.

`features()` is the only place a vector is built: training, the simulator and the
daemon all call it, so what the model learnt from is what it is asked about. A job's
past enters only through `JobStats`, built by `job_stats()` from runs that *ended
strictly before* the decision instant: a run still going, or one that ends at the
instant itself, tells nothing yet (no leakage from the future into a decision).

Numbers only, never NaN: an absent battery is 100 % with ``has_battery = 0``, an
unknown idle time is 0 s with ``idle_known = 0``, a job without history gets neutral
values with ``runs = 0``. Pure: no clock, no I/O, no pandas or scikit-learn.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from smartcron.monitor import Snapshot

# The order is the model's contract: the card lists it and load_model compares.
FEATURES: tuple[str, ...] = (
    "load1",
    "load5",
    "cpu_percent",
    "ram_percent",
    "battery_percent",  # 100 when there is no battery
    "has_battery",
    "charging",
    "on_ac",
    "idle_log1p",  # log1p(idle seconds): minutes matter near 0, hours do not
    "idle_known",
    "disk_free_percent",
    "hour",  # local hour 0-23 (trees split it directly)
    "hour_sin",
    "hour_cos",
    "weekday",  # 0 = Monday
    "last_ok",  # the job's last finished run: 1 ok, 0 failed, 0.5 none yet
    "success_rate",  # over its last RECENT_RUNS finished runs (0.5 with none)
    "runs",  # how many of those there are (0..RECENT_RUNS)
    "runtime_log1p",  # log1p(mean runtime s of those runs): also tells jobs apart
    "minutes_late",  # minutes since the nominal time
)
RECENT_RUNS = 10
_TAU = 2.0 * math.pi


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One finished run, as the model sees a job's past."""

    ended: datetime
    ok: bool  # exit 0 and no timeout
    runtime_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    """A job's recent record at one instant (see `job_stats`)."""

    last_ok: bool | None = None
    success_rate: float | None = None
    runs: int = 0
    mean_runtime_s: float | None = None


NO_STATS = JobStats()


def job_stats(outcomes: Sequence[Outcome], before: datetime, n: int = RECENT_RUNS) -> JobStats:
    """Stats of the last `n` runs in `outcomes` (sorted by `ended`) that ended < `before`."""
    cut = bisect.bisect_left(outcomes, before, key=lambda o: o.ended)
    recent = outcomes[max(0, cut - n) : cut]
    if not recent:
        return NO_STATS
    times = [o.runtime_s for o in recent if o.runtime_s is not None]
    return JobStats(
        last_ok=recent[-1].ok,
        success_rate=sum(o.ok for o in recent) / len(recent),
        runs=len(recent),
        mean_runtime_s=sum(times) / len(times) if times else None,
    )


def _flag(value: bool | None, default: float) -> float:
    return default if value is None else float(value)


def features(
    snap: Snapshot, stats: JobStats, nominal: datetime, now: datetime, *, tz: tzinfo = UTC
) -> list[float]:
    """The vector for deciding at `now` about the firing nominally at `nominal`.

    `tz` is the zone hour and weekday are read in (the model card's ``timezone``).
    """
    local = now.astimezone(tz)
    hour = local.hour + local.minute / 60.0
    battery = snap.battery_percent
    idle = snap.idle_seconds
    runtime = stats.mean_runtime_s
    return [
        snap.load1,
        snap.load5,
        snap.cpu_percent,
        snap.ram_percent,
        100.0 if battery is None else battery,
        0.0 if battery is None else 1.0,
        _flag(snap.charging, 0.0),
        _flag(snap.on_ac, 1.0 if battery is None else 0.0),
        0.0 if idle is None else math.log1p(max(0.0, idle)),
        0.0 if idle is None else 1.0,
        100.0 if snap.disk_free_percent is None else snap.disk_free_percent,
        float(local.hour),
        math.sin(_TAU * hour / 24.0),
        math.cos(_TAU * hour / 24.0),
        float(local.weekday()),
        _flag(stats.last_ok, 0.5),
        0.5 if stats.success_rate is None else stats.success_rate,
        float(stats.runs),
        0.0 if runtime is None else math.log1p(max(0.0, runtime)),
        (now - nominal).total_seconds() / 60.0,
    ]


def hour_of_week(at: datetime, tz: tzinfo = UTC) -> int:
    """0 (Monday 00:xx) .. 167 (Sunday 23:xx), in `tz`."""
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


def active_table(
    samples: Iterable[tuple[datetime | None, float | None]],
    tz: tzinfo,
    idle_below: float,
    prior: float = 2.0,
) -> list[float]:
    """P(user active: idle < `idle_below` s) per hour of week from (instant, idle s)
    samples, one per minute, shrunk towards the overall share where samples are few."""
    seen: dict[datetime, float] = {}
    for at, idle in samples:
        if at is not None and idle is not None:
            seen.setdefault(at.replace(second=0, microsecond=0), idle)
    counts, actives = [0] * 168, [0] * 168
    for at, idle in seen.items():
        how = hour_of_week(at, tz)
        counts[how] += 1
        actives[how] += idle < idle_below
    share = sum(actives) / sum(counts) if seen else 0.5
    return [
        round((a + prior * share) / (n + prior), 4) for a, n in zip(actives, counts, strict=True)
    ]
