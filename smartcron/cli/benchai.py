"""smartcronctl bench-ai (SPEC 9, issue 13): train on simulated history, compare policies.

`run_bench` is the library behind it, and behind benchmarks/family.py (one code path
per scenario): the training days are simulated (cron's history, or a training policy
the caller names) into a temporary history, a model is trained on it, then every policy
runs over the test days, and the costs of a decision are measured.

Fair comparisons: every policy but cron retries (the oracle too, at its best minute),
so `not_done` (firings with no successful run in their window) compares across them;
the oracle minimises failures first, so its interference is a reference, not a bound.
The gated oracle is the oracle keeping the jobs' hard constraints (sim.policies), as
rules and smart must: the gap closed is given against both (`gap_closed_gated`).
Wall-clock time never changes a figure: the model's latency bound (a daemon safeguard)
is lifted in the simulation and in the cost measurement, and a measurement that fails
is reported in the output instead of ending the run.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smartcron.cli.benchcosts import measure_costs, unbounded
from smartcron.cli.common import CONTEXT, print_json, user_errors
from smartcron.cli.progress import progress_bar
from smartcron.errors import SmartcronError

POLICIES = ("cron", "random", "rules", "smart", "oracle", "gated-oracle")
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
# the gap closed is measured against each bound, under its key in run_bench's result
BOUNDS = {"oracle": "gap_closed", "gated-oracle": "gap_closed_gated"}
# "explore": the daemon's own learning period, rules plus exploration (smart.explore)
TRAIN_POLICIES = ("explore", "cron", "random", "rules")


def run_bench(
    crontab: str,
    trace_path: str,
    world_path: str,
    train_days: int,
    test_days: int,
    *,
    seed: int = 0,
    decisions: int = 3_000,
    progress: Any = None,
    tick: Callable[[int, int], None] | None = None,
    train_policy: str = "explore",
    explore: bool = True,
    skip_days: int = 0,
) -> dict[str, Any]:
    """Train on `train_days` after the trace's first `skip_days`, compare policies on the
    next `test_days` (a learning curve skips max - train days: the same test days).

    `train_policy`: the policy simulated over the training days (its runs are the
    training history): "explore" is what the daemon does before it has a model, the
    rules with exploration (smart.explore); "cron" the history cron leaves. The smart
    policy then starts from that history (its job statistics, its exploration's
    learning periods) as the daemon keeps its own, and explores on unless `explore` is
    False. `decisions`: decisions timed in the cost step (0: no costs). `progress` gets
    each phase's text, `tick` (minutes done, in total) within each simulation. Raises
    SmartcronError for days beyond the trace or an unknown training policy.
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
        out["train"] |= _training(period, (start, mid), db, train_policy, (say, tick))
        say("training")
        result = _train(db, model_dir, seed)
        if isinstance(result, str):  # refused: smart is what the daemon then does
            out["model"] = f"none: {result}"
        else:
            out["card"] = {k: result.card[k] for k in ("training", "metrics")}
        out["test"] = {"from": mid.isoformat(), "to": end.isoformat()}
        out["policies"], out["smart_model_failures"] = _test(
            period, (mid, end), tmp, (say, tick), explore=explore, model=not isinstance(result, str)
        )
        for bound, key in BOUNDS.items():
            out[key] = gap_closed(out["policies"], bound)
        if decisions and not isinstance(result, str):
            say("measuring decision costs")
            out["costs"] = measure_costs(model_dir, result.models, timeline, mid, end, decisions)
    out["seconds"] = round(time.perf_counter() - began, 1)
    return out


def _train(db: str, model_dir: str, seed: int) -> Any:
    """The training result, or why training refused (too little history): the daemon
    then stays on the rules (and exploration), and so does the smart policy here."""
    from smartcron.ai import train

    try:
        return train.train(db, model_dir, seed=seed)
    except train.TrainError as err:
        return str(err).split(": ", 1)[-1]  # without the temporary database's path


