"""Each job's own forest (issue 13, fourth round): a job's own cause is learnt from its
rows alone, the ONNX graph picks that forest by its `job` input, a job without one (or
unknown to the model) gets the forest over every job, and the advisor asks for the
firing's job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from smartcron.ai import estimators
from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.features import FEATURES
from smartcron.ai.model import LoadedModel, load_model
from smartcron.cli.ctl import main
from smartcron.smart import gate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import NOW, TINY, install

LOAD, RAM = FEATURES.index("load1"), FEATURES.index("ram_percent")
HIGH_LOAD, HIGH_RAM = [1.0, 0.0], [0.0, 1.0]  # (load1 > 0.5, ram > 0.5) of a probe row


def two_jobs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of two jobs with the same feature distribution: "a" fails at load1 > 0.5,
    "b" at ram_percent > 0.5 (95 % each, 2 % otherwise). Nothing in a row says which
    job it is, so a forest over both rows can only learn their blend."""
    rng = np.random.default_rng(seed)
    X = rng.random((2 * n, len(FEATURES))).astype(np.float32)
    jobs = ["a"] * n + ["b"] * n
    cause = np.where(np.arange(2 * n) < n, X[:, LOAD], X[:, RAM]) > 0.5
    fail = rng.random(2 * n) < np.where(cause, 0.95, 0.02)
    return X, (~fail).astype(np.int64), jobs


def probes(*states: list[float]) -> np.ndarray:
    rows = np.full((len(states), len(FEATURES)), 0.25, np.float32)
    for row, (load, ram) in zip(rows, states, strict=True):
        row[LOAD], row[RAM] = load, ram
    return rows


@pytest.fixture(scope="module")
def fitted() -> estimators.Fitted:
    X, ok, jobs = two_jobs()
    return estimators.fit(X, ok, np.full(len(ok), 60.0), 0, TINY, None, jobs)


def test_each_job_learns_its_own_cause_where_the_forest_over_all_jobs_blends_them(
    fitted: estimators.Fitted,
) -> None:
    assert list(fitted.jobs) == ["a", "b"]
    rows = probes(HIGH_LOAD, HIGH_RAM)
    a, b = (fitted.p_success(rows, [job] * 2) for job in "ab")
    assert a[0] < 0.2 and a[1] > 0.8  # "a" fails at high load, not at high RAM
    assert b[0] > 0.8 and b[1] < 0.2  # and "b" the other way round
    blend = fitted.clf.predict_proba(rows)[:, 1]  # what one forest over both learns
    assert all(0.3 < p < 0.7 for p in blend)
    assert list(fitted.p_success(rows, ["new"] * 2)) == list(blend)  # an unknown job


def test_a_job_with_too_little_history_of_either_outcome_gets_no_forest_of_its_own() -> None:
    X, ok, jobs = two_jobs(n=estimators.JOB_MIN_ROWS - 1)
    few = estimators.fit(X, ok, np.full(len(ok), 60.0), 0, TINY, None, jobs)
    assert few.jobs == {}  # 49 rows each
    X, ok, jobs = two_jobs(n=200)
    ok[:200] = 1  # "a" never failed
    ok[: estimators.JOB_MIN_EACH - 1] = 0  # four failures
    some = estimators.fit(X, ok, np.full(len(ok), 60.0), 0, TINY, None, jobs)
    assert list(some.jobs) == ["b"]


def test_the_graph_picks_the_jobs_own_forest_and_agrees_with_scikit_learn(
    fitted: estimators.Fitted, tmp_path: Path
) -> None:
    model = load_model(
        install(tmp_path / "m", estimators.to_onnx(fitted), job_models=list(fitted.jobs)),
        owner_uid=0,
        now=NOW,
    )
    assert isinstance(model, LoadedModel) and model.jobs == {"a": 0, "b": 1}
    X, _, _ = two_jobs(n=50, seed=1)
    for job in ("a", "b", "unknown", None):
        p, runtime = model.predict(X, job)
        want = fitted.p_success(X, [job or ""] * len(X))
        assert np.abs(p - want).max() < 1e-5, job
        assert np.allclose(runtime, 60.0, rtol=1e-4)


