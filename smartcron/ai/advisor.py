"""The model's advice (SPEC 5): when a later slot of the window is clearly better.

`SmartAdvisor` is the gate's `Advisor` in smart mode, over a `model.LoadedModel`; job
statistics come from a `StatsReader` (the daemon's history, or outcomes in memory in the
simulator). Like model.py: numpy and onnxruntime only, never pandas or scikit-learn.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np

from smartcron.ai.features import (
    JobHistoryStats,
    RunOutcome,
    features,
    forecast,
    hour_of_week,
    job_stats,
    p_active_at,
)
from smartcron.ai.model import (
    ACTIVE_IDLE_BELOW,
    LoadedModel,
    ModelFailure,
    ModelUnavailable,
    load_model,
)
from smartcron.errors import SmartcronError

# ------------------------------------------------------------------ job history


class StatsReader(Protocol):
    """A job's record before an instant (strictly: runs that ended earlier)."""

    def stats(self, job_id: str, before: datetime) -> JobHistoryStats: ...


class HistoryStats:
    """JobHistoryStats from a HistoryStore (the daemon's)."""

    def __init__(self, store: Any, window: int = 10) -> None:
        self.store, self.window = store, window

    def stats(self, job_id: str, before: datetime) -> JobHistoryStats:
        outcomes = []
        for row in self.store.runs(job_id, limit=self.window * 3):
            end = row.end
            if end is None or row.status.value not in ("ok", "failed", "timeout"):
                continue
            ok = row.status.value == "ok" and end.exit_code == 0 and not end.timed_out
            outcomes.append(RunOutcome(ended=end.ended, ok=ok, runtime_s=end.runtime_s))
        outcomes.sort(key=lambda o: o.ended)
        return job_stats(outcomes, before, self.window)


class MemoryStats:
    """JobHistoryStats from outcomes given as they happen (the simulator, tests)."""

    def __init__(self) -> None:
        self._runs: dict[str, list[RunOutcome]] = {}

    def add(self, job_id: str, outcome: RunOutcome) -> None:
        runs = self._runs.setdefault(job_id, [])
        runs.append(outcome)
        if len(runs) > 1 and runs[-2].ended > outcome.ended:
            runs.sort(key=lambda o: o.ended)

    def stats(self, job_id: str, before: datetime) -> JobHistoryStats:
        return job_stats(self._runs.get(job_id, []), before)


# ------------------------------------------------------------------ the advisor

MAX_PLANS = 1024  # deferred firings remembered at once (then the stale ones are dropped)