def _training(
    period: tuple[Any, Any, Any],
    span: tuple[datetime, datetime],
    db: str,
    policy: str,
    report: tuple[Any, Any],
) -> dict[str, Any]:
    """Simulate the training days into `db`; their metrics (and cron's, to compare: the
    cost of training otherwise than by cron)."""
    from smartcron.sim import simulator

    if policy not in TRAIN_POLICIES:
        raise SmartcronError(f"training policy {policy!r}: one of {', '.join(TRAIN_POLICIES)}")
    scenario, timeline, world = period
    (start, mid), (say, tick) = span, report
    advisor, store = None, None
    if policy == "explore":  # the daemon before its first model: rules and exploration
        advisor, store = _explorer(None, db)
    try:
        res = simulator.simulate(
            scenario, timeline, world, "smart" if advisor else policy, start=start, end=mid,
            history=db, advisor=advisor, progress=tick,
        )  # fmt: skip
    finally:
        if store is not None:
            store.close()
    got: dict[str, Any] = {"policy": policy, "metrics": _brief(res.metrics())}
    if policy != "cron":
        say("simulating cron over the training days (to compare)")
        cron = simulator.simulate(
            scenario, timeline, world, "cron", start=start, end=mid, progress=tick
        )
        got["cron_metrics"] = _brief(cron.metrics())
    return got


def _explorer(inner: Any, db: str) -> tuple[Any, Any]:
    """An Explorer around `inner` reading the job records of the history at `db` (the
    one the simulation writes, as the daemon reads its own), and that store."""
    from smartcron.ai.jobstats import HistoryStats
    from smartcron.smart.explore import Explorer
    from smartcron.store.history import HistoryStore

    store = HistoryStore.open(db)
    return Explorer(inner, HistoryStats(store)), store


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in ("firings", *SHOWN)}


def _test(
    period: tuple[Any, Any, Any],
    span: tuple[datetime, datetime],
    tmp: str,
    report: tuple[Any, Any],
    *,
    explore: bool = True,
    model: bool = True,
) -> tuple[dict[str, Any], int | None]:
    """Every policy over the test days: their metrics, and the smart advisor's inference
    failures (its fallbacks to the rules; none expected). Smart starts from a copy of
    the training history, as a daemon keeps its own, and explores on (`explore`)."""
    from smartcron.ai.advisor import load_advisor
    from smartcron.sim import simulator

    scenario, timeline, world = period
    say, tick = report
    smart_db, policies, failures = f"{tmp}/smart.db", {}, None
    for policy in POLICIES:
        say(f"simulating {policy} over the test days")
        advisor, decider, history, store = None, None, None, None
        if policy == "smart":  # its job stats come from its own history, as in the daemon
            _copy_history(f"{tmp}/train.db", smart_db)
            history = smart_db
            if model:
                advisor = load_advisor(f"{tmp}/model", smart_db)
                advisor.model = unbounded(advisor.model)
            decider = advisor
            if explore or not model:  # no model: the rules, and exploration unless off
                decider, store = _explorer(advisor, smart_db)
                decider.settings = replace(decider.settings, enabled=explore)
        try:
            res = simulator.simulate(
                scenario, timeline, world, policy, start=span[0], end=span[1],
                advisor=decider, history=history, progress=tick,
            )  # fmt: skip
        finally:
            if store is not None:
                store.close()
        policies[policy] = res.metrics()
        if advisor is not None:
            failures = getattr(advisor, "failures", None)
    return policies, failures


def _copy_history(source: str, target: str) -> None:
    """A consistent copy of a history database (SQLite's backup: the WAL included)."""
    import sqlite3

    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def gap_closed(p: dict[str, dict[str, Any]], bound: str = "oracle") -> dict[str, float | None]:
    """Share of the cron -> `bound` gap that smart closes, per metric (None: no gap);
    `bound`: the oracle, or the gated oracle (the best that keeps the jobs' rules)."""
    gaps: dict[str, float | None] = {}
    for key in GAP_KEYS:
        cron, smart, oracle = (p[name][key] for name in ("cron", "smart", bound))
        gaps[key] = round((cron - smart) / (cron - oracle), 3) if cron != oracle else None
    return gaps


