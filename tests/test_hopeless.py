"""A start the model gives almost no chance is not taken while the window leaves time
(Policy.hopeless, issue 13's twenty-ninth round): the firing waits, re-planned each
minute, and runs at the first minute that reaches the bar or at its last slot."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.model import LoadedModel, load_model
from smartcron.smart import gate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import graph, install

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SPEC = SmartSpec(window=timedelta(hours=1))
NOBODY = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}


@pytest.fixture
def flat(tmp_path: Path) -> LoadedModel:
    """P(success) = 1 - load1 / 10 and no profile: every later slot is scored at the load
    measured now, so no slot is ever better than now (the case the rule is for)."""
    model = load_model(
        install(tmp_path / "m", graph("load"), active=NOBODY), owner_uid=os.geteuid(), now=NOW
    )
    assert isinstance(model, LoadedModel)
    return model


def firing() -> gate.Firing:
    return gate.Firing(id=None, job_id="j", nominal=NOW, deadline=NOW + SPEC.window)


@pytest.mark.parametrize(("load1", "action"), [(9.5, "defer"), (8.1, "defer"), (7.9, "run")])
def test_a_start_below_the_bar_waits_and_one_above_it_runs(
    flat: LoadedModel, load1: float, action: str
) -> None:
    """P(success) 0.05 and 0.19 against a bar of 0.2 wait a minute (the verdict says
    why); 0.21 runs now, as before the bar."""
    advisor = SmartAdvisor(flat, MemoryStats(), Policy(hopeless=0.2))
    snap = sample_snapshot(NOW, load1=load1, idle_seconds=None)
    verdict = advisor.advise(firing(), SPEC, snap, NOW)
    assert verdict.action == action, verdict.reason
    if action == "defer":
        assert verdict.until == NOW + timedelta(minutes=1)  # re-planned, not promised
        assert "(now below 0.20)" in verdict.reason and "by 01:59" in verdict.reason
        assert verdict.model is not None and verdict.model["p_success"] < 0.2


def test_without_the_bar_a_hopeless_start_runs_at_once(flat: LoadedModel) -> None:
    """hopeless=0: the expected-cost rule alone, whose delay cost starts a firing that no
    later slot beats (the rule before this round)."""
    advisor = SmartAdvisor(flat, MemoryStats(), Policy(hopeless=0.0))
    snap = sample_snapshot(NOW, load1=9.5, idle_seconds=None)
    assert advisor.advise(firing(), SPEC, snap, NOW).action == "run"


def test_at_the_last_slot_a_hopeless_firing_runs_and_never_passes_its_deadline(
    flat: LoadedModel,
) -> None:
    """Each minute the firing is planned again; at its window's last minute no later slot
    is left, so it runs there: waiting never turns into a window miss."""
    advisor = SmartAdvisor(flat, MemoryStats(), Policy(hopeless=0.2))
    f, now, verdicts = firing(), NOW, []
    while now < f.deadline:
        snap = sample_snapshot(now, load1=9.5, idle_seconds=None)
        verdict = gate.evaluate(f, SPEC, snap, now, advisor=advisor)
        verdicts.append((now, verdict.action))
        if verdict.action == "run":
            break
        assert verdict.until is not None and verdict.until <= f.deadline
        now = verdict.until
    assert verdicts[-1] == (f.deadline - timedelta(minutes=1), "run")
    assert all(action == "defer" for _, action in verdicts[:-1]) and len(verdicts) == 60
