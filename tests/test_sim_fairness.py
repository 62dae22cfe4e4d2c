"""not_done (a firing's final outcome) and the same retries for every policy, the oracle's
included, on tiny hand-made scenarios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import load_trace, read_trace
from smartcron.sim.world import load_world, read_world
from tests.simkit import T0, trace_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MINUTE = timedelta(minutes=1)


def run(tmp_path: Path, crontab: str, world: str, policy: str, **trace_columns) -> tuple:
    tab = tmp_path / "tab"
    tab.write_text(crontab)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    w = load_world(world, "world.yaml")
    tl = Timeline(load_trace(trace_text(**trace_columns), "t.csv"), w, sc.specs())
    ends: list[tuple[datetime, bool]] = []
    result = simulate(sc, tl, w, policy, on_run=lambda _j, o: ends.append((o.ended, o.ok)))
    return result.metrics(), ends


RETRY = "#@smart name=backup window=20m retry=3 retry_delay=2m\n0 0 * * * backup.sh\n"
ACTIVE_FAILS = (
    "jobs:\n  backup:\n    runtime: 2m\n    fail: [{when: {idle_seconds: '<60'}, p: 1}]\n"
)
ALWAYS_FAILS = "jobs:\n  backup: {runtime: 2m, cpu: 1, base_fail: 1.0}\n"


def test_a_firing_whose_retry_succeeds_is_done(tmp_path):
    # fails at 00:00 and 00:04 (user active), the retry at 00:10 (idle) succeeds
    out, _ = run(tmp_path, RETRY, ACTIVE_FAILS, "rules")
    assert (out["firings"], out["runs"], out["failures"], out["not_done"]) == (1, 3, 2, 0)


def test_a_firing_whose_retries_all_fail_is_not_done_once(tmp_path):
    out, _ = run(tmp_path, RETRY, ALWAYS_FAILS, "rules")
    # 00:00, retries at 00:04, 00:10 (backoff 4 min), 00:20 (8 min: the deadline)
    assert (out["runs"], out["failures"], out["not_done"]) == (4, 4, 1)


def test_cron_never_retries_so_its_failed_run_is_a_not_done_firing(tmp_path):
    out, _ = run(tmp_path, RETRY, ACTIVE_FAILS, "cron")
    assert (out["runs"], out["failures"], out["not_done"]) == (1, 1, 1)


def test_a_skipped_firing_is_not_done(tmp_path):
    crontab = "#@smart name=backup window=10m max_load=0.05 on_deadline=skip\n0 0 * * * b\n"
    out, _ = run(tmp_path, crontab, "jobs:\n  backup: {runtime: 1m}\n", "rules")
    assert (out["runs"], out["skipped"], out["failures"], out["not_done"]) == (0, 1, 0, 1)


def test_a_window_miss_is_not_done_even_when_its_late_run_succeeds(tmp_path):
    crontab = "#@smart name=a window=1m overlap=queue\n0,1 0 * * * a\n"
    out, _ = run(tmp_path, crontab, "jobs:\n  a: {runtime: 5m}\n", "rules")
    assert (out["runs"], out["failures"], out["window_misses"], out["not_done"]) == (2, 0, 1, 1)


def test_a_window_miss_whose_run_fails_counts_once(tmp_path):
    crontab = "#@smart name=a window=1m overlap=queue\n0,1 0 * * * a\n"
    out, _ = run(tmp_path, crontab, "jobs:\n  a: {runtime: 5m, base_fail: 1.0}\n", "rules")
    assert (out["runs"], out["failures"], out["window_misses"], out["not_done"]) == (2, 2, 1, 2)


def test_the_oracle_retries_at_its_best_minute_after_the_backoff(tmp_path):
    crontab = "#@smart name=backup window=20m retry=1 retry_delay=2m\n0 0 * * * backup.sh\n"
    busy = {"idle_seconds": {9: 10, 10: 10, 11: 10}}  # the user is back at 00:09-00:11
    oracle, ends = run(tmp_path, crontab, ALWAYS_FAILS, "oracle", **busy)
    # first run: the earliest minute with no interference, 00:05 (ends 00:07); retry from
    # the backoff instant 00:09: 00:12 is the first minute whose run misses the user
    assert ends == [(T0 + 7 * MINUTE, False), (T0 + 14 * MINUTE, False)]
    assert (oracle["runs"], oracle["failures"], oracle["not_done"]) == (2, 2, 1)
    assert oracle["interference_cpu_s"] == 0.0
    random, random_ends = run(tmp_path, crontab, ALWAYS_FAILS, "random", **busy)
    assert (random["runs"], random["not_done"]) == (2, 1)  # random retries at the backoff
    assert random_ends[1][0] - random_ends[0][0] == 4 * MINUTE


@pytest.mark.parametrize("policy", ["cron", "random", "rules", "oracle", "gated-oracle"])
def test_not_done_is_bounded_by_firings_and_counts_every_miss_on_the_laptop(policy):
    sc = load_scenario(FIXTURES / "crontabs" / "laptop.crontab", zone=UTC, owner="alice")
    w = read_world(FIXTURES / "worlds" / "laptop.yaml")
    tl = Timeline(read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz"), w, sc.specs())
    out = simulate(sc, tl, w, policy, end=T0 + timedelta(days=3)).metrics()
    assert out["window_misses"] + out["skipped"] <= out["not_done"] <= out["firings"]
    assert out["not_done"] <= out["failures"] + out["window_misses"] + out["skipped"]
    if policy == "cron":  # no retries: a firing is not done exactly when its run failed
        assert out["not_done"] == out["failures"] > 0


GATED = "#@smart name=backup window=20m max_load=1\n0 0 * * * backup.sh\n"


def test_the_gated_oracle_picks_its_best_minute_among_those_that_keep_the_rules(tmp_path):
    # the user is away from 00:05 (ACTIVE_FAILS: no failure from then on), but load5 is
    # 3 at 00:05-00:07: the oracle runs at 00:05 all the same, the gated oracle at 00:08
    high = {"load5": {5: 3.0, 6: 3.0, 7: 3.0}}
    _, oracle_ends = run(tmp_path, GATED, ACTIVE_FAILS, "oracle", **high)
    gated, gated_ends = run(tmp_path, GATED, ACTIVE_FAILS, "gated-oracle", **high)
    assert oracle_ends == [(T0 + 7 * MINUTE, True)]
    assert gated_ends == [(T0 + 10 * MINUTE, True)]
    assert (gated["runs"], gated["failures"], gated["not_done"]) == (1, 0, 0)


def test_the_gated_oracle_keeps_the_deadline_rule_when_no_minute_keeps_the_rules(tmp_path):
    crontab = "#@smart name=backup window=10m max_load=0.05 on_deadline=skip\n0 0 * * * b\n"
    world = "jobs:\n  backup: {runtime: 1m}\n"
    gated, _ = run(tmp_path, crontab, world, "gated-oracle")
    assert (gated["runs"], gated["skipped"], gated["not_done"]) == (0, 1, 1)
    oracle, _ = run(tmp_path, crontab, world, "oracle")  # the oracle ignores max_load
    assert (oracle["runs"], oracle["skipped"], oracle["not_done"]) == (1, 0, 0)
    running = crontab.replace("on_deadline=skip", "on_deadline=run")
    late, ends = run(tmp_path, running, world, "gated-oracle")
    assert (late["runs"], late["not_done"]) == (1, 0) and ends[0][0] == T0 + 11 * MINUTE


@pytest.mark.parametrize("policy", ["oracle", "gated-oracle"])
def test_the_oracles_know_a_run_slowed_past_its_timeout_is_killed(tmp_path, policy):
    # from 00:05 the user is away (no failure), but load5 1.0 at 00:05-00:07 slows the
    # 2-minute run to 4 (> timeout 3m): killed there; at 00:08 (load 0.1) it takes 2.2
    crontab = "#@smart name=backup window=20m timeout=3m\n0 0 * * * backup.sh\n"
    world = ACTIVE_FAILS.replace("runtime: 2m", "runtime: 2m\n    slowdown_per_load: 1")
    high = {"load5": {5: 1.0, 6: 1.0, 7: 1.0}}
    out, ends = run(tmp_path, crontab, world, policy, **high)
    assert (out["runs"], out["failures"], out["not_done"]) == (1, 0, 0)
    assert T0 + 10 * MINUTE <= ends[0][0] <= T0 + 11 * MINUTE
