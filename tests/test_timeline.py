"""The timeline's job-load overlay: runs' CPU added to the trace's state (issue 13)."""

import math

import pytest

from smartcron.sim.timeline import Timeline
from smartcron.sim.trace import load_trace
from smartcron.sim.world import load_world
from tests.simkit import WORLD, trace_text

MINUTES = 120


def _timeline(cores: int = 4) -> Timeline:
    world = load_world(WORLD + f"machine: {{cores: {cores}, job_load: true}}\n", "w.yaml")
    return Timeline(load_trace(trace_text(MINUTES).splitlines(), "t.csv"), world)


def test_without_an_overlay_snapshots_are_the_trace_s_own():
    timeline = _timeline()
    trace = timeline.trace
    for i in range(MINUTES):
        assert timeline.snapshot(i) == trace.at(timeline.instant(i))
    timeline.occupy(3, 0.0, 2.0)  # an instant run and a run without CPU change nothing
    timeline.occupy(3, 600.0, 0.0)
    assert timeline.snapshot(5) == trace.at(timeline.instant(5))


def test_a_run_loads_the_minutes_it_covers_and_two_runs_add_up():
    timeline = _timeline(cores=4)
    base = timeline.snapshot(12)
    timeline.occupy(10, 150.0, 1.0)  # 2.5 minutes: minutes 10, 11, 12
    timeline.occupy(12, 60.0, 2.0)
    assert timeline.snapshot(12).load1 == pytest.approx(base.load1 + 3.0)
    assert timeline.snapshot(12).cpu_percent == pytest.approx(base.cpu_percent + 75.0)
    assert timeline.snapshot(11).load1 == pytest.approx(base.load1 + 1.0)
    assert timeline.snapshot(13).load1 == pytest.approx(base.load1)
    assert timeline.snapshot(9) == timeline.trace.at(timeline.instant(9))


def test_cpu_percent_is_clipped_at_100():
    timeline = _timeline(cores=4)
    timeline.occupy(20, 600.0, 3.0)
    timeline.occupy(20, 600.0, 3.0)
    assert timeline.snapshot(25).cpu_percent == 100.0
    assert timeline.snapshot(25).load1 == pytest.approx(0.1 + 6.0)


def test_load5_and_load15_rise_and_decay_with_their_time_constants():
    timeline = _timeline()
    timeline.occupy(30, 30 * 60.0, 2.0)  # minutes 30-59
    extra5 = [timeline.snapshot(i).load5 - 0.1 for i in range(MINUTES)]
    extra15 = [timeline.snapshot(i).load15 - 0.1 for i in range(MINUTES)]
    assert extra5[29] == pytest.approx(0.0, abs=1e-9)
    for k in (0, 4, 29):  # rising: 2 * (1 - e^(-(k + 1) / T))
        assert extra5[30 + k] == pytest.approx(2 * (1 - math.exp(-(k + 1) / 5)))
        assert extra15[30 + k] == pytest.approx(2 * (1 - math.exp(-(k + 1) / 15)))
    for k in (1, 5, 40):  # decaying after the end by e^(-1/T) a minute
        assert extra5[59 + k] == pytest.approx(extra5[59] * math.exp(-k / 5))
        assert extra15[59 + k] == pytest.approx(extra15[59] * math.exp(-k / 15))
    assert extra5[64] / extra5[59] == pytest.approx(math.exp(-1), rel=1e-6)  # one T later


def test_a_snapshot_cached_before_a_run_is_not_served_after_it():
    timeline = _timeline()
    before = timeline.snapshot(40)
    timeline.occupy(40, 60.0, 1.0)
    assert timeline.snapshot(40).load1 == pytest.approx(before.load1 + 1.0)


def test_clear_overlay_gives_back_the_trace():
    timeline = _timeline()
    timeline.occupy(40, 600.0, 1.0)
    timeline.clear_overlay()
    assert [timeline.snapshot(i) for i in range(MINUTES)] == [
        timeline.trace.at(timeline.instant(i)) for i in range(MINUTES)
    ]


def test_past_the_trace_the_overlay_still_counts():
    timeline = _timeline()
    timeline.occupy(MINUTES + 5, 120.0, 1.5)
    assert timeline.snapshot(MINUTES + 6).load1 == pytest.approx(0.1 + 1.5)
    assert timeline.snapshot(MINUTES + 4).load1 == pytest.approx(0.1)


def test_the_hold_masks_ignore_the_overlay():
    from smartcron.smart.smartspec import SmartSpec

    timeline = _timeline()
    spec = SmartSpec(name="x", max_load=1.0)
    before = timeline.hold_mask(spec)
    timeline.occupy(0, MINUTES * 60.0, 3.0)
    assert timeline.hold_mask(spec) == before == b"\x01" * MINUTES
