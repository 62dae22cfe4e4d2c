"""The expected-cost rule and the machine-wide plan (smartcron.ai.plan, SmartAdvisor)."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.model import LoadedModel, load_model
from smartcron.ai.plan import FIRST_MINUTE, Commitments, Costs, expected_costs
from smartcron.sim.timeline import Timeline
from smartcron.sim.trace import load_trace
from smartcron.sim.world import load_world
from smartcron.smart import gate
from smartcron.smart.explore import Explorer
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import card_profile, graph, install, load_model_p_is_one_minus_load_over_ten
from tests.simkit import WORLD, trace_text

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NOBODY = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
MIN = timedelta(minutes=1)


def _model(tmp_path: Path) -> LoadedModel:
    model = load_model_p_is_one_minus_load_over_ten(tmp_path, NOW)
    assert isinstance(model, LoadedModel)
    return model


def test_expected_cost_adds_failure_interference_and_delay() -> None:
    costs = Costs(fail=2.0, interference=0.1, delay=0.5)
    cost = expected_costs(
        np.asarray([0.9, 0.5]), np.asarray([600.0, 1200.0]), [1.0, 0.0], [0.0, 2.0], 2.0, costs
    )
    # 0.1 x 2 + 0.1 x 2 cores x 10 min x 1.0 + 0 ; 0.5 x 2 + 0 + 0.5 x 2 h
    assert cost.tolist() == pytest.approx([2.2, 2.0])


def test_the_costs_come_from_the_jobs_smart_keys() -> None:
    spec = SmartSpec(window=timedelta(hours=1), fail_cost=3.0, interference_cost=0.0)
    assert Costs.of(spec) == Costs(fail=3.0, interference=0.0, delay=0.01)


def test_a_job_without_cost_keys_costs_what_smartcrontab5_says() -> None:
    # the defaults live in SmartSpec alone; an object without the keys (a rules-only
    # firing's spec) gets the same ones (man/smartcrontab.5: fail_cost, interference_cost)
    plain = SmartSpec(window=timedelta(hours=1))
    assert Costs.of(object()) == Costs.of(plain) == Costs(fail=1.0, interference=0.04)


def test_commitments_count_the_other_runs_going_and_planned() -> None:
    plans = Commitments()
    plans.commit("a", NOW, 600, 4.0)  # 01:00-01:10
    plans.commit("b", NOW + 30 * MIN, 60, 2.0)  # 01:30-01:31
    assert plans.load_at(NOW, but="x") == 4.0 and plans.load_at(NOW, but="a") == 0.0
    assert plans.load_at(NOW + 10 * MIN, but="x") == 0.0  # a has ended
    assert plans.load_at(NOW + 30 * MIN, but="x") == 2.0
    assert plans.running(NOW, but="x") == 0.0  # started this minute: not measured yet
    assert plans.running(NOW + 5 * MIN, but="x") == 4.0


def test_two_heavy_firings_due_together_are_planned_apart(tmp_path: Path) -> None:
    """The first of two 4-core jobs due at 01:00 runs at once (load 1: P 0.9 at every
    slot); the second, seeing the first's 4 cores until 01:10 (P 0.5 now), waits until
    it has ended. An advisor that plans each firing alone starts both at 01:00."""
    model = _model(tmp_path)
    spec = SmartSpec(window=timedelta(hours=2))
    snap = sample_snapshot(NOW, load1=1.0, load5=1.0)
    advisor = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))

    def firing(job: str) -> gate.Firing:
        return gate.Firing(id=None, job_id=job, nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]

    first = advisor.advise(firing("a"), spec, snap, NOW)
    assert first.action == "run"
    second = advisor.advise(firing("b"), spec, snap, NOW)
    assert second.action == "defer" and second.until == NOW + MIN  # re-planned each minute
    assert second.model is not None and second.model["p_success"] == pytest.approx(0.5)
    planned = second.reason.split(" at ")[1][:5]
    assert "01:10" <= planned <= "01:20", second.reason
    # a minute later the first is measured in the load (5); the plan stays apart
    later = sample_snapshot(NOW + MIN, load1=5.0, load5=5.0)
    again = advisor.advise(firing("b"), spec, later, NOW + MIN)
    assert again.action == "defer" and again.model is not None
    assert again.model["p_success"] == pytest.approx(0.5)  # measured 5 = 1 + its 4 cores
    alone = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    assert alone.advise(firing("b"), spec, snap, NOW).action == "run"
    unplanned = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0, plan=False))
    assert [unplanned.advise(firing(j), spec, snap, NOW).action for j in "ab"] == ["run", "run"]


@pytest.mark.parametrize(("share", "p_now", "action"), [(0.0, 0.9, "run"), (0.5, 0.7, "defer")])
def test_the_plan_counts_the_other_runs_load_by_the_models_load_share(
    share: float, p_now: float, action: str, tmp_path: Path
) -> None:
    """A machine whose load does not move with its runs (a load share of 0, learnt from
    its history: loadshare) gets no load planned for them: the second of two 4-core
    firings due together sees load 1 (P 0.9) and runs; with a share of 0.5, load 3."""
    model = dataclasses.replace(_model(tmp_path), load_share=share)
    spec = SmartSpec(window=timedelta(hours=2))
    snap = sample_snapshot(NOW, load1=1.0, load5=1.0)
    advisor = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    for job in "ab":
        firing = gate.Firing(id=None, job_id=job, nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
        verdict = advisor.advise(firing, spec, snap, NOW)
    assert verdict.action == action and verdict.model is not None
    assert verdict.model["p_success"] == pytest.approx(p_now)


def test_an_explored_start_is_in_the_plan_the_other_firings_see(tmp_path: Path) -> None:
    """Job a is in its learning period: the explorer starts it at a drawn minute T, and
    tells the advisor. Job b, due at T, sees a's 4 cores from T (P 0.5 now) and waits;
    an advisor not told of a's start runs b at once, on top of it."""
    model = _model(tmp_path)
    spec = SmartSpec(window=timedelta(hours=2))
    advisor = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    explorer = Explorer(advisor, MemoryStats())
    a = gate.Firing(id=None, job_id="a", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    drawn = explorer.draw(a, spec)
    assert drawn.explored and drawn.learning
    at = drawn.target
    first = explorer.advise(a, spec, sample_snapshot(NOW, load1=1.0, load5=1.0), NOW)
    assert first is not None and first.model is not None and first.model["explored"] == 1.0
    assert advisor.commitments.load_at(at, but="x") == 4.0  # planned before it starts
    started = explorer.advise(a, spec, sample_snapshot(at, load1=1.0, load5=1.0), at)
    assert started is not None and started.action == "run"
    assert advisor.commitments.running(at + MIN, but="x") == 4.0
    b = gate.Firing(id=None, job_id="b", nominal=at, deadline=at + spec.window)  # type: ignore[operator]
    snap = sample_snapshot(at, load1=1.0, load5=1.0)  # a started this minute: not measured
    told = advisor.advise(b, spec, snap, at)
    assert told.action == "defer" and told.model is not None
    assert told.model["p_success"] == pytest.approx(0.5)
    untold = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    assert untold.advise(b, spec, snap, at).action == "run"


def test_a_firing_runs_now_when_no_slot_beats_the_margin(tmp_path: Path) -> None:
    """load1 1.2 now, 1 forecast later: P 0.88 vs 0.90 is a gain of 0.02 < the 0.03 margin."""
    model = _model(tmp_path)
    spec = SmartSpec(window=timedelta(hours=2))
    advisor = SmartAdvisor(model, MemoryStats(), Policy(margin=0.03))
    f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    verdict = advisor.advise(f, spec, sample_snapshot(NOW, load1=1.2), NOW)
    assert verdict.action == "run" and "cost 0.12 now is the lowest" in verdict.reason
    keen = SmartAdvisor(model, MemoryStats(), Policy(margin=0.0))
    assert keen.advise(f, spec, sample_snapshot(NOW, load1=1.2), NOW).action == "defer"


def test_a_trade_of_success_for_less_interference_is_capped_by_max_loss(tmp_path: Path) -> None:
    """load1 0 now (P 1.0) with the user at the keyboard; later the load is back at its
    level 1 (P 0.9) and the user gone. At an interference cost of 1 a CPU-minute, the
    10-minute run costs 10 now and about 0.1 later: the advisor trades 0.1 of P(success)
    for it, unless max_loss forbids a trade that large (then it runs now)."""
    model = _model(tmp_path)
    spec = SmartSpec(window=timedelta(hours=2), interference_cost=1.0)
    snap = sample_snapshot(NOW, load1=0.0, load5=0.0, idle_seconds=0.0)
    f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    verdicts = {}
    for cap in (None, 0.2, 0.05):
        advisor = SmartAdvisor(model, MemoryStats(), Policy(max_loss=cap))
        verdicts[cap] = advisor.advise(f, spec, snap, NOW)
    assert verdicts[None].action == verdicts[0.2].action == "defer"
    assert verdicts[0.2].model is not None
    assert verdicts[0.2].model["best_p_success"] == pytest.approx(0.9, abs=0.01)
    assert verdicts[0.05].action == "run", verdicts[0.05].reason
    assert verdicts[0.05].reason.endswith(
        "now is the lowest of those giving up at most 0.05 of success)"
    )
    assert Policy().max_loss == pytest.approx(0.25)  # docs/ai.md, round 20


def test_the_failure_cost_weighs_against_the_delay_cost(tmp_path: Path) -> None:
    """load1 1.5 now, 1 later: 0.05 more P(success) from the first later slot (01:10).
    At delay_cost 0.5 per hour, the 10 minutes cost 0.08: run now. A failure worth 10
    makes the gain 0.5: wait."""
    model = _model(tmp_path)
    snap = sample_snapshot(NOW, load1=1.5)
    verdicts = []
    for fail_cost in (1.0, 10.0):
        spec = SmartSpec(window=timedelta(hours=2), fail_cost=fail_cost, delay_cost=0.5)
        f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
        verdicts.append(SmartAdvisor(model, MemoryStats()).advise(f, spec, snap, NOW).action)
    assert verdicts == ["run", "defer"]


def test_a_firing_waits_for_a_quiet_minute_when_the_load_wanders(tmp_path: Path) -> None:
    """load1 1 now and forecast 1 (P 0.90 now and at every slot) with departures of
    a quiet depth of 1 that last 5 minutes: a minute near load 0 (P ~1) is likely in the
    hour; waiting for it beats every slot. At such a minute it runs. An older card (no
    spread) sees no such plan and runs now."""
    directory = install(
        tmp_path / "m", graph("load"), profile=card_profile(0.0, spread=1.0), active=NOBODY
    )
    model = load_model(directory, owner_uid=os.geteuid(), now=NOW)
    assert isinstance(model, LoadedModel)
    spec = SmartSpec(window=timedelta(hours=1))
    f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    advisor = SmartAdvisor(model, MemoryStats())
    first = advisor.advise(f, spec, sample_snapshot(NOW, load1=1.0), NOW)
    assert first.action == "defer" and " at a quiet minute, by " in first.reason
    quiet = advisor.advise(f, spec, sample_snapshot(NOW + MIN, load1=0.1), NOW + MIN)
    assert quiet.action == "run"
    older = _model(tmp_path / "old")
    plain = SmartAdvisor(older, MemoryStats()).advise(f, spec, sample_snapshot(NOW, load1=1.0), NOW)
    assert plain.action == "run"


def test_a_window_bounds_the_start_not_the_end(tmp_path: Path) -> None:
    """A 10-minute job in a 12-minute window: by default a slot at 01:11 may be chosen
    (it starts inside the window, as cron and the oracle count it); the first design's
    rule (end 1.5 runtimes before the deadline) left it no later slot at all."""
    model = _model(tmp_path)
    spec = SmartSpec(window=timedelta(minutes=12))
    f = gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    snap = sample_snapshot(NOW, load1=3.0)  # P 0.7 now, the load forecast to fall back to 1
    assert SmartAdvisor(model, MemoryStats()).advise(f, spec, snap, NOW).action == "defer"
    cautious = SmartAdvisor(model, MemoryStats(), Policy(runtime_factor=1.5))
    assert cautious.advise(f, spec, snap, NOW).action == "run"


def test_commitments_forget_runs_whose_load_has_died_away() -> None:
    """A run is kept 90 minutes after its end (its load15 tail), then dropped."""
    plans = Commitments()
    for i in range(100):
        plans.commit(i, NOW + i * MIN, 60, 1.0)
    plans.prune(NOW + 150 * MIN)  # runs ending at 01:01 ... 02:40; kept: ends after 01:00
    assert len(plans) == 40 and plans.load_at(NOW + 99 * MIN, but="x") == 1.0


def test_planned_loads_rise_and_decay_as_the_simulators_job_load() -> None:
    """Commitments.loads gives the load1, load5, load15 a run adds as Timeline.occupy
    (and Linux's damped averages) does: a 2-core run over minutes 30-59, seen from minute
    0, then from minute 45 (the part measured by then is taken out). In its first minute
    its cores are starting_cores as well; a load share scales the load, not the cores."""
    timeline = Timeline(
        load_trace(trace_text(120).splitlines(), "t.csv"),
        load_world(WORLD + "machine: {cores: 4, job_load: true}\n", "w.yaml"),
    )
    base = [timeline.snapshot(i) for i in range(120)]
    timeline.occupy(30, 30 * 60.0, 2.0)
    plans = Commitments()
    plans.commit("a", NOW + 30 * MIN, 30 * 60.0, 2.0)
    minutes = [0, 29, 30, 34, 45, 59, 60, 61, 65, 90, 119]
    ahead, starting = plans.loads(NOW, [NOW + m * MIN for m in minutes], but="x")
    for row, cores, m in zip(ahead, starting, minutes, strict=True):
        got, was = timeline.snapshot(m), base[m]
        want = [got.load1 - was.load1, got.load5 - was.load5, got.load15 - was.load15]
        assert row.tolist() == pytest.approx(want, abs=1e-9), m
        if m == 30:  # its first minute: the world judges a start beside it by this load
            assert want == pytest.approx((2.0 * FIRST_MINUTE).tolist(), abs=1e-9)
        assert cores == (2.0 if m == 30 else 0.0)
    half, cores_too = plans.loads(NOW, [NOW + m * MIN for m in minutes], "x", share=0.5)
    assert np.allclose(half, ahead / 2) and (cores_too == starting).all()
    later, _ = plans.loads(NOW + 45 * MIN, [NOW + 45 * MIN, NOW + 65 * MIN], but="x")
    at45, at65 = timeline.snapshot(45), timeline.snapshot(65)
    assert later[1].tolist() == pytest.approx(
        [at65.load1 - at45.load1, at65.load5 - at45.load5, at65.load15 - at45.load15]
    )
    assert later[0].tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert plans.loads(NOW, [NOW + 40 * MIN], but="a")[0].tolist() == [[0.0, 0.0, 0.0]]


def test_runs_planned_after_the_last_slot_change_no_slot_and_are_skipped() -> None:
    """A run starting after the window's last slot adds nothing at any slot: loads()
    leaves it out (a daemon's deferred firings are planned hours ahead), to the bit."""
    near, far = Commitments(), Commitments()
    for plans in (near, far):
        plans.commit("before", NOW - 20 * MIN, 50 * 60.0, 1.5)  # measured already, going on
        plans.commit("in", NOW + 7 * MIN, 30 * 60.0, 2.0)
    for k in range(12):  # planned beyond the window, some at its very edge
        far.commit(("later", k), NOW + (61 + 17 * k) * MIN, 600.0, 1.0)
    far.commit("edge", NOW + 60 * MIN + timedelta(microseconds=1), 600.0, 3.0)
    slots = [NOW + m * MIN for m in (0, 5, 7, 20, 45, 60)]
    want, got = near.loads(NOW, slots, but="x"), far.loads(NOW, slots, but="x")
    assert [a.tolist() for a in got] == [a.tolist() for a in want]
    assert want[0][-1].tolist() != [0.0, 0.0, 0.0]  # the two runs in it do count
    far.commit("last", NOW + 60 * MIN, 600.0, 3.0)  # starts at the last slot: it counts
    assert far.loads(NOW, slots, but="x")[1][-1] == 3.0
