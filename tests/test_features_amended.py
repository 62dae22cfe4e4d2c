"""`features.amended`, the advisor's fast `dataclasses.replace` for a Snapshot (issue 13's
decision cost): the same snapshot, field for field."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from smartcron.ai.features import amended, features, state_features, time_features
from smartcron.ai.jobstats import NO_STATS
from smartcron.smart.monitor import Snapshot
from smartcron.testing import sample_snapshot

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_amended_is_replace_for_every_field() -> None:
    snap = sample_snapshot(NOW, load1=1.5, load5=2.5)
    changes = {"at": NOW + timedelta(minutes=7), "load1": 0.25, "idle_seconds": 900.0}
    got, want = amended(snap, changes), replace(snap, **changes)
    assert isinstance(got, Snapshot) and got == want
    assert [getattr(got, f.name) for f in fields(Snapshot)] == [
        getattr(want, f.name) for f in fields(Snapshot)
    ]
    assert amended(snap, {}) == snap and amended(snap, {}) is not snap
    assert snap.load1 == 1.5  # the original is untouched


def test_the_two_parts_of_the_features_are_the_features() -> None:
    snap = sample_snapshot(NOW, load1=0.7)
    later = NOW + timedelta(minutes=42)
    whole = features(snap, NO_STATS, NOW, later)
    assert state_features(snap) + time_features(NO_STATS, NOW, later) == whole
    assert whole[19] == 42.0  # minutes_late


def test_p_active_at_is_the_same_whatever_was_asked_before() -> None:
    """p_active_at (an ActiveChance per call; until the eleventh round, a cache of the
    last snapshot's share): asking about another snapshot, another profile or another
    zone in between never returns a stale figure."""
    from zoneinfo import ZoneInfo

    from smartcron.ai.forecasting import p_active_at
    from smartcron.ai.profile import Profile

    def profile(shift: float) -> Profile:
        levels = {c: [0.0] * 168 for c in ("load1", "load5", "cpu_percent", "ram_percent")}
        offsets = {c: [0.0] * 60 for c in levels}
        taus = dict.fromkeys([*levels, "active"], 30.0)
        active = [min(1.0, shift + h / 168.0) for h in range(168)]
        return Profile(
            hour_of_week=levels, minute_of_hour=offsets, tau_min=taus, active=active,
            idle_below=60.0, active_idle_s=10.0,
        )  # fmt: skip

    first, second = profile(0.0), profile(0.3)
    a = sample_snapshot(NOW, idle_seconds=10.0)
    b = sample_snapshot(NOW + timedelta(hours=5), idle_seconds=10.0)
    later = NOW + timedelta(hours=6)
    paris = ZoneInfo("Europe/Paris")
    asks = [(first, a, UTC), (first, b, UTC), (second, b, UTC), (second, b, paris), (first, a, UTC)]
    got = [p_active_at(p, s, later, tz) for p, s, tz in asks]
    departure = [1.0 - p.p_active(s.at, tz) for p, s, tz in asks]
    want = [
        min(
            1.0,
            max(
                0.0,
                p.p_active(later, tz) + d * math.exp(-(later - s.at).total_seconds() / 60.0 / 30.0),
            ),
        )
        for (p, s, tz), d in zip(asks, departure, strict=True)
    ]
    assert got == pytest.approx(want) and len(set(got)) >= 3
