"""The simulator on tiny hand-made scenarios: metrics computed by hand, the dice, the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.sim import simulator
from smartcron.sim.simulator import SimPolicy, SimulationError, Timeline, load_scenario, simulate
from smartcron.sim.trace import load_trace
from smartcron.sim.world import load_world
from smartcron.smart import gate
from tests.simkit import CRONTAB, T0, WORLD, trace_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def scenario(tmp_path: Path, crontab: str = CRONTAB, world: str = WORLD, **trace_columns):
    tab = tmp_path / "tab"
    tab.write_text(crontab)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    w = load_world(world, "world.yaml")
    return sc, Timeline(load_trace(trace_text(**trace_columns), "t.csv"), w, sc.specs()), w


def metrics(tmp_path: Path, policy: str, **options) -> dict:
    sc, tl, w = scenario(tmp_path)
    result = simulate(sc, tl, w, policy, **options)
    return result.metrics()


BY_HAND = {
    # plain line: 00:00, 00:10, 00:20, one minute each, no CPU, never fails.
    # cron: backup at 00:00, user active (idle 10 s < 60): P(fail) = 1; 2 min x 1 core
    # in active minutes 0-1: 120 CPU s wasted and interfering.
    "cron": dict(
        firings=4, runs=4, failures=1, failure_rate=0.25, wasted_cpu_s=120.0,
        interference_cpu_s=120.0, on_battery_cpu_s=0.0, window_misses=0, skipped=0,
        not_done=1, delay_mean_s=0.0, delay_p95_s=0.0,
    ),
    # rules: idle=5m holds first at minute 9 (idle 300 s): succeeds, on battery 9-10.
    "rules": dict(
        firings=4, runs=4, failures=0, failure_rate=0.0, wasted_cpu_s=0.0,
        interference_cpu_s=0.0, on_battery_cpu_s=120.0, window_misses=0, skipped=0,
        not_done=0, delay_mean_s=135.0, delay_p95_s=540.0,
    ),
    # oracle: P(fail) = 0 from minute 5 on; no interference there either: earliest, 5.
    "oracle": dict(
        firings=4, runs=4, failures=0, failure_rate=0.0, wasted_cpu_s=0.0,
        interference_cpu_s=0.0, on_battery_cpu_s=0.0, window_misses=0, skipped=0,
        not_done=0, delay_mean_s=75.0, delay_p95_s=300.0,
    ),
}  # fmt: skip


@pytest.mark.parametrize("policy", sorted(BY_HAND))
def test_metrics_match_a_hand_computation_on_a_30_minute_trace(tmp_path, policy):
    out = metrics(tmp_path, policy)
    jobs = out.pop("jobs")
    assert out == BY_HAND[policy]
    assert set(jobs) == {"backup", next(j for j in jobs if j != "backup")}
    assert jobs["backup"]["runs"] == 1


def test_the_same_seed_gives_the_same_metrics_and_every_policy_the_same_dice(tmp_path):
    sc, tl, w = scenario(tmp_path, FIXED_CRONTAB, FIXED_WORLD)
    for policy in ("cron", "random", "rules", "oracle"):
        first = simulate(sc, tl, w, policy, seed=11).metrics()
        assert simulate(sc, tl, w, policy, seed=11).metrics() == first
    # constraints always hold: rules starts every firing at its nominal minute, as cron
    # does, so both meet the same dice and see identical outcomes
    cron = simulate(sc, tl, w, "cron", seed=11).metrics()
    rules = simulate(sc, tl, w, "rules", seed=11).metrics()
    assert cron == rules
    assert 0 < cron["failures"] < cron["runs"]  # the dice matter: some fail, some do not
    other = simulate(sc, tl, w, "cron", seed=12).metrics()
    assert other["failures"] != cron["failures"] or other["jobs"] != cron["jobs"]


FIXED_CRONTAB = """\
#@smart name=often window=3m max_load=5
* * * * * often.sh
"""
FIXED_WORLD = """\
jobs:
  often:
    runtime: 30s
    cpu: 0.5
    base_fail: 0.5
"""


def test_oracle_fails_no_more_than_any_other_policy(tmp_path):
    crontab = """\
#@smart name=a window=10m max_load=1
*/5 * * * * a.sh
#@smart name=b window=15m idle=2m
*/3 * * * * b.sh
"""
    world = """\
