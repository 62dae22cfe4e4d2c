"""`features.amended`, the advisor's fast `dataclasses.replace` for a Snapshot (issue 13's
decision cost): the same snapshot, field for field."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

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
