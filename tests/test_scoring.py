"""A decision's cost (issue 13: p99 <= 1 ms): `profile.Forecaster` forecasts each slot once
and `scoring.Scorer` scores the window and the quiet-minute plan in one inference. Both
are speed only: the same floats and the same verdicts as forecasting and inferring apart."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.model import LoadedModel, load_model
from smartcron.ai.profile import Forecaster, Profile, forecast
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
    """Loads, idle times (active, settling, away) and hours of a week."""
    return [
        sample_snapshot(NOW + k * 97 * MIN, load1=0.3 * (k % 11), idle_seconds=idle)
        for k in range(60)
        for idle in (5.0, 300.0, 3600.0)
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
