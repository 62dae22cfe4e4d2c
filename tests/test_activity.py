"""The activity forecast (smartcron.ai.activity, issue 13's seventh round): P(user active
later) by how long the user has been away now, learnt from presence samples."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcron.ai import activity
from smartcron.ai.activity import MIN_SAMPLES, SAMPLE_EVERY_MIN, ActivityForecast, fit
from smartcron.ai.forecasting import p_active_at
from smartcron.ai.profile import Profile, active_table, state_profile
from smartcron.testing import sample_snapshot

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
BELOW = 60.0


def office_days(days: int, seed: int = 1, sample_every: int = SAMPLE_EVERY_MIN) -> list:
    """(instant, idle s) every `sample_every` minutes of a user at the desk 09-17 on
    weekdays (breaks of a few minutes), who on one workday in four leaves for good at a
    random hour: away for an hour at 14:00 then says the day is over."""
    rng = random.Random(seed)
    samples, idle, active = [], 8 * 3600.0, False
    for day in range(days):
        workday = day % 7 < 5
        leave = rng.randint(600, 960) if workday and rng.random() < 0.25 else 1020
        for minute in range(1440):
            present = workday and 540 <= minute < leave
            stay = rng.random() > 0.12 if active else rng.random() < 0.2  # breaks of minutes
            active = present and stay
            idle = float(rng.randint(0, 20)) if active else idle + 60.0
            if minute % sample_every == 0:
                samples.append((MONDAY + timedelta(days=day, minutes=minute), idle))
    return samples


def fitted(samples: list) -> tuple[ActivityForecast, list[float]]:
    table = active_table(samples, UTC, BELOW)
    model = fit(samples, lambda at: table[activity.hour_of_week(at, UTC)], BELOW)
    assert model is not None
    return model, table


def test_a_short_break_is_a_break_and_a_long_absence_ends_the_day() -> None:
    """At 14:00 on a Monday, 30 minutes on: away 2 minutes now, the user may well be
    back; away an hour, the user has most likely left for the day, far below the hour's
    share (checked on seeds 1-4 of this little world; seed 1 is the tightest)."""
    model, table = fitted(office_days(56))
    at = MONDAY + timedelta(days=7, hours=14)
    share = table[activity.hour_of_week(at, UTC)]
    later = table[activity.hour_of_week(at + timedelta(minutes=30), UTC)]
    brief = model.p_active(later, share, 120.0, BELOW, 30.0)
    gone = model.p_active(later, share, 3600.0, BELOW, 30.0)
    working = model.p_active(later, share, 5.0, BELOW, 30.0)
    assert gone < 0.1 and brief > gone + 0.25 and working > gone + 0.3
    assert gone < later - 0.15  # an hour away says more than the hour's share


def test_the_samples_must_cover_days_and_say_nothing_of_far_leads() -> None:
    samples = office_days(56)
    assert fit(samples[: MIN_SAMPLES - 1], lambda at: 0.5, BELOW) is None
    model, _ = fitted(samples)
    assert model.p_active(0.37, 0.6, 3600.0, BELOW, activity.MAX_LEAD_MIN + 5) is None


def test_a_cell_with_few_pairs_says_nothing_and_the_forecast_without_samples_stands() -> None:
    """No sample was away for 4 hours or more: those cells have no pairs and say nothing
    (not the hour's share: on a server whose admin is rarely logged in, the share is
    near 0 and a user away for two minutes would count as gone for the day); for such a
    user the profile forecasts as without samples (hour's share plus decaying departure)."""
    samples = [(at, idle) for at, idle in office_days(56) if idle < 200 * 60]
    model, _ = fitted(samples)
    away_long = activity.away_bucket(6 * 3600.0, BELOW)
    assert all(cell is None for cell in model.cells[away_long])
    assert model.p_active(0.25, 0.1, 6 * 3600.0, BELOW, 60.0) is None
    snaps = [sample_snapshot(at, idle_seconds=idle) for at, idle in samples[::72]]
    learnt = state_profile(snaps, UTC, BELOW, presence=samples)
    without = dataclasses.replace(learnt, activity=None)
    at = MONDAY + timedelta(days=7, hours=10)
    gone = sample_snapshot(at, idle_seconds=6 * 3600.0)
    later = at + timedelta(minutes=20)
    assert p_active_at(learnt, gone, later, UTC) == p_active_at(without, gone, later, UTC)


def test_the_card_round_trip_and_a_foreign_layout_is_refused() -> None:
    model, _ = fitted(office_days(28))
    data = model.to_dict()
    assert ActivityForecast.from_dict(data) == model
    with pytest.raises(ValueError, match="layout"):
        ActivityForecast.from_dict(data | {"away_edges_min": [1, 2, 3, 4, 5]})
    with pytest.raises(ValueError, match="cells"):
        ActivityForecast.from_dict(data | {"cells": data["cells"][:-1]})
    bad = [list(row) for row in data["cells"]]
    bad[0][0] = [float("nan"), 0.0]
    with pytest.raises(ValueError, match="non-finite"):
        ActivityForecast.from_dict(data | {"cells": bad})


def test_a_profile_learns_from_presence_and_the_card_keeps_it() -> None:
    """With enough presence samples the profile's P(active) table and activity forecast
    come from them; the card round trip keeps both; an older card has none."""
    samples = office_days(56)
    snaps = [sample_snapshot(at, idle_seconds=idle) for at, idle in samples[:: 12 * 6]]
    plain = state_profile(snaps, UTC, BELOW)
    assert plain.activity is None
    learnt = state_profile(snaps, UTC, BELOW, presence=samples)
    assert learnt.activity is not None
    assert learnt.active == active_table(samples, UTC, BELOW)
    card = learnt.to_dict()
    again = Profile.from_dict(card, learnt.active)
    assert again.activity == learnt.activity
    older = {k: v for k, v in card.items() if k != "activity"}
    assert Profile.from_dict(older, learnt.active).activity is None
    at = MONDAY + timedelta(days=7, hours=14)
    gone = sample_snapshot(at, idle_seconds=3600.0)
    brief = sample_snapshot(at, idle_seconds=120.0)
    later = at + timedelta(minutes=30)
    assert p_active_at(learnt, gone, later, UTC) < p_active_at(learnt, brief, later, UTC) - 0.2
    # as if active now, whatever the idle time says
    assert p_active_at(learnt, gone, later, UTC, active_now=True) > 0.45


def test_the_first_minutes_start_from_the_state_now() -> None:
    """A lead shorter than the first cell's (5 min) runs from what the user does now (a
    one-minute job started now: the user is still there) to that cell's forecast."""
    model, _ = fitted(office_days(56))
    first = activity.LEAD_BIN_MIN
    for idle, now in ((5.0, 1.0), (3600.0, 0.0)):
        cell = model.p_active(0.6, 0.6, idle, BELOW, first)
        assert model.p_active(0.6, 0.6, idle, BELOW, 0.0) == now
        half = model.p_active(0.6, 0.6, idle, BELOW, first / 2)
        assert half == pytest.approx((now + cell) / 2)
    assert model.p_active(0.6, 0.6, 5.0, BELOW, first) < 0.95  # breaks within 5 minutes


def test_the_persistence_of_activity_is_learnt_against_the_snapshots_own_table() -> None:
    """Decisions are taken mostly while the user is active (firings wait then), so the
    snapshots' share of activity is above the samples'. Measured against the samples'
    table, that bias would read as a departure that never decays, a long persistence
    that makes the plan waiting for the user to step away look hopeless (the shipped
    workstation lost 13 runs to it). The samples change the table, not the persistence."""
    rng = random.Random(5)
    minutes = office_days(21, sample_every=1)
    snaps = [
        sample_snapshot(at, idle_seconds=idle)
        for at, idle in minutes
        if idle < BELOW or rng.random() < 0.05  # the decisions' bias
    ]
    samples = minutes[::SAMPLE_EVERY_MIN]
    plain = state_profile(snaps, UTC, BELOW)
    learnt = state_profile(snaps, UTC, BELOW, presence=samples)
    assert learnt.active != plain.active and learnt.activity is not None
    assert learnt.tau_min["active"] == plain.tau_min["active"]


@given(
    share_then=st.floats(0, 1),
    share_now=st.floats(0, 1),
    idle=st.floats(0, 30 * 86400),
    lead=st.floats(0, 2000),
)
def test_a_forecast_is_a_probability(
    share_then: float, share_now: float, idle: float, lead: float
) -> None:
    model = _MODEL
    p = model.p_active(share_then, share_now, idle, BELOW, lead)
    assert p is None or 0.0 <= p <= 1.0


def test_samples_are_every_fifth_minute_of_the_utc_clock() -> None:
    at = datetime(2026, 3, 2, 10, 3, 40, tzinfo=UTC)
    assert not activity.sampled(at)
    nxt = activity.next_sample(at)
    assert nxt == datetime(2026, 3, 2, 10, 5, tzinfo=UTC) and activity.sampled(nxt)
    assert activity.next_sample(nxt) == nxt + timedelta(minutes=SAMPLE_EVERY_MIN)


_MODEL = fitted(office_days(28, seed=3))[0]
