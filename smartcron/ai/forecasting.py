"""The state forecast at a later slot of a window (SPEC 6; split from profile.py).

`forecast` (and `Forecaster`, for one snapshot at many slots), `p_active_at` (and
`ActiveChance`) and `quieter` give the advisor the state expected at a later slot from
the snapshot taken now and the machine's rhythm (`profile.Profile`, learnt at training
time): level(slot) + (now - level(now)) * exp(-lead / tau) per profiled column; battery,
AC, charging and disk held as they are now. features.py re-exports the public names.
Pure: no clock, no I/O, no pandas or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import numpy as np

from smartcron.ai.activity import Cell, hour_of_week, p_from_row
from smartcron.ai.profile import PROFILED, Profile
from smartcron.smart.monitor import Snapshot

_UPPER = {"cpu_percent": 100.0, "ram_percent": 100.0}  # percent columns stop at 100
_UPPERS = np.asarray([_UPPER.get(c, np.inf) for c in PROFILED])


def _decay(lead_min: float, tau: float) -> float:
    return math.exp(-lead_min / tau) if tau > 0 else 0.0


def p_active_at(
    profile: Profile, snap: Snapshot, at: datetime, tz: tzinfo, *, active_now: bool | None = None
) -> float:
    """P(user active at `at`) given the snapshot taken now: the hour-of-week share, plus
    the current departure from it decaying with the lead time. `active_now`: as if the
    user were (True) or were not active now, whatever the snapshot's idle time says."""
    return ActiveChance(profile, snap, tz, active_now=active_now)(at)


class ActiveChance:
    """`p_active_at` for one snapshot at many instants: what depends on the snapshot
    alone (the user's state now, the hour's share now, the activity forecast's row for
    that pause) is found once; a decision asks about 30 instants. The same floats."""

    __slots__ = ("_active", "_departure", "_row", "_share_now", "_tau", "profile", "snap", "tz")

    def __init__(
        self, profile: Profile, snap: Snapshot, tz: tzinfo, *, active_now: bool | None = None
    ) -> None:
        self.profile, self.snap, self.tz = profile, snap, tz
        self._row: Sequence[Cell] | None = None
        self._departure: float | None = None  # None: no idle source, the share alone
        self._active, self._tau = 0.0, profile.tau_min["active"]
        if snap.idle_seconds is None:
            return
        if active_now is None:
            active_now = snap.idle_seconds < profile.idle_below
        share_now = profile.p_active(snap.at, tz)
        self._departure = float(active_now) - share_now
        if profile.activity is not None:
            idle = 0.0 if active_now else max(snap.idle_seconds, profile.idle_below)
            self._row = profile.activity.row(idle, profile.idle_below)
            self._active = float(idle < profile.idle_below)
            self._share_now = share_now

    def __call__(self, at: datetime, how: int | None = None) -> float:
        """P(active at `at`); `how`: its hour of the week, if the caller has it."""
        profile = self.profile
        base = profile.active[hour_of_week(at, self.tz) if how is None else how]
        if self._departure is None:
            return base
        lead = max(0.0, (at - self.snap.at).total_seconds() / 60.0)
        if self._row is not None:
            p = p_from_row(self._row, self._active, base, self._share_now, lead)
            if p is not None:
                return p
        return min(1.0, max(0.0, base + self._departure * _decay(lead, self._tau)))


def forecast(
    snap: Snapshot, profile: Profile, at: datetime, tz: tzinfo
) -> tuple[Snapshot, Snapshot, float]:
    """The state expected at `at` from the snapshot taken now: (if the user is active
    then, if away then, P(active then)). Profiled columns follow level + decaying
    departure; the rest is held. Away, idle is the current idle plus the lead when the
    user is away now, else at least `idle_below` (half the lead: they left meanwhile)."""
    return Forecaster(snap, profile, tz).at(at)


@dataclass(frozen=True, slots=True)
class Later:
    """The forecast at many slots (`Forecaster.many`), as a decision's rows need it."""

    values: np.ndarray  # slots x PROFILED
    active_idle: float | None  # the idle time if the user is active then (None: no source)
    away_idle: list[float] | None  # per slot, if away then
    share: list[float]  # P(user active) per slot


