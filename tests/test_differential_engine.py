"""The daemon and the simulator make the same decisions: one firing state machine, two
drivers (smartcron.smart.machine; smartcron.smart.engine with the wall clock and the FiringStore,
smartcron.sim.engine with a virtual clock).

The real Daemon runs its own `run()` loop on a FakeClock (FakeWaker), a TraceMonitor
on the trace and a FakeRunner whose runtimes and outcomes come from the world (the
simulator's dice: `world.runtime_s` and `world.fails` at the start); the simulator runs
`--policy rules` and `--policy smart` (a fixed advisor both accept) on the same
crontab, trace and world, for a week. Both write a history; runs and every decision
must be identical. The crontab has capacity waits (max_concurrent 1), a firing gated
again after waiting for capacity (the issue's 01:10Z vs 01:30Z case), retries, a
timeout, overlap=queue and overlap=skip; the daemon's clock is stepped forward once,
at a quiet time (the simulator's virtual clock never steps: its minutes are the
trace's). Runtimes are whole minutes: the simulator's wake-ups are minutes, so a run's
end is seen at a minute boundary, as the daemon sees these.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai.jobstats import RunOutcome
from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.run.executor import RunRequest
from smartcron.run.runcontext import RunContext, RunSettings
from smartcron.sim.simulator import load_scenario, simulate
from smartcron.sim.trace import TraceMonitor, load_trace
from smartcron.sim.world import load_world
from smartcron.smart.gate import Firing, Verdict
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec
from smartcron.store.history import HistoryStore
from smartcron.testing import FakeClock, FakeOutcome, FakeRunner, FakeWaker, RecordingMailer
from smartcron.testing import run_until as run_daemon_until
from tests.userconfig import user_config

DAY0 = datetime(2026, 1, 5, tzinfo=UTC)
END = DAY0 + timedelta(days=7)  # nominal times in [DAY0 00:01, END) are compared
STEP_AT = DAY0 + timedelta(days=3, hours=12, minutes=1)  # a quiet minute

CRONTAB = """\
#@smart name=a window=2h max_load=1 priority=1
0 1 * * * a.sh
#@smart name=b window=2h max_load=1
0 1 * * * b.sh
#@smart name=c window=1h retry=2 retry_delay=5m
30 */4 * * * c.sh
#@smart name=d window=30m overlap=queue max_cpu=50
0,10 3 * * * d.sh
#@smart name=e window=30m overlap=skip
0,5 4 * * * e.sh
#@smart name=f window=1h timeout=2m retry=1 retry_delay=1m
15 2 * * * f.sh
*/30 * * * * plain.sh
"""

WORLD = """\
seed: 11
jobs:
  a: {runtime: 10m}
  b: {runtime: 5m}
  c: {runtime: 3m, fail: [{when: {load5: ">=0.5"}, p: 0.9}]}
  d: {runtime: 15m}
  e: {runtime: 10m}
  f: {runtime: 3m}
