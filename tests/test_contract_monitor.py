"""The Monitor contract, one suite run against every implementation: SystemMonitor (this
machine), testing.ScriptedMonitor and trace.TraceMonitor (the simulator's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from smartcron.sim.trace import TraceMonitor, load_trace
from smartcron.smart.monitor import IDLE_SOURCES, Monitor, Snapshot, SystemMonitor
from smartcron.testing import ScriptedMonitor, sample_snapshot

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _trace_monitor() -> TraceMonitor:
    text = "timestamp,load1,load5,cpu_percent,ram_percent,disk_free_percent\n"
    text += "".join(
        f"{(T0 + timedelta(minutes=i)).isoformat()},0.5,0.4,5,40,50\n" for i in range(-5, 5)
    )
    return TraceMonitor(load_trace(text))


MONITORS: dict[str, Callable[[], Monitor]] = {
    "system": lambda: SystemMonitor(environ={}),
    "scripted": lambda: ScriptedMonitor([sample_snapshot(T0)]),
    "trace": _trace_monitor,
}


@pytest.fixture(params=sorted(MONITORS))
def monitor(request: pytest.FixtureRequest) -> Monitor:
    return MONITORS[request.param]()


def test_it_answers_for_the_instant_asked_in_utc(monitor):
    now = T0.astimezone(timezone(timedelta(hours=2)))
    snap = monitor.snapshot(now)
    assert isinstance(snap, Snapshot)
    assert snap.at == now and snap.at.tzinfo == UTC


def test_every_value_is_in_its_range_and_absence_is_none(monitor):
    snap = monitor.snapshot(T0)
    assert min(snap.load1, snap.load5, snap.load15) >= 0
    assert 0 <= snap.cpu_percent <= 100 and 0 <= snap.ram_percent <= 100
    for percent in (snap.battery_percent, snap.disk_free_percent):
        assert percent is None or 0 <= percent <= 100
    if snap.battery_percent is None:
        assert snap.charging is None  # no battery is said explicitly, never as 0 %
    assert snap.idle_seconds is None or snap.idle_seconds >= 0
    assert snap.idle_source in IDLE_SOURCES


def test_a_snapshot_round_trips_through_its_dict(monitor):
    snap = monitor.snapshot(T0)
    assert Snapshot.from_dict(snap.to_dict()) == replace(snap)


def test_successive_instants_are_answered_in_order(monitor):
    times = [T0 + timedelta(minutes=i) for i in range(3)]
    assert [monitor.snapshot(t).at for t in times] == times
