"""How much of a run's CPU this machine's measured load shows (issue 13, 25th round).

The plan (plan.Commitments) adds the load of other smart runs to a slot's state, and a
training row adds that of the runs started beside it in the same wake-up: the world
judges a start by a load that includes them. That is right where jobs load the machine
and wrong where they do not (a job waiting on the network, a machine whose load the
jobs do not move): the ninth round found both (dev seed 9: 258 -> 318 not done).
So the history decides. Between two decision snapshots a few minutes apart, the load1
they measured moves by the background's drift plus share x the change in the cores of
the runs going (runs.cpu_s / runs.runtime_s); the least-squares slope of the first over
the second is the share. Differences, not levels: a level regression is confounded by
when jobs run (busy hours), a difference over minutes is not (dev seeds 1-20, job load
on: 0.93-1.03, off: -0.04 to 0.16; levels gave 0.55-2.3 and -0.2 to 2.3).

Few pairs leave it near PRIOR_SHARE (1: a running process counts in Linux's load
average, kernel/sched/loadavg.c), and it is clipped to [0, 1]. Pure numpy, no pandas.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

GAP_S = 15 * 60.0  # snapshots further apart than this are not paired (the background drifts)
PRIOR_SHARE = 1.0
PRIOR_WEIGHT = 1.0  # squared cores of pseudo-evidence for PRIOR_SHARE


def load_share(
    runs: Iterable[tuple[str, float, float, float]], samples: Iterable[tuple[str, float, float]]
) -> float:
    """The share of a run's cores that shows in load1, to 4 decimals: `runs` are (host,
    start, end, cores), `samples` (host, instant, load1) from the decisions' snapshots,
    instants in epoch seconds (one sample per host and instant: the last). Snapshots are
    paired, and runs counted, within a host only (a fleet's history: `host_of`). A run
    counts at an instant strictly inside it: a snapshot taken as a run starts does not
    show it yet (its wake-up's own), nor one taken as it ends."""
    spans: dict[str, list[tuple[float, float, float]]] = {}
    for host, start, end, cores in runs:
        spans.setdefault(host, []).append((start, end, cores))
    seen: dict[str, dict[float, float]] = {}
    for host, at, load in samples:
        seen.setdefault(host, {})[at] = load
    moved = weight = 0.0
    for host, loads in seen.items():
        dy, dg = _pairs(spans.get(host, []), loads)
        moved, weight = moved + float(dy @ dg), weight + float(dg @ dg)
    share = (moved + PRIOR_WEIGHT * PRIOR_SHARE) / (weight + PRIOR_WEIGHT)
    return round(min(1.0, max(0.0, share)), 4)


def host_of(job_id: str) -> str:
    """The host of a job id: a fleet's history prefixes them (``web-1/backup``); a job id
    of one machine has no '/' (names are letters, digits, '_', '.' and '-')."""
    return job_id.split("/", 1)[0] if "/" in job_id else ""


def _pairs(
    spans: list[tuple[float, float, float]], loads: dict[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The changes in load1 and in the cores going between snapshots at most GAP_S apart."""
    t = np.asarray(sorted(loads), np.float64)
    y = np.asarray([loads[x] for x in sorted(loads)], np.float64)
    if len(t) < 2 or not spans:
        return np.zeros(0), np.zeros(0)
    start, end, cores = np.asarray(spans, np.float64).T
    by_start, by_end = np.argsort(start), np.argsort(end)
    began = np.concatenate([[0.0], np.cumsum(cores[by_start])])
    ended = np.concatenate([[0.0], np.cumsum(cores[by_end])])
    going = (
        began[np.searchsorted(start[by_start], t, "left")]
        - ended[np.searchsorted(end[by_end], t, "right")]
    )
    near = np.diff(t) <= GAP_S
    return np.diff(y)[near], np.diff(going)[near]
