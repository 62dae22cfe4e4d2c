"""The machine's rhythm (SPEC 6; split from features.py).

`state_profile` learns a `Profile` from the history's snapshots at training time (it is
stored in the model card); forecasting.py forecasts a later slot from it. `hour_of_week`
and `active_table` (P(user active) by hour of week) are shared with training.
features.py re-exports every public name, so `smartcron.ai.features.Profile` and the
like keep working.
Pure: no clock, no I/O, no pandas or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from itertools import pairwise

import numpy as np

from smartcron.ai.activity import MIN_SAMPLES, ActivityForecast, fit
from smartcron.ai.activity import active_table as active_table  # re-exported
from smartcron.ai.activity import hour_of_week as hour_of_week
from smartcron.smart.monitor import Snapshot

# ------------------------------------------------------------------ the rhythm
#
# The advisor scores later slots of a window. What the machine will look like then is
# not known at decision time; `Profile` is what the history taught about its rhythm
# (learnt by `state_profile` at training time, stored in the model card): per column a
# level by hour of week plus an offset by minute of hour, how long a departure from that
# level persists (`tau_min`), and P(user active) by hour of week. forecasting.py combines
# them with the current snapshot.

PROFILED: tuple[str, ...] = ("load1", "load5", "cpu_percent", "ram_percent")
PROFILE_PRIOR = 2.0  # pseudo-samples: a level with few samples leans on the coarser one
# A minute-of-hour offset is a mean of contrasts within hours (_minute_offsets), shrunk
# towards 0 by this many: a real pattern is seen every hour (a :00 spike, 600 samples in
# 28 days), noise is what a few dozen waiting firings happened to see (issue 13, round 3)
MINUTE_PRIOR = 30.0
MAX_LAG_MIN = 240.0  # anomaly persistence is measured on sample pairs up to this far apart
_LAG_BIN_MIN = 5.0
_TAUS = tuple(round(1.0 * 1.15**k, 3) for k in range(60))  # 1 min .. ~2.8 days
# The forecast's spread is scored in this many equal shares of the departures (a calm,
# a usual and a busy third: forecasting.binned); each share costs two rows per slot.
BINS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The machine's rhythm, as learnt from the history's snapshots (see module notes)."""

    hour_of_week: dict[str, list[float]]  # PROFILED column -> 168 levels
    minute_of_hour: dict[str, list[float]]  # PROFILED column -> 60 offsets
    tau_min: dict[str, float]  # PROFILED columns and "active": persistence, minutes
    active: list[float]  # 168: P(user active)
    idle_below: float  # seconds: what counts as active
    active_idle_s: float  # a typical idle time while active
    # PROFILED column -> how far below its level a quiet minute is (the 16th percentile of
    # the departures, as a depth; {}: unknown, an older card)
    spread: dict[str, float] = field(default_factory=dict)
    # P(active later) by how long the user has been away, from the presence samples
    # (activity.py; None: a history without them, or an older card)
    activity: ActivityForecast | None = None
    # PROFILED column -> the mean departure in each of BINS equal shares of the
    # departures, lowest first ({}: unknown, an older card)
    bins: dict[str, list[float]] = field(default_factory=dict)
    # for forecasting.binned, found once: the bins (bins x PROFILED) and each column's
    # 2 / tau (a departure's variance grows as 1 - exp(-2 lead / tau); no tau learnt:
    # at once). None without bins.
    bin_table: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # hour_of_week and minute_of_hour as arrays (PROFILED x 168, x 60), found once: a
    # forecast looks a decision's slots up in one pass (forecasting.Forecaster.many)
    level_tables: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_hour, by_minute = (np.asarray([table[c] for c in PROFILED], np.float64)
                              for table in (self.hour_of_week, self.minute_of_hour))  # fmt: skip
        object.__setattr__(self, "level_tables", (by_hour, by_minute))
        if self.bins:
            table = np.asarray([self.bins[c] for c in PROFILED], np.float64).T
            taus = [self.tau_min[c] for c in PROFILED]
            rate = np.asarray([2.0 / t if t > 0 else 1e9 for t in taus], np.float64)
            object.__setattr__(self, "bin_table", (table, rate))

    @property
    def bin_count(self) -> int:
        """How many shares of the departures the forecast's spread is scored in (1: none)."""
        return len(self.bins["load1"]) if self.bins else 1

    def level(self, column: str, at: datetime, tz: tzinfo) -> float:
        return self.level_local(column, at.astimezone(tz))

    def level_local(self, column: str, local: datetime) -> float:
        """`level` at a time already in the card's zone (a forecast converts once)."""
        how = local.weekday() * 24 + local.hour
        return self.hour_of_week[column][how] + self.minute_of_hour[column][local.minute]

    def p_active(self, at: datetime, tz: tzinfo) -> float:
        return self.active[hour_of_week(at, tz)]

    def to_dict(self) -> dict:
        return {
            "columns": list(PROFILED),
            "hour_of_week": self.hour_of_week,
            "minute_of_hour": self.minute_of_hour,
            "tau_min": self.tau_min,
            "idle_below_s": self.idle_below,
            "active_idle_s": self.active_idle_s,
            "spread": self.spread,
            "bins": self.bins,
        } | ({"activity": self.activity.to_dict()} if self.activity is not None else {})

    @classmethod
    def from_dict(cls, data: dict, active: Sequence[float]) -> Profile:
        """From the card's ``profile`` (and its ``active`` table); ValueError if malformed."""
        if list(data["columns"]) != list(PROFILED):
            raise ValueError(f"profile.columns: {list(PROFILED)} expected")
        how = {c: [float(v) for v in data["hour_of_week"][c]] for c in PROFILED}
        moh = {c: [float(v) for v in data["minute_of_hour"][c]] for c in PROFILED}
        tau = {c: float(data["tau_min"][c]) for c in (*PROFILED, "active")}
        values = [v for c in PROFILED for v in (*how[c], *moh[c])] + list(tau.values())
        if any(len(how[c]) != 168 or len(moh[c]) != 60 for c in PROFILED):
            raise ValueError("profile: 168 hour-of-week levels and 60 minute offsets expected")
        if not all(math.isfinite(v) for v in values) or min(tau.values()) < 0:
            raise ValueError("profile: non-finite value or negative persistence")
        return cls(
            hour_of_week=how,
            minute_of_hour=moh,
            tau_min=tau,
            active=[float(v) for v in active],
            idle_below=float(data["idle_below_s"]),
            active_idle_s=float(data["active_idle_s"]),
            spread={
                c: max(0.0, float(v)) for c, v in data.get("spread", {}).items() if c in PROFILED
            },
            activity=ActivityForecast.from_dict(data["activity"]) if "activity" in data else None,
            bins=_bins_from(data.get("bins", {})),
        )


