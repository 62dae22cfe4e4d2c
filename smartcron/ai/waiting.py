"""Plans that wait for a moment rather than a slot (optimal stopping, SmartAdvisor).

A firing re-planned every minute can do better than any fixed slot: it can run at the
first good minute that comes. Two such plans compete with the fixed slots, each valued
as "the chance a good minute comes before the last slot that leaves time to finish,
times how well the job does then, plus the rest times how it does at that last slot":

* the user steps away (`away_plan`): a two-state Markov chain with the hour's share q
  of active minutes and the learnt persistence tau gives the chance they leave within
  h minutes, 1 - exp(-(1 - q) h / tau);
* a quiet minute (`quiet_plan`): load, CPU and RAM at the 16th percentile of their
  departures below the forecast (features.quieter), which a minute is with probability
  0.16; about one independent chance per persistence tau, so the chance of one within
  h minutes is 1 - 0.84^(1 + h / tau).

Chosen, either plan makes the firing wait a minute and plan again: when the good
minute comes, now is as cheap as the plan and the firing runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

import numpy as np

from smartcron.ai.features import Profile

QUIET_SHARE = 0.1587  # the quiet depth is the departures' 16th percentile


@dataclass(frozen=True, slots=True)
class Wait:
    """A waiting plan's expected P(success), P(user active), runtime (s), in words."""

    p: float
    a: float
    runtime: float
    when: str


def away_plan(
    profile: Profile | None,
    tz: tzinfo,
    snap: Any,
    now: datetime,
    last: datetime,
    scores: tuple[Sequence[float] | Any, Sequence[float] | Any, Sequence[float] | Any],
    settle_s: float,
) -> Wait | None:
    """Run at the first minute the user is away before `last`, else at `last`.

    `scores`: per later slot up to `last`, P(success) if the user is away then, if
    active then, and the runtime. None when the user is away (and settled) now."""
    away, busy, runtime = scores
    if profile is None or snap.idle_seconds is None or not len(away):
        return None
    tau, q = profile.tau_min["active"], profile.p_active(now, tz)
    if snap.idle_seconds >= max(profile.idle_below, settle_s) or tau <= 0 or q >= 1:
        return None
    h = (last - now).total_seconds() / 60.0
    leave = 1.0 - math.exp(-(1.0 - q) * h / tau)
    mean_runtime = statistics.fmean(runtime)
    a_away = q * (1.0 - math.exp(-mean_runtime / 120.0 / tau))  # back by mid-run?
    p = leave * statistics.fmean(away) + (1.0 - leave) * busy[-1]
    return Wait(p, leave * a_away + (1.0 - leave), mean_runtime, "when the user steps away")


def quiet_chance(profile: Profile, minutes: float, share: float = QUIET_SHARE) -> float:
    """The chance of at least one quiet minute within `minutes` (module notes), a minute
    being that quiet with probability `share`."""
    taus = [profile.tau_min[c] for c in profile.spread if profile.tau_min.get(c, 0) > 0]
    tau = statistics.median(taus) if taus else 1.0
    return 1.0 - (1.0 - share) ** (1.0 + max(0.0, minutes) / tau)


def quiet_plan(chance: float, p_quiet: float, p_last: float, a: float, runtime: float) -> Wait:
    """Run at the first quiet minute, else at the last slot (module notes)."""
    return Wait(chance * p_quiet + (1.0 - chance) * p_last, a, runtime, "at a quiet minute")


def held_back(
    sc: Any, profile: Profile | None, slots: Sequence[datetime], last: int, idle_s: float = 0.0
) -> Any:
    """Scores for a job with an ``idle`` constraint of `idle_s` seconds (`slots` from now).

    The gate asks the advisor only while the constraints hold, so now can always start;
    a later slot holds the start back unless the user is away then and has been for the
    constraint's time (the chain's dwell: exp(-P(active) x d / tau) for the d minutes
    beyond the model's own active threshold). A held-back start succeeds only if the user
    steps away at least d minutes before the last slot (then as away), else the gate
    starts it at the deadline against the job's own constraint (or skips it), a start the
    model has hardly seen: counted as a failure. Without this a firing left a minute the
    user had stepped away to wait for less interference, and lost it when they stayed
    (issue 13, ninth round: seed 714's mirror_repo; tenth: dev seed 15's idle=10m)."""
    if profile is None or sc.share is None or sc.away is None:
        return sc
    tau, w, away = profile.tau_min["active"], np.asarray(sc.share), np.asarray(sc.away)
    d = max(0.0, idle_s - profile.idle_below) / 60.0
    at = np.asarray([(s - slots[0]).total_seconds() / 60.0 for s in slots])
    left = np.maximum(at[last] - at[1:] - d, 0.0)  # to leave in, before the last slot
    stays: Any = 1.0  # away at the slot, and for the constraint's time
    leave: Any = 0.0
    if tau > 0:  # else no persistence was learnt: nobody is known to stay or leave
        stays = np.exp(-w * d / tau)
        leave = (1.0 - np.exp(-(1.0 - w) * left / tau)) * stays
    holds = (1.0 - w) * stays
    p = np.concatenate([sc.p[:1], away * (holds + (1.0 - holds) * leave)])
    return replace(sc, p=p, busy=np.zeros_like(away))