seed: 5
jobs:
  a: {runtime: 1m, cpu: 1, base_fail: 0.1, fail: [{when: {load5: ">0.5"}, p: 0.7}]}
  b: {runtime: 2m, cpu: 1, base_fail: 0.05, fail: [{when: {idle_seconds: "<120"}, p: 0.6}]}
"""
    loads = {i: 0.2 + (i * 7 % 11) / 5 for i in range(60)}
    idles = {i: (i * 13 % 17) * 15 for i in range(60)}
    sc, tl, w = scenario(tmp_path, crontab, world, minutes=60, load5=loads, idle_seconds=idles)
    end = T0 + timedelta(minutes=40)
    for seed in range(5):
        oracle = simulate(sc, tl, w, "oracle", seed=seed, end=end).metrics()["failures"]
        for policy in ("cron", "random", "rules"):
            other = simulate(sc, tl, w, policy, seed=seed, end=end).metrics()["failures"]
            assert oracle <= other, (seed, policy)


def test_the_simulator_calls_the_shared_gate(tmp_path, monkeypatch):
    calls = {"evaluate": 0, "admit": 0}
    real_evaluate, real_admit = gate.evaluate, gate.admit

    def evaluate(*args, **kwargs):
        calls["evaluate"] += 1
        return real_evaluate(*args, **kwargs)

    def admit(*args, **kwargs):
        calls["admit"] += 1
        return real_admit(*args, **kwargs)

    monkeypatch.setattr(gate, "evaluate", evaluate)
    monkeypatch.setattr(gate, "admit", admit)
    out = metrics(tmp_path, "rules", exact=True)
    assert out["runs"] == 4
    # nominal 00:00, then minutes 1..9 deferred by idle=5m (exact: every minute)
    assert calls["evaluate"] == 10 and calls["admit"] == 1


def test_skipping_ahead_over_deferrals_changes_no_outcome():
    """The fast path (next minute where the gate's constraints hold) against the
    daemon's minute-by-minute evaluation, on a week of the shipped laptop scenario."""
    sc = load_scenario(FIXTURES / "crontabs" / "laptop.crontab", zone=UTC, owner="alice")
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world

    w = read_world(FIXTURES / "worlds" / "laptop.yaml")
    tl = Timeline(read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz"), w, sc.specs())
    end = T0 + timedelta(days=7)
    fast = simulate(sc, tl, w, "rules", end=end)
    exact = simulate(sc, tl, w, "rules", end=end, exact=True)
    assert fast.metrics() == exact.metrics()
    assert fast.evaluations < exact.evaluations / 3


def test_timeline_snapshots_equal_the_traces(tmp_path):
    _, tl, _ = scenario(tmp_path)
    for i in range(30):
        assert tl.snapshot(i) == tl.trace.at(T0 + timedelta(minutes=i))
    past = tl.snapshot(40)  # past the end: the last row carries forward
    assert past.at == T0 + timedelta(minutes=40) and past.idle_seconds == 25 * 60


def test_on_deadline_skip_is_skipped_not_missed_and_run_runs_at_the_deadline(tmp_path):
    for setting, runs, skipped, delay in (("skip", 0, 1, 0.0), ("run", 1, 0, 600.0)):
        crontab = f"#@smart name=backup window=10m max_load=0.05 on_deadline={setting}\n"
        sc, tl, w = scenario(tmp_path, crontab + "0 0 * * * b\n")
        out = simulate(sc, tl, w, "rules").metrics()
        assert (out["runs"], out["skipped"], out["window_misses"]) == (runs, skipped, 0)
        assert out["delay_mean_s"] == delay


def test_a_firing_kept_waiting_past_its_deadline_is_a_window_miss(tmp_path):
    # overlap=queue holds a firing past its deadline (the cap does not: see below)
    crontab = "#@smart name=a window=1m overlap=queue\n0,1 0 * * * a\n"
    sc, tl, w = scenario(tmp_path, crontab, "jobs:\n  a: {runtime: 5m}\n")
    out = simulate(sc, tl, w, "rules").metrics()
    assert out["window_misses"] == 1 and out["runs"] == 2
    assert out["delay_p95_s"] == 240.0  # the 00:01 firing waited for the first to end


def test_a_firing_at_its_deadline_starts_over_the_cap_as_in_the_daemon(tmp_path):
    crontab = "#@smart name=a window=0s\n0 0 * * * a\n#@smart name=b window=1m\n0 0 * * * b\n"
    world = "jobs:\n  a: {runtime: 5m}\n  b: {runtime: 5m}\n"
    sc, tl, w = scenario(tmp_path, crontab, world)
    out = simulate(sc, tl, w, "rules", max_concurrent=1).metrics()
    assert out["window_misses"] == 0 and out["runs"] == 2
    assert out["delay_p95_s"] == 60.0  # b waited for capacity until its deadline


def test_retries_back_off_inside_the_window_and_meet_the_same_dice(tmp_path):
    crontab = "#@smart name=backup window=20m retry=3 retry_delay=2m\n0 0 * * * backup.sh\n"
    sc, tl, w = scenario(tmp_path, crontab)
    out = simulate(sc, tl, w, "rules").metrics()["jobs"]["backup"]
    # fails at 0 (active), ends 00:02; retry 1 at 00:04 (active: fails, ends 00:06);
    # retry 2 at 00:10 (4 min backoff; idle: succeeds)
    assert (out["runs"], out["failures"], out["wasted_cpu_s"]) == (3, 2, 240.0)
    assert simulate(sc, tl, w, "cron").metrics()["jobs"]["backup"]["runs"] == 1


def test_a_timeout_kills_the_run_and_counts_as_a_failure(tmp_path):
    crontab = "#@smart name=backup window=20m timeout=1m\n5 0 * * * backup.sh\n"
    out = simulate(*scenario(tmp_path, crontab), "rules").metrics()["jobs"]["backup"]
    assert (out["failures"], out["wasted_cpu_s"]) == (1, 60.0)


def test_bad_input_is_a_clear_error(tmp_path):
    sc, tl, w = scenario(tmp_path)
    with pytest.raises(SimulationError, match="not before"):
        simulate(sc, tl, w, "rules", start=T0 + timedelta(minutes=20), end=T0)
    with pytest.raises(SimulationError, match="outside the trace"):
        simulate(sc, tl, w, "rules", end=T0 + timedelta(days=1))
    with pytest.raises(SimulationError, match="needs a model"):
        simulate(sc, tl, w, "smart")
    extra = load_world(WORLD + "  ghost: {runtime: 1m}\n", "w.yaml")
    with pytest.raises(SimulationError, match="ghost"):
        simulate(sc, tl, extra, "rules")
    assert SimPolicy("oracle") is SimPolicy.ORACLE and simulator.check_world(w, sc) == [
        j.id for j in sc.jobs if j.id != "backup"
    ]


def test_history_holds_the_runs_and_decisions(tmp_path):
    from smartcron.smart.firings import FiringStore
    from smartcron.store.history import HistoryStore

    sc, tl, w = scenario(tmp_path)
    db = tmp_path / "h.db"
    simulate(sc, tl, w, "rules", history=str(db))
    store = HistoryStore(db, readonly=True)
    runs = store.runs(limit=10)
    assert len(runs) == 4
    smart = [r for r in runs if r.start.job_id == "backup"]
    assert smart[0].start.trigger == "smart" and smart[0].status == "ok"
    firing_id = smart[0].start.firing_id
    decisions = FiringStore(store).decisions(firing_id)
    assert [d.verdict for d in decisions] == ["defer"] * 9 + ["run", "done"]
    assert decisions[0].snapshot["idle_seconds"] == 10.0
    store.close()


def test_smart_asks_the_advisor_once_constraints_hold_and_it_may_defer(tmp_path):
    class LaterAdvisor:
        """Defers each firing once, by three minutes (a model seeing a better slot)."""

        def __init__(self) -> None:
            self.asked: list[datetime] = []

        def advise(self, firing, spec, snap, now):
            self.asked.append(now)
            if len(self.asked) == 1:
                return gate.Verdict(action="defer", until=now + timedelta(minutes=3), reason="x")
            return None

    advisor = LaterAdvisor()
    sc, tl, w = scenario(tmp_path)
    ran: list[tuple[str, datetime, bool]] = []
    out = simulate(
        sc, tl, w, "smart", advisor=advisor, on_run=lambda j, o: ran.append((j, o.ended, o.ok))
    ).metrics()
    minute = timedelta(minutes=1)
    assert advisor.asked == [T0 + 9 * minute, T0 + 12 * minute]  # idle=5m holds from 9
    assert out["jobs"]["backup"]["delay_mean_s"] == 720.0
    assert ("backup", T0 + 14 * minute, True) in ran


QUEUE_CRONTAB = """\
#@smart name=long window=1h
0 0 * * * long.sh
#@smart name=w1 window=1h max_load=1
1 0 * * * w1.sh
#@smart name=w2 window=1h
2 0 * * * w2.sh
#@smart name=late window=15m on_deadline=run
3 0 * * * late.sh
"""
QUEUE_WORLD = """\
jobs:
  long: {runtime: 20m, cpu: 1}
  w1: {runtime: 5m, cpu: 1}
  w2: {runtime: 5m, cpu: 1}
  late: {runtime: 5m, cpu: 1}
"""


def test_minutes_repeating_a_capacity_wait_are_counted_not_replayed(tmp_path, monkeypatch):
    """Firings waiting for capacity are gated again every minute (as in the daemon);
    minutes that only repeat a quiet wait are skipped: same decisions, at the same
    minutes, and the same evaluation count, with fewer calls to the gate. Here w1's
    load rises mid-wait (a defer), `late` reaches its deadline (started over the cap)."""
    from smartcron.sim.engine import Simulation

    loads = {i: 2.5 for i in range(8, 12)}
    sc, tl, w = scenario(tmp_path, QUEUE_CRONTAB, QUEUE_WORLD, minutes=120, load5=loads)
    runs = {}
    for repeat in (True, False):
        seen, calls = [], []
        real_effect, real_evaluate = Simulation._effect, gate.evaluate

        def effect(self, eff, minute, seen=seen, real=real_effect):
            seen.append((minute, eff.kind, eff.firing.job_id, eff.reason))
            real(self, eff, minute)

        def evaluate(*args, calls=calls, real=real_evaluate, **kwargs):
            calls.append(args[3])
            return real(*args, **kwargs)

        monkeypatch.setattr(Simulation, "_effect", effect)
        monkeypatch.setattr(gate, "evaluate", evaluate)
        if not repeat:
            monkeypatch.setattr(Simulation, "_repeat_quiet", lambda self, minute: None)
        result = simulate(sc, tl, w, "rules", max_concurrent=1)
        runs[repeat] = (result.metrics(), seen, result.evaluations, len(calls))
        monkeypatch.undo()
    fast, slow = runs[True], runs[False]
    assert fast[:3] == slow[:3]
    assert fast[3] < slow[3] == slow[2]
    kinds = [kind for _, kind, _, _ in fast[1]]
    assert "wait" in kinds and "defer" in kinds and fast[0]["runs"] == 4


SAME_MINUTE_CRONTAB = """\
#@smart name=zeta window=30m
*/30 * * * * zeta.sh
#@smart name=alpha window=30m max_load=9
0 * * * * alpha.sh
"""
SAME_MINUTE_WORLD = """\
machine: {cores: 4, job_load: true}
jobs:
  zeta: {runtime: 10m, cpu: 3}
  alpha: {runtime: 1m, cpu: 0.1, fail: [{when: {load1: ">2"}, p: 1}]}
"""


@pytest.mark.parametrize("policy", ["cron", "rules"])
def test_a_minutes_starts_are_in_crontab_order_gated_or_not(tmp_path, policy):
    """The world judges a start with the runs begun before it in the same minute, so the
    order matters: every policy starts a minute's firings as the cron policy does, in
    file order (here zeta's 3 cores are then under alpha's start: alpha fails under cron
    and rules), also when their ticks were queued in another order (01:00: alpha's
    first)."""
    sc, tl, w = scenario(tmp_path, SAME_MINUTE_CRONTAB, SAME_MINUTE_WORLD, minutes=90)
    ran: list[tuple[str, datetime]] = []
    out = simulate(
        sc, tl, w, policy, end=T0 + timedelta(minutes=61),
        on_run=lambda job, o: ran.append((job, o.started)),
    ).metrics()  # fmt: skip
    for at in (T0, T0 + timedelta(hours=1)):
        assert [job for job, started in ran if started == at] == ["zeta", "alpha"]
    assert out["jobs"]["alpha"]["failures"] == 2
