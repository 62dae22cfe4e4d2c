"""Jobs load the machine in the simulator (a world with machine.job_load)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from smartcron.sim import simulator
from smartcron.sim.trace import read_trace
from smartcron.sim.world import load_world
from tests.simkit import trace_text

CRONTAB = """\
#@smart name=first window=20m
0 0 * * * first
#@smart name=second window=20m
0 0 * * * second
"""
LAW = """\
    runtime: 5m
    cpu: 4.0
    fail:
      - when: {load1: ">3"}
        p: 1.0
"""


def world(job_load: bool):  # type: ignore[no-untyped-def]
    machine = "machine: {cores: 8, job_load: true}\n" if job_load else ""
    return load_world(f"{machine}jobs:\n  first:\n{LAW}  second:\n{LAW}")


def run(tmp_path: Path, policy: str, job_load: bool) -> dict:
    tmp_path.mkdir()
    crontab = tmp_path / "two.crontab"
    crontab.write_text(CRONTAB)
    (tmp_path / "t.csv").write_text(trace_text(40))
    w = world(job_load)
    timeline = simulator.Timeline(read_trace(tmp_path / "t.csv"), w)
    scenario = simulator.load_scenario(crontab, zone=UTC)
    first = simulator.simulate(scenario, timeline, w, policy).metrics()
    again = simulator.simulate(scenario, timeline, w, policy).metrics()  # same Timeline
    assert first == again  # the overlay of one simulation never leaks into the next
    return first


def test_two_heavy_jobs_started_together_fail_each_other_only_with_job_load(tmp_path):
    loaded = run(tmp_path / "a", "cron", True)
    assert loaded["failures"] == 1  # the second sees the first's 4 cores: load1 4.1 > 3
    assert run(tmp_path / "b", "cron", False)["failures"] == 0
