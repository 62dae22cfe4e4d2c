"""The model's inputs (SPEC 6): one fixed-width vector per evaluation.

`features()` is the only place a vector is built: training, the simulator and the
daemon all call it, so what the model learnt from is what it is asked about. A job's
past enters only through `JobHistoryStats` (smartcron.ai.jobstats), built from runs that
*ended strictly before* the decision instant: a run still going, or one that ends at the
instant itself, tells nothing yet (no leakage from the future into a decision).

Numbers only, never NaN: an absent battery is 100 % with ``has_battery = 0``, an
unknown idle time is 0 s with ``idle_known = 0``, a job without history gets neutral
values with ``runs = 0``. Pure: no clock, no I/O, no pandas or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from smartcron.ai.forecasting import Forecaster as Forecaster
from smartcron.ai.forecasting import amended as amended
from smartcron.ai.forecasting import forecast as forecast
from smartcron.ai.forecasting import p_active_at as p_active_at
from smartcron.ai.forecasting import quieter as quieter
from smartcron.ai.forecasting import quieter_values as quieter_values
from smartcron.ai.jobstats import NO_STATS as NO_STATS  # re-exported: the features' inputs
from smartcron.ai.jobstats import RECENT_RUNS as RECENT_RUNS
from smartcron.ai.jobstats import JobHistoryStats as JobHistoryStats
from smartcron.ai.jobstats import RunOutcome as RunOutcome
from smartcron.ai.jobstats import job_stats as job_stats
from smartcron.ai.profile import MINUTE_PRIOR as MINUTE_PRIOR  # re-exported (profile.py)
from smartcron.ai.profile import PROFILE_PRIOR as PROFILE_PRIOR
from smartcron.ai.profile import PROFILED as PROFILED
from smartcron.ai.profile import Profile as Profile
from smartcron.ai.profile import active_table as active_table
from smartcron.ai.profile import hour_of_week as hour_of_week
from smartcron.ai.profile import state_profile as state_profile
from smartcron.smart.monitor import Snapshot

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
    # the job's identity, partially pooled (see time_rows): its success rate at the hour
    # and weekday of `now` (the slot's, not the firing's), the runs behind the hour's
    # estimate, and its overall rate over the last LOOKBACK_RUNS
    "job_hour_rate",
    "job_weekday_rate",
    "job_hour_runs_log1p",
    "job_rate",
    # cores of the other smart runs starting in the same minute: the plan's at decision
    # time, in training those started after the decision's snapshot (plan.StartLog). A
    # wake-up decides its firings on one snapshot, which cannot show them yet; their load
    # is added to the load columns by the machine's load share (loadshare), and the
    # cores stay here: the model learns from the runs whether they matter.
    "starting_cores",
)
# Partial pooling: rate = (ok + k * parent) / (n + k), SHRINK_RUNS = k pseudo-runs: a job
# with 4 runs in an hour stays near its overall rate, one with 400 is trusted. k was tried
# at 1, 3, 10, 30 on the laptop fixture's training days only (14 + 14, cron's and an
# exploring history): the smart policy's not-done is the same for all (28 of 66 with
# cron's; 25-26 exploring), holdout PR-AUC best near 10. So 10: an hour's own record
# outweighs the job's after ~10 runs there. PRIOR_RATE: no history; most runs succeed.
SHRINK_RUNS = 10.0
PRIOR_RATE = 0.9
_TAU = 2.0 * math.pi


def _flag(value: bool | None, default: float) -> float:
    return default if value is None else float(value)


def features(
    snap: Snapshot,
    stats: JobHistoryStats,
    nominal: datetime,
    now: datetime,
    *,
    tz: tzinfo = UTC,
    starting: float = 0.0,
) -> list[float]:
    """The vector for deciding at `now` about the firing nominally at `nominal`.

    `tz` is the zone hour and weekday are read in (the model card's ``timezone``);
    `starting`: the cores of the other smart runs starting in the same minute.
    """
    return state_features(snap) + time_features(stats, nominal, now, tz, starting)


def state_features(snap: Snapshot) -> list[float]:
    """The first part of `features`: the machine's state (FEATURES up to
    disk_free_percent). The advisor scores two states per slot, active and away, with one
    `time_features` for both."""
    return state_row(
        snap, snap.load1, snap.load5, snap.cpu_percent, snap.ram_percent, snap.idle_seconds
    )


def state_row(
    snap: Snapshot, load1: float, load5: float, cpu: float, ram: float, idle: float | None
) -> list[float]:
    """`state_features` of `snap` with these loads, CPU, RAM and idle time: the row of a
    forecast state without building it (scoring: a decision scores about 30)."""
    battery = snap.battery_percent
    return [
        load1,
        load5,
        cpu,
        ram,
        100.0 if battery is None else battery,
        0.0 if battery is None else 1.0,
        _flag(snap.charging, 0.0),
        _flag(snap.on_ac, 1.0 if battery is None else 0.0),
        *idle_columns(idle),
        100.0 if snap.disk_free_percent is None else snap.disk_free_percent,
    ]


def idle_columns(idle: float | None) -> tuple[float, float]:
    """idle_log1p and idle_known of an idle time in seconds (None: no idle source)."""
    return (0.0, 0.0) if idle is None else (math.log1p(max(0.0, idle)), 1.0)


def time_features(
    stats: JobHistoryStats,
    nominal: datetime,
    now: datetime,
    tz: tzinfo = UTC,
    starting: float = 0.0,
) -> list[float]:
    """The rest of `features`: the clock at `now`, the job's record and the runs starting
    beside it (FEATURES from hour on)."""
    return time_rows(stats, nominal, (now,), tz, (starting,))[0]


def time_rows(
    stats: JobHistoryStats,
    nominal: datetime,
    instants: Sequence[datetime],
    tz: tzinfo = UTC,
    starting: Sequence[float] = (),
) -> list[list[float]]:
    """`time_features` at each of `instants` (with the cores `starting` then, 0 where
    not given): what the record alone gives is found once, as a decision asks about a
    dozen slots. The job's rates: the overall one shrunk toward PRIOR_RATE, the hour's
    and the weekday's toward it."""
    k = SHRINK_RUNS
    overall = (stats.total_ok + k * PRIOR_RATE) / (stats.total_runs + k)
    runtime = stats.mean_runtime_s
    record = (
        _flag(stats.last_ok, 0.5),
        0.5 if stats.success_rate is None else stats.success_rate,
        float(stats.runs),
        0.0 if runtime is None else math.log1p(max(0.0, runtime)),
    )
    hour_ok, hour_runs = stats.hour_ok, stats.hour_runs
    day_ok, day_runs = stats.weekday_ok, stats.weekday_runs
    cores = list(starting) + [0.0] * (len(instants) - len(starting))
    rows = []
    for now, c in zip(instants, cores, strict=True):
        local = now.astimezone(tz)
        h, d = local.hour, local.weekday()
        hour = h + local.minute / 60.0
        rows.append(
            [
                float(h),
                math.sin(_TAU * hour / 24.0),
                math.cos(_TAU * hour / 24.0),
                float(d),
                *record,
                (now - nominal).total_seconds() / 60.0,
                (hour_ok[h] + k * overall) / (hour_runs[h] + k),
                (day_ok[d] + k * overall) / (day_runs[d] + k),
                math.log1p(hour_runs[h]),
                overall,
                max(0.0, c),
            ]
        )
    return rows
