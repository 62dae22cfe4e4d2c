"""Where smart's not-done exceeds the oracle's, firing by firing (issue 13, third round).

    python -m benchmarks.diagnose --seeds 1-20 [--train-days 28] [--test-days 28]
        [--dir MEMBERS] [--out rows.json]

For each family member, the steps of bench-ai's `run_bench` (the training days under
the rules with exploration, a model trained on that history, then the test days), with
smart and the oracle simulated under a world that records each run's start: the
world's true P(fail) there and the law's rules that hold (`cause`: the rule's columns,
``base`` for the base rate, ``timeout``), and for smart how the start was decided:
``deadline`` (the gate ran it at its deadline, without the advisor), ``explored``,
``nominal`` (the advisor ran it at once) or ``deferred``.

Per firing it compares smart's first run with the oracle's: the minutes after the
nominal time each chose and the true P(fail) at each. The summary sums, by smart's
mode and by cause, the firings smart lost that the oracle did not (and the reverse),
and the expected excess, sum(P(fail) smart - P(fail) oracle) over first runs: a figure
without the dice's noise. Development seeds only (`DEVELOPMENT`, docs/ai.md).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smartcron.sim.world import World
from smartcron.smart.gate import Firing, Verdict, deadline_for
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec


@dataclass
class Start:
    """One run's start, as the recording world saw it."""

    job: str
    nominal: datetime
    at: datetime
    p_fail: float
    cause: str
    failed: bool = False


class RecordingWorld:
    """The world, delegating everything, that records each `fails` call: a run's start."""

    def __init__(self, world: World, timeouts: dict[str, float]) -> None:
        self._world, self._timeouts = world, timeouts
        self.starts: list[Start] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world, name)

    def fails(self, job: str, nominal: datetime, start: Snapshot, seed: int | None = None) -> bool:
        failed = self._world.fails(job, nominal, start, seed)
        p = self._world.p_fail(job, start)
        self.starts.append(Start(job, nominal, start.at, p, self.cause(job, start), failed))
        return failed

    def cause(self, job: str, snap: Snapshot) -> str:
        """The law's rules that hold at `snap` (their columns), else base / timeout."""
        law, values = self._world.law_for(job), self._world.values(snap)
        held = [
            "&".join(f"{c.column}{c.op}{c.low:g}" for c in rule.when)
            for rule in law.fail
            if all(c.holds(values[c.column]) for c in rule.when)
        ]
        limit = self._timeouts.get(job)
        if limit is not None and self._world.runtime_s(job, snap) > limit:
            held.append("timeout")
        return "+".join(held) or "base"


@dataclass
class RecordingAdvisor:
    """gate.Advisor around the smart policy's decider: the last verdict per firing."""

    inner: Any
    last: dict[tuple[str, datetime, int], Verdict] = field(default_factory=dict)

    def advise(self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime) -> Any:
        verdict = self.inner.advise(firing, spec, snap, now)
        if verdict is not None:
            self.last[firing.job_id, firing.nominal, firing.attempt] = verdict
        return verdict


def _mode(start: Start, deadline: datetime, verdict: Verdict | None) -> str:
    if start.at >= deadline:
        return "deadline"
    model = dict(verdict.model or {}) if verdict is not None else {}
    if model.get("explored"):
        return "explored"
    if start.at <= start.nominal:
        return "nominal"
    if verdict is None:
        return "rules"  # no model: the rules (constraints) held it
    return "deferred" if verdict.action == "run" else "other"


def simulate_member(member: Any, train_days: int, test_days: int) -> dict[str, Any]:
    """The training days, the model, then smart and the oracle over the test days."""
    from smartcron.ai import train
    from smartcron.ai.advisor import load_advisor
    from smartcron.ai.jobstats import HistoryStats
    from smartcron.cli.benchcosts import unbounded
    from smartcron.sim import simulator
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world
    from smartcron.smart.explore import Explorer
    from smartcron.store.history import HistoryStore

    world = read_world(member.world)
    scenario = simulator.load_scenario(str(member.crontab), zone=UTC)
    timeline = simulator.Timeline(read_trace(member.trace), world)
    start = timeline.trace.start
    mid, end = start + timedelta(days=train_days), start + timedelta(days=train_days + test_days)
    specs = {j.id: (j.smart, j.zone) for j in scenario.jobs if j.smart is not None}
    timeouts = {k: s.timeout.total_seconds() for k, (s, _) in specs.items() if s.timeout}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="smartcron-diagnose-") as tmp:
        db, smart_db = f"{tmp}/train.db", f"{tmp}/smart.db"
        store = HistoryStore.open(db)
        try:
            simulator.simulate(scenario, timeline, world, "smart", start=start, end=mid,
                               history=db, advisor=Explorer(None, HistoryStats(store)))  # fmt: skip
        finally:
            store.close()
        try:
            train.train(db, f"{tmp}/model", seed=0)
            model = True
        except train.TrainError:
            model = False
        with sqlite3.connect(db) as src, sqlite3.connect(smart_db) as dst:
            src.backup(dst)
        inner = None
        if model:
            inner = load_advisor(f"{tmp}/model", smart_db)
            inner.model = unbounded(inner.model)
        store = HistoryStore.open(smart_db)
        recorder = RecordingAdvisor(Explorer(inner, HistoryStats(store)))
        smart_world = RecordingWorld(world, timeouts)
        try:
            res = simulator.simulate(
                scenario, timeline, smart_world, "smart",  # type: ignore[arg-type]
                start=mid, end=end, history=smart_db, advisor=recorder,
            )  # fmt: skip
        finally:
            store.close()
        oracle_world = RecordingWorld(world, timeouts)
        ores = simulator.simulate(scenario, timeline, oracle_world, "oracle", start=mid, end=end)  # type: ignore[arg-type]
    deadlines = {
        (j, n): deadline_for(specs[j][0], n, specs[j][1])
        for j, n in {(s.job, s.nominal) for s in smart_world.starts + oracle_world.starts}
        if j in specs
    }
    out["model"] = model
    out["job_load"] = world.job_load
    out["not_done"] = {"smart": res.metrics()["not_done"], "oracle": ores.metrics()["not_done"]}
    out["firings"] = _firings(smart_world.starts, oracle_world.starts, deadlines, recorder.last)
    return out


