"""smartcron.ai.train: from a simulated history to an artifact load_model accepts.

Histories come from the simulator (cron policy on the laptop fixtures), as `make model`
makes them; forests are tiny so the module stays within a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from smartcron.ai import train
from smartcron.ai.model import LoadedModel, load_model
from smartcron.cli.ctl import main
from smartcron.sim import simulator
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world
from smartcron.store.history import HistoryStore, to_db_time
from tests.modelkit import TINY, simulated_history

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_history(tmp_path_factory.mktemp("hist") / "history.db", 8)


@pytest.fixture(scope="module")
def trained(history: Path, tmp_path_factory: pytest.TempPathFactory) -> train.Result:
    return train.train(history, tmp_path_factory.mktemp("model"), params=TINY, now=NOW)


def test_training_is_deterministic_and_load_model_accepts_it(
    history: Path, trained: train.Result, tmp_path: Path
) -> None:
    again = train.train(history, tmp_path, params=TINY, now=NOW)
    assert again.card == trained.card  # same sha256 of model.onnx and model.pkl, metrics
    assert (tmp_path / "model.onnx").read_bytes() == (trained.out / "model.onnx").read_bytes()
    loaded = load_model(tmp_path, owner_uid=0, now=NOW)
    assert isinstance(loaded, LoadedModel), loaded


def test_card_has_what_spec_6_lists(trained: train.Result) -> None:
    card = trained.card
    assert set(card["versions"]) >= {"scikit-learn", "onnx", "skl2onnx", "onnxruntime"}
    assert card["training"]["rows"] >= 200 and card["training"]["failures"] >= 20
    assert card["training"]["from"] < card["training"]["to"]
    assert set(card["metrics"]["holdout"]) >= {
        "pr_auc_failure", "brier", "runtime_mae_s", "runtime_underestimated"
    }  # fmt: skip
    for name in ("model.onnx", "model.pkl"):
        digest = hashlib.sha256((trained.out / name).read_bytes()).hexdigest()
        assert card["sha256"][name] == digest
    assert len(card["active"]["by_hour_of_week"]) == 168
    prof = card["profile"]  # the forecasts' profile, learnt from the history's snapshots
    assert prof["columns"] == ["load1", "load5", "cpu_percent", "ram_percent"]
    assert all(len(v) == 168 for v in prof["hour_of_week"].values())
    assert all(len(v) == 60 for v in prof["minute_of_hour"].values())
    assert set(prof["tau_min"]) == {*prof["columns"], "active"}
    loaded = load_model(trained.out, owner_uid=0, now=NOW)
    assert isinstance(loaded, LoadedModel) and loaded.profile is not None
    # the share of a run's cores the history's load showed: the daemon's plan uses it
    assert 0.0 <= card["load_share"] <= 1.0 and loaded.load_share == card["load_share"]


def test_holdout_is_the_last_fifth_in_time_order(history: Path) -> None:
    data = train.load_dataset(history)
    assert data.at == sorted(data.at)
    assert len(data.X) == len(data.ok) == len(data.at)


def test_onnx_agrees_with_scikit_learn_on_held_out_rows(trained: train.Result) -> None:
    loaded = load_model(trained.out, owner_uid=0, now=NOW)
    assert isinstance(loaded, LoadedModel)
    rows = trained.holdout
    p, runtime = loaded.predict(rows)
    assert np.abs(p - trained.models.clf.predict_proba(rows)[:, 1]).max() < 1e-5
    log_sk = trained.models.reg.predict(rows)
    log_onnx = np.log1p(runtime)
    assert (np.abs(log_onnx - log_sk) / np.maximum(1.0, np.abs(log_sk))).max() < 1e-5


def test_thin_history_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    db = simulated_history(tmp_path / "thin.db", 1)
    with pytest.raises(train.TrainError, match="too little history to train"):
        train.train(db, tmp_path / "out", params=TINY)
    assert not (tmp_path / "out" / "model.onnx").exists()
    result = CliRunner().invoke(main, ["train", "--history", str(db), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "too little history" in result.output and "No model written" in result.output


def test_two_days_of_a_laptops_cron_history_are_enough(tmp_path: Path) -> None:
    """78 runs and 11 failures: above the floor since the twelfth round (50 runs and 10
    failures; 100 left three development seeds of 60 without a model for 28 days)."""
    db = simulated_history(tmp_path / "two.db", 2)
    assert train.MIN_RUNS <= len(train.load_dataset(db).ok) < 100
    train.train(db, tmp_path / "out", params=TINY)
    assert (tmp_path / "out" / "model.onnx").exists()


def test_empty_history_is_refused(tmp_path: Path) -> None:
    HistoryStore.open(tmp_path / "empty.db").close()
    with pytest.raises(train.TrainError, match="no finished runs"):
        train.train(tmp_path / "empty.db", tmp_path / "out")


def test_missing_and_corrupt_histories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(train.TrainError, match="no history database"):
        train.train(tmp_path / "nope.db", tmp_path / "out")
    (tmp_path / "bad.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(train.TrainError, match="corrupt, or not a database"):
        train.train(tmp_path / "bad.db", tmp_path / "out")


def test_older_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        conn.execute("INSERT INTO migrations VALUES ('0001_runs', '')")
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    with pytest.raises(train.TrainError, match="older history schema"):
        train.train(db, tmp_path / "out")


def test_locked_history_is_refused(history: Path, tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    db.write_bytes(history.read_bytes())
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(train.TrainError, match="locked"):
            train.train(db, tmp_path / "out")
    finally:
        holder.rollback()
        holder.close()


def test_shuffling_the_future_of_a_trace_changes_no_decision_before_it(
    trained: train.Result, tmp_path: Path
) -> None:
    """The smart policy on two days after the training days, then again with every row
    after noon of the first day shuffled among themselves: each decision before noon,
    the model's outputs included, is the same (the advisor remembers plans, and job
    statistics come from runs as they end: neither may see past the instant)."""
    import csv
    import gzip
    import random

    from smartcron.ai.advisor import MemoryStats, load_advisor

    start = datetime(2026, 1, 13, tzinfo=UTC)  # the day after the 8 training days
    t, end = start + timedelta(hours=12), start + timedelta(days=2)
    with gzip.open(FIXTURES / "traces" / "laptop-8w.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    stamp = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    rows = [r for r, at in zip(rows, stamp, strict=True) if start <= at < end]
    later = [i for i, r in enumerate(rows) if datetime.fromisoformat(r["timestamp"]) >= t]
    values = [{k: v for k, v in rows[i].items() if k != "timestamp"} for i in later]
    random.Random(3).shuffle(values)
    shuffled = [dict(r) for r in rows]
    for i, v in zip(later, values, strict=True):
        shuffled[i].update(v)

    def decisions(trace_rows: list[dict], name: str) -> list[tuple]:
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(trace_rows)
        stats = MemoryStats()
        advisor = load_advisor(trained.out, stats, owner_uid=0, now=NOW)
        simulator.simulate(
            simulator.load_scenario(FIXTURES / "crontabs" / "laptop.crontab", zone=UTC),
            read_trace(path),
            read_world(FIXTURES / "worlds" / "laptop.yaml"),
            "smart",
            advisor=advisor,
            history=str(tmp_path / f"{name}.db"),
            on_run=stats.add,
        )
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            return conn.execute(
                "SELECT job_id, at, verdict, until, reason, snapshot, model FROM decisions"
                " ORDER BY id"
            ).fetchall()

    plain, mixed = decisions(rows, "plain"), decisions(shuffled, "shuffled")
    cut = t.strftime("%Y-%m-%dT%H:%M")
    before = [d for d in plain if d[1] < cut]
    assert any(d[4].startswith("model:") for d in before)  # the model did defer
    assert any(d[6] for d in before)  # and its outputs are recorded
    assert [d for d in mixed if d[1] < cut] == before
    assert [d for d in mixed if d[1] >= cut] != [d for d in plain if d[1] >= cut]


@pytest.mark.parametrize(
    ("model", "weight"),
    [
        ('{"explored": 1, "propensity": 0.01, "uniform": 0.1}', 10.0),  # 10x: at W_MAX
        ('{"explored": 1, "propensity": 0.001, "uniform": 0.1}', 10.0),  # 100x: clipped
        ('{"explored": 1, "propensity": 0.04, "uniform": 0.1}', 2.5),
        ('{"explored": 1, "propensity": 0.5, "uniform": 0.1}', 1.0),  # the likely pick: >= 1
        ('{"explored": 0, "propensity": 0.01, "uniform": 0.1}', 1.0),  # not explored
        ('{"explored": 1, "propensity": 0, "uniform": 0.1}', 1.0),  # malformed: unweighted
        ('{"p_success": 0.9}', 1.0),
        ("not json", 1.0),
        (None, 1.0),
    ],
)
def test_propensity_weight_is_uniform_over_propensity_clipped(
    model: str | None, weight: float
) -> None:
    assert train.propensity_weight(model) == pytest.approx(weight)


def _explored(history: Path, db: Path, propensities: list[float]) -> list[tuple[str, datetime]]:
    """A copy of `history` where the run decisions of the first runs that have one are
    recorded as explored with these propensities (uniform 0.1); their (job, instant)."""
    db.write_bytes(history.read_bytes())
    data = train.load_dataset(history)
    picked = [(data.jobs[i], data.at[i]) for i in range(3, 3 + len(propensities))]
    with sqlite3.connect(db) as conn:
        for (job, at), p in zip(picked, propensities, strict=True):
            model = json.dumps({"explored": 1, "propensity": p, "uniform": 0.1})
            done = conn.execute(
                "UPDATE decisions SET model = ? WHERE job_id = ? AND at = ? AND verdict = 'run'",
                (model, job, to_db_time(at)),
            )
            assert done.rowcount == 1
    return picked


def test_weights_are_read_back_from_explored_decisions(history: Path, tmp_path: Path) -> None:
    picked = _explored(history, tmp_path / "explored.db", [0.01, 0.04])
    data = train.load_dataset(tmp_path / "explored.db")
    rows = {(job, at): w for job, at, w in zip(data.jobs, data.at, data.weight, strict=True)}
    assert [rows[key] for key in picked] == [10.0, 2.5]
    assert sorted(data.weight)[:-2] == [1.0] * (len(data.weight) - 2)


def test_weighted_training_is_deterministic_and_the_weights_reach_the_fit(
    history: Path, trained: train.Result, tmp_path: Path
) -> None:
    _explored(history, tmp_path / "explored.db", [0.01] * 30)
    one = train.train(tmp_path / "explored.db", tmp_path / "a", params=TINY, now=NOW)
    two = train.train(tmp_path / "explored.db", tmp_path / "b", params=TINY, now=NOW)
    assert one.card == two.card  # same bytes: the sha256 of both artifacts
    assert one.card["sha256"] != trained.card["sha256"]  # the same rows, weighted
    assert one.card["metrics"]["weights"] | {"mean": None} == {
        "w_max": 10.0, "weighted_rows": 30, "at_w_max": 30, "max": 10.0, "mean": None
    }  # fmt: skip
    assert trained.card["metrics"]["weights"]["weighted_rows"] == 0
