"""smartcronctl train, model and bench-ai: the AI core's commands (SPEC 6, 9).

Thin over smartcron.ai.train (pandas, scikit-learn: imported only by `train` and
`bench-ai`) and smartcron.ai.model (what the daemon loads). `run_bench` is the library
behind bench-ai: cron over the training days into a temporary history, train, then
every policy over the test days, plus the costs of a decision.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from smartcron.cli.common import CONTEXT, load_config, print_json, user_errors, with_config
from smartcron.errors import SmartcronError

POLICIES = ("cron", "random", "rules", "smart", "oracle")
SHOWN = ("failures", "runs", "failure_rate", "interference_cpu_s", "window_misses", "skipped")


@click.command("train", context_settings=CONTEXT)
@with_config
@click.option(
    "--history", "history", metavar="DB", help="History database (default: the daemon's)."
)
@click.option("--out", "out", metavar="DIR", help="Model directory (default: the daemon's).")
@click.option("--seed", default=0, show_default=True, help="random_state of the forests.")
@click.option("--tz", "tz", default="UTC", show_default=True, help="Zone of the hour features.")
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@user_errors
def train_cmd(
    config_file: str | None,
    user_mode: bool | None,
    history: str | None,
    out: str | None,
    seed: int,
    tz: str,
    as_json: bool,
) -> None:
    """Train the success and runtime models from the history; write model.onnx, model.pkl
    and model.json. Refuses (exit 1) when the history is too thin.

    \b
    Examples:
      smartcronctl train
      smartcronctl train --history /tmp/sim.db --out /tmp/model
    """
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from smartcron.ai import train

    if history is None or out is None:
        config = load_config(config_file, user_mode)
        history = history or str(config.history_db)
        out = out or str(config.models_dir)
    console = Console(stderr=True)
    with console.status("training") as status:
        result = train.train(
            history,
            out,
            seed=seed,
            tz=ZoneInfo(tz),
            progress=lambda text: status.update(text),
        )
    if as_json:
        print_json(result.card)
        return
    _show_card(result.card, str(result.out))


def _show_card(card: dict[str, Any], where: str) -> None:
    t, m = card["training"], card["metrics"]["holdout"]
    click.echo(f"model {where}: trained {card['created']}")
    click.echo(f"  data: {t['rows']} runs ({t['failures']} failures), {t['from']} to {t['to']}")
    click.echo(
        f"  holdout (last {t['holdout_rows']} runs): PR-AUC(failure) {m['pr_auc_failure']}"
        f" (baseline {m['pr_auc_baseline']}), Brier {m['brier']},"
        f" runtime MAE {m['runtime_mae_s']} s, underestimated {m['runtime_underestimated']:.0%}"
    )


@click.command("model", context_settings=CONTEXT)
@with_config
@click.option("--dir", "directory", metavar="DIR", help="Model directory (default: the daemon's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def model_cmd(
    config_file: str | None, user_mode: bool | None, directory: str | None, as_json: bool
) -> None:
    """Show the model card and whether the daemon would accept the model (and why not).
    Exits 1 when the daemon would refuse it.

    \b
    Examples:
      smartcronctl model --dir models
      smartcronctl model --user --json
    """
    from smartcron.ai.model import CARD_NAME, ModelUnavailable, load_model

    where = directory or str(load_config(config_file, user_mode).models_dir)
    loaded = load_model(where, owner_uid=os.geteuid())
    accepted = not isinstance(loaded, ModelUnavailable)
    reason = None if accepted else loaded.reason  # type: ignore[union-attr]
    try:
        card = json.loads((Path(where) / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        card = None
    if as_json:
        print_json({"dir": where, "accepted": accepted, "reason": reason, "card": card})
        return
    if isinstance(card, dict) and "training" in card:
        try:
            _show_card(card, where)
        except (KeyError, TypeError):
            click.echo(f"model {where}: card unreadable")
    click.echo("accepted by the daemon" if accepted else f"refused: {reason}")
    if not accepted:
        sys.exit(1)


# ------------------------------------------------------------------ bench-ai


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
) -> dict[str, Any]:
    """Train on the first `train_days` (cron policy), compare policies on the next `test_days`."""
    from smartcron.ai import train
    from smartcron.ai.advisor import load_advisor
    from smartcron.sim import simulator
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world
    from smartcron.store.history import HistoryStore

    say = progress or (lambda _text: None)
    world = read_world(world_path)
    scenario = simulator.load_scenario(crontab, zone=UTC)
    trace = read_trace(trace_path)
    timeline = simulator.Timeline(trace, world)
    start = trace.start
    mid, end = start + timedelta(days=train_days), start + timedelta(days=train_days + test_days)
    if end > trace.end:
        raise SmartcronError(f"{trace_path}: {train_days}+{test_days} days exceed the trace")
    out: dict[str, Any] = {"train": {"from": start.isoformat(), "to": mid.isoformat()}}
    with tempfile.TemporaryDirectory(prefix="smartcron-bench-") as tmp:
        db, model_dir, smart_db = f"{tmp}/train.db", f"{tmp}/model", f"{tmp}/smart.db"
        say("simulating cron over the training days")
        simulator.simulate(scenario, timeline, world, "cron", start=start, end=mid, history=db)
        say("training")
        result = train.train(db, model_dir, seed=seed)
        out["card"] = {k: result.card[k] for k in ("training", "metrics")}
        out["policies"] = {}
        for policy in POLICIES:
            say(f"simulating {policy} over the test days")
            advisor, history = None, None
            if policy == "smart":  # its job stats come from its own history, as in the daemon
                HistoryStore.open(smart_db).close()
                advisor, history = load_advisor(model_dir, smart_db), smart_db
            res = simulator.simulate(
                scenario, timeline, world, policy, start=mid, end=end,
                advisor=advisor, history=history,
            )  # fmt: skip
            out["policies"][policy] = res.metrics()
        out["test"] = {"from": mid.isoformat(), "to": end.isoformat()}
        out["gap_closed"] = _gap(out["policies"])
        say("measuring decision costs")
        out["costs"] = costs(model_dir, result.models, timeline, mid, end, decisions)
    return out


def _gap(p: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Share of the cron -> oracle gap that smart closes, per metric."""
    gaps: dict[str, float | None] = {}
    for key in ("failures", "interference_cpu_s"):
        cron, smart, oracle = (p[name][key] for name in ("cron", "smart", "oracle"))
        gaps[key] = round((cron - smart) / (cron - oracle), 3) if cron != oracle else None
    return gaps


