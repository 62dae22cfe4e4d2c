"""The forecast's spread (issue 13, fourteenth round): a later slot is scored in the
profile's three shares of the departures (`Profile.bins`, `forecasting.binned`) and worth
the mean P(success) over them, not P(success) at the mean forecast."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.features import FEATURES, NO_STATS
from smartcron.ai.forecasting import Forecaster, binned
from smartcron.ai.model import LoadedModel, ModelUnavailable, load_model
from smartcron.ai.profile import PROFILED, Profile, state_profile
from smartcron.ai.scoring import Scorer
from smartcron.smart import gate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import card_profile, graph, install

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NOBODY = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
MIN = timedelta(minutes=1)
# a bursty load1: a calm third 4 below its level, a busy third 4 above
BURSTY = {c: ([-4.0, 0.0, 4.0] if c == "load1" else [0.0, 0.0, 0.0]) for c in PROFILED}


def _model(tmp_path: Path, law: str, **profile: object) -> LoadedModel:
    """A stand-in model over a card whose load1 level is 1 and whose departures last
    200 minutes, with `profile`'s keys in its profile, nobody at the keyboard."""
    card = card_profile(spike=0.0, tau=200.0) | profile
    directory = install(tmp_path / law, graph(law), profile=card, active=NOBODY)
    model = load_model(directory, owner_uid=os.geteuid(), now=NOW)
    assert isinstance(model, LoadedModel), model
    return model


def test_the_profile_learns_the_mean_departure_of_each_third_and_keeps_the_mean() -> None:
    """A load1 at 0.5 two minutes in three and at 6.5 the third, at random: the calm and
    usual thirds sit about 2 below the level (2.5; each hour's level is learnt from a
    few samples), the busy one about 4 above; the thirds' means
    average to 0, so scoring them keeps the forecast's mean."""
    busy = np.random.default_rng(7).random(3000) < 1 / 3
    snaps = [
        sample_snapshot(NOW + k * 7 * MIN, load1=6.5 if b else 0.5) for k, b in enumerate(busy)
    ]
    profile = state_profile(snaps, UTC, idle_below=60.0)
    calm, usual, busy = profile.bins["load1"]
    assert calm == pytest.approx(-2.0, abs=0.6) and busy == pytest.approx(4.0, abs=0.6), (
        profile.bins
    )
    assert calm <= usual <= busy and profile.bin_count == 3
    for column in PROFILED:
        assert sum(profile.bins[column]) == pytest.approx(0.0, abs=1e-3)
    again = Profile.from_dict(profile.to_dict(), profile.active)
    assert again.bins == profile.bins


def test_an_older_card_has_no_bins_and_malformed_bins_make_the_model_unusable(
    tmp_path: Path,
) -> None:
    older = Profile.from_dict(card_profile(), [0.0] * 168)
    assert older.bins == {} and older.bin_count == 1
    for bad in (
        BURSTY | {"ram_percent": [0.0, 0.0]},  # shares of unequal counts
        {c: [0.0] for c in PROFILED},  # one share is no spread
        BURSTY | {"load5": [0.0, math.inf, 0.0]},
        {"load1": [-1.0, 0.0, 1.0]},  # columns missing
    ):
        directory = install(
            tmp_path / str(len(list(tmp_path.iterdir()))),
            graph("step"),
            profile=card_profile() | {"bins": bad},
        )
        found = load_model(directory, owner_uid=os.geteuid(), now=NOW)
        assert isinstance(found, ModelUnavailable), bad


def test_a_bins_departure_grows_with_the_lead_as_the_forecasts_doubt() -> None:
    """Now (lead 0) every share is the forecast itself; further ahead a share moves by
    sqrt(1 - exp(-2 lead / tau)) of its departure; percent columns stay within 0-100."""
    profile = Profile.from_dict(
        card_profile(tau=20.0) | {"bins": BURSTY | {"cpu_percent": [-50.0, 0.0, 50.0]}},
        [0.0] * 168,
    )
    means = np.asarray([[2.0, 1.0, 80.0, 40.0]] * 3)
    out = binned(means, np.asarray([0.0, 10.0, 1e6]), profile)
    assert out.shape == (3, 3, len(PROFILED))
    assert np.allclose(out[0], means[0])
    grown = math.sqrt(1.0 - math.exp(-1.0))
    assert out[1, :, 0] == pytest.approx([max(0.0, 2.0 - 4 * grown), 2.0, 2.0 + 4 * grown])
    assert out[2, :, 0] == pytest.approx([0.0, 2.0, 6.0])  # clamped at 0, then the full share
    assert out[2, :, 2] == pytest.approx([30.0, 80.0, 100.0])  # CPU stops at 100 %


def test_the_scorers_later_rows_are_the_forecast_at_each_share_with_the_plans_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rows (active, away) per share per later slot: load1 the forecast's mean moved
    by the grown share, plus the other runs' load (0.7 here); the slot's P(success) is
    the shares' mean."""
    model = _model(tmp_path, "load", bins=BURSTY)
    profile = model.profile
    assert profile is not None
    snap = sample_snapshot(NOW, load1=5.0)
    slots = [NOW + k * 10 * MIN for k in range(7)]
    extra = np.full((7, 3), 0.7)
    seen: list = []
    original = LoadedModel.predict

    def recording(self: LoadedModel, rows, job=None):  # type: ignore[no-untyped-def]
        seen.append(np.asarray(rows))
        return original(self, rows, job)

    monkeypatch.setattr(LoadedModel, "predict", recording)
    sc = Scorer(model, 600.0, (1.0,)).score(snap, NO_STATS, NOW, slots, (extra, np.zeros(7)), "j")
    (rows,) = seen
    assert FEATURES[: len(PROFILED)] == PROFILED  # the columns _binned overwrites
    assert len(rows) == 1 + 6 * 3 * 2
    forecasts = Forecaster(snap, profile, model.tz)
    for k in range(1, 7):
        mean = forecasts.values(slots[k])[0]["load1"]
        grown = math.sqrt(1.0 - math.exp(-2.0 * 10 * k / 200.0))
        want = [max(0.0, mean + grown * b) + 0.7 for b in (-4.0, 0.0, 4.0) for _ in (0, 1)]
        got = rows[1 + (k - 1) * 6 : 1 + k * 6, 0]
        assert got == pytest.approx(want, abs=1e-5)
        assert sc.p[k] == pytest.approx(1.0 - float(np.mean(got)) / 10.0, abs=1e-5)


def test_a_threshold_job_waits_for_the_calm_third_a_mean_forecast_hides(tmp_path: Path) -> None:
    """A job that fails above a load1 of 2, now at 5: the forecast's mean stays above 2 for
    the whole hour (the departure lasts 200 minutes), so without bins every slot is as bad
    as now and it runs now; with a bursty profile the calm third of the hour's last
    minutes is below 2, a third chance of success worth waiting for."""
    spec = SmartSpec(window=timedelta(hours=1))
    f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    snap = sample_snapshot(NOW, load1=5.0)
    alone = Policy(hopeless=0.0)  # the bins' effect alone: no bar on a hopeless start
    plain = SmartAdvisor(_model(tmp_path, "step"), MemoryStats(), alone).advise(f, spec, snap, NOW)
    assert plain.action == "run"
    bursty = SmartAdvisor(_model(tmp_path / "b", "step", bins=BURSTY), MemoryStats())
    waits = bursty.advise(f, spec, snap, NOW)
    assert waits.action == "defer", waits.reason
    assert waits.model["best_p_success"] == pytest.approx(1 / 3, abs=0.01)
    assert waits.model["p_success"] == 0.0