"""


def trace_text(days: int = 8) -> str:
    """A week and a day: load5 3.0 from 01:05Z to 01:30Z daily, busy afternoons (cpu 80%)
    on odd days, idle otherwise."""
    lines = ["timestamp,load1,load5,cpu_percent,ram_percent,idle_seconds,disk_free_percent"]
    for i in range(days * 1440):
        at = DAY0 + timedelta(minutes=i)
        minutes = at.hour * 60 + at.minute
        load = 3.0 if 65 <= minutes < 90 else 0.2 + (i % 7) / 10
        cpu = 80.0 if at.day % 2 and 13 * 60 <= minutes < 17 * 60 else 10.0 + i % 5
        idle = 30 if 8 * 60 <= minutes < 18 * 60 else 4000
        lines.append(f"{at.isoformat()},{load},{load},{cpu},40,{idle},50")
    return "\n".join(lines) + "\n"


class Quarters:
    """A fixed advisor: a firing of a job with priority 0 waits for the next quarter hour."""

    def advise(self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime):
        if spec.priority or now.minute % 15 == 0:
            return None
        until = now.replace(second=0, microsecond=0) + timedelta(minutes=15 - now.minute % 15)
        return Verdict(action="defer", until=until, reason="a quieter quarter", model={"p": 0.5})


def run_daemon(tmp: Path, trace, world, scenario, advisor: Quarters | None) -> Path:
    """The real daemon for the week; returns its history database."""
    names = {job.command: job.id for job in scenario.jobs}  # the world's names
    clock = FakeClock(DAY0 + timedelta(seconds=30))  # its first minute (00:00) is not run
    monitor = TraceMonitor(trace)
    launched: dict[str, deque[datetime]] = {}
    outcomes: dict[int, FakeOutcome] = {}

    def launcher(job, scheduled, trigger, *, firing=None):
        launched.setdefault(job.id, deque()).append(scheduled)
        return daemon.start(job, scheduled, trigger, firing=firing)

    def respond(request: RunRequest) -> FakeOutcome:
        if id(request) not in outcomes:  # the world's dice, at the start
            nominal = launched[request.job_id].popleft()
            snap = monitor.snapshot(clock.now())
            name = names[request.command]
            failed = world.fails(name, nominal, snap)
            duration = world.runtime_s(name, snap)
            outcomes[id(request)] = FakeOutcome(exit_code=int(failed), duration_s=duration)
        return outcomes[id(request)]

    runner = FakeRunner(respond, auto=False, clock=clock)
    cfg = user_config(tmp, CRONTAB, max_concurrent=1, mode="smart" if advisor else "legacy")
    history = HistoryStore.open(tmp / "history.db", clock=clock)
    run = RunContext(
        runner=runner,
        mailer=RecordingMailer(),
        history=history,
        clock=clock,
        settings=RunSettings.of(cfg),
    )
    daemon = Daemon(
        cfg,
        run,
        zone=UTC,
        smart=SmartParts(monitor=monitor, advisor=advisor),
        launcher=launcher,
        waker=FakeWaker(clock, runner),
    )
    assert daemon.mode == ("smart" if advisor else "legacy")
    daemon.reload(force=True)
    run_daemon_until(daemon, STEP_AT)
    clock.set(STEP_AT + timedelta(minutes=10))  # `date -s`: forward 10 minutes
    run_daemon_until(daemon, END + timedelta(hours=6))
    assert daemon.jumps, "the daemon saw the clock step"
    history.close()
    return tmp / "history.db"


def runs(db: Path) -> list[tuple[str, ...]]:
    """(command, scheduled, started, trigger, status) of each run with nominal in the week."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT command, scheduled, started, trigger, status FROM runs"
            " WHERE scheduled < ? ORDER BY started, command",
            (END.strftime("%Y-%m-%dT%H:%M:%S"),),
        ).fetchall()
    return [tuple(str(v) for v in row) for row in rows]


def decisions(db: Path) -> list[tuple[str, ...]]:
    """Every decision of the week's firings: (command, nominal, at, verdict, until, reason)."""
    sql = (
        "SELECT r.command, f.nominal, d.at, d.verdict, d.until, d.reason FROM decisions d"
        " JOIN firings f ON f.id = d.firing_id"
        " JOIN (SELECT DISTINCT job_id, command FROM runs) r ON r.job_id = f.job_id"
        " WHERE f.nominal < ? ORDER BY f.nominal, r.command, d.id"
    )
    with sqlite3.connect(db) as conn:
        rows = conn.execute(sql, (END.strftime("%Y-%m-%dT%H:%M:%S"),)).fetchall()
    return [tuple(str(v) for v in row) for row in rows]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("differential")
    (tmp / "crontab").write_text(CRONTAB)
    trace = load_trace(trace_text(), "<week>")
    world = load_world(WORLD)
    scenario = load_scenario(tmp / "crontab", zone=UTC)
    return tmp, trace, world, scenario


def starts(db: Path) -> list[tuple[str, str]]:
    """(command, started HH:MM of the day) of each run, as `runs`."""
    return [(command, started) for command, _, started, _, _ in runs(db)]


@pytest.mark.parametrize("policy", ["rules", "smart"])
def test_the_daemon_and_the_simulator_start_the_same_runs(inputs, policy):
    tmp, trace, world, scenario = inputs
    advisor = Quarters() if policy == "smart" else None
    daemon_db = run_daemon(tmp / f"daemon-{policy}", trace, world, scenario, advisor)
    commands = {job.id: job.command for job in scenario.jobs}
    seen: list[tuple[str, str]] = []

    def on_run(job: str, outcome: RunOutcome) -> None:
        assert outcome.started is not None
        seen.append((commands[job], outcome.started.strftime("%Y-%m-%dT%H:%M:%S.000000Z")))

    period = {"start": DAY0 + timedelta(minutes=1), "end": END, "max_concurrent": 1}
    simulate(scenario, trace, world, policy, advisor=advisor, on_run=on_run, **period)
    ours = starts(daemon_db)
    assert ours == sorted(seen, key=lambda item: (item[1], item[0]))
    # The case: b waited for a (max_concurrent 1), then for load5 <= 1 at 01:30Z.
    assert next(row for row in ours if row[0] == "b.sh")[1] == "2026-01-05T01:30:00.000000Z"
    # Again with --history: every run (trigger, status) and every decision, identical.
    sim_db = tmp / f"sim-{policy}.db"
    simulate(scenario, trace, world, policy, advisor=advisor, history=str(sim_db), **period)
    assert runs(daemon_db) == runs(sim_db)
    kinds = {row[3:] for row in runs(daemon_db)}
    assert {("retry", "ok"), ("smart", "failed"), ("smart", "timeout")} <= kinds
    assert decisions(daemon_db) == decisions(sim_db)