class Forecaster:
    """`forecast` for one snapshot at many slots: the departures from the levels now are
    computed once, and a decision's slots in one pass (`many`: arrays, no state or dict
    per slot). The same floats as `forecast`; `values` gives one slot's without building
    the states, from the last `many` when it holds the slot (the quiet-minute plan)."""

    __slots__ = ("_batch", "_departure", "_memo", "_taus", "_values", "chance", "profile",
                 "snap", "tz")  # fmt: skip

    def __init__(self, snap: Snapshot, profile: Profile, tz: tzinfo) -> None:
        self.snap, self.profile, self.tz = snap, profile, tz
        self.chance = ActiveChance(profile, snap, tz)  # P(user active) at a slot
        local_now = snap.at.astimezone(tz)
        self._departure = np.asarray(
            [getattr(snap, c) - profile.level_local(c, local_now) for c in PROFILED]
        )
        self._taus = [profile.tau_min[c] for c in PROFILED]
        self._batch: tuple[dict[datetime, int], Later] = ({}, _NO_LATER)
        self._memo: dict[datetime, tuple[Snapshot, Snapshot, float]] = {}
        self._values: dict[datetime, tuple[dict[str, Any], float | None, float | None, float]]
        self._values = {}

    def at(self, at: datetime) -> tuple[Snapshot, Snapshot, float]:
        """(if the user is active at `at`, if away, P(active then)): see `forecast`."""
        known = self._memo.get(at)
        if known is None:
            moved, active_idle, away_idle, share = self.values(at)
            if active_idle is None:
                same = amended(self.snap, moved)
                known = self._memo[at] = (same, same, share)
            else:
                active = amended(self.snap, moved | {"idle_seconds": active_idle})
                away = amended(self.snap, moved | {"idle_seconds": away_idle})
                known = self._memo[at] = (active, away, share)
        return known

    def values(self, at: datetime) -> tuple[dict[str, Any], float | None, float | None, float]:
        """What `at` is made of: the profiled columns then, the idle time if the user is
        active then and if away (None, None: no idle source), and P(active then)."""
        known = self._values.get(at)
        if known is None:
            index, later = self._batch
            i = index.get(at)
            if i is None:
                i, later = 0, self.many([at], keep=False)
            moved: dict[str, Any] = dict(zip(PROFILED, later.values[i].tolist(), strict=True))
            moved |= {"at": at, "load15": moved["load5"]}
            away = None if later.away_idle is None else later.away_idle[i]
            known = self._values[at] = (moved, later.active_idle, away, later.share[i])
        return known

    def many(self, slots: Sequence[datetime], *, keep: bool = True) -> Later:
        """The forecast at each of `slots`, for `values` to answer from too (`keep`)."""
        snap, profile = self.snap, self.profile
        leads = [max(0.0, (at - snap.at).total_seconds() / 60.0) for at in slots]
        local = [at.astimezone(self.tz) for at in slots]
        how = [t.weekday() * 24 + t.hour for t in local]
        by_hour, by_minute = profile.level_tables
        level = by_hour[:, how] + by_minute[:, [t.minute for t in local]]  # level_local
        decay = np.asarray([[_decay(lead, tau) for lead in leads] for tau in self._taus])
        moved = level + self._departure[:, None] * decay.reshape(level.shape)
        values = np.minimum(_UPPERS[:, None], np.maximum(0.0, moved)).T
        idle, below = snap.idle_seconds, profile.idle_below
        if idle is None:
            later = Later(values, None, None, [profile.active[h] for h in how])
        else:
            away = [max(below, idle + 60.0 * lead if idle >= below else 30.0 * lead)
                    for lead in leads]  # fmt: skip
            share = [self.chance(at, h) for at, h in zip(slots, how, strict=True)]
            later = Later(values, profile.active_idle_s, away, share)
        if keep:
            self._batch = ({at: i for i, at in enumerate(slots)}, later)
        return later


_NO_LATER = Later(np.zeros((0, len(PROFILED))), None, None, [])


# (name, the slot's setter): a slot descriptor's __set__ skips the frozen dataclass's
# __setattr__ and its lookup (amended: a decision builds about 40 states)
_SNAPSHOT_SLOTS = tuple((name, getattr(Snapshot, name).__set__) for name in Snapshot.__slots__)


def amended(snap: Snapshot, changes: dict[str, Any]) -> Snapshot:
    """`dataclasses.replace(snap, **changes)` without its generic machinery and checks
    (a decision builds one state per slot; the values come from a checked snapshot):
    the same Snapshot, about three times faster (issue 13's decision cost)."""
    new = object.__new__(Snapshot)
    for name, put in _SNAPSHOT_SLOTS:
        put(new, changes[name] if name in changes else getattr(snap, name))
    return new


def binned(values: np.ndarray, leads: np.ndarray, profile: Profile) -> np.ndarray:
    """The forecast's spread: `values` (slots x PROFILED, the forecast's means at slots
    `leads` minutes ahead) at each of the profile's bins of departures (`Profile.bins`:
    the mean departure in each equal share), shape slots x bins x PROFILED.

    A bin's departure is scaled by how much a departure can grow that far ahead
    (sqrt(1 - exp(-2 lead / tau)) of its spread, as `quieter`); one share for every
    column (a burst lifts load, CPU and RAM together). Scored bin by bin and averaged,
    a slot is worth the mean P(success) over what the machine may look like then, not
    P(success) at the mean: a job failing above a load threshold sees the calm third of
    an hour whose mean is a burst (issue 13, fourteenth round)."""
    assert profile.bin_table is not None, "a profile with bins"
    bins, rate = profile.bin_table
    grown = np.sqrt(-np.expm1(-leads[:, None] * rate))  # a few numpy calls: a decision's cost
    moved = values[:, None, :] + grown[:, None, :] * bins
    return np.minimum(np.maximum(moved, 0.0, out=moved), _UPPERS, out=moved)


def quieter(state: Snapshot, profile: Profile, lead_min: float, z: float = 1.0) -> Snapshot:
    """`state` (a forecast `lead_min` ahead) with each profiled column lower by `z` times
    its quiet depth (`Profile.spread`): a quiet minute, one in six, scaled for how much a
    departure can grow that far ahead (1 - exp(-2 lead / tau) of its variance)."""
    moved = quieter_values({c: getattr(state, c) for c in PROFILED}, profile, lead_min, z)
    return amended(state, moved | {"load15": moved["load5"]})


def quieter_values(
    values: dict[str, Any], profile: Profile, lead_min: float, z: float
) -> dict[str, float]:
    """`quieter`'s profiled columns, from the forecast's values instead of its state."""
    moved = {}
    for column in PROFILED:
        tau = profile.tau_min[column]
        grown = 1.0 - _decay(2.0 * lead_min, tau) if tau > 0 else 1.0
        sigma = profile.spread.get(column, 0.0) * math.sqrt(max(0.0, grown))
        moved[column] = max(0.0, values[column] - z * sigma)
    return moved
