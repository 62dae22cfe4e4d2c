import json
import os
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from smartcron.smart.monitor import IDLE_SOURCES, Snapshot, SystemMonitor
from smartcron.testing import ScriptedMonitor, sample_snapshot

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_snapshot_round_trips_through_a_dict_and_json():
    snap = sample_snapshot(T0, battery_percent=None, charging=None, idle_seconds=None)
    data = json.loads(json.dumps(snap.to_dict()))
    assert data["at"] == "2026-01-05T09:30:00+00:00"
    assert data["battery_percent"] is None
    assert Snapshot.from_dict(data) == snap


def test_snapshot_from_dict_normalises_the_instant_to_utc():
    data = sample_snapshot(T0).to_dict()
    data["at"] = "2026-01-05T10:30:00+01:00"
    assert Snapshot.from_dict(data).at == T0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"load5": None}, "'load5' must be a number"),
        ({"on_ac": 1}, "'on_ac' must be true, false or null"),
        ({"at": "2026-01-05T09:30:00"}, "no UTC offset"),
        ({"bogus": 1}, "unknown snapshot keys: bogus"),
    ],
)
def test_snapshot_from_dict_names_the_bad_key(change, message):
    data = sample_snapshot(T0).to_dict() | change
    with pytest.raises(ValueError, match=message):
        Snapshot.from_dict(data)


def test_snapshot_from_dict_names_a_missing_key():
    data = sample_snapshot(T0).to_dict()
    del data["ram_percent"]
    with pytest.raises(ValueError, match="'ram_percent' is missing"):
        Snapshot.from_dict(data)


def test_snapshot_refuses_naive_instants_and_unknown_idle_sources():
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(sample_snapshot(T0), at=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="idle_source"):
        sample_snapshot(T0, idle_source="psychic")


def test_snapshot_is_frozen_and_keyword_only():
    snap = sample_snapshot(T0)
    with pytest.raises(AttributeError):
        snap.load1 = 3.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Snapshot(T0)  # type: ignore[misc]


def test_system_monitor_reads_sane_values_on_this_machine():
    mon = SystemMonitor(environ={})
    snap = mon.snapshot(datetime.now(UTC))
    assert snap.load1 >= 0 and snap.load5 >= 0 and snap.load15 >= 0
    assert 0 <= snap.cpu_percent <= 100
    assert 0 < snap.ram_percent <= 100
    assert snap.disk_free_percent is not None and 0 <= snap.disk_free_percent <= 100
    assert snap.idle_source in IDLE_SOURCES
    assert snap.idle_seconds is None or snap.idle_seconds >= 0
    if not any(Path("/sys/class/power_supply").glob("BAT*")):
        # no battery is said explicitly, never as 0 %; such a machine is on mains
        assert snap.battery_percent is None
        assert snap.charging is None


def test_system_monitor_snapshot_stays_within_its_5_ms_budget():
    # The budget monitor.py promises (a snapshot per evaluation, each minute per waiting
    # firing); 0.05 ms measured on the 2-core development container, so the median of
    # 200 calls has a hundredfold margin and only fails on a real regression (a
    # subprocess or a blocking read per call).
    mon = SystemMonitor(environ={})
    mon.snapshot(datetime.now(UTC))
    costs = []
    for _ in range(200):
        start = time.perf_counter()
        mon.snapshot(datetime.now(UTC))
        costs.append(time.perf_counter() - start)
    assert statistics.median(costs) * 1000 < 5.0


def test_missing_disk_path_gives_no_disk_value():
    snap = SystemMonitor(disk_path="/nonexistent/smartcron", environ={}).snapshot(T0)
    assert snap.disk_free_percent is None
    assert snap.disk_path == "/nonexistent/smartcron"


def _supply(root: Path, name: str, **files: str) -> None:
    (root / name).mkdir(parents=True)
    for key, value in files.items():
        (root / name / key).write_text(value + "\n")


def test_sysfs_battery_and_mains_are_read_when_psutil_knows_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)
    _supply(tmp_path, "AC", type="Mains", online="1")
    _supply(tmp_path, "BAT0", type="Battery", present="1", status="Charging", capacity="57")
    snap = SystemMonitor(environ={}, power_supply=tmp_path).snapshot(T0)
    assert (snap.battery_percent, snap.charging, snap.on_ac) == (57.0, True, True)


def test_unplugged_laptop_and_no_battery_machines(tmp_path, monkeypatch):
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)
    _supply(tmp_path / "a", "ADP1", type="Mains", online="0")
    _supply(tmp_path / "a", "BAT1", type="Battery", status="Discharging", capacity="20")
    snap = SystemMonitor(environ={}, power_supply=tmp_path / "a").snapshot(T0)
    assert (snap.battery_percent, snap.charging, snap.on_ac) == (20.0, False, False)
    (tmp_path / "empty").mkdir()
    snap = SystemMonitor(environ={}, power_supply=tmp_path / "empty").snapshot(T0)
    assert (snap.battery_percent, snap.charging, snap.on_ac) == (None, None, True)


def test_expensive_idle_sources_are_cached_for_refresh_seconds():
    mon = SystemMonitor(environ={}, refresh_s=60)
    calls = []

    def read():
        calls.append(1)
        return 42.0

    assert mon._cached("logind", read) == 42.0
    assert mon._cached("logind", read) == 42.0
    assert len(calls) == 1
    mon.refresh_s = 0
    mon._cached("logind", read)
    assert len(calls) == 2


def test_logind_idle_hint_is_read_from_loginctl(tmp_path, monkeypatch):
    since_us = int((time.time() - 300) * 1e6)
    script = tmp_path / "loginctl"
    script.write_text(f"#!/bin/sh\necho IdleHint=yes\necho IdleSinceHint={since_us}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    mon = SystemMonitor(environ={}, user="alice")
    assert mon._logind_idle() == pytest.approx(300, abs=5)
    script.write_text("#!/bin/sh\necho IdleHint=no\necho IdleSinceHint=0\n")
    assert mon._logind_idle() == 0.0


def test_xprintidle_is_used_only_with_a_display():
    assert SystemMonitor(environ={})._has_xprintidle is False


def test_scripted_monitor_replays_in_order_then_repeats_the_last():
    first, second = sample_snapshot(T0, load5=1.0), sample_snapshot(T0, load5=2.0)
    mon = ScriptedMonitor([first, second])
    later = [T0 + timedelta(minutes=i) for i in range(3)]
    snaps = [mon.snapshot(t) for t in later]
    assert [s.load5 for s in snaps] == [1.0, 2.0, 2.0]
    assert [s.at for s in snaps] == later
    assert mon.calls == later


def test_scripted_monitor_can_be_a_function_of_time():
    mon = ScriptedMonitor(lambda now: sample_snapshot(now, load5=float(now.hour)))
    assert mon.snapshot(T0.replace(hour=3)).load5 == 3.0
    with pytest.raises(ValueError):
        ScriptedMonitor([])
