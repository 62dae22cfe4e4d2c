"""`smartcronctl train` (SPEC 6): from the history store to a model artifact.

The only module that imports pandas, scikit-learn, joblib, skl2onnx and onnx, and
only inside functions: importing it stays cheap. Rows: one per finished run (ok,
failed, timeout) joined to the gate's `run` decision that started it (same job, at
most 5 minutes before the start), whose snapshot gives the features *at decision
time*; the job's stats come from runs that ended strictly before that decision.
Each row has a sample weight: 1, or for a start the exploration chose (the decision's
`model` outputs record it) clip(U / P, 1, W_MAX), P the probability the logging policy
gave the chosen minute and U that of a uniform choice (see `propensity_weight`).

Models (deterministic for fixed data: `seed`): a random forest for success,
calibrated by `CalibratedClassifierCV` (sigmoid, 3 folds, one refit forest), and a
random forest on log1p(runtime s). Validation: the last 20 % of rows in decision
order, never shuffled; the shipped models are then refit on all rows. Features are
float32 before fitting (scikit-learn's trees compare in float32 anyway), so the ONNX
graph, float32 too, routes every row as scikit-learn does (see docs/ai.md).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smartcron.ai.card import model_card, weight_summary
from smartcron.ai.estimators import PARAMS, SPLIT, Fitted, fit, metrics, to_onnx
from smartcron.ai.features import (
    FEATURES,
    Profile,
    RunOutcome,
    active_table,
    features,
    state_profile,
)
from smartcron.ai.jobstats import JobRecord
from smartcron.ai.loadshare import host_of, load_share
from smartcron.ai.model import ACTIVE_IDLE_BELOW, CARD_NAME, ONNX_NAME, PKL_NAME
from smartcron.ai.plan import FIRST_MINUTE, StartLog, run_cores, with_load
from smartcron.errors import SmartcronError
from smartcron.smart.monitor import Snapshot
from smartcron.store.history import from_db_time, presence_samples

# A model from less would mostly learn noise. 200 and 20 (the first choice) left a
# machine with four daily jobs on the rules for 50 days; 100 left three development
# seeds of 60 (a few daily jobs each) on them for their 28 training days. 50 and 10 were
# chosen on the development seeds (docs/ai.md); retraining keeps a model only if no worse.
MIN_RUNS, MIN_FAILURES = 50, 10
HOLDOUT = 0.2
MATCH = timedelta(minutes=5)  # a run's decision is at most this long before its start
# An explored row counts up to W_MAX times (about 1 / the exploration share): the rare
# exploration of a mature job is not drowned by the model's own choices.
W_MAX = 10.0
Progress = Callable[[str], None]


class TrainError(SmartcronError):
    """No model: the history cannot be read or is too thin (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    X: np.ndarray  # float32, rows x FEATURES, in decision order
    ok: np.ndarray  # 1 success, 0 failure
    runtime_s: np.ndarray
    weight: np.ndarray  # sample weights (propensity_weight)
    at: list[datetime]  # decision instants
    jobs: list[str]
    dropped: int  # finished runs without a decision snapshot
    active: list[float]  # P(user active) by hour of week
    profile: Profile  # the machine's rhythm, for forecasting later slots
    load_share: float = 1.0  # how much of a run's cores the load shows (loadshare)

    def part(self, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, ok, runtime_s) of a slice of the rows."""
        return self.X[rows], self.ok[rows], self.runtime_s[rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    out: Path
    card: dict[str, Any]
    models: Fitted = field(repr=False)  # the fitted estimators
    holdout: np.ndarray = field(repr=False)  # the held-out rows' features
    holdout_jobs: list[str] = field(repr=False, default_factory=list)  # and their jobs


# ------------------------------------------------------------------ reading


def _connect(db: str | os.PathLike[str]) -> sqlite3.Connection:
    name = os.fspath(db)
    if not os.path.isfile(name):
        raise TrainError(f"{name}: no history database (run the daemon, or simulate --history)")
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(name)}?mode=ro", uri=True, timeout=2.0)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        applied = (
            {r[0] for r in conn.execute("SELECT name FROM migrations")}
            if ("migrations" in tables)
            else set()
        )
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            raise TrainError(f"{name}: history database is locked; try again later") from None
        raise TrainError(f"{name}: cannot read history database: {err}") from None
    except sqlite3.DatabaseError as err:
        raise TrainError(f"{name}: corrupt, or not a database: {err}") from None
    if "migrations" not in tables:
        conn.close()
        raise TrainError(f"{name}: not a SmartCron history database")
    if not {"runs", "decisions", "firings"} <= tables or "0002_firings_decisions" not in applied:
        conn.close()
        raise TrainError(
            f"{name}: older history schema without decisions; start the daemon once to upgrade it"
        )
    return conn


def _read(conn: sqlite3.Connection, name: str) -> tuple[Any, Any, list]:
    import pandas as pd

    runs_sql = (
        "SELECT r.id, r.job_id, r.scheduled, r.started, r.ended, r.status, r.exit_code,"
        " r.timed_out, r.runtime_s, r.cpu_s, r.trigger, f.nominal FROM runs r"
        " LEFT JOIN firings f ON f.id = r.firing_id"
        " WHERE r.ended IS NOT NULL AND r.status IN ('ok', 'failed', 'timeout')"
    )
    decisions_sql = (
        "SELECT job_id, at, verdict, snapshot, model FROM decisions WHERE snapshot IS NOT NULL"
    )
    try:
        runs = pd.read_sql(runs_sql, conn)
        decisions = pd.read_sql(decisions_sql, conn)
        presence = presence_samples(conn)
    except (sqlite3.Error, pd.errors.DatabaseError) as err:
        text = str(err)
        why = "is locked; try again later" if "locked" in text else f"cannot be read: {text}"
        raise TrainError(f"{name}: history database {why}") from None
    finally:
        conn.close()
    return runs, decisions, presence


def _instant(text: str) -> datetime:
    """A time column the queries never leave NULL (runs.ended, decisions.at)."""
    when = from_db_time(text)
    assert when is not None
    return when


def _time(value: Any) -> datetime | None:
    """A nullable time column (pandas reads NULL as None or NaN)."""
    return from_db_time(value) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _past(runs: Any, tz: Any) -> dict[str, JobRecord]:
    """Every job's finished runs, as the features see a job's past."""
    past: dict[str, JobRecord] = {}
    for run in runs.sort_values(["ended", "id"], kind="stable").itertuples():
        outcome = RunOutcome(
            ended=_instant(run.ended),
            ok=bool(run.ok),
            runtime_s=_number(run.runtime_s),
            started=_time(run.started),
            nominal=_time(run.scheduled) or _time(run.nominal),
            cpu_s=_number(run.cpu_s),
        )
        past.setdefault(str(run.job_id), JobRecord(tz, keep=None)).add(outcome)
    return past


def propensity_weight(model: Any) -> float:
    """A row's weight from its decision's model outputs (JSON text): clip(U / P, 1, W_MAX)
    for an explored start with propensity P and uniform share U, else 1."""
    try:
        out = json.loads(model) if isinstance(model, str) else None
    except ValueError:
        return 1.0
    if not isinstance(out, dict) or not out.get("explored"):
        return 1.0
    p, u = out.get("propensity"), out.get("uniform")
    if not (isinstance(p, int | float) and isinstance(u, int | float)):
        return 1.0
    if not (math.isfinite(p) and math.isfinite(u) and p > 0 and u > 0):
        return 1.0
    return min(W_MAX, max(1.0, u / p))


def load_dataset(db: str | os.PathLike[str], *, tz: Any = UTC) -> Dataset:
    """The training rows of the history at `db` (read-only)."""
    import pandas as pd

    name = os.fspath(db)
    runs, decisions, presence = _read(_connect(db), name)
    if runs.empty:
        raise TrainError(f"{name}: no finished runs in the history")
    runs["started_t"] = pd.to_datetime(runs["started"], utc=True, format="ISO8601")
    runs["ok"] = (
        (runs["status"] == "ok") & (runs["exit_code"] == 0) & (runs["timed_out"] == 0)
    ).astype(int)
    runs = runs.sort_values(["started_t", "id"], kind="stable")
    decisions["at_t"] = pd.to_datetime(decisions["at"], utc=True, format="ISO8601")
    starts = decisions[decisions["verdict"] == "run"].sort_values("at_t", kind="stable")
    rows = pd.merge_asof(
        runs,
        starts[["job_id", "at_t", "at", "snapshot", "model"]],
        left_on="started_t",
        right_on="at_t",
        by="job_id",
        direction="backward",
        tolerance=pd.Timedelta(MATCH),
    )
    dropped = int(rows["snapshot"].isna().sum())
    rows = rows.dropna(subset=["snapshot"]).sort_values(["at_t", "id"], kind="stable")
    past = _past(runs, tz)
    logs = _start_logs(runs)
    seen = [Snapshot.from_dict(json.loads(text)) for text in decisions["snapshot"]]
    hosts = [host_of(str(j)) for j in decisions["job_id"]]
    samples = ((h, s.at.timestamp(), s.load1) for h, s in zip(hosts, seen, strict=True))
    share = load_share(_spans(runs), samples)
    vectors, ats = [], []
    for row in rows.itertuples():
        at = _instant(row.at)
        nominal = _time(row.scheduled) or _time(row.nominal) or at
        snap = Snapshot.from_dict(json.loads(row.snapshot))
        log = logs.get(host_of(str(row.job_id)))
        starting = log.starting(at, _instant(row.started), int(row.id)) if log else 0.0
        snap = with_load(snap, share * starting * FIRST_MINUTE)  # as Commitments.loads
        stats = past[str(row.job_id)].stats(at)
        vectors.append(features(snap, stats, nominal, at, tz=tz, starting=starting))
        ats.append(at)
    idle = zip(decisions["at"].map(from_db_time), (s.idle_seconds for s in seen), strict=True)
    profile = state_profile(seen, tz, ACTIVE_IDLE_BELOW, presence=presence)
    return Dataset(
        X=np.asarray(vectors, dtype=np.float32).reshape(-1, len(FEATURES)),
        ok=rows["ok"].to_numpy(dtype=np.int64),
        runtime_s=rows["runtime_s"].fillna(0.0).to_numpy(dtype=np.float64),
        weight=np.asarray([propensity_weight(m) for m in rows["model"]], dtype=np.float64),
        at=ats,
        jobs=[str(j) for j in rows["job_id"]],
        dropped=dropped,
        # with an activity forecast, the profile's table is the presence samples'
        active=profile.active if profile.activity else active_table(idle, tz, ACTIVE_IDLE_BELOW),
        profile=profile,
        load_share=share,
    )


def _spans(runs: Any) -> list[tuple[str, float, float, float]]:
    """(host, start, end, cores) of each finished run, in epoch seconds (loadshare)."""
    hosts = (host_of(str(j)) for j in runs["job_id"])
    ends = (_instant(text).timestamp() for text in runs["ended"])
    cores = (run_cores(c, r) for c, r in zip(runs["cpu_s"], runs["runtime_s"], strict=True))
    starts = (t.timestamp() for t in runs["started_t"])
    return list(zip(hosts, starts, ends, cores, strict=True))


def _start_logs(runs: Any) -> dict[str, StartLog]:
    """A StartLog per host of the runs the advisor plans (trigger smart or retry): a
    fleet's hosts do not load each other."""
    gated = runs[runs["trigger"].isin(["smart", "retry"])]
    by_host = gated.groupby(gated["job_id"].astype(str).map(host_of), sort=False)
    columns = ["started_t", "id", "cpu_s", "runtime_s"]
    return {str(h): StartLog(part[columns].itertuples(index=False)) for h, part in by_host}


# ------------------------------------------------------------------ fitting


def _check(data: Dataset, name: str, min_runs: int, min_failures: int) -> None:
    failures = int((data.ok == 0).sum())
    n = len(data.ok)
    if n < min_runs or failures < min_failures or failures == n:
        raise TrainError(
            f"{name}: too little history to train: {n} runs with a decision snapshot"
            f" ({data.dropped} without), {failures} failures; need at least {min_runs} runs,"
            f" {min_failures} failures and some successes. No model written."
        )


def train(
    db: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    tz: Any = UTC,
    min_runs: int = MIN_RUNS,
    min_failures: int = MIN_FAILURES,
    now: datetime | None = None,
    params: dict | None = None,
    progress: Progress | None = None,
) -> Result:
    """Read, validate on a time-ordered holdout, refit on all rows, write the artifact."""
    import joblib

    say = progress or (lambda _text: None)
    name = os.fspath(db)
    say("reading history")
    data = load_dataset(db, tz=tz)
    _check(data, name, min_runs, min_failures)
    cut = int(len(data.ok) * (1 - HOLDOUT))
    say(f"fitting on {cut} rows, validating on the last {len(data.ok) - cut}")
    first, last = slice(None, cut), slice(cut, None)
    held = fit(*data.part(first), seed, params, data.weight[first], data.jobs[first])
    scores = metrics(held, *data.part(last), data.jobs[last])
    say("refitting on all rows")
    models = fit(data.X, data.ok, data.runtime_s, seed, params, data.weight, data.jobs)
    say("exporting ONNX")
    blob = to_onnx(models)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".train-") as tmp:
        staged = Path(tmp)
        (staged / ONNX_NAME).write_bytes(blob)
        joblib.dump(models, staged / PKL_NAME)
        settings = SPLIT | (params or PARAMS) | {"random_state": seed}
        weights = weight_summary(data.weight, W_MAX)
        measured = {"holdout": scores, "weights": weights}
        card = model_card(data, cut, measured, tz, settings, now, staged) | {
            "job_models": list(models.jobs)
        }
        (staged / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
        for file in (ONNX_NAME, PKL_NAME, CARD_NAME):  # the card last: it vouches for both
            os.chmod(staged / file, 0o644)
            os.replace(staged / file, target / file)
    say(f"wrote {target}")
    rows, jobs = data.X[last], data.jobs[last]  # the held-out rows, for the tests
    return Result(out=target, card=card, models=models, holdout=rows, holdout_jobs=jobs)
