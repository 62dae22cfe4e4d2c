"""A decision's cost (issue 13: p99 <= 1 ms): `forecasting.Forecaster` forecasts each slot
once, `scoring.Scorer` builds the rows from its values without building the states and
scores the window and the quiet-minute plan in one inference. All are speed only: the
same floats and the same verdicts as forecasting, building and inferring apart."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.features import NO_STATS, features, state_features
from smartcron.ai.forecasting import Forecaster, forecast, p_active_at, quieter
from smartcron.ai.model import LoadedModel, load_model
from smartcron.ai.plan import with_load
from smartcron.ai.profile import PROFILED, Profile
from smartcron.ai.scoring import Scorer
from smartcron.smart import gate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import card_profile, graph, install

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _wandering_model(tmp_path: Path) -> LoadedModel:
    """P(success) = 1 - load1 / 10; a load1 level that rises and falls over the day with
    departures of depth 1 (quiet minutes are worth waiting for), and a user at the
    keyboard by day: every part of a decision has something to say."""
    profile = card_profile(spike=0.5, tau=20.0, spread=1.0)
    profile["hour_of_week"]["load1"] = [1.0 + math.sin(h / 4.0) for h in range(168)]
    by_day = [0.8 if 9 <= h % 24 < 18 else 0.1 for h in range(168)]
    active = {"idle_below_s": 60, "by_hour_of_week": by_day}
    directory = install(tmp_path / "m", graph("load"), profile=profile, active=active)
    model = load_model(directory, owner_uid=os.geteuid(), now=NOW)
    assert isinstance(model, LoadedModel)
    return model


def _snapshots() -> list:
    """Loads, idle times (active, settling, away, no idle source) and hours of a week."""
    return [
        sample_snapshot(NOW + k * 97 * MIN, load1=0.3 * (k % 11), idle_seconds=idle)
        for k in range(60)
        for idle in (5.0, 300.0, 3600.0, None)
    ]


def test_a_forecaster_gives_forecasts_floats_and_forecasts_each_slot_once(tmp_path: Path) -> None:
    model = _wandering_model(tmp_path)
    profile = model.profile
    assert isinstance(profile, Profile)
    for snap in _snapshots()[::7]:
        forecasts = Forecaster(snap, profile, model.tz)
        for lead in (0, 1, 9, 40, 130, 600):
            slot = snap.at + lead * MIN
            assert forecasts.at(slot) == forecast(snap, profile, slot, model.tz)
            assert forecasts.at(slot) is forecasts.at(slot)  # remembered, not redone


def test_a_forecast_is_each_columns_level_plus_its_decaying_departure(tmp_path: Path) -> None:
    """`Forecaster.many` (a decision's slots at once, as arrays) gives, to the bit, the
    forecast's definition slot by slot: level(slot) + (now - level(now)) * exp(-lead /
    tau), at least 0 and percentages at most 100; the idle times the user would have;
    P(active) as `p_active_at`. `values` of one slot, batched or alone, agrees."""
    model = _wandering_model(tmp_path)
    profile, tz = model.profile, model.tz
    assert isinstance(profile, Profile)
    for snap in _snapshots()[::4]:
        slots = [snap.at + k * 13 * MIN for k in range(15)]
        forecasts = Forecaster(snap, profile, tz)
        later = forecasts.many(slots)
        idle = snap.idle_seconds
        if idle is None:
            assert later.active_idle is None and later.away_idle is None
        else:
            assert later.active_idle == profile.active_idle_s and later.away_idle is not None
        local_now = snap.at.astimezone(tz)
        for i, slot in enumerate(slots):
            lead = (slot - snap.at).total_seconds() / 60.0
            for j, column in enumerate(PROFILED):
                departure = getattr(snap, column) - profile.level_local(column, local_now)
                tau = profile.tau_min[column]
                moved = profile.level(column, slot, tz) + departure * math.exp(-lead / tau)
                want = min(100.0, max(0.0, moved)) if "percent" in column else max(0.0, moved)
                assert later.values[i, j] == want, (column, lead)
            if later.away_idle is not None:
                away = idle + 60.0 * lead if idle >= profile.idle_below else 30.0 * lead
                assert later.away_idle[i] == max(profile.idle_below, away)
            assert later.share[i] == p_active_at(profile, snap, slot, tz)
            alone = Forecaster(snap, profile, tz).values(slot)
            assert forecasts.values(slot) == alone
            assert alone[0]["load1"] == later.values[i, 0] and alone[0]["at"] == slot


def test_the_scorers_rows_are_the_features_of_the_forecast_states(tmp_path: Path) -> None:
    """Every row a decision infers (now, each later slot active and away, the quiet
    minutes) equals `features` of the state built the long way: `forecast`, `quieter`,
    then `with_load` of the plan's extra load (here 0.7 cores, and none at one slot)."""
    model = _wandering_model(tmp_path)
    profile = model.profile
    assert isinstance(profile, Profile)
    scorer, tz = Scorer(model, 600.0, (1.0,)), model.tz
    for snap in _snapshots()[::5]:
        slots = [snap.at + k * 10 * MIN for k in range(12)]
        extra = np.full((12, 3), 0.7)
        extra[4] = 0.0
        starting = np.zeros(12)
        seen: list = []
        scorer.model = _Recording(model, seen)  # type: ignore[assignment]
        scorer.score(snap, NO_STATS, snap.at, slots, (extra, starting), "j", (3, 7, 11))
        want = [features(with_load(snap, extra[0]), NO_STATS, snap.at, slots[0], tz=tz)]
        for k, slot in enumerate(slots[1:], 1):
            for state in forecast(snap, profile, slot, tz)[:2]:
                want.append(features(with_load(state, extra[k]), NO_STATS, snap.at, slot, tz=tz))
        for k in (3, 7, 11):
            lead = (slots[k] - snap.at).total_seconds() / 60.0
            clock = features(snap, NO_STATS, snap.at, slots[k], tz=tz)[len(state_features(snap)) :]
            for state in forecast(snap, profile, slots[k], tz)[:2]:
                calm = with_load(quieter(state, profile, lead), extra[k])
                want.append(state_features(calm) + clock)
        assert seen == [want]


