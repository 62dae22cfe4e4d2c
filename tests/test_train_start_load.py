"""A training row sees the cores of the runs started just before it in the same wake-up
(features' starting_cores, from smartcron.ai.plan.StartLog), and their load times the
load share (smartcron.ai.loadshare), as the advisor's plan gives them at decision time:
the row's load is what the simulated world judged the start by, on every run; where the
jobs do not load the machine, the history shows it and the rows add nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai import train
from smartcron.ai.features import FEATURES
from smartcron.ai.plan import StartLog
from smartcron.sim import simulator
from smartcron.sim.timeline import Timeline
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world
from smartcron.store.history import from_db_time
from tests.modelkit import FIXTURES

T = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
# Two smart jobs due at the same minute, the heavy one first in the crontab (so first
# in each wake-up); with job_load the world judges each start by the load then.
CRONTAB = """\
#@smart name=heavy window=1h
0 * * * * heavy
#@smart name=light window=1h
0 * * * * light
"""
WORLD = """\
seed: 1
machine: {cores: 8, job_load: true}
jobs:
  heavy: {runtime: 20m, cpu: 4.0}
  light: {runtime: 5m, cpu: 0.5}
"""


def test_the_start_log_counts_the_runs_started_since_the_snapshot_and_before_the_run() -> None:
    log = StartLog(
        [
            (T - timedelta(seconds=1), 1, 60.0, 60.0),  # before the snapshot: measured
            (T, 2, 240.0, 60.0),  # the same wake-up, earlier: 4 cores
            (T, 3, 30.0, 60.0),  # the run itself
            (T, 4, 120.0, 60.0),  # the same wake-up, later
            (T, 5, None, 60.0),  # CPU unknown: counts nothing
        ]
    )
    assert log.starting(T, T, 3) == 4.0
    assert log.starting(T, T, 2) == 0.0
    assert log.starting(T, T + timedelta(seconds=1), 9) == 4.0 + 0.5 + 2.0


@pytest.mark.parametrize("policy", ["rules", "cron"])
def test_each_training_row_has_the_load_the_world_judged_its_start_by(
    policy: str, tmp_path: Path
) -> None:
    """Under the rules (the gate decides a wake-up's firings on one snapshot) the rows
    add the runs started before them; under cron each start's snapshot has them."""
    (tmp_path / "crontab").write_text(CRONTAB)
    (tmp_path / "world.yaml").write_text(WORLD)
    world = read_world(tmp_path / "world.yaml")
    trace = read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz")
    scenario = simulator.load_scenario(tmp_path / "crontab", zone=UTC)
    db = tmp_path / "h.db"
    end = trace.start + timedelta(days=2)
    simulator.simulate(scenario, trace, world, policy, end=end, history=str(db))

    # The world's view: the engine's order of starts, each read before it occupies.
    timeline, judged = Timeline(trace, world), {}
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT job_id, started, runtime_s FROM runs ORDER BY started, id")
        for job, started, runtime in runs.fetchall():
            at = from_db_time(started)
            assert at is not None
            minute = timeline.index(at)
            judged[job, at] = timeline.snapshot(minute)
            timeline.occupy(minute, runtime, world.law_for(job).cpu)

    data = train.load_dataset(db)
    assert sorted(set(data.jobs)) == ["heavy", "light"] and len(data.jobs) == 2 * 48
    assert data.load_share == 1.0  # no two snapshots 15 minutes apart: the prior
    load1, load5 = FEATURES.index("load1"), FEATURES.index("load5")
    starting = FEATURES.index("starting_cores")
    for job, at, row in zip(data.jobs, data.at, data.X, strict=True):
        seen = judged[job, at]
        # the row's load, the cores starting beside it included, is what the world judged
        assert row[load1] == pytest.approx(seen.load1, rel=1e-5), (job, at)
        assert row[load5] == pytest.approx(seen.load5, rel=1e-5), (job, at)
    lights = [row for job, row in zip(data.jobs, data.X, strict=True) if job == "light"]
    heavies = [row for job, row in zip(data.jobs, data.X, strict=True) if job == "heavy"]
    assert all(row[load1] >= 4.0 for row in lights)  # heavy started first
    assert all(row[starting] == 0.0 for row in heavies)
    # the gate decides a wake-up on one snapshot; cron's rows read it at each start
    assert all(row[starting] == (4.0 if policy == "rules" else 0.0) for row in lights)


@pytest.mark.parametrize("job_load", [True, False])
def test_the_load_share_is_learnt_from_the_history_and_the_rows_keep_the_worlds_load(
    job_load: bool, tmp_path: Path
) -> None:
    """heavy (4 cores, 20 minutes) starts at :00, light at :10: the snapshot at :10
    shows heavy's cores where jobs load the machine and not where they do not. The
    share learnt is near 1 or 0 (the trace's own load wanders), and every row's load is
    still what the world judged."""
    crontab = CRONTAB.replace("0 * * * * light", "10 * * * * light")
    world = WORLD if job_load else WORLD.replace("machine: {cores: 8, job_load: true}\n", "")
    (tmp_path / "crontab").write_text(crontab)
    (tmp_path / "world.yaml").write_text(world)
    trace = read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz")
    scenario = simulator.load_scenario(tmp_path / "crontab", zone=UTC)
    db = tmp_path / "h.db"
    end = trace.start + timedelta(days=2)
    loaded = read_world(tmp_path / "world.yaml")
    simulator.simulate(scenario, trace, loaded, "rules", end=end, history=str(db))
    data = train.load_dataset(db)
    assert data.load_share == pytest.approx(1.0 if job_load else 0.0, abs=0.15)
    timeline, load1 = Timeline(trace, loaded), FEATURES.index("load1")
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT job_id, started, runtime_s FROM runs ORDER BY started, id")
        judged = {}
        for job, started, runtime in runs.fetchall():
            minute = timeline.index(from_db_time(started))  # type: ignore[arg-type]
            judged[job, from_db_time(started)] = timeline.snapshot(minute).load1
            if job_load:  # as the simulator does
                timeline.occupy(minute, runtime, loaded.law_for(job).cpu)
    for job, at, row in zip(data.jobs, data.at, data.X, strict=True):
        assert row[load1] == pytest.approx(judged[job, at], rel=1e-5), (job, at)


def test_in_a_fleets_history_a_row_sees_only_its_own_hosts_starts(tmp_path: Path) -> None:
    """A fleet's copy keys job ids by host (web-1/heavy): light on another host gets no
    cores and no load from heavy starting in the same minute on web-1."""
    (tmp_path / "crontab").write_text(CRONTAB)
    (tmp_path / "world.yaml").write_text(WORLD)
    trace = read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz")
    scenario = simulator.load_scenario(tmp_path / "crontab", zone=UTC)
    db = tmp_path / "h.db"
    world = read_world(tmp_path / "world.yaml")
    simulator.simulate(
        scenario, trace, world, "rules", end=trace.start + timedelta(days=2), history=str(db)
    )
    one = train.load_dataset(db)
    with sqlite3.connect(db) as conn:
        for table in ("runs", "decisions"):
            conn.execute(f"UPDATE {table} SET job_id = 'web-1/' || job_id WHERE job_id = 'heavy'")
            conn.execute(f"UPDATE {table} SET job_id = 'db-1/' || job_id WHERE job_id = 'light'")
    fleet = train.load_dataset(db)
    load1, starting = FEATURES.index("load1"), FEATURES.index("starting_cores")
    assert sorted(set(fleet.jobs)) == ["db-1/light", "web-1/heavy"]
    for job, row, alone in zip(fleet.jobs, fleet.X, one.X, strict=True):
        if job == "db-1/light":  # on one machine: heavy's 4 cores beside it
            assert (alone[starting], row[starting]) == (4.0, 0.0)
            assert row[load1] == pytest.approx(alone[load1] - 4.0, abs=1e-5)
        else:
            assert row.tolist() == alone.tolist()
