"""A window's slots scored by the model: SmartAdvisor's view of each candidate start.

`Scorer.score` builds one feature row per slot (two per later slot with a profile in the
card: the user active then, or away, mixed by P(active); those two once per share of the
forecast's spread when the card has `bins`, averaged) and, in the same ONNX call, the
rows of the quiet-minute plan (`quiet_rows`): one inference per decision, the cost issue
13 bounds. Like the advisor: numpy and onnxruntime only, never pandas or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from smartcron.ai.features import (
    FEATURES,
    Forecaster,
    JobHistoryStats,
    features,
    hour_of_week,
    idle_columns,
    quieter_values,
    state_row,
    time_rows,
)
from smartcron.ai.forecasting import ActiveChance, Later, binned
from smartcron.ai.model import ACTIVE_IDLE_BELOW, LoadedModel
from smartcron.ai.plan import loads_with, with_load
from smartcron.ai.profile import PROFILED

_IDLE = FEATURES.index("idle_log1p")  # then idle_known: features.idle_columns
_CLOCK = FEATURES.index("hour")  # time_rows' first column


@dataclass(frozen=True, slots=True)
class Scores:
    """A window's slots scored: P(success), runtime (s) and P(active) mixed over the
    user's state; with a profile, also P(success) if active (`busy`) or `away` then
    (later slots only), the slots' forecasts, and the quiet-minute rows' P(success) for
    the slots `quiet_at` (shape: slots, depths, active/away)."""

    p: np.ndarray
    runtime: np.ndarray
    a: list[float]
    busy: np.ndarray | None = None
    away: np.ndarray | None = None
    forecasts: Forecaster | None = None
    quiet_at: tuple[int, ...] = ()
    quiet: np.ndarray | None = None
    share: np.ndarray | None = None  # P(user active) each later slot's p is mixed by


@dataclass(frozen=True, slots=True)
class Window:
    """One firing's scored window, as the waiting plans weigh it: the snapshot, the job's
    stats, its nominal time, the slots, the plan per slot (its extra load and the cores
    starting then: `Scorer.score`), their scores and the last slot that leaves time to
    finish."""

    snap: Any
    stats: JobHistoryStats
    nominal: datetime
    slots: list[datetime]
    plan: tuple[np.ndarray, np.ndarray]
    sc: Scores
    last: int
    job: str


def quiet_picks(last: int) -> tuple[int, ...]:
    """The slots a quiet-minute plan is scored at: a third, two thirds and all the way."""
    return tuple(sorted({max(1, last // 3), max(1, 2 * last // 3), last}))


class Scorer:
    """Scores a window's slots with `model` (see the module notes)."""

    def __init__(self, model: LoadedModel, settle_s: float, depths: Sequence[float]) -> None:
        self.model, self.settle_s, self.depths = model, settle_s, tuple(depths)

    def chances(self, snap: Any, chance: ActiveChance | None = None) -> Callable[[datetime], float]:
        """P(user active) at an instant, for the user `snap` shows (forecasting.ActiveChance);
        an away user not yet settled counts partly as active (unless the card's activity
        forecast has a cell for that pause and lead). `chance`: the snapshot's ActiveChance,
        if the caller has it (a Forecaster's)."""
        profile, tz = self.model.profile, self.model.tz
        assert profile is not None
        chance = chance or ActiveChance(profile, snap, tz)
        idle, below, activity = snap.idle_seconds, profile.idle_below, profile.activity
        if idle is None or idle < below or idle >= self.settle_s:
            return chance
        w = (idle - below) / max(1.0, self.settle_s - below)
        present = ActiveChance(profile, snap, tz, active_now=True)

        def unsettled(at: datetime) -> float:
            lead = (at - snap.at).total_seconds() / 60.0
            if activity and activity.cell(idle, below, lead) is not None:
                return chance(at)  # the samples have taught what a pause this long means
            return w * chance(at) + (1.0 - w) * present(at)

        return unsettled

    def score(
        self,
        snap: Any,
        stats: JobHistoryStats,
        nominal: datetime,
        slots: list[datetime],
        plan: tuple[np.ndarray, np.ndarray],
        job: str,
        quiet_at: tuple[int, ...] = (),
    ) -> Scores:
        """P(success), runtime (s) and P(user active during the run) per slot; `plan`:
        the load1, load5 and load15 other smart runs add at each slot (beyond what `snap`
        measured) and the cores of those starting in its minute (plan.Commitments.loads);
        `quiet_at`: the slots to score the quiet-minute plan at as well."""
        tz, profile = self.model.tz, self.model.profile
        extra, starting = plan
        s0 = float(starting[0])
        rows = [features(with_load(snap, extra[0]), stats, nominal, slots[0], tz=tz, starting=s0)]
        if profile is None:
            rows += [
                features(with_load(snap, x), stats, nominal, s, tz=tz, starting=float(c))
                for s, x, c in zip(slots[1:], extra[1:], starting[1:], strict=True)
            ]
            p, runtime = self.model.predict(np.asarray(rows), job)
            active_now = snap.idle_seconds is not None and snap.idle_seconds < ACTIVE_IDLE_BELOW
            a = [1.0 if active_now else self._active(slots[0], runtime[0])]
            a += [self._active(s, r) for s, r in zip(slots[1:], runtime[1:], strict=True)]
            return Scores(p, runtime, a)
        forecasts = Forecaster(snap, profile, tz)
        later = forecasts.many(slots[1:])
        clocks = dict(enumerate(time_rows(stats, nominal, slots[1:], tz, starting[1:].tolist()), 1))
        bins = profile.bin_count if len(slots) > 1 else 1
        first = np.asarray(rows, np.float64)
        table = np.concatenate([first, self._later(snap, later, clocks, slots, extra)])
        n = len(table)
        calm = self.quiet_rows(forecasts, slots, extra, quiet_at, clocks)
        p_all, rt_all = self.model.predict(np.concatenate([table, calm]) if calm else table, job)
        p_raw, rt_raw = (
            np.concatenate([v[:1], v[1:n].reshape(-1, bins, 2).sum(axis=1).reshape(-1) / bins])
            for v in (p_all, rt_all)
        )
        w = np.asarray(later.share)
        p = np.concatenate([p_raw[:1], w * p_raw[1::2] + (1 - w) * p_raw[2::2]])
        runtime = np.concatenate([rt_raw[:1], w * rt_raw[1::2] + (1 - w) * rt_raw[2::2]])
        half = [timedelta(seconds=float(r) / 2) for r in runtime]
        chance = self.chances(snap, forecasts.chance)
        a = [chance(s + h) for s, h in zip(slots, half, strict=True)]
        quiet = p_all[n:].reshape(len(quiet_at), len(self.depths), 2) if quiet_at else None
        p_busy, p_away = p_raw[1::2], p_raw[2::2]
        return Scores(p, runtime, a, p_busy, p_away, forecasts, tuple(quiet_at), quiet, w)

    def _later(
        self,
        snap: Any,
        later: Later,
        clocks: dict[int, list[float]],
        slots: list[datetime],
        extra: np.ndarray,
    ) -> np.ndarray:
        """The later slots' rows: per slot, per bin of the forecast's spread (`binned`;
        one without bins), the user active then and away. A row is `state_row` at the
        forecast's profiled columns (plus the other runs' load) and idle time, then the
        slot's `time_rows`: built as arrays, a decision has about 80."""
        n, width = len(slots) - 1, len(FEATURES)
        if not n:
            return np.empty((0, width))
        pairs = np.empty((n, 2, width))  # slot, active / away, column
        pairs[:, :, :_CLOCK] = state_row(snap, 0.0, 0.0, 0.0, 0.0, None)
        pairs[:, :, _CLOCK:] = np.asarray([clocks[k] for k in range(1, n + 1)])[:, None, :]
        pairs[:, 0, _IDLE : _IDLE + 2] = idle_columns(later.active_idle)
        if later.away_idle is None:  # no idle source: both rows alike
            pairs[:, 1, _IDLE : _IDLE + 2] = idle_columns(None)
        else:
            pairs[:, 1, _IDLE : _IDLE + 2] = [idle_columns(a) for a in later.away_idle]
        states = self._states(later.values, slots, extra)
        out = np.repeat(pairs[:, None], states.shape[1], axis=1)
        out[:, :, :, : len(PROFILED)] = states[:, :, None, :]
        return out.reshape(-1, width)

    def _states(self, values: np.ndarray, slots: list[datetime], extra: np.ndarray) -> np.ndarray:
        """The profiled columns at each later slot and bin (slots x bins x PROFILED): the
        forecast's `values` at each bin of its spread (forecasting.binned) plus the other
        runs' load; without bins, `values` with that load as `loads_with` adds it."""
        profile = self.model.profile
        assert profile is not None
        if profile.bin_count == 1:
            states = values.copy()
            for row, x in zip(states, extra[1:], strict=True):
                row[0], row[1] = loads_with(float(row[0]), float(row[1]), x)
            return states[:, None, :]
        leads = [(s - slots[0]).total_seconds() / 60.0 for s in slots[1:]]
        states = binned(values, np.asarray(leads), profile)
        loads = states[:, :, :2]  # a view: the other runs' load on load1 and load5
        np.maximum(np.add(loads, extra[1:, None, :2], out=loads), 0.0, out=loads)
        return states

    def quiet_rows(
        self,
        forecasts: Forecaster,
        slots: list[datetime],
        extra: np.ndarray,
        picks: Sequence[int],
        clocks: dict[int, list[float]],
    ) -> list[list[float]]:
        """Per slot of `picks`, per depth of `depths`: the rows of a minute that much
        quieter than the forecast, user active then away (features.quieter)."""
        profile, snap = forecasts.profile, forecasts.snap
        rows = []
        for k in picks:
            lead = (slots[k] - slots[0]).total_seconds() / 60.0
            moved, busy_idle, away_idle, _ = forecasts.values(slots[k])
            for z in self.depths:
                calm = quieter_values(moved, profile, lead, z)
                load1, load5 = loads_with(calm["load1"], calm["load5"], extra[k])
                cpu, ram = calm["cpu_percent"], calm["ram_percent"]
                for idle in (busy_idle, away_idle):
                    rows.append(state_row(snap, load1, load5, cpu, ram, idle) + clocks[k])
        return rows

    def quiet(self, w: Window, picks: tuple[int, ...]) -> np.ndarray:
        """The quiet-minute rows' P(success) at `picks`, from the window's scores when
        they were made for the same slots (the usual case), else by one more inference."""
        sc = w.sc
        if sc.quiet is not None and sc.quiet_at == picks:
            return sc.quiet
        assert sc.forecasts is not None
        tz, (extra, starting) = self.model.tz, w.plan
        at, cores = [w.slots[k] for k in picks], [float(starting[k]) for k in picks]
        clocks = dict(zip(picks, time_rows(w.stats, w.nominal, at, tz, cores), strict=True))
        rows = self.quiet_rows(sc.forecasts, w.slots, extra, picks, clocks)
        p_raw, _ = self.model.predict(np.asarray(rows), w.job)
        return p_raw.reshape(len(picks), len(self.depths), 2)

    def _active(self, at: datetime, runtime_s: float) -> float:
        mid = at + timedelta(seconds=runtime_s / 2)
        return float(self.model.active[hour_of_week(mid, self.model.tz)])
