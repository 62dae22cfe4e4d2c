"""smartcronctl bench-ai (SPEC 9, issue 13): train on simulated history, compare policies.

`run_bench` is the library behind it, and behind benchmarks/family.py (one code path
per scenario): the training days are simulated (cron's history, or a training policy
the caller names) into a temporary history, a model is trained on it, then every policy
runs over the test days, and the costs of a decision are measured.

Fair comparisons: every policy but cron retries (the oracle too, at its best minute),
so `not_done` (firings with no successful run in their window) compares across them;
the oracle minimises failures first, so its interference is a reference, not a bound.
Wall-clock time never changes a figure: the model's latency bound (a daemon safeguard)
is lifted in the simulation and in the cost measurement, and a measurement that fails
is reported in the output instead of ending the run.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smartcron.cli.common import CONTEXT, print_json, user_errors
from smartcron.errors import SmartcronError

POLICIES = ("cron", "random", "rules", "smart", "oracle")
SHOWN = (
    "not_done",
    "failures",
    "runs",
    "failure_rate",
    "interference_cpu_s",
    "window_misses",
    "skipped",
)
GAP_KEYS = ("not_done", "failures", "interference_cpu_s")
TRAIN_POLICIES = ("cron", "random", "rules", "smart")


def run_bench(
    crontab: str,
    trace_path: str,
    world_path: str,
    train_days: int,
    test_days: int,
    *,
    seed: int = 0,
    decisions: int = 10_000,
    progress: Any = None,
    train_policy: str = "cron",
    explore: Any = None,
    skip_days: int = 0,
) -> dict[str, Any]:
    """Train on `train_days` after the trace's first `skip_days`, compare policies on the
    next `test_days` (a learning curve skips max - train days: the same test days).

    `train_policy`: the policy simulated over the training days (its runs are the
    training history); "smart" takes `explore`, the gate advisor that picks those starts
    (an exploring one). `decisions`: decisions timed in the cost step (0: no costs).
    Raises SmartcronError for days beyond the trace or an unknown training policy.
    """
    from smartcron.sim import simulator
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world

    say = progress or (lambda _text: None)
    began = time.perf_counter()
    world = read_world(world_path)
    scenario = simulator.load_scenario(crontab, zone=UTC)
    trace = read_trace(trace_path)
    timeline = simulator.Timeline(trace, world)
    start = trace.start + timedelta(days=skip_days)
    mid, end = start + timedelta(days=train_days), start + timedelta(days=train_days + test_days)
    if end > trace.end:
        days = f"{skip_days}+" * bool(skip_days) + f"{train_days}+{test_days} days"
        raise SmartcronError(f"{trace_path}: {days} exceed the trace")
    out: dict[str, Any] = {"train": {"from": start.isoformat(), "to": mid.isoformat()}}
    with tempfile.TemporaryDirectory(prefix="smartcron-bench-") as tmp:
        period = (scenario, timeline, world)
        db, model_dir = f"{tmp}/train.db", f"{tmp}/model"
        say(f"simulating {train_policy} over the training days")
        out["train"] |= _training(period, start, mid, db, train_policy, explore)
        say("training")
        result = _train(db, model_dir, seed)
        out["card"] = {k: result.card[k] for k in ("training", "metrics")}
        out["test"] = {"from": mid.isoformat(), "to": end.isoformat()}
        out["policies"], out["smart_model_failures"] = _test(period, mid, end, tmp, say)
        out["gap_closed"] = gap_closed(out["policies"])
        if decisions:
            say("measuring decision costs")
            out["costs"] = measure_costs(model_dir, result.models, timeline, mid, end, decisions)
    out["seconds"] = round(time.perf_counter() - began, 1)
    return out


def _train(db: str, model_dir: str, seed: int) -> Any:
    from smartcron.ai import train

    return train.train(db, model_dir, seed=seed)


def _training(
    period: tuple[Any, Any, Any],
    start: datetime,
    mid: datetime,
    db: str,
    policy: str,
    explore: Any,
) -> dict[str, Any]:
    """Simulate the training days into `db`; their metrics (and cron's, to compare: the
    cost of training otherwise than by cron)."""
    from smartcron.sim import simulator

    if policy not in TRAIN_POLICIES:
        raise SmartcronError(f"training policy {policy!r}: one of {', '.join(TRAIN_POLICIES)}")
    if (policy == "smart") != (explore is not None):
        raise SmartcronError("training policy 'smart' takes an exploring advisor, no other does")
    scenario, timeline, world = period
    res = simulator.simulate(
        scenario, timeline, world, policy, start=start, end=mid, history=db, advisor=explore
    )
    got: dict[str, Any] = {"policy": policy, "metrics": _brief(res.metrics())}
    if policy != "cron":
        cron = simulator.simulate(scenario, timeline, world, "cron", start=start, end=mid)
        got["cron_metrics"] = _brief(cron.metrics())
    return got


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in ("firings", *SHOWN)}


def _test(
    period: tuple[Any, Any, Any], mid: datetime, end: datetime, tmp: str, say: Any
) -> tuple[dict[str, Any], int | None]:
    """Every policy over the test days: their metrics, and the smart advisor's inference
    failures (its fallbacks to the rules; none expected)."""
    from smartcron.ai.advisor import load_advisor
    from smartcron.sim import simulator
    from smartcron.store.history import HistoryStore

    scenario, timeline, world = period
    smart_db, policies, failures = f"{tmp}/smart.db", {}, None
    for policy in POLICIES:
        say(f"simulating {policy} over the test days")
        advisor, history = None, None
        if policy == "smart":  # its job stats come from its own history, as in the daemon
            HistoryStore.open(smart_db).close()
            advisor, history = load_advisor(f"{tmp}/model", smart_db), smart_db
            advisor.model = unbounded(advisor.model)
        res = simulator.simulate(
            scenario, timeline, world, policy, start=mid, end=end,
            advisor=advisor, history=history,
        )  # fmt: skip
        policies[policy] = res.metrics()
        if advisor is not None:
            failures = getattr(advisor, "failures", None)
    return policies, failures


def unbounded(model: Any) -> Any:
    """The model without its inference latency bound: in a simulation or a measurement,
    a slow (busy) machine must not change a decision nor abort the run."""
    return replace(model, latency_bound_s=math.inf)


def gap_closed(p: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Share of the cron -> oracle gap that smart closes, per metric (None: no gap)."""
    gaps: dict[str, float | None] = {}
    for key in GAP_KEYS:
        cron, smart, oracle = (p[name][key] for name in ("cron", "smart", "oracle"))
        gaps[key] = round((cron - smart) / (cron - oracle), 3) if cron != oracle else None
    return gaps


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
    """Median and p99 of a SmartAdvisor decision (features + ONNX over the window's slots)
    and, on one row, ONNX vs scikit-learn predict_proba; RSS with and without the model.
    The latency bound is lifted (`unbounded`): a slow decision is measured, not refused."""
    import numpy as np

    from smartcron.ai.advisor import SmartAdvisor, load_advisor
    from smartcron.ai.features import NO_STATS, features
    from smartcron.smart.gate import Firing
    from smartcron.smart.smartspec import SmartSpec

    # every decision a full plan (a deferred firing's minute re-check scores one row only)
    loaded = load_advisor(model_dir)
    model = unbounded(loaded.model)
    advisor = SmartAdvisor(model, loaded.history, replace(loaded.policy, recheck=None))
    window = timedelta(hours=2)
    spec = SmartSpec(window=window)
    minutes = max(1, int((end - start).total_seconds() // 60) - 180)
    rng = np.random.default_rng(0)
    picks = [timeline.index(start) + int(i) for i in rng.integers(0, minutes, n)]
    decide, onnx_one, sk_one = [], [], []
    clf = models[0]
    for i in picks:
        snap, now = timeline.snapshot(i), timeline.instant(i)
        firing = Firing(id=None, job_id="bench", nominal=now, deadline=now + spec.window)
        t0 = time.perf_counter()
        advisor.advise(firing, spec, snap, now)
        t1 = time.perf_counter()
        row = np.asarray([features(snap, NO_STATS, now, now)], np.float32)
        model.predict(row)
        t2 = time.perf_counter()
        clf.predict_proba(row)
        t3 = time.perf_counter()
        decide.append(t1 - t0)
        onnx_one.append(t2 - t1)
        sk_one.append(t3 - t2)
    return {
        "decisions": n,
        "slots_per_decision": sum(
            1 for k in range(advisor.policy.max_slots + 1) if k * advisor.policy.step < window
        ),
        "decision_ms": _quantiles(decide),
        "onnx_one_row_ms": _quantiles(onnx_one),
        "sklearn_predict_proba_one_row_ms": _quantiles(sk_one),
        "model_failures": advisor.failures,  # fallbacks timed instead of decisions: 0
        "rss_mb": rss(model_dir),
    }


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


@click.command("bench-ai", context_settings=CONTEXT)
@click.option("--crontab", required=True, metavar="F", help="The crontab to simulate.")
@click.option("--trace", "trace_path", required=True, metavar="T", help="Trace CSV (.csv.gz).")
@click.option("--world", "world_path", required=True, metavar="W", help="World YAML.")
@click.option("--train-days", default=28, show_default=True, type=click.IntRange(1))
@click.option("--test-days", default=28, show_default=True, type=click.IntRange(1))
@click.option(
    "--decisions", default=10_000, show_default=True, type=click.IntRange(0),
    help="Decisions timed in the cost step (0: none).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def bench_ai_cmd(
    crontab: str,
    trace_path: str,
    world_path: str,
    train_days: int,
    test_days: int,
    decisions: int,
    as_json: bool,
) -> None:
    """Train on cron's history of the first days, then compare every policy on the next.

    \b
    Examples:
      smartcronctl bench-ai --crontab fixtures/crontabs/laptop.crontab \\
        --trace fixtures/traces/laptop-8w.csv.gz --world fixtures/worlds/laptop.yaml \\
        --train-days 28 --test-days 28
    """
    from rich.console import Console

    with Console(stderr=True).status("bench-ai") as status:
        out = run_bench(
            crontab, trace_path, world_path, train_days, test_days,
            decisions=decisions, progress=lambda text: status.update(text),
        )  # fmt: skip
    if as_json:
        print_json(out)
        return
    print_bench(out)


def print_bench(out: dict[str, Any]) -> None:
    p = out["policies"]
    click.echo(f"test {out['test']['from']} to {out['test']['to']}")
    click.echo(f"{'':20}" + "".join(f"{name:>12}" for name in POLICIES))
    for key in SHOWN:
        values = (p[name][key] for name in POLICIES)
        click.echo(f"{key:20}" + "".join(f"{v:>12.4g}" for v in values))
    gap = out["gap_closed"]
    click.echo(
        "smart closes of the cron->oracle gap:"
        + "".join(f" {k} {v:.0%}" if v is not None else f" {k} n/a" for k, v in gap.items())
    )
    click.echo(
        f"oracle interference {p['oracle']['interference_cpu_s']:.4g} CPU s: a reference, not a"
        " bound (the oracle minimises failures first)"
    )
    if out.get("smart_model_failures"):
        click.echo(f"smart: {out['smart_model_failures']} inferences failed (rules decided)")
    _print_costs(out.get("costs"))


def _print_costs(c: dict[str, Any] | None) -> None:
    if c is None:
        return
    if "error" in c:
        click.echo(f"decision costs not measured: {c['error']}")
        return
    click.echo(
        f"decision (features + ONNX, {c['slots_per_decision']} slots): median"
        f" {c['decision_ms']['median']} ms, p99 {c['decision_ms']['p99']} ms;"
        f" one row ONNX p99 {c['onnx_one_row_ms']['p99']} ms vs scikit-learn"
        f" predict_proba p99 {c['sklearn_predict_proba_one_row_ms']['p99']} ms"
    )
    r = c["rss_mb"]
    if "error" in r:
        click.echo(f"RSS not measured: {r['error']}")
    else:
        click.echo(
            f"RSS {r['without']} MB without the model, {r['with']} MB with (+{r['model']} MB)"
        )
