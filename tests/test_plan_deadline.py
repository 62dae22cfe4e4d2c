"""A start the gate makes at a firing's deadline (without asking the advisor) enters the
machine-wide plan the other firings see (issue 13, third round)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.model import LoadedModel
from smartcron.smart import gate
from smartcron.smart.explore import Explorer, ExploreSettings
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import load_model_p_is_one_minus_load_over_ten

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
SPEC = SmartSpec(window=timedelta(hours=2))


def _model(tmp_path: Path) -> LoadedModel:
    model = load_model_p_is_one_minus_load_over_ten(tmp_path, NOW)
    assert isinstance(model, LoadedModel)
    return model


def firing(job: str, nominal: datetime) -> gate.Firing:
    return gate.Firing(id=None, job_id=job, nominal=nominal, deadline=nominal + SPEC.window)  # type: ignore[operator]


@pytest.mark.parametrize("outer", ["advisor", "explorer"])
def test_a_deadline_forced_start_is_in_the_plan_other_firings_see(
    tmp_path: Path, outer: str
) -> None:
    """Job a reaches its deadline at 03:00 and the gate runs it (4 cores, 10 minutes)
    without asking the advisor. Job b, due at 03:00 too, sees a's 4 cores (P 0.5 now
    against 0.9 once a has ended) and waits; before the gate told the advisor of such
    starts, b ran at once on top of a (the same advisor untold: run)."""
    model = _model(tmp_path)
    advisor = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    told = (
        advisor
        if outer == "advisor"
        else Explorer(advisor, MemoryStats(), ExploreSettings(enabled=False))
    )
    due = NOW + SPEC.window  # a's deadline
    snap = sample_snapshot(due, load1=1.0, load5=1.0)
    verdict = gate.evaluate(firing("a", NOW), SPEC, snap, due, advisor=told)
    assert verdict.action == "run" and verdict.reason == "constraints hold"
    assert advisor.commitments.load_at(due, but="x") == 4.0
    assert advisor.commitments.running(due + 5 * MIN, but="x") == 4.0  # a's 10 minutes
    b = gate.evaluate(firing("b", due), SPEC, snap, due, advisor=told)
    assert b.action == "defer" and b.model is not None
    assert b.model["p_success"] == pytest.approx(0.5)
    untold = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
    assert gate.evaluate(firing("b", due), SPEC, snap, due, advisor=untold).action == "run"


def test_a_deadline_start_despite_failed_constraints_is_planned_and_a_skip_is_not(
    tmp_path: Path,
) -> None:
    """on_deadline=run: the gate runs a over its failed max_load, and plans it; with
    on_deadline=skip nothing starts, so nothing enters the plan."""
    model = _model(tmp_path)
    due = NOW + SPEC.window
    snap = sample_snapshot(due, load1=3.0, load5=3.0)
    for on_deadline, action, planned in (("run", "run", 4.0), ("skip", "skip", 0.0)):
        advisor = SmartAdvisor(model, MemoryStats(), Policy(default_cores=4.0))
        spec = SmartSpec(window=SPEC.window, max_load=2.0, on_deadline=on_deadline)
        verdict = gate.evaluate(firing("a", NOW), spec, snap, due, advisor=advisor)
        assert verdict.action == action and verdict.failed
        assert advisor.commitments.load_at(due, but="x") == planned


def test_a_failing_plan_never_changes_the_deadlines_verdict() -> None:
    """The plan is a hint: an advisor whose plan_start raises still gets its firing run."""

    class Broken:
        def advise(self, *args: object) -> None:
            raise AssertionError("the deadline's start does not ask the advisor")

        def plan_start(self, *args: object) -> None:
            raise RuntimeError("plan broken")

    due = NOW + SPEC.window
    snap = sample_snapshot(due, load1=1.0)
    verdict = gate.evaluate(firing("a", NOW), SPEC, snap, due, advisor=Broken())
    assert verdict.action == "run" and verdict.reason == "constraints hold"


def test_a_four_minute_pause_still_counts_mostly_as_the_user_at_work(tmp_path: Path) -> None:
    """Policy.settle_s (600 s): idle 240 s counts a third as away, so P(user active
    during the run) stays near an active user's; at 600 s the user counts as gone. With
    300 s (the second round's), 240 s already counted three quarters as away."""
    model = _model(tmp_path)
    a = {}
    for settle in (600.0, 300.0):
        advisor = SmartAdvisor(model, MemoryStats(), Policy(settle_s=settle))
        for idle in (10.0, 240.0, 700.0):
            snap = sample_snapshot(NOW, load1=1.0, idle_seconds=idle)
            verdict = advisor.advise(firing(f"j{idle}", NOW), SPEC, snap, NOW)
            assert verdict.model is not None
            a[settle, idle] = verdict.model["p_active"]
    assert Policy().settle_s == 600.0
    active, gone = a[600.0, 10.0], a[600.0, 700.0]
    assert active > gone + 0.3
    share = (a[600.0, 240.0] - gone) / (active - gone)  # how much of an active user
    assert share == pytest.approx(1.0 - (240.0 - 60.0) / (600.0 - 60.0), abs=0.02)
    assert (a[300.0, 240.0] - gone) / (active - gone) == pytest.approx(0.25, abs=0.02)


def test_a_pause_the_samples_say_nothing_about_is_settled_as_without_them(
    tmp_path: Path,
) -> None:
    """With presence samples the settle gives way to what they taught, but only where
    they taught something: an activity forecast with no cell at all gives the same
    P(user active) as none, a four-minute pause counting mostly as the user at work;
    with cells, a pause of 240 s and one of 700 s are what the cells say (here the
    same), not a mix with an active user."""
    from smartcron.ai.activity import ActivityForecast

    model = _model(tmp_path)
    profile = model.profile
    assert profile is not None

    def p_active(forecast: ActivityForecast | None, idle: float) -> float:
        model.profile = replace(profile, activity=forecast)
        advisor = SmartAdvisor(model, MemoryStats(), Policy())
        snap = sample_snapshot(NOW, load1=1.0, idle_seconds=idle)
        verdict = advisor.advise(firing("j", NOW), SPEC, snap, NOW)
        assert verdict.model is not None
        return float(verdict.model["p_active"])

    rows, leads = 7, 48
    empty = ActivityForecast(tuple(tuple(None for _ in range(leads)) for _ in range(rows)))
    for idle in (10.0, 240.0, 700.0):
        assert p_active(empty, idle) == p_active(None, idle)
    assert p_active(None, 240.0) > p_active(None, 700.0) + 0.2  # the settle
    flat = ActivityForecast(tuple(tuple((0.0, 0.0) for _ in range(leads)) for _ in range(rows)))
    assert p_active(flat, 240.0) == p_active(flat, 700.0)


def test_a_job_that_needs_the_user_away_keeps_a_good_minute(tmp_path: Path) -> None:
    """The user away for 70 s now (an ``idle=1m`` job may start), at the keyboard 80 % of
    this hour; P(success) 0.9 at every minute. Without the constraint the firing waits
    for the user to step away for longer (less interference). With it, waiting can end
    with the user back, the start held until the deadline and forced against the
    constraint (counted a failure: waiting.held_back), which costs more: it runs now."""
    from smartcron.ai.model import load_model
    from tests.modelkit import card_profile, graph, install

    active = {"idle_below_s": 60, "by_hour_of_week": [0.8] * 168}
    blob = graph("load")
    directory = install(tmp_path / "m", blob, profile=card_profile(spike=0.0), active=active)
    model = load_model(directory, owner_uid=os.geteuid(), now=NOW)
    assert isinstance(model, LoadedModel)
    snap = sample_snapshot(NOW, idle_seconds=70.0, load1=1.0)
    hour = SmartSpec(window=timedelta(hours=1))
    one = firing("job", NOW)
    one = replace(one, deadline=NOW + hour.window)  # type: ignore[operator]
    cautious = Policy(runtime_factor=1.5, margin=0.03, uncertainty=0.5)  # as test_model's
    free = SmartAdvisor(model, MemoryStats(), cautious).advise(one, hour, snap, NOW)
    assert free.action == "defer" and "when the user steps away" in free.reason
    needs_away = replace(hour, idle=timedelta(minutes=1))
    held = SmartAdvisor(model, MemoryStats(), cautious).advise(one, needs_away, snap, NOW)
    assert held.action == "run", held.reason


def _four_slots_half_active() -> tuple[list[datetime], Any, Any]:
    """Now and three slots 10 minutes apart, P(active) 0.5 at each, tau 10 minutes: P
    0.9 now, 0.9 later with the user away, 0.8 with them there."""
    from smartcron.ai.profile import Profile
    from smartcron.ai.scoring import Scores
    from tests.modelkit import card_profile

    slots = [NOW + k * 10 * MIN for k in range(4)]
    sc = Scores(
        p=np.asarray([0.9, 0.85, 0.85, 0.85]),
        runtime=np.full(4, 600.0),
        a=[0.5] * 4,
        busy=np.full(3, 0.8),
        away=np.full(3, 0.9),
        share=np.asarray([0.5, 0.5, 0.5]),
    )
    return slots, sc, Profile.from_dict(card_profile(tau=10.0), [0.5] * 168)


def test_held_back_slots_succeed_only_if_the_user_leaves_in_time() -> None:
    """A later slot's P(success) for an ``idle`` job: away's, times 1 - P(active) x P(still
    active at the last slot); the away plan's fall-back (the busy branch) is a failure;
    now is left as it is."""
    from smartcron.ai.waiting import held_back

    slots, sc, profile = _four_slots_half_active()
    out = held_back(sc, profile, slots, 3)
    leave = 1.0 - np.exp(-0.5 * np.asarray([20.0, 10.0, 0.0]) / 10.0)
    assert out.p.tolist() == pytest.approx([0.9, *(0.9 * (1.0 - 0.5 * (1.0 - leave)))])
    assert out.p[3] == pytest.approx(0.45)  # at the last slot the user there stays
    assert out.busy is not None and out.busy.tolist() == [0.0, 0.0, 0.0]
    unmixed = replace(sc, share=None)  # scored without a profile: nothing to hold back
    assert held_back(unmixed, profile, slots, 3) is unmixed


def test_a_longer_idle_constraint_holds_a_later_slot_back_longer() -> None:
    """``idle=11m``: a later slot can start only if the user is away then and has been for
    the 10 minutes beyond the model's own active threshold (the chain's dwell), and a
    held-back start needs them to leave 10 minutes before the last slot."""
    from smartcron.ai.waiting import held_back

    slots, sc, profile = _four_slots_half_active()
    d = (11 * 60 - profile.idle_below) / 60.0
    stays = np.exp(-0.5 * d / 10.0)
    left = np.clip(np.asarray([20.0, 10.0, 0.0]) - d, 0.0, None)
    leave = (1.0 - np.exp(-0.5 * left / 10.0)) * stays
    holds = 0.5 * stays
    out = held_back(sc, profile, slots, 3, idle_s=11 * 60)
    assert out.p.tolist() == pytest.approx([0.9, *(0.9 * (holds + (1.0 - holds) * leave))])
    short = held_back(sc, profile, slots, 3, idle_s=profile.idle_below)
    assert (out.p[1:] < short.p[1:]).all()  # the 10 minutes cost every later slot
    assert short.p.tolist() == held_back(sc, profile, slots, 3).p.tolist()


def test_the_daemons_model_watch_passes_a_start_on_to_its_models_plan(tmp_path: Path) -> None:
    """The daemon's engine asks a ModelWatch (ai.modelwatch), not the SmartAdvisor: an
    explored or deadline start (plan_start) must reach the model's plan there too, as in
    the simulator, which asks the SmartAdvisor itself. Without a model: nothing, no error."""
    from smartcron.ai.modelwatch import ModelWatch
    from tests.modelkit import card_profile, graph, install

    nobody = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
    directory = install(tmp_path / "m", graph("load"), profile=card_profile(), active=nobody)
    watch = ModelWatch(directory, owner_uid=os.geteuid(), max_age=None)
    firing = gate.Firing(id=None, job_id="a", nominal=NOW, deadline=NOW + 60 * MIN)
    watch.plan_start(firing, NOW)  # no model loaded yet
    assert watch.refresh(NOW) and watch.advisor is not None
    explorer = Explorer(watch, MemoryStats())
    explorer.plan_start(firing, NOW)  # as the gate's deadline start and the explorer tell it
    assert watch.advisor.commitments.load_at(NOW, but="x") == 1.0  # the default cores


def test_the_slots_reach_each_clock_hour_and_the_windows_last_minute(tmp_path: Path) -> None:
    """Due 12:30 with a 91-minute window: the grid (every 7 minutes) ends at 13:54; the
    first minute of 13:00 and 14:00 and the last minute (14:00) are slots too, so a job
    that does better in a later hour (here P = hour / 24) can wait for 14:00."""
    import os

    from smartcron.ai.advisor import hour_starts
    from smartcron.ai.model import load_model
    from tests.modelkit import card_profile, graph, install

    nobody = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
    directory = install(tmp_path / "m", graph("hour"), profile=card_profile(), active=nobody)
    model = load_model(directory, owner_uid=os.geteuid(), now=NOW)
    assert isinstance(model, LoadedModel)
    due = NOW.replace(hour=12, minute=30)
    spec = SmartSpec(window=timedelta(minutes=91))
    firing = gate.Firing(id=None, job_id="j", nominal=due, deadline=due + spec.window)  # type: ignore[operator]
    verdict = SmartAdvisor(model, MemoryStats()).advise(firing, spec, sample_snapshot(due), due)
    assert verdict.action == "defer" and " at 14:00 " in verdict.reason, verdict.reason
    assert hour_starts(due, due + spec.window, UTC) == [
        due.replace(hour=13, minute=0),
        due.replace(hour=14, minute=0),
    ]
    assert hour_starts(due.replace(minute=0), due.replace(minute=0) + 60 * MIN, UTC) == []