def costs(
    model_dir: str, models: Any, timeline: Any, start: datetime, end: datetime, n: int
) -> dict:
    """Median and p99 of a SmartAdvisor decision (features + ONNX over the window's slots)
    and, on one row, ONNX vs scikit-learn predict_proba; RSS with and without the model."""
    import numpy as np

    from smartcron.ai.advisor import SmartAdvisor, load_advisor
    from smartcron.ai.features import NO_STATS, features
    from smartcron.smart.gate import Firing
    from smartcron.smart.smartspec import SmartSpec

    # every decision a full plan (a deferred firing's minute re-check scores one row only)
    loaded = load_advisor(model_dir)
    advisor = SmartAdvisor(loaded.model, loaded.history, replace(loaded.policy, recheck=None))
    window = timedelta(hours=2)
    spec = SmartSpec(window=window)
    minutes = int((end - start).total_seconds() // 60) - 180
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
        advisor.model.predict(row)
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


def rss(model_dir: str) -> dict[str, float]:
    """RSS (MB) of a fresh process importing the daemon's model code, then loading the model."""
    done = subprocess.run(
        [sys.executable, "-c", _RSS, model_dir], capture_output=True, text=True, check=True
    )
    before, after = (int(v) / 2**20 for v in done.stdout.split())
    return {"without": round(before, 1), "with": round(after, 1), "model": round(after - before, 1)}


@click.command("bench-ai", context_settings=CONTEXT)
@click.option("--crontab", required=True, metavar="F", help="The crontab to simulate.")
@click.option("--trace", "trace_path", required=True, metavar="T", help="Trace CSV (.csv.gz).")
@click.option("--world", "world_path", required=True, metavar="W", help="World YAML.")
@click.option("--train-days", default=28, show_default=True, type=click.IntRange(1))
@click.option("--test-days", default=28, show_default=True, type=click.IntRange(1))
@click.option("--decisions", default=10_000, show_default=True, type=click.IntRange(1))
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
    _print_bench(out)


def _print_bench(out: dict[str, Any]) -> None:
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
    c = out["costs"]
    click.echo(
        f"decision (features + ONNX, {c['slots_per_decision']} slots): median"
        f" {c['decision_ms']['median']} ms, p99 {c['decision_ms']['p99']} ms;"
        f" one row ONNX p99 {c['onnx_one_row_ms']['p99']} ms vs scikit-learn"
        f" predict_proba p99 {c['sklearn_predict_proba_one_row_ms']['p99']} ms"
    )
    r = c["rss_mb"]
    click.echo(f"RSS {r['without']} MB without the model, {r['with']} MB with (+{r['model']} MB)")