def test_a_model_without_its_job_list_uses_the_forest_over_every_job(
    fitted: estimators.Fitted, tmp_path: Path
) -> None:
    """A card that lists no job_models (hand-edited): the graph's default branch only."""
    model = load_model(install(tmp_path / "m", estimators.to_onnx(fitted)), owner_uid=0, now=NOW)
    assert isinstance(model, LoadedModel) and model.jobs == {}
    rows = probes(HIGH_LOAD)
    assert model.predict(rows, "a")[0] == pytest.approx(fitted.clf.predict_proba(rows)[:, 1])
    bad = install(tmp_path / "bad", estimators.to_onnx(fitted), job_models="a")
    refused = load_model(bad, owner_uid=0, now=NOW)
    assert not refused and "job_models" in refused.reason  # type: ignore[union-attr]


def test_the_advisor_asks_for_the_firings_job(fitted: estimators.Fitted, tmp_path: Path) -> None:
    """The same state, two jobs: "a" (fails at high load) waits, "b" runs at once."""
    directory = install(tmp_path / "m", estimators.to_onnx(fitted), job_models=["a", "b"])
    model = load_model(directory, owner_uid=0, now=NOW)
    assert isinstance(model, LoadedModel)
    spec = SmartSpec(window=timedelta(hours=2))
    snap = sample_snapshot(NOW, load1=1.0, ram_percent=0.0)
    got = {}
    for job in ("a", "b"):
        firing = gate.Firing(id=1, job_id=job, nominal=NOW, deadline=NOW + spec.window)
        got[job] = SmartAdvisor(model, MemoryStats(), Policy()).advise(firing, spec, snap, NOW)
    assert got["a"].model is not None and got["a"].model["p_success"] < 0.2
    assert got["b"].model is not None and got["b"].model["p_success"] > 0.8


def test_the_card_lists_the_jobs_forests_in_the_graphs_order(tmp_path: Path) -> None:
    from smartcron.ai import train
    from tests.modelkit import simulated_history

    db = simulated_history(tmp_path / "h.db", 14)
    result = train.train(db, tmp_path / "out", params=TINY, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert result.card["job_models"] == list(result.models.jobs)
    assert result.card["job_models"]  # the laptop's frequent jobs have enough history
    loaded = load_model(tmp_path / "out", owner_uid=0, now=NOW)
    assert isinstance(loaded, LoadedModel)
    for job in result.card["job_models"]:
        rows = result.holdout[np.asarray(result.holdout_jobs) == job]
        want = result.models.p_success(rows, [job] * len(rows))
        assert np.abs(loaded.predict(rows, job)[0] - want).max() < 1e-5
    shown = CliRunner().invoke(main, ["model", "--dir", str(tmp_path / "out")])
    own = ", ".join(result.card["job_models"])
    assert f"jobs with a forest of their own: {own}; the others share one" in shown.output
    share = result.card["load_share"]
    assert f"load share: {share:.2f} of a run's cores shows in this machine's load" in shown.output


def test_a_job_code_out_of_range_gets_the_forest_over_every_job(
    fitted: estimators.Fitted, tmp_path: Path
) -> None:
    """The graph clips nothing into another job's forest: codes it does not hold are -1."""
    import onnxruntime as ort

    session = ort.InferenceSession(estimators.to_onnx(fitted), providers=["CPUExecutionProvider"])
    rows = probes(HIGH_LOAD, HIGH_RAM)
    blend = fitted.clf.predict_proba(rows)[:, 1]
    for code in (-7, -1, 2, 99):
        p = session.run(["p_success"], {"features": rows, "job": np.asarray(code, np.int64)})[0]
        assert np.abs(p[:, 1] - blend).max() < 1e-5, code


def test_the_heap_is_trimmed_after_loading_and_a_libc_without_malloc_trim_is_fine(
    fitted: estimators.Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctypes

    from smartcron.ai import model as model_module

    calls = []

    class Libc:
        def __getattr__(self, name: str) -> object:
            if name != "malloc_trim":
                raise AttributeError(name)
            return calls.append

    monkeypatch.setattr(ctypes, "CDLL", lambda _name: Libc())
    assert load_model(install(tmp_path / "m", estimators.to_onnx(fitted)), owner_uid=0, now=NOW)
    assert calls == [0]
    monkeypatch.setattr(ctypes, "CDLL", lambda _name: object())  # musl: no malloc_trim
    model_module.trim_heap()
