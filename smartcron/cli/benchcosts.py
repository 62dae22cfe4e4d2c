"""bench-ai's cost step: what a decision costs (features + ONNX over a window's slots),
one row in ONNX against scikit-learn, and the process memory with and without the model.

A measurement measures: the model's latency bound (a daemon safeguard) is lifted
(`unbounded`), and a step that fails is reported in the output, never raised
(`measure_costs`), so a busy machine cannot end a benchmark that simulated everything.
"""

from __future__ import annotations

import math
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

PLAN_RUNS = 3  # other smart runs in each timed decision's window (7 smart jobs: laptop's)
PASSES = 3  # times each decision is timed, in passes over all of them (see `costs`)


def unbounded(model: Any) -> Any:
    """The model without its inference latency bound: in a simulation or a measurement,
    a slow (busy) machine must not change a decision nor abort the run."""
    return replace(model, latency_bound_s=math.inf)


def measure_costs(
    model_dir: str, models: Any, timeline: Any, start: datetime, end: datetime, n: int
) -> dict[str, Any]:
    """`costs`, or the error that stopped it: a measurement never ends the benchmark."""
    try:
        return costs(model_dir, models, timeline, start, end, n)
    except Exception as err:  # anything: what was simulated stays reported
        return {"decisions": n, "error": f"{type(err).__name__}: {err}"}