class _Recording:
    """A LoadedModel that records the rows it is asked about."""

    def __init__(self, model: LoadedModel, seen: list) -> None:
        self.model, self.seen = model, seen
        self.tz, self.profile, self.active = model.tz, model.profile, model.active

    def predict(self, rows, job=None):  # type: ignore[no-untyped-def]
        self.seen.append(np.asarray(rows).tolist())
        return self.model.predict(rows, job)


def _verdicts(advisor: SmartAdvisor, spec: SmartSpec) -> list:
    out = []
    for snap in _snapshots():
        f = gate.Firing(id=None, job_id="j", nominal=snap.at, deadline=snap.at + spec.window)  # type: ignore[operator]
        v = advisor.advise(f, spec, snap, snap.at)
        out.append((v.action, v.until, v.reason, v.model))
    return out


@pytest.mark.parametrize("policy", [Policy(), Policy(runtime_factor=1.5)])
def test_the_quiet_plan_in_the_windows_inference_decides_as_one_inferred_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: Policy
) -> None:
    """The same verdicts, reasons and model outputs whether the quiet-minute rows ride in
    the window's inference or are inferred after it (as before issue 13's cost work);
    and the decision infers once when it can (runtime_factor 0: the last slot is known
    before the model is asked), twice when planned runtimes may cut the window."""
    model = _wandering_model(tmp_path)
    spec = SmartSpec(window=timedelta(hours=1))
    calls = []
    predict = LoadedModel.predict

    def counted(self: LoadedModel, rows, job=None):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        return predict(self, rows, job)

    monkeypatch.setattr(LoadedModel, "predict", counted)
    together = _verdicts(SmartAdvisor(model, MemoryStats(), policy), spec)
    per_decision = len(calls) / len(together)
    calls.clear()
    apart = SmartAdvisor(model, MemoryStats(), policy)
    monkeypatch.setattr(apart, "_quiet_at", lambda *a: ())
    assert _verdicts(apart, spec) == together
    assert len(calls) == 2 * len(together)  # the window, then the quiet rows
    assert per_decision == (1.0 if policy.runtime_factor == 0 else 2.0)
    reasons = " ".join(r for _, _, r, _ in together)
    assert "at a quiet minute" in reasons and "constraints hold" in reasons
