"""smartcron.ai.features: one vector per evaluation, and nothing from the future in it."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai.features import (
    FEATURES,
    NO_STATS,
    JobHistoryStats,
    RunOutcome,
    features,
    job_stats,
    time_features,
    time_rows,
)
from smartcron.store.history import from_db_time, to_db_time
from smartcron.testing import sample_snapshot

T = datetime(2026, 1, 7, 13, 30, tzinfo=UTC)  # a Wednesday
HEAVY = ("pandas", "sklearn", "joblib", "skl2onnx", "onnx")


def value(vector: list[float], name: str) -> float:
    return vector[FEATURES.index(name)]


def test_one_finite_number_per_feature() -> None:
    v = features(sample_snapshot(T), NO_STATS, T - timedelta(minutes=30), T)
    assert len(v) == len(FEATURES) == len(set(FEATURES))
    assert all(isinstance(x, float) and math.isfinite(x) for x in v)
    assert value(v, "minutes_late") == 30.0
    assert value(v, "hour") == 13.0 and value(v, "weekday") == 2.0
    assert value(v, "hour_sin") == pytest.approx(math.sin(2 * math.pi * 13.5 / 24))


def test_absent_readings_are_explicit() -> None:
    snap = sample_snapshot(
        T, battery_percent=None, charging=None, on_ac=None, idle_seconds=None,
        idle_source="none", disk_free_percent=None,
    )  # fmt: skip
    v = features(snap, NO_STATS, T, T)
    assert value(v, "battery_percent") == 100.0 and value(v, "has_battery") == 0.0
    assert value(v, "on_ac") == 1.0  # no battery: on mains
    assert value(v, "idle_known") == 0.0 and value(v, "idle_log1p") == 0.0
    assert value(v, "last_ok") == 0.5 and value(v, "runs") == 0.0


def test_idle_is_log_scaled() -> None:
    v = features(sample_snapshot(T, idle_seconds=3600.0), NO_STATS, T, T)
    assert value(v, "idle_log1p") == pytest.approx(math.log1p(3600.0))


def test_job_stats_use_only_runs_that_ended_strictly_before() -> None:
    runs = [
        RunOutcome(ended=T - timedelta(hours=2), ok=True, runtime_s=100.0),
        RunOutcome(ended=T - timedelta(hours=1), ok=False, runtime_s=300.0),
        RunOutcome(ended=T, ok=True, runtime_s=5.0),  # ends at the instant: not known yet
    ]
    stats = job_stats(runs, T)
    assert (stats.last_ok, stats.success_rate, stats.runs, stats.mean_runtime_s) == (
        False, 0.5, 2, 200.0
    )  # fmt: skip
    assert (stats.total_runs, stats.total_ok, sum(stats.hour_runs)) == (2, 1, 2)
    assert job_stats(runs, T - timedelta(hours=2)) == NO_STATS


def test_job_stats_look_at_the_last_n_runs() -> None:
    runs = [
        RunOutcome(ended=T - timedelta(minutes=k), ok=k > 3, runtime_s=1.0)
        for k in range(20, 0, -1)
    ]
    stats = job_stats(runs, T, n=5)
    assert stats.runs == 5 and stats.success_rate == pytest.approx(2 / 5)


def _job(hour_runs: int, hour_ok: int, total_runs: int, total_ok: int) -> JobHistoryStats:
    """A job whose runs at 13:xx (Wednesdays) are `hour_runs`, `hour_ok` of them ok."""
    hours, oks = [0] * 24, [0] * 24
    hours[13], oks[13] = hour_runs, hour_ok
    hours[9], oks[9] = total_runs - hour_runs, total_ok - hour_ok
    days = (0, 0, hour_runs, 0, 0, 0, total_runs - hour_runs)
    days_ok = (0, 0, hour_ok, 0, 0, 0, total_ok - hour_ok)
    return JobHistoryStats(
        runs=10, success_rate=1.0, last_ok=True, total_runs=total_runs, total_ok=total_ok,
        hour_runs=tuple(hours), hour_ok=tuple(oks), weekday_runs=days, weekday_ok=days_ok,
    )  # fmt: skip


def test_a_job_hour_with_few_runs_stays_near_the_job_and_one_with_many_is_trusted() -> None:
    from smartcron.ai.features import SHRINK_RUNS

    few = features(sample_snapshot(T), _job(4, 0, 404, 400), T, T)  # 4 failures at 13:xx
    many = features(sample_snapshot(T), _job(400, 0, 800, 400), T, T)  # 400 failures
    overall = (400 + SHRINK_RUNS * 0.9) / (404 + SHRINK_RUNS)
    assert value(few, "job_rate") == pytest.approx(overall)
    assert value(few, "job_hour_rate") == pytest.approx(SHRINK_RUNS * overall / (4 + SHRINK_RUNS))
    assert value(few, "job_hour_rate") > 0.65 and value(many, "job_hour_rate") < 0.02
    assert value(few, "job_hour_runs_log1p") == pytest.approx(math.log1p(4))
    assert value(many, "job_weekday_rate") < 0.02  # all 400 Wednesday runs failed too


def test_a_decisions_rows_at_many_instants_are_each_instants_own_row() -> None:
    # time_rows works the record out once for a decision's slots: no slot may see
    # another's hour, weekday or cores
    stats = _job(400, 0, 800, 400)
    instants = [T + timedelta(minutes=m) for m in (0, 45, 150, 24 * 60 * 4 + 5)]
    cores = [0.0, 2.5, -1.0, 1.0]
    rows = time_rows(stats, T, instants, UTC, cores)
    assert rows == [
        time_features(stats, T, at, UTC, c) for at, c in zip(instants, cores, strict=True)
    ]
    clock = FEATURES.index("hour")
    assert [r[FEATURES.index("minutes_late") - clock] for r in rows] == [0.0, 45.0, 150.0, 5765.0]
    assert [r[-1] for r in rows] == [0.0, 2.5, 0.0, 1.0]  # starting_cores, never below 0
    hour_rate = FEATURES.index("job_hour_rate") - clock
    assert rows[0][hour_rate] < 0.02 and rows[2][hour_rate] > 0.4  # 13:xx failed, 16:xx unseen
    assert rows[3][FEATURES.index("weekday") - clock] == 6.0  # Sunday
    assert time_rows(stats, T, instants[:2]) == [
        time_features(stats, T, at) for at in instants[:2]
    ]  # no cores given: 0


def test_the_hour_features_follow_the_slot_not_the_nominal_time() -> None:
    stats = _job(400, 0, 800, 400)
    at_13 = features(sample_snapshot(T), stats, T, T)
    at_15 = features(sample_snapshot(T), stats, T, T + timedelta(hours=2))
    assert value(at_13, "job_hour_rate") < 0.02
    assert value(at_15, "job_hour_rate") == pytest.approx(value(at_15, "job_rate"))  # no runs
    assert value(at_15, "job_hour_runs_log1p") == 0.0


def test_a_job_without_history_gets_the_prior() -> None:
    from smartcron.ai.features import PRIOR_RATE

    v = features(sample_snapshot(T), NO_STATS, T, T)
    names = ("job_hour_rate", "job_weekday_rate", "job_rate")
    assert [value(v, name) for name in names] == [pytest.approx(PRIOR_RATE)] * 3


def test_rewriting_the_history_after_t_changes_no_row_before_t(tmp_path: Path) -> None:
    from smartcron.ai import train
    from tests.modelkit import simulated_history

    db = simulated_history(tmp_path / "h.db", 4)
    before = train.load_dataset(db)
    t = before.at[len(before.at) // 2]
    rng = random.Random(1)
    with sqlite3.connect(db) as conn:  # the future: every outcome flipped, snapshots shuffled
        conn.execute(
            "UPDATE runs SET status = CASE status WHEN 'ok' THEN 'failed' ELSE 'ok' END,"
            " exit_code = 1 - exit_code, runtime_s = runtime_s * 7 WHERE ended >= ?",
            (to_db_time(t),),
        )
        rows = conn.execute(
            "SELECT id, snapshot FROM decisions WHERE at > ? AND snapshot IS NOT NULL",
            (to_db_time(t),),
        )
        rows = rows.fetchall()
        snaps = [json.loads(s) for _, s in rows]
        for (row_id, _), snap in zip(rows, rng.sample(snaps, len(snaps)), strict=True):
            at = conn.execute("SELECT at FROM decisions WHERE id = ?", (row_id,)).fetchone()[0]
            snap["at"] = from_db_time(at).isoformat()  # type: ignore[union-attr]
            conn.execute(
                "UPDATE decisions SET snapshot = ? WHERE id = ?", (json.dumps(snap), row_id)
            )
    after = train.load_dataset(db)
    early = [i for i, at in enumerate(before.at) if at < t]
    assert early and all(after.at[i] == before.at[i] for i in early)
    assert (after.X[early] == before.X[early]).all()
    assert (after.X[len(early) :] != before.X[len(early) :]).any()  # the change did land
    for name in ("job_rate", "job_hour_rate", "job_weekday_rate"):  # in the job features too
        column = FEATURES.index(name)
        assert (after.X[len(early) :, column] != before.X[len(early) :, column]).any()


def test_the_daemon_side_never_imports_the_training_stack() -> None:
    code = (
        "import sys, smartcron.ai.features, smartcron.ai.model, smartcron.ai.advisor;"
        "import smartcron.smart.gate, smartcron.cli.ctl;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ slot forecasts

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def _spiky_week(weeks: int = 2) -> list:
    """Snapshots every 15 minutes: load1 2 at night, 4 by day, +3 at each :00; the user
    active on weekdays 09-17 (idle 10 s), away otherwise."""
    snaps = []
    for k in range(weeks * 7 * 96):
        at = MONDAY + timedelta(minutes=15 * k)
        day = 9 <= at.hour < 17 and at.weekday() < 5
        load = (4.0 if day else 2.0) + (3.0 if at.minute == 0 else 0.0)
        snaps.append(
            sample_snapshot(at, load1=load, load5=load, idle_seconds=10.0 if day else 4000.0)
        )
    return snaps


def test_state_profile_learns_levels_minute_offsets_and_activity() -> None:
    from smartcron.ai.features import state_profile

    # four weeks: a minute offset is shrunk by MINUTE_PRIOR pseudo-samples (672 hours
    # here: 4 % of the spike; two weeks, 8 %)
    p = state_profile(_spiky_week(4), UTC, 60.0)
    noon, night = MONDAY + timedelta(hours=12), MONDAY + timedelta(hours=3)
    assert p.level("load1", noon, UTC) == pytest.approx(7.0, abs=0.3)  # 12:00: the spike
    assert 6.5 < state_profile(_spiky_week(2), UTC, 60.0).level("load1", noon, UTC) < 7.0
    assert p.level("load1", noon + timedelta(minutes=30), UTC) == pytest.approx(4.0, abs=0.3)
    assert p.level("load1", night + timedelta(minutes=30), UTC) == pytest.approx(2.0, abs=0.3)
    # a minute never seen (:10) is a typical minute, not the :00 spike
    assert p.level("load1", noon + timedelta(minutes=10), UTC) == pytest.approx(4.0, abs=0.3)
    assert p.p_active(noon, UTC) > 0.8 and p.p_active(night, UTC) < 0.1  # shrunk: 8 samples
    assert p.active_idle_s == 10.0
    assert len(p.hour_of_week["load1"]) == 168 and len(p.minute_of_hour["load1"]) == 60


def test_persistence_is_fitted_from_the_lag_correlation_of_departures() -> None:
    import random as stdlib_random

    from smartcron.ai.features import state_profile

    rng, x, snaps = stdlib_random.Random(3), 0.0, []
    for k in range(14 * 96):  # an AR(1) departure, 15 minutes apart: tau = 15 / ln(1/0.8)
        x = 0.8 * x + rng.gauss(0.0, 1.0)
        at = MONDAY + timedelta(minutes=15 * k)
        snaps.append(sample_snapshot(at, load1=5.0 + x))
    tau = state_profile(snaps, UTC, 60.0).tau_min["load1"]
    assert 40.0 < tau < 100.0  # 67 min in truth


def test_forecast_moves_to_the_level_and_keeps_a_decaying_departure() -> None:
    from smartcron.ai.features import forecast, p_active_at, state_profile

    p = state_profile(_spiky_week(), UTC, 60.0)
    now = MONDAY + timedelta(days=14, hours=12)  # Monday 12:00, the spike
    snap = sample_snapshot(now, load1=9.0, load5=9.0, idle_seconds=10.0)  # 2 above the usual
    busy, away, q = forecast(snap, p, now + timedelta(minutes=20), UTC)
    departure = 9.0 - p.level("load1", now, UTC)
    later = now + timedelta(minutes=20)
    expected = p.level("load1", later, UTC) + departure * math.exp(-20.0 / p.tau_min["load1"])
    assert busy.load1 == pytest.approx(expected) and busy.load1 == away.load1
    assert 4.0 < busy.load1 < 7.0  # the spike is gone, today's excess mostly kept
    assert busy.at == away.at == now + timedelta(minutes=20)
    assert busy.idle_seconds == p.active_idle_s and away.idle_seconds >= 60.0
    assert q == p_active_at(p, snap, now + timedelta(minutes=20), UTC) and q > 0.8
    far = forecast(snap, p, now + timedelta(hours=6), UTC)  # 18:00: the night's level
    assert far[0].load1 < busy.load1 and far[2] < 0.5
    held = forecast(snap, p, now, UTC)[0]  # no lead: the snapshot itself, idle aside
    assert held.load1 == pytest.approx(9.0) and held.battery_percent == snap.battery_percent


def test_minute_offsets_do_not_learn_which_minutes_waiting_firings_saw() -> None:
    """A history's snapshots are its decisions': minutes :00-:05 every hour, :20-:25 only
    on the days a firing waited there because the load was high (a max_load). The load
    has no minute pattern (the day's level, persistent, is all); the profile must not
    learn +1.5 at :20 from that selection (offsets from whole departures did)."""
    import random as stdlib_random

    from smartcron.ai.features import state_profile

    rng, snaps = stdlib_random.Random(5), []
    for day in range(28):
        excess = rng.choice([-1.5, 1.5])
        for hour in range(24):
            minutes = [*range(6), *(range(20, 26) if excess > 0 else ())]
            for minute in minutes:
                at = MONDAY + timedelta(days=day, hours=hour, minutes=minute)
                snaps.append(sample_snapshot(at, load1=3.0 + excess + rng.gauss(0.0, 0.1)))
    p = state_profile(snaps, UTC, 60.0)
    offsets = p.minute_of_hour["load1"]
    assert max(abs(offsets[m]) for m in (*range(6), *range(20, 26))) < 0.1, offsets