@click.command("bench-ai", context_settings=CONTEXT)
@click.option("--crontab", required=True, metavar="F", help="The crontab to simulate.")
@click.option("--trace", "trace_path", required=True, metavar="T", help="Trace CSV (.csv.gz).")
@click.option("--world", "world_path", required=True, metavar="W", help="World YAML.")
@click.option("--train-days", default=28, show_default=True, type=click.IntRange(1))
@click.option("--test-days", default=28, show_default=True, type=click.IntRange(1))
@click.option(
    "--decisions", default=3_000, show_default=True, type=click.IntRange(0),
    help="Decisions timed in the cost step, each in three passes (0: none).",
)  # fmt: skip
@click.option(
    "--train-policy", type=click.Choice(TRAIN_POLICIES), default="explore", show_default=True,
    help="What makes the training history: the daemon's learning period (rules and"
    " exploration) or cron's fixed times.",
)  # fmt: skip
@click.option(
    "--explore/--no-explore", default=True, show_default=True,
    help="Smart explores over the test days as the daemon does (jobs still learning).",
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
    train_policy: str,
    explore: bool,
    as_json: bool,
) -> None:
    """Train on the history of the first days (by default the daemon's learning period:
    the rules with exploration), then compare every policy on the next. A progress bar
    per phase goes to stderr when it is a terminal.

    \b
    Examples:
      smartcronctl bench-ai --crontab fixtures/crontabs/laptop.crontab \\
        --trace fixtures/traces/laptop-8w.csv.gz --world fixtures/worlds/laptop.yaml \\
        --train-days 28 --test-days 28
    """
    with progress_bar("bench-ai") as bar:
        out = run_bench(
            crontab, trace_path, world_path, train_days, test_days,
            decisions=decisions, progress=bar.phase, tick=bar.update if bar.shown else None,
            train_policy=train_policy, explore=explore,
        )  # fmt: skip
    if as_json:
        print_json(out)
        return
    print_bench(out)


def print_bench(out: dict[str, Any]) -> None:
    p = out["policies"]
    train = out["train"]
    if "cron_metrics" in train:  # the cost of learning otherwise than by cron's history
        mine, cron = train["metrics"], train["cron_metrics"]
        click.echo(
            f"training days ({train['policy']}): not_done {mine['not_done']:,} vs cron"
            f" {cron['not_done']:,}, failures {mine['failures']:,} vs {cron['failures']:,},"
            f" interference {mine['interference_cpu_s']:,.0f} vs"
            f" {cron['interference_cpu_s']:,.0f} CPU s"
        )
    click.echo(f"test {out['test']['from']} to {out['test']['to']}")
    click.echo(f"{'':20}" + "".join(f"{name:>13}" for name in POLICIES))
    for key in SHOWN:
        values = (p[name][key] for name in POLICIES)
        click.echo(f"{key:20}" + "".join(f"{number(key, v):>13}" for v in values))
    for bound, key in BOUNDS.items():
        gap = out[key]
        click.echo(
            f"smart closes of the cron->{bound} gap:"
            + "".join(f" {k} {v:.0%}" if v is not None else f" {k} n/a" for k, v in gap.items())
        )
    click.echo(
        f"oracle interference {p['oracle']['interference_cpu_s']:,.0f} CPU s: a reference, not a"
        " bound (the oracle minimises failures first)"
    )
    if "model" in out:
        click.echo(f"smart had no model (training refused: {out['model']}): rules and exploration")
    if out.get("smart_model_failures"):
        click.echo(f"smart: {out['smart_model_failures']} inferences failed (rules decided)")
    _print_costs(out.get("costs"))


def number(key: str, value: float) -> str:
    """A table cell: rates with 4 decimals, everything else (counts, CPU seconds) a
    whole number with thousands separators (never `6.477e+04`)."""
    if key.endswith("_rate"):
        return f"{value:.4f}"
    return f"{value:,.0f}"


def _steady(c: dict[str, Any], key: str) -> str:
    """The p99 of each decision's median over the passes (benchcosts.costs)."""
    return f"each decision's median over {c['passes']} passes: p99 {c[key]['p99']} ms"


def _print_costs(c: dict[str, Any] | None) -> None:
    if c is None:
        return
    if "error" in c:
        click.echo(f"decision costs not measured: {c['error']}")
        return
    click.echo(
        f"decision (features + ONNX, {c['slots_per_decision']} slots,"
        f" {c.get('plan_runs', 0)} other runs planned, {c.get('job_forests', 0)} job"
        " forests in the model): median"
        f" {c['decision_ms']['median']} ms, p99 {c['decision_ms']['p99']} ms"
        f" ({_steady(c, 'decision_steady_ms')});"
        f" the same with scikit-learn: median {c['decision_sklearn_ms']['median']} ms,"
        f" p99 {c['decision_sklearn_ms']['p99']} ms"
        f" ({_steady(c, 'decision_sklearn_steady_ms')});"
        f" one row ONNX p99 {c['onnx_one_row_ms']['p99']} ms vs scikit-learn"
        f" predict_proba p99 {c['sklearn_predict_proba_one_row_ms']['p99']} ms"
        f" (timed on Python {c.get('python', '?')})"
    )
    r = c["rss_mb"]
    if "error" in r:
        click.echo(f"RSS not measured: {r['error']}")
    else:
        click.echo(
            f"RSS {r['without']} MB without the model, {r['with']} MB with (+{r['model']} MB)"
        )
