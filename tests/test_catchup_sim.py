"""Catch-up in the simulator (issue 16, point 1): trace rows marked `asleep` (a laptop
shut at night) and what the daemon's catch-up rules make of them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main as smartcronctl
from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import TraceError, load_trace, read_trace
from smartcron.sim.tracegen import generate, lid_closed, write_csv
from smartcron.sim.world import load_world
from tests.simkit import quiet_row, rows_text

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 (the lid shut)
LAPTOP = """\
#@smart name=backup
@daily backup.sh
#@smart name=index window=01:00-03:00 ac=yes
30 1 * * * updatedb
#@smart name=sync
0 * * * * sync.sh
#@smart name=sync_all catchup=all
0 * * * * sync.sh --all
@daily plain-daily
"""
WORLD = "seed: 1\njobs: {}\n"


def week(tmp_path: Path, policy: str, crontab: str = LAPTOP) -> tuple[dict[str, list], dict]:
    """A week of the laptop trace with the lid shut 23:00-08:00: each job's run starts."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    trace = tmp_path / "laptop.csv"
    rows = generate("laptop", START, 7, seed=1)
    write_csv(lid_closed(rows, (time(23, 0), time(8, 0))), trace)
    tab = tmp_path / "crontab"
    tab.write_text(crontab)
    scenario = load_scenario(tab, zone=UTC, owner="alice")
    world = load_world(WORLD, "world.yaml")
    starts: dict[str, list] = {}
    result = simulate(
        scenario,
        read_trace(trace),
        world,
        policy,
        on_run=lambda job, run: starts.setdefault(job, []).append(run.started),
    )
    return starts, result.metrics()["jobs"]


def test_a_week_with_the_lid_shut_each_night_runs_each_daily_smart_job_once_a_day(tmp_path):
    starts, jobs = week(tmp_path, "rules")
    for name in ("backup", "index"):
        days = Counter(start.date() for start in starts[name])
        assert sorted(days) == [START.date() + timedelta(days=d) for d in range(7)], name
        assert set(days.values()) == {1}, f"{name} ran twice on a day: {days}"
        # after opening (08:00), never while the lid is shut
        assert all(time(8, 0) <= start.time() < time(23, 0) for start in starts[name]), name
    assert {start.time() for start in starts["backup"]} == {time(8, 0)}  # at the opening
    assert jobs["backup"]["window_misses"] == 0 and jobs["backup"]["runs"] == 7
    # a plain line keeps cron's rules: 9 hours asleep is a correction, never run
    (plain,) = set(jobs) - {"backup", "index", "sync", "sync_all"}
    assert plain not in starts
    assert jobs[plain]["firings"] == 7 and jobs[plain]["window_misses"] == 7


def test_cron_policy_runs_none_of_them_and_catchup_all_each_missed_hour(tmp_path):
    starts, _ = week(tmp_path, "cron")
    assert "backup" not in starts and "index" not in starts  # cron: 00:00 and 01:30 asleep
    starts, _ = week(tmp_path / "rules", "rules")
    sync = Counter(start.date() for start in starts["sync"])
    sync_all = Counter(start.date() for start in starts["sync_all"])
    # once: 08:00 is in its window at the opening, so the night is not caught up
    assert sync[datetime(2026, 1, 7).date()] == 15  # 08:00 ... 22:00
    # all: the nine hours 23:00 ... 07:00 too, at the opening
    assert sync_all[datetime(2026, 1, 7).date()] == 15 + 9
    eights = [s for s in starts["sync_all"] if s.date() == datetime(2026, 1, 7).date()]
    # at the opening, as the cap of 8 smart runs at once lets them (each lasts a minute)
    assert len([s for s in eights if s.time() < time(8, 5)]) == 10


def test_a_short_nap_runs_plain_lines_at_the_wake_up_as_cron_does(tmp_path):
    rows = [{**quiet_row(i), "asleep": int(55 <= i < 100)} for i in range(180)]  # 00:55-01:40
    text = rows_text(rows)
    assert text.splitlines()[0].endswith(",asleep")
    tab = tmp_path / "crontab"
    tab.write_text("0 1 * * * plain\n#@smart name=smart window=20m\n0 1 * * * smart.sh\n")
    scenario = load_scenario(tab, zone=UTC, owner="alice")
    world = load_world(WORLD, "world.yaml")
    timeline = Timeline(load_trace(text, "t.csv"), world, scenario.specs())
    starts: dict[str, list] = {}
    simulate(scenario, timeline, world, "rules",
             on_run=lambda job, run: starts.setdefault(job, []).append(run.started))  # fmt: skip
    wake = START + timedelta(minutes=100)
    (plain,) = set(starts) - {"smart"}
    assert starts[plain] == [wake]  # cron: a jump under 3 hours runs fixed-time jobs
    assert starts["smart"] == [wake]  # its window (01:00-01:20) passed asleep: caught up


def test_older_traces_load_awake_and_a_bad_asleep_value_names_its_row():
    text = rows_text([quiet_row(0), quiet_row(1)])
    assert "asleep" not in text
    assert load_trace(text, "t.csv").asleep() == bytearray(2)
    bad = text.replace("\n", ",asleep\n", 1).replace(",50\n", ",50,2\n", 1)
    with pytest.raises(TraceError, match=r"t.csv:2: asleep must be 0 or 1, not '2'"):
        load_trace(bad, "t.csv")


def test_trace_gen_writes_the_asleep_column_for_a_laptop_shut_at_night(tmp_path):
    out = tmp_path / "lid.csv"
    args = ["trace-gen", "laptop", "--days", "2", "--closed", "23:00-08:00", "--out", str(out)]
    result = CliRunner().invoke(smartcronctl, args)
    assert result.exit_code == 0, result.output
    asleep = read_trace(out).asleep()
    assert sum(asleep) == 2 * 9 * 60  # 00:00-08:00 and 23:00-24:00, two days
    assert asleep[0] == 1 and asleep[8 * 60] == 0 and asleep[23 * 60] == 1
    bad = CliRunner().invoke(smartcronctl, [*args[:4], "--closed", "25:00-08:00", "--out", "x"])
    assert bad.exit_code == 2 and "--closed" in bad.output
