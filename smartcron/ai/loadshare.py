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
    runs: Iterable[tuple[float, float, float]], samples: Iterable[tuple[float, float]]
) -> float:
    """The share of a run's cores that shows in load1, to 4 decimals: `runs` are (start,
    end, cores), `samples` (instant, load1) from the decisions' snapshots, all in epoch
    seconds (one sample per instant: the last). A run counts at an instant strictly
    inside it: a snapshot taken as a run starts does not show it yet (its wake-up's
    own), nor one taken as it ends."""
    seen = dict(samples)
    t = np.asarray(sorted(seen), np.float64)
    y = np.asarray([seen[x] for x in sorted(seen)], np.float64)
    table = np.asarray(list(runs), np.float64).reshape(-1, 3)
    if len(t) < 2 or not len(table):
        return PRIOR_SHARE
    start, end, cores = table.T
    by_start, by_end = np.argsort(start), np.argsort(end)
    began = np.concatenate([[0.0], np.cumsum(cores[by_start])])
    ended = np.concatenate([[0.0], np.cumsum(cores[by_end])])
    going = (
        began[np.searchsorted(start[by_start], t, "left")]
        - ended[np.searchsorted(end[by_end], t, "right")]
    )
    near = np.diff(t) <= GAP_S
    dy, dg = np.diff(y)[near], np.diff(going)[near]
    share = (float(dy @ dg) + PRIOR_WEIGHT * PRIOR_SHARE) / (float(dg @ dg) + PRIOR_WEIGHT)
    return round(min(1.0, max(0.0, share)), 4)
