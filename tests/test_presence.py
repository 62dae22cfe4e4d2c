"""Presence samples (smartcron.ai.activity): the history's table, the daemon's sampler
and the simulator's, which sample the same minutes; training learns from them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.daemon.presence import PresenceSampler
from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import load_trace, read_trace
from smartcron.sim.world import load_world, read_world
from smartcron.store.history import HistoryStore, presence_samples
from smartcron.testing import ScriptedMonitor, sample_snapshot
from tests import harness
from tests.simkit import CRONTAB, T0, WORLD, quiet_row, rows_text

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def rows(db: Path) -> list[tuple[datetime, float]]:
    conn = sqlite3.connect(db)
    try:
        return presence_samples(conn)
    finally:
        conn.close()


def test_the_table_keeps_one_sample_a_minute_and_is_pruned_with_the_history(
    tmp_path: Path,
) -> None:
    store = HistoryStore.open(tmp_path / "h.db")
    old = NOON - timedelta(days=40)
    store.record_presence([(old, 5.0), (NOON + timedelta(seconds=30), 90.0)])
    store.record_presence([(NOON, 120.0)])  # the same minute again: the latest stands
    store.record_presence([])
    assert rows(tmp_path / "h.db") == [(old, 5.0), (NOON, 120.0)]
    assert store.prune(timedelta(days=30), NOON) == 1
    assert rows(tmp_path / "h.db") == [(NOON, 120.0)]
    store.close()


def test_a_history_from_before_the_table_has_no_samples(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE runs (id INTEGER)")
    assert presence_samples(conn) == []
    conn.close()


def test_the_sampler_takes_each_fifth_minute_once_and_only_while_gating(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.db")
    monitor = ScriptedMonitor(lambda now: sample_snapshot(now, idle_seconds=300.0))
    sampler = PresenceSampler(store, monitor.snapshot)
    for minute in range(12):
        now = NOON + timedelta(minutes=minute, seconds=2)
        sampler.observe(now, gating=True)
        sampler.observe(now, gating=True)  # a second wake-up in the same minute
    sampler.observe(NOON + timedelta(minutes=15), gating=False)  # cron mode, or no smart job
    assert [at for at, _ in rows(tmp_path / "h.db")] == [
        NOON,
        NOON + timedelta(minutes=5),
        NOON + timedelta(minutes=10),
    ]
    assert sampler.next_wake(NOON + timedelta(minutes=11), gating=True) == NOON + timedelta(
        minutes=15
    )
    assert sampler.next_wake(NOON, gating=False) is None
    assert PresenceSampler(None, monitor.snapshot).next_wake(NOON, gating=True) is None
    store.close()


def test_a_failing_monitor_or_history_never_stops_the_sampler(tmp_path: Path, caplog) -> None:
    class Broken:
        def snapshot(self, now: datetime) -> None:
            raise OSError("no idle source")

    store = HistoryStore.open(tmp_path / "h.db")
    PresenceSampler(store, Broken().snapshot).observe(NOON, gating=True)  # type: ignore[arg-type]
    assert "presence sample failed" in caplog.text
    store.close()
    closed = PresenceSampler(store, ScriptedMonitor([sample_snapshot(NOON)]).snapshot)
    closed.observe(NOON, gating=True)  # a closed store: logged, not raised
    unknown = ScriptedMonitor(lambda now: sample_snapshot(now, idle_seconds=None))
    again = HistoryStore.open(tmp_path / "h2.db")
    PresenceSampler(again, unknown.snapshot).observe(NOON, gating=True)
    assert rows(tmp_path / "h2.db") == []  # no idle source: no sample
    again.close()


def test_a_smart_daemon_wakes_for_samples_and_a_cron_one_does_not(tmp_path: Path) -> None:
    """Only an hourly smart line: the daemon still wakes every fifth minute to sample."""
    h = harness.make(tmp_path, "#@smart window=30m\n0 * * * * backup\n")
    h.run_until(harness.utc("01:30"))
    taken = [at for at, _ in rows(tmp_path / "history.db")]
    assert taken and all(at.minute % 5 == 0 for at in taken)
    assert taken[-1] == harness.utc("01:30") and len(taken) == len(set(taken))
    plain = tmp_path / "plain"
    plain.mkdir()
    c = harness.make(plain, "0 * * * * backup\n")
    c.run_until(harness.utc("01:30"))
    assert rows(plain / "history.db") == []


def test_presence_false_takes_no_sample_and_smart_jobs_still_run(tmp_path: Path) -> None:
    """The config's `presence = false` (a user who will not have their idle time kept):
    no sample, no wake-up for one; the smart line still fires and is decided."""
    h = harness.make(tmp_path, "#@smart window=30m\n0 * * * * backup\n", presence=False)
    h.run_until(harness.utc("01:30"))
    assert rows(tmp_path / "history.db") == []
    assert harness.runs(h, "backup")  # the job ran
    assert h.daemon.presence.next_wake(harness.utc("01:30"), gating=True) is None


def test_presence_must_be_true_or_false(tmp_path: Path) -> None:
    from smartcron import config as configuration
    from smartcron.errors import ConfigError

    path = tmp_path / "smartcron.toml"
    path.write_text('mode = "smart"\npresence = "no"\n')
    with pytest.raises(ConfigError) as err:
        configuration.read_config(path, user_mode=True)
    assert str(err.value) == f"{path}:2: presence: must be true or false"
    path.write_text("presence = false\n")
    assert configuration.read_config(path, user_mode=True).presence is False


def test_the_simulator_samples_as_the_daemon_does(tmp_path: Path) -> None:
    """Every fifth minute the machine is awake, under a gating policy; none under cron."""
    tab = tmp_path / "tab"
    tab.write_text(CRONTAB)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    w = load_world(WORLD, "world.yaml")
    rows_ = []
    for i in range(30):
        row = quiet_row(i) | {"idle_seconds": 10 if i < 5 else (i - 4) * 60}
        rows_.append(row | {"asleep": int(10 <= i <= 16)})
    tl = Timeline(load_trace(rows_text(rows_), "t.csv"), w, sc.specs())
    simulate(sc, tl, w, "rules", history=str(tmp_path / "rules.db"))
    got = rows(tmp_path / "rules.db")
    assert [at for at, _ in got] == [T0 + timedelta(minutes=m) for m in (0, 5, 20, 25)]
    assert got[0][1] == 10.0 and got[1][1] == 60.0  # the trace's idle seconds
    simulate(sc, tl, w, "cron", history=str(tmp_path / "cron.db"))
    assert rows(tmp_path / "cron.db") == []


def test_training_learns_the_activity_forecast_from_the_samples(tmp_path: Path) -> None:
    """Two weeks of the laptop under the rules: the dataset's profile has an activity
    forecast, its P(active) table is the samples' (and the card's table is the same);
    without the samples (a history from before them) it has none."""
    from smartcron.ai.activity import active_table
    from smartcron.ai.model import ACTIVE_IDLE_BELOW
    from smartcron.ai.train import load_dataset
    from tests.modelkit import FIXTURES

    world = read_world(FIXTURES / "worlds" / "laptop.yaml")
    scenario = load_scenario(FIXTURES / "crontabs" / "laptop.crontab", zone=UTC)
    trace = read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz")
    db = tmp_path / "h.db"
    simulate(scenario, trace, world, "rules", end=trace.start + timedelta(days=14), history=str(db))
    samples = rows(db)
    assert len(samples) > 3000  # 14 days of fifth minutes, the awake ones
    data = load_dataset(db)
    assert data.profile.activity is not None
    assert data.active == data.profile.active == active_table(samples, UTC, ACTIVE_IDLE_BELOW)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM presence")
    conn.commit()
    conn.close()
    assert load_dataset(db).profile.activity is None
