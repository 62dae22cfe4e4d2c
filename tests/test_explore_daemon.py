"""Exploration in the daemon: a learning job starts at a random minute of its window."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from smartcron.smart.explore import uniform
from tests.harness import make, utc

CRONTAB = "#@smart name=backup window=2h\n0 2 * * * backup\n"  # 02:00 CET = 01:00Z
NOMINAL = utc("01:00")


def explored_start(tmp_path: Path, crontab: str = CRONTAB, **settings: object):  # type: ignore[no-untyped-def]
    h = make(tmp_path, crontab, explore=True, **settings)
    h.run_until(utc("03:05"))
    return h


def drawn_minute(job_id: str) -> str:
    """The minute the hash draws for backup's 02:00 firing (the loader's job id for the
    name `backup`: crontab-USER-backup): 120 candidates (no runtime known yet), seed 0."""
    pick = int(uniform(0, "minute", job_id, NOMINAL.isoformat()) * 120)
    return (NOMINAL + timedelta(minutes=pick)).strftime("%H:%MZ")


def test_a_learning_job_starts_at_its_drawn_minute_and_the_trail_says_explored(tmp_path):
    h = explored_start(tmp_path)
    assert h.starts == [("backup", drawn_minute(h.job("backup").id))]
    assert (
        drawn_minute(h.job("backup").id) != "01:00Z"
    )  # this firing's draw is not the nominal minute
    trail = h.trail("backup")
    assert trail[0][1] == "defer" and trail[0][2].startswith("explored: waiting for 02:")
    assert "(learning period: 0 of 20 runs away from the nominal time)" in trail[0][2]
    ran = [t for t in trail if t[1] == "run"]
    assert len(ran) == 1 and ran[0][0] == drawn_minute(h.job("backup").id)
    assert ran[0][2].startswith("constraints hold (explored: a random start at")
    (stored,) = h.firings("backup")
    decisions = h.store.decisions(stored.firing.id)
    run = next(d for d in decisions if d.verdict == "run")
    assert run.model == {
        "explored": 1.0,
        "propensity": round(1 / 120, 8),
        "uniform": round(1 / 120, 8),
        "explore_share": 1.0,
    }


def test_an_explored_firing_still_waits_for_its_hard_constraints(tmp_path):
    """On battery below min_battery until 02:50Z: the drawn minute passes; it starts at the
    first minute the constraint holds after it."""
    from tests.harness import battery

    crontab = "#@smart name=backup window=2h min_battery=30\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, battery("02:50"), explore=True)
    h.run_until(utc("03:05"))
    assert drawn_minute(h.job("backup").id) < "02:50Z"
    assert h.starts == [("backup", "02:50Z")]


def test_exploration_is_off_per_job_and_globally(tmp_path):
    off_job = "#@smart name=backup window=2h explore=off\n0 2 * * * backup\n"
    assert explored_start(tmp_path / "job", off_job).starts == [("backup", "01:00Z")]
    h = make(tmp_path / "global", CRONTAB, explore=False)
    h.run_until(utc("03:05"))
    assert h.starts == [("backup", "01:00Z")]


def test_a_restarted_daemon_starts_the_waiting_firing_at_the_same_minute(tmp_path):
    h = make(tmp_path, CRONTAB, explore=True)
    target = drawn_minute(h.job("backup").id)
    before = utc(target[:5]) - timedelta(minutes=1)
    h.run_until(before)
    assert h.starts == []
    again = make(tmp_path, CRONTAB, explore=True, clock=h.clock, history=h.history)
    again.run_until(utc("03:05"))
    assert again.starts == [("backup", target)]