def costs(
    model_dir: str, models: Any, timeline: Any, start: datetime, end: datetime, n: int
) -> dict[str, Any]:
    """Median and p99 of a SmartAdvisor decision (features, forecasts, the plan with
    PLAN_RUNS other runs in the window, the waiting plans and ONNX over the window's
    slots), the same decisions with scikit-learn inference in their place, and on one row
    ONNX vs scikit-learn predict_proba; RSS with and without the model. The latency bound
    is lifted (`unbounded`): a slow decision is measured.

    Every decision is timed once in each of PASSES passes over all of them: `*_ms` are
    the quantiles of every timing, `*_steady_ms` those of each decision's median over the
    passes. A shared host slows runs of consecutive decisions (tens of milliseconds at a
    time); a decision's median drops such a burst, which hits one pass of it, and keeps
    what the decision itself costs, slow kinds of decision included."""
    import numpy as np

    from smartcron.ai.advisor import SmartAdvisor, load_advisor
    from smartcron.ai.features import NO_STATS, features
    from smartcron.smart.gate import Firing
    from smartcron.smart.smartspec import SmartSpec

    # every decision is a full plan (a waiting firing is planned again each minute)
    loaded = load_advisor(model_dir)
    model = unbounded(loaded.model)
    advisor = SmartAdvisor(model, loaded.history, loaded.policy)
    sk_model: Any = SklearnModel(model, models)  # duck-typed: predict, tz, profile, active
    with_sklearn = SmartAdvisor(sk_model, loaded.history, loaded.policy)
    window = timedelta(hours=2)
    spec = SmartSpec(window=window)
    minutes = max(1, int((end - start).total_seconds() // 60) - 180)
    rng = np.random.default_rng(0)
    picks = [timeline.index(start) + int(i) for i in rng.integers(0, minutes, n)]
    # each decision's plan: PLAN_RUNS other smart runs starting in its window (minutes
    # from now, runtime minutes), so every decision weighs a plan, as a busy daemon's does
    others = rng.uniform((0.0, 5.0), (window.total_seconds() / 60.0, 60.0), (n, PLAN_RUNS, 2))
    timed = np.zeros((2, PASSES, n))  # ONNX / scikit-learn, pass, decision (seconds)
    onnx_one, sk_one = [], []
    job = next(iter(models.jobs), "bench")  # a job with a forest of its own, if any
    for turn in range(PASSES):
        for d, (i, plan) in enumerate(zip(picks, others.tolist(), strict=True)):
            snap, now = timeline.snapshot(i), timeline.instant(i)
            firing = Firing(id=None, job_id=job, nominal=now, deadline=now + spec.window)
            for a in (advisor, with_sklearn):
                a.commitments = _planned(now, plan)
            t0 = time.perf_counter()
            advisor.advise(firing, spec, snap, now)
            timed[0, turn, d] = time.perf_counter() - t0
            if turn == 0:  # one row, right after the ONNX decision (its caches warm)
                t1 = time.perf_counter()
                row = np.asarray([features(snap, NO_STATS, now, now)], np.float32)
                model.predict(row, job)
                t2 = time.perf_counter()
                models.p_success(row, [job])
                onnx_one.append(t2 - t1)
                sk_one.append(time.perf_counter() - t2)
            t3 = time.perf_counter()
            with_sklearn.advise(firing, spec, snap, now)
            timed[1, turn, d] = time.perf_counter() - t3
    steady = np.median(timed, axis=1)  # per decision, over the passes
    return {
        "decisions": n,
        "passes": PASSES,
        "slots_per_decision": sum(
            1 for k in range(advisor.policy.max_slots + 1) if k * advisor.policy.step < window
        ),
        "plan_runs": PLAN_RUNS,
        # a row visits the root of every forest's trees: more job forests, dearer rows
        "job_forests": len(model.jobs or {}),
        "decision_ms": _quantiles(timed[0].ravel().tolist()),
        "decision_steady_ms": _quantiles(steady[0].tolist()),
        "decision_sklearn_ms": _quantiles(timed[1].ravel().tolist()),
        "decision_sklearn_steady_ms": _quantiles(steady[1].tolist()),
        "onnx_one_row_ms": _quantiles(onnx_one),
        "sklearn_predict_proba_one_row_ms": _quantiles(sk_one),
        "model_failures": advisor.failures,  # fallbacks timed instead of decisions: 0
        "python": python(),
        "rss_mb": rss(model_dir),
    }


def python() -> str:
    """The interpreter the decisions were timed on: its version and installation (two
    builds of one version can differ by a third on pure Python: docs/benchmarks.md)."""
    return f"{platform.python_version()} ({sys.base_prefix})"


def _planned(now: datetime, plan: list[list[float]]) -> Any:
    """Commitments holding the other runs of a decision's plan (see `costs`)."""
    from smartcron.ai.plan import Commitments

    out = Commitments()
    for j, (start, runtime) in enumerate(plan):
        out.commit(("other", j), now + timedelta(minutes=start), runtime * 60.0, 1.0)
    return out


class SklearnModel:
    """A LoadedModel's stand-in that infers with the fitted scikit-learn models instead
    of ONNX (the cost comparison only: the daemon never loads scikit-learn)."""

    def __init__(self, model: Any, models: Any) -> None:
        self.tz, self.profile, self.active = model.tz, model.profile, model.active
        self.load_share = model.load_share
        self.models = models

    def predict(self, rows: Any, job: str | None = None) -> tuple[Any, Any]:
        import numpy as np

        x = np.asarray(rows, np.float32)
        p = self.models.p_success(x, [job or ""] * len(x))
        return p, np.expm1(self.models.reg.predict(x))


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"median": round(statistics.median(ordered) * 1000, 3), "p99": round(p99 * 1000, 3)}


_RSS = """
import os, sys, psutil
import smartcron.smart.gate, smartcron.ai.features, smartcron.ai.model as m
before = psutil.Process().memory_info().rss
if sys.argv[1]:
    assert m.load_model(sys.argv[1], owner_uid=os.geteuid())
print(before, psutil.Process().memory_info().rss)
"""


def rss(model_dir: str) -> dict[str, Any]:
    """RSS (MB) of a fresh process importing the daemon's model code, then loading the
    model; or the error, beside the decision figures, if that process fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RSS, model_dir], capture_output=True, text=True, check=True
        )
        before, after = (int(v) / 2**20 for v in done.stdout.split())
    except (OSError, ValueError, subprocess.CalledProcessError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    return {"without": round(before, 1), "with": round(after, 1), "model": round(after - before, 1)}