@dataclass(frozen=True, slots=True)
class _Scores:
    """A window's slots scored: P(success), runtime (s) and P(active) mixed over the
    user's state; with a profile, also P(success) if active (`busy`) or `away` then
    (later slots only)."""

    p: np.ndarray
    runtime: np.ndarray
    a: list[float]
    busy: np.ndarray | None = None
    away: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """The slot a deferred firing waits for, and how it scored."""

    until: datetime
    p_success: float
    p_active: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """When a later slot is "clearly better" (see SmartAdvisor)."""

    step: timedelta = timedelta(minutes=10)  # candidate slots, now + k * step, at most this
    min_step: timedelta = timedelta(minutes=1)  # and at least this
    per_window: int = 12  # a short window still gets about this many candidates
    max_slots: int = 72
    min_gain: float = 0.05  # P(success) gain that justifies waiting
    min_quieter: float = 0.3  # P(user active) drop that justifies waiting
    tolerance: float = 0.01  # how much worse the other quantity may get
    runtime_factor: float = 1.5  # the runtime we plan for, over the predicted one
    retry_room: bool = True  # and, for a job with retries, one retry_delay more
    recheck: timedelta | None = timedelta(minutes=1)  # a deferred firing's re-scoring

    def step_for(self, left: timedelta) -> timedelta:
        """The slot spacing for `left` time to the deadline: left / per_window, in whole
        minutes, between min_step and step."""
        minutes = int(left.total_seconds() // 60 // self.per_window)
        return max(self.min_step, min(self.step, timedelta(minutes=minutes)))


class SmartAdvisor:
    """gate.Advisor: scores now and the rest of the window, defers only to a clearly
    better slot that still leaves time to finish before the deadline.

    Slots: now and every `Policy.step_for(deadline - now)`. With a profile in the card, a
    slot's state is `features.forecast`: load, CPU and RAM at their hour-of-week and
    minute-of-hour level plus today's departure from it, decaying with the lead time;
    the user active with P(active) (the hour-of-week share plus the current departure,
    decaying), so the slot is scored twice (active, away) and P(success) and the runtime
    are mixed by that probability; P(active) at the run's midpoint is its chance of
    disturbing the user. Without a profile (older cards) a slot is the current snapshot
    with the clock moved, and P(active) the hour-of-week share (1 now if active now).
    A slot is clearly better when P(success) gains `min_gain` without more
    interference, or P(active) drops `min_quieter` without less success; among those the
    best P(success) - P(active), earliest on ties.

    A deferred firing is not left alone until its slot: every `Policy.recheck` it is
    scored now, and runs at once when now is as good as the slot it waits for on both
    counts, P(success) and P(active) within `tolerance` (the user left the keyboard, a
    build ended: what no forecast saw coming). Those plans live in memory only; a firing
    without one (after a restart) is planned afresh.
    """

    def __init__(self, model: LoadedModel, history: StatsReader, policy: Policy | None = None):
        self.model, self.history, self.policy = model, history, policy or Policy()
        self.failures = 0  # inferences that failed (fallback to the rules)
        self.last_error: str | None = None
        self._plans: dict[tuple[str, datetime, int], _Plan] = {}

    def _active(self, at: datetime, runtime_s: float) -> float:
        mid = at + timedelta(seconds=runtime_s / 2)
        return float(self.model.active[hour_of_week(mid, self.model.tz)])

    def _score(
        self, snap: Any, stats: JobHistoryStats, nominal: datetime, slots: list[datetime]
    ) -> _Scores:
        """P(success), runtime (s) and P(user active during the run) per slot."""
        tz, profile = self.model.tz, self.model.profile
        rows = [features(snap, stats, nominal, slots[0], tz=tz)]
        if profile is None:
            rows += [features(snap, stats, nominal, s, tz=tz) for s in slots[1:]]
            p, runtime = self.model.predict(np.asarray(rows))
            active_now = snap.idle_seconds is not None and snap.idle_seconds < ACTIVE_IDLE_BELOW
            a = [1.0 if active_now else self._active(slots[0], runtime[0])]
            a += [self._active(s, r) for s, r in zip(slots[1:], runtime[1:], strict=True)]
            return _Scores(p, runtime, a)
        q = [0.0]
        for slot in slots[1:]:
            busy, away, share = forecast(snap, profile, slot, tz)
            rows += [features(busy, stats, nominal, slot, tz=tz)]
            rows += [features(away, stats, nominal, slot, tz=tz)]
            q.append(share)
        p_raw, rt_raw = self.model.predict(np.asarray(rows))
        w = np.asarray(q[1:])
        p = np.concatenate([p_raw[:1], w * p_raw[1::2] + (1 - w) * p_raw[2::2]])
        runtime = np.concatenate([rt_raw[:1], w * rt_raw[1::2] + (1 - w) * rt_raw[2::2]])
        half = [timedelta(seconds=float(r) / 2) for r in runtime]
        a = [p_active_at(profile, snap, s + h, tz) for s, h in zip(slots, half, strict=True)]
        return _Scores(p, runtime, a, busy=p_raw[1::2], away=p_raw[2::2])

    def _until_away(
        self, snap: Any, now: datetime, last: datetime, sc: _Scores, k: int
    ) -> tuple[float, float] | None:
        """Waiting for the user to step away, with a re-check each minute: the firing runs
        at the first away minute before `last` (the last slot, `k`, that leaves time to
        finish), else at `last`. The user active now, it leaves within the h minutes with
        probability 1 - exp(-(1 - q) h / tau) (a two-state Markov chain with the hour's
        share q active and the learnt persistence tau). (P(success), P(active)) or None."""
        profile = self.model.profile
        if profile is None or sc.away is None or sc.busy is None or snap.idle_seconds is None:
            return None
        tau, q = profile.tau_min["active"], profile.p_active(now, self.model.tz)
        if snap.idle_seconds >= profile.idle_below or tau <= 0 or q >= 1:
            return None
        h = (last - now).total_seconds() / 60.0
        leave = 1.0 - math.exp(-(1.0 - q) * h / tau)
        p_away = float(np.mean(sc.away[:k]))  # in the state forecast for those slots
        half = float(np.mean(sc.runtime[1 : k + 1])) / 120.0
        a_away = q * (1.0 - math.exp(-half / tau))  # away at the start, back by mid-run?
        p = leave * p_away + (1.0 - leave) * float(sc.busy[k - 1])
        return p, leave * a_away + (1.0 - leave)

    def _failed(self, err: ModelFailure) -> Any:
        from smartcron.smart.gate import Verdict

        self.failures += 1
        self.last_error = str(err)
        return Verdict(action="run", until=None, reason=f"constraints hold (model: {err})")

    def _recheck(self, firing: Any, plan: _Plan, snap: Any, now: datetime) -> Any:
        """Run now if now scores at least as well as the planned slot, else wait on."""
        from smartcron.smart.gate import Verdict

        stats = self.history.stats(firing.job_id, now)
        try:
            sc = self._score(snap, stats, firing.nominal, [now])
        except ModelFailure as err:
            return self._failed(err)
        p, a = sc.p, sc.a
        at = plan.until.astimezone(self.model.tz).strftime("%H:%M")
        outputs = _outputs(sc, 1) | {
            "best_p_success": round(plan.p_success, 4),
            "best_p_active": round(plan.p_active, 4),
        }
        versus = (
            f"success {p[0]:.2f} now vs {plan.p_success:.2f} at {at},"
            f" user active {a[0]:.2f} vs {plan.p_active:.2f}"
        )
        tol = self.policy.tolerance
        if p[0] >= plan.p_success - tol and a[0] <= plan.p_active + tol:
            reason = f"constraints hold (model: now as good as the {at} slot: {versus})"
            return Verdict(action="run", until=None, reason=reason, model=outputs)
        self._keep(firing, plan, now)
        assert self.policy.recheck is not None
        until = min(now + self.policy.recheck, plan.until)
        expected = f"success {plan.p_success:.2f}, user active {plan.p_active:.2f} expected then"
        reason = f"model: waiting for {at} ({expected})"  # the same each minute: explain folds it
        return Verdict(action="defer", until=until, reason=reason, model=outputs)

    def _keep(self, firing: Any, plan: _Plan, now: datetime) -> None:
        if len(self._plans) >= MAX_PLANS:  # firings that ran or vanished meanwhile
            self._plans = {k: v for k, v in self._plans.items() if v.until > now}
        self._plans[firing.job_id, firing.nominal, firing.attempt] = plan

    def advise(self, firing: Any, spec: Any, snap: Any, now: datetime) -> Any:
        from smartcron.smart.gate import Verdict

        pol, tz = self.policy, self.model.tz
        plan = self._plans.pop((firing.job_id, firing.nominal, firing.attempt), None)
        if plan is not None and now < plan.until and pol.recheck is not None:
            return self._recheck(firing, plan, snap, now)
        stats = self.history.stats(firing.job_id, now)
        step = pol.step_for(firing.deadline - now)
        retries = getattr(spec, "retry", 0) or 0
        margin = getattr(spec, "retry_delay", None) if pol.retry_room and retries else None
        margin = margin or timedelta(0)
        slots = [now + k * step for k in range(pol.max_slots + 1)]
        slots = [s for s in slots if s < firing.deadline] or [now]
        try:
            sc = self._score(snap, stats, firing.nominal, slots)
        except ModelFailure as err:
            return self._failed(err)
        p, runtime, a = sc.p, sc.runtime, sc.a

        def better(p_k: float, a_k: float) -> bool:
            gain, quieter = p_k - p[0], a[0] - a_k
            return (gain >= pol.min_gain and quieter >= -pol.tolerance) or (
                quieter >= pol.min_quieter and gain >= -pol.tolerance
            )

        best, last = 0, 0
        for k in range(1, len(slots)):
            need = timedelta(seconds=float(runtime[k]) * pol.runtime_factor) + margin
            if slots[k] + need > firing.deadline:
                break
            last = k
            if better(p[k], a[k]) and p[k] - a[k] > p[best] - a[best] + 1e-9:
                best = k
        outputs = _outputs(sc, len(slots))
        p_best, a_best, until = float(p[best]), a[best], slots[best]
        wait = self._until_away(snap, now, slots[last], sc, last) if last else None
        if pol.recheck is not None and wait is not None and better(*wait):
            if wait[0] - wait[1] > p_best - a_best + 1e-9:
                best, (p_best, a_best), until = last, wait, slots[last]
        else:
            wait = None
        if best == 0:
            reason = (
                f"constraints hold (model: success {p[0]:.2f} now, runtime ~{_mins(runtime[0])})"
            )
            return Verdict(action="run", until=None, reason=reason, model=outputs)
        outputs |= {"best_p_success": round(p_best, 4), "best_p_active": round(a_best, 4)}
        at = until.astimezone(tz).strftime("%H:%M")
        when = f"when the user steps away, by {at}" if wait else f"at {at}"
        reason = (
            f"model: success {p[0]:.2f} now vs {p_best:.2f} {when} (runtime"
            f" ~{_mins(runtime[best])}, user active {a[0]:.2f} vs {a_best:.2f})"
        )
        if pol.recheck is not None:
            self._keep(firing, _Plan(until, p_best, a_best), now)
            until = min(until, now + pol.recheck)
        return Verdict(action="defer", until=until, reason=reason, model=outputs)


def _outputs(sc: _Scores, slots: int) -> dict[str, float]:
    """What a decision records of the model's view of now."""
    return {
        "p_success": round(float(sc.p[0]), 4),
        "runtime_s": round(float(sc.runtime[0]), 1),
        "p_active": round(sc.a[0], 4),
        "slots": float(slots),
    }


def _mins(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))}m"


class ModelError(SmartcronError):
    """A model the caller asked for explicitly cannot be used (the message says why)."""


def load_advisor(
    directory: str | os.PathLike[str],
    history: str | os.PathLike[str] | StatsReader | None = None,
    *,
    owner_uid: int | None = None,
    **options: Any,
) -> SmartAdvisor:
    """A SmartAdvisor over the model in `directory`; job stats from `history` (a history
    database path, read-only, or any StatsReader; None: no job history, neutral stats).
    Raises ModelError naming why the model is unusable."""
    uid = os.geteuid() if owner_uid is None else owner_uid
    model = load_model(directory, owner_uid=uid, **options)
    if isinstance(model, ModelUnavailable):
        raise ModelError(f"model {directory}: {model.reason}")
    reader: StatsReader
    if history is None:
        reader = MemoryStats()
    elif isinstance(history, str | os.PathLike):
        from smartcron.store.history import HistoryStore

        reader = HistoryStats(HistoryStore.open(history, readonly=True))
    else:
        reader = history
    return SmartAdvisor(model, reader)
