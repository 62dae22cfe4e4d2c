"""How much of a run's cores the machine's load shows, from the history's snapshots
(smartcron.ai.loadshare)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.ai.loadshare import GAP_S, PRIOR_SHARE, host_of, load_share

MIN = 60.0


def _world(share: float, seed: int, drift: float = 0.05, host: str = "") -> tuple[list, list]:
    """Two days of hourly runs (2-4 cores, 20-40 minutes) and a snapshot every 10
    minutes: load1 = a background that wanders by `drift` a sample + share x the cores
    of the runs going (those strictly inside their run)."""
    rng = random.Random(seed)
    runs = []
    for hour in range(48):
        start = hour * 60 * MIN + rng.randrange(0, 30) * MIN
        runs.append((host, start, start + rng.randrange(20, 41) * MIN, rng.uniform(2.0, 4.0)))
    samples, background = [], 1.0
    for k in range(48 * 6):
        at = k * 10 * MIN
        background = max(0.0, background + rng.gauss(0.0, drift))
        going = sum(c for _, s, e, c in runs if s < at < e)
        samples.append((host, at, background + share * going))
    return runs, samples


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_the_share_is_recovered_from_the_snapshots(share: float, seed: int) -> None:
    runs, samples = _world(share, seed)
    assert load_share(runs, samples) == pytest.approx(share, abs=0.05)


def test_a_level_that_follows_the_hour_does_not_pass_for_the_runs_load() -> None:
    """Jobs run in the busy hours, but their runs do not move the load: the levels
    correlate, the differences between near snapshots do not."""
    runs = [("", h * 3600.0 + 600, h * 3600.0 + 3000, 3.0) for h in range(48) if h % 24 >= 12]
    samples = [("", k * 600.0, 4.0 if (k // 6) % 24 >= 12 else 0.5) for k in range(48 * 6)]
    assert load_share(runs, samples) < 0.1


def test_without_evidence_the_share_is_the_prior() -> None:
    run = [("", 0.0, 600.0, 2.0)]
    assert load_share([], [("", 0.0, 1.0), ("", 60.0, 1.0)]) == PRIOR_SHARE
    assert load_share(run, [("", 300.0, 1.0)]) == PRIOR_SHARE  # one snapshot: no pair
    assert load_share(run, [("", -GAP_S - 1, 0.0), ("", 300.0, 2.0)]) == PRIOR_SHARE  # far


def test_a_run_counts_strictly_inside_it_and_few_pairs_lean_on_the_prior() -> None:
    """Snapshots at a run's start and end do not show it: no change in cores between
    them, so only the prior speaks. One pair that does (4 cores, load up by 0) gives
    (0 + 1) / (16 + 1)."""
    run = [("", 0.0, 600.0, 4.0)]
    assert load_share(run, [("", 0.0, 1.0), ("", 600.0, 1.0)]) == PRIOR_SHARE
    assert load_share(run, [("", 0.0, 1.0), ("", 300.0, 1.0)]) == round(1 / 17, 4)


def test_the_share_is_clipped_to_zero_and_one() -> None:
    up, down = _world(3.0, 1), _world(-2.0, 1)
    assert load_share(*up) == 1.0 and load_share(*down) == 0.0


def test_one_sample_per_instant_the_last() -> None:
    run = [("", 0.0, 600.0, 4.0)]
    one = load_share(run, [("", 0.0, 1.0), ("", 300.0, 5.0)])
    assert load_share(run, [("", 0.0, 9.0), ("", 0.0, 1.0), ("", 300.0, 5.0)]) == one == 1.0


def test_a_fleets_hosts_are_paired_and_counted_apart() -> None:
    """Two hosts' snapshots interleave in a fleet's history: web-1's jobs load web-1
    (share 1), db-1's do not show in db-1's load (share 0), so the pooled share is
    between, weighted by each host's evidence; pairing across hosts would read one
    machine's load against the other's runs."""
    web, db = _world(1.0, 3, host="web-1"), _world(0.0, 4, host="db-1")
    both = load_share(web[0] + db[0], web[1] + db[1])
    assert load_share(*web) == pytest.approx(1.0, abs=0.05)
    assert load_share(*db) == pytest.approx(0.0, abs=0.05)
    assert 0.3 < both < 0.7
    shifted = [(h, t + 300.0, y) for h, t, y in db[1]]  # db-1 samples between web-1's
    assert load_share(web[0] + db[0], web[1] + shifted) == pytest.approx(both, abs=0.05)
    blind = [[("", *rest) for _, *rest in part] for part in (web[0] + db[0], web[1] + shifted)]
    assert abs(load_share(*blind) - both) > 0.1  # one machine's load against both's runs
    assert (host_of("web-1/backup"), host_of("backup"), host_of("a/b/c")) == ("web-1", "", "a")