def _firings(
    smart: list[Start],
    oracle: list[Start],
    deadlines: dict[tuple[str, datetime], datetime],
    last: dict[tuple[str, datetime, int], Verdict],
) -> list[dict[str, Any]]:
    """One row per firing with a run under either policy (the cron lines' jobs too)."""
    runs: dict[tuple[str, datetime], dict[str, list[Start]]] = defaultdict(
        lambda: {"smart": [], "oracle": []}
    )
    for name, starts in (("smart", smart), ("oracle", oracle)):
        for s in starts:
            runs[s.job, s.nominal][name].append(s)
    rows = []
    for (job, nominal), by in sorted(runs.items()):
        if (job, nominal) not in deadlines:
            continue
        sm, om = by["smart"], by["oracle"]
        row: dict[str, Any] = {"job": job, "nominal": nominal.isoformat()}
        for name, got in (("smart", sm), ("oracle", om)):
            row[f"{name}_done"] = any(not r.failed for r in got)
            row[f"{name}_runs"] = len(got)
            if got:
                row[f"{name}_min"] = round((got[0].at - nominal).total_seconds() / 60)
                row[f"{name}_p"] = round(got[0].p_fail, 4)
                row[f"{name}_cause"] = got[-1].cause if got[-1].failed else got[0].cause
        if sm:
            verdict = last.get((job, nominal, 0))
            row["mode"] = _mode(sm[0], deadlines[job, nominal], verdict)
            model = dict(verdict.model or {}) if verdict is not None else {}
            if "p_success" in model:  # the advisor's view at its last decision
                row["smart_pred"] = round(1.0 - model["p_success"], 4)
                row["smart_slots"] = int(model.get("slots", 0))
        row["window_min"] = round((deadlines[job, nominal] - nominal).total_seconds() / 60)
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Lost by smart only / by the oracle only, by mode and by cause; expected excess."""
    lost = [r for r in rows if not r["smart_done"] and r["oracle_done"]]
    won = [r for r in rows if r["smart_done"] and not r["oracle_done"]]
    both = [r for r in rows if "smart_p" in r and "oracle_p" in r]
    excess: dict[str, float] = defaultdict(float)
    for r in both:
        excess[r.get("mode", "none")] += r["smart_p"] - r["oracle_p"]
    return {
        "firings": len(rows),
        "smart_only_lost": len(lost),
        "oracle_only_lost": len(won),
        "lost_by_mode": Counter(r.get("mode", "no run") for r in lost).most_common(),
        "lost_by_cause": Counter(r.get("smart_cause", "no run") for r in lost).most_common(12),
        "lost_by_job": Counter(r["job"] for r in lost).most_common(12),
        "modes": Counter(r.get("mode", "no run") for r in rows).most_common(),
        "expected_excess_by_mode": {k: round(v, 1) for k, v in excess.items()},
        "expected_excess": round(sum(excess.values()), 1),
    }


# The seeds one may look at as often as needed (docs/ai.md, "The procedure"): the
# development sets and the report draws already seen, never a draw still to come.
DEVELOPMENT = (range(1, 61), range(1701, 1721), range(1801, 1821), range(1901, 1921),
               range(2001, 2021), range(2101, 2121), range(2201, 2221),
               range(2301, 2321))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from benchmarks.family import parse_seeds
    from smartcron.sim.family import generate

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.diagnose",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=parse_seeds, required=True)
    parser.add_argument("--train-days", type=int, default=28)
    parser.add_argument("--test-days", type=int, default=28)
    parser.add_argument("--dir", help="family members (generated there if missing)")
    parser.add_argument("--out", help="write every firing row and the summaries (JSON)")
    args = parser.parse_args(argv)
    if not all(any(seed in seeds for seeds in DEVELOPMENT) for seed in args.seeds):
        parser.error("development seeds only (docs/ai.md: a report draw runs once)")
    everything: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.dir or tmp)
        for seed in args.seeds:
            member = generate(seed, where / f"seed-{seed}", days=args.train_days + args.test_days)
            got = simulate_member(member, args.train_days, args.test_days)
            got["summary"] = summarise(got["firings"])
            everything[f"seed-{seed}"] = got
            print(f"seed {seed} ({member.kind}, job load {got['job_load']}, model"
                  f" {got['model']}): not_done {got['not_done']}: {json.dumps(got['summary'])}",
                  file=sys.stderr)  # fmt: skip
    total = summarise([r for got in everything.values() for r in got["firings"]])
    print(json.dumps(total, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(everything, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