def _bins_from(data: dict) -> dict[str, list[float]]:
    """The card's ``bins`` ({} for an older card); ValueError if malformed."""
    if not data:
        return {}
    bins = {c: [float(v) for v in data[c]] for c in PROFILED}
    if len({len(v) for v in bins.values()}) != 1 or len(bins["load1"]) < 2:
        raise ValueError("profile.bins: as many shares (two or more) for every column expected")
    if not all(math.isfinite(v) for vs in bins.values() for v in vs):
        raise ValueError("profile.bins: non-finite value")
    return bins


def state_profile(
    snaps: Iterable[Snapshot],
    tz: tzinfo,
    idle_below: float,
    prior: float = PROFILE_PRIOR,
    presence: Sequence[tuple[datetime, float]] = (),
) -> Profile:
    """Learn a Profile from snapshots (one per minute counts; any order).

    Levels: hour-of-week means shrunk towards hour-of-day means (themselves shrunk to the
    overall mean) by `prior` pseudo-samples, fitted jointly with minute-of-hour offsets
    (three back-fitting rounds; offsets shrunk towards 0; a minute never seen takes the
    median offset of the minutes seen: a typical minute). Persistence: the correlation
    of departures from the levels between sample pairs, binned by lag up to MAX_LAG_MIN, fitted by
    exp(-lag / tau) (least squares over a fixed grid of tau, weighted by pair counts).
    `presence`: the history's (instant, idle s) samples; with MIN_SAMPLES or more, P(user
    active) by hour of week and the activity forecast (activity.py) are learnt from them.
    """
    seen: dict[datetime, Snapshot] = {}
    for snap in snaps:
        seen.setdefault(snap.at.replace(second=0, microsecond=0), snap)
    ordered = [seen[k] for k in sorted(seen)]
    keys = []
    for s in ordered:
        local = s.at.astimezone(tz)
        hour = local.toordinal() * 24 + local.hour  # this hour of this day: a cluster
        keys.append((local.weekday() * 24 + local.hour, local.hour, local.minute, hour))
    how_tab: dict[str, list[float]] = {}
    moh_tab: dict[str, list[float]] = {}
    departures: dict[str, list[float]] = {}
    for column in PROFILED:
        xs = [float(getattr(s, column)) for s in ordered]
        how, moh = _backfit(xs, keys, prior)
        how_tab[column], moh_tab[column] = how, moh
        departures[column] = [x - how[k[0]] - moh[k[2]] for x, k in zip(xs, keys, strict=True)]
    idle = [(s.at, s.idle_seconds) for s in ordered]
    # the presence samples, when the history has enough: an unbiased sample of the day
    unbiased = len(presence) >= MIN_SAMPLES
    seen_active = active_table(idle, tz, idle_below, prior)
    active = active_table(presence, tz, idle_below, prior) if unbiased else seen_active
    known = [
        (s, k, s.idle_seconds)
        for s, k in zip(ordered, keys, strict=True)
        if s.idle_seconds is not None
    ]
    # the snapshots' departures from their own table: from the samples' table, the
    # snapshots' bias (more often active) would read as a persistent departure
    acts = [float(idle < idle_below) - seen_active[k[0]] for _, k, idle in known]
    tau = {c: _persistence(ordered, departures[c]) for c in PROFILED}
    tau["active"] = _persistence([s for s, _, _ in known], acts)
    while_active = sorted(idle for _, _, idle in known if idle < idle_below)
    typical = while_active[len(while_active) // 2] if while_active else idle_below / 4
    return Profile(
        hour_of_week={c: [round(v, 4) for v in how_tab[c]] for c in PROFILED},
        minute_of_hour={c: [round(v, 4) for v in moh_tab[c]] for c in PROFILED},
        tau_min={c: round(v, 3) for c, v in tau.items()},
        spread={c: round(_quiet_depth(departures[c]), 4) for c in PROFILED},
        bins={c: [round(v, 4) for v in _bin_means(departures[c])] for c in PROFILED}
        if len(ordered) >= BINS
        else {},
        active=active,
        idle_below=float(idle_below),
        active_idle_s=float(typical),
        activity=fit(presence, lambda at: active[hour_of_week(at, tz)], idle_below)
        if unbiased
        else None,
    )


def _backfit(
    xs: Sequence[float], keys: Sequence[tuple[int, int, int, int]], prior: float
) -> tuple[list[float], list[float]]:
    """Hour-of-week levels and minute-of-hour offsets (see state_profile)."""
    overall = sum(xs) / len(xs) if xs else 0.0
    moh = [0.0] * 60
    how = [overall] * 168
    for _ in range(3):
        by_hod: dict[int, list[float]] = {}
        by_how: dict[int, list[float]] = {}
        for x, (w, h, m, _) in zip(xs, keys, strict=True):
            by_hod.setdefault(h, []).append(x - moh[m])
            by_how.setdefault(w, []).append(x - moh[m])
        hod = [_shrunk(by_hod.get(h, []), overall, prior) for h in range(24)]
        how = [_shrunk(by_how.get(w, []), hod[w % 24], prior) for w in range(168)]
        raw = _minute_offsets(xs, keys, how, prior)
        typical = sorted(raw.values())[len(raw) // 2] if raw else 0.0
        moh = [raw.get(m, typical) for m in range(60)]
    return how, moh


def _minute_offsets(
    xs: Sequence[float], keys: Sequence[tuple[int, int, int, int]], how: list[float], prior: float
) -> dict[int, float]:
    """Minute-of-hour offsets from contrasts within each hour of each day (a minute's
    departure less the mean departure of that hour's samples), shrunk towards 0.

    The snapshots a history holds are those of decisions: taken while some firing waits,
    often because the load is high (a max_load holds it), so which minutes are sampled
    depends on the state. Offsets from whole departures learnt that selection (on
    development seed 9, +1.3 load at :02 and -1.1 at :08 where the trace's own minute
    pattern is under 0.1), and the forecast moved the load by their difference. Within
    an hour the departure persists (tau is near an hour), so a contrast keeps a real
    minute pattern (a :00 spike) and cancels the day's level; an hour with one sample
    tells nothing about minutes."""
    by_hour: dict[int, list[tuple[int, float]]] = {}
    for x, (w, _, m, c) in zip(xs, keys, strict=True):
        by_hour.setdefault(c, []).append((m, x - how[w]))
    by_m: dict[int, list[float]] = {}
    for samples in by_hour.values():
        if len(samples) < 2:
            continue
        mean = sum(r for _, r in samples) / len(samples)
        for m, r in samples:
            by_m.setdefault(m, []).append(r - mean)
    return {m: _shrunk(values, 0.0, MINUTE_PRIOR) for m, values in by_m.items()}


def _quiet_depth(departures: Sequence[float]) -> float:
    """How far below its level a column goes one minute in six (the 16th percentile of
    its departures, as a depth >= 0): a mean-centred level sits above the quiet minutes
    of a spiky column, which a standard deviation would not show."""
    if not departures:
        return 0.0
    ordered = sorted(departures)
    return max(0.0, -ordered[int(0.1587 * (len(ordered) - 1))])


def _bin_means(departures: Sequence[float], bins: int = BINS) -> list[float]:
    """The mean departure in each of `bins` equal shares of the sorted departures (at
    least `bins` of them): unlike quantiles, the shares' means keep the forecast's mean."""
    ordered = sorted(departures)
    n = len(ordered)
    cuts = [round(n * k / bins) for k in range(bins + 1)]
    return [sum(ordered[a:b]) / (b - a) for a, b in pairwise(cuts)]


def _shrunk(values: Sequence[float], towards: float, prior: float) -> float:
    return (sum(values) + prior * towards) / (len(values) + prior)


def _persistence(snaps: Sequence[Snapshot], departures: Sequence[float]) -> float:
    """tau (minutes) of exp(-lag / tau) fitted to the lag-binned correlation of departures."""
    bins = int(MAX_LAG_MIN / _LAG_BIN_MIN)
    prod, sq_a, sq_b, count = [0.0] * bins, [0.0] * bins, [0.0] * bins, [0] * bins
    times = [s.at.timestamp() / 60.0 for s in snaps]
    for i, (t, a) in enumerate(zip(times, departures, strict=True)):
        for j in range(i + 1, len(times)):
            lag = times[j] - t
            if lag > MAX_LAG_MIN:
                break
            b = min(bins - 1, int(lag // _LAG_BIN_MIN))
            d = departures[j]
            prod[b] += a * d
            sq_a[b] += a * a
            sq_b[b] += d * d
            count[b] += 1
    points = [
        ((b + 0.5) * _LAG_BIN_MIN, prod[b] / math.sqrt(sq_a[b] * sq_b[b]), count[b])
        for b in range(bins)
        if count[b] and sq_a[b] > 0 and sq_b[b] > 0
    ]
    if not points:
        return 0.0

    def loss(tau: float) -> float:
        return sum(n * (r - math.exp(-lag / tau)) ** 2 for lag, r, n in points)

    return min(_TAUS, key=loss)
