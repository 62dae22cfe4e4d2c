"""The model's advice (SPEC 5): the start of least expected cost in the window.

`SmartAdvisor` is the gate's `Advisor` in smart mode, over a `model.LoadedModel`; job
statistics come from a `StatsReader` (the daemon's history, or outcomes in memory in the
simulator). Like model.py: numpy and onnxruntime only, never pandas or scikit-learn.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from itertools import takewhile
from typing import Any

import numpy as np

from smartcron.ai.jobstats import HistoryStats, MemoryStats, StatsReader
from smartcron.ai.model import LoadedModel, ModelFailure, ModelUnavailable, load_model
from smartcron.ai.plan import Commitments, Costs, cores_of, expected_cost, expected_costs
from smartcron.ai.scoring import Scorer, Scores, Window, quiet_picks
from smartcron.ai.waiting import Wait, away_plan, held_back, quiet_chance, quiet_plan
from smartcron.errors import SmartcronError

# ------------------------------------------------------------------ the advisor


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The slots a decision scores and how sure a later one must be (see SmartAdvisor).
    Chosen on the training scenarios only (docs/ai.md)."""

    step: timedelta = timedelta(minutes=10)  # candidate slots, now + k * step, at most this
    min_step: timedelta = timedelta(minutes=1)  # and at least this
    per_window: int = 12  # a short window still gets about this many candidates
    max_slots: int = 72
    # A slot must leave this many predicted runtimes before the deadline. 0: a window
    # bounds the start, not the end (as cron's, and the oracle's); 1.5 (the first design)
    # left a 17-minute window of a 10-minute job two minutes to choose from.
    runtime_factor: float = 0.0
    retry_room: bool = True  # and, for a job with retries, one retry_delay more
    recheck: timedelta | None = timedelta(minutes=1)  # a deferred firing is re-planned
    # A later slot must be cheaper by margin x fail_cost plus uncertainty x the spread the
    # user's unknown state puts on its P(success). Both 0 by default: on the development
    # seeds every margin tried cost more than it saved (docs/ai.md), since the minute
    # re-planning already takes back a deferral that stops paying.
    margin: float = 0.0
    uncertainty: float = 0.0
    # The most P(success) a later start may give up against now's for less interference
    # (a slot or waiting plan below now's by more is not a candidate). Each such trade
    # pays in the model's estimates; on the development seeds the trades past this
    # lost runs to the rules' fixed start on some machines (docs/ai.md, round 20).
    max_loss: float | None = 0.25
    # An away user counts as gone only after this much idle (partly before); 600, not 300:
    # a pause no longer starts a heavy job into the user's load (docs/ai.md, round 3)
    settle_s: float = 600.0
    default_cores: float = 1.0  # a job whose CPU use is not known yet
    plan: bool = True  # count the other smart runs (plan.Commitments); False: each alone
    # The quiet-minute plans: how far below the forecast (in the departures' standard
    # deviations) a minute must be; one plan each (docs/ai.md, the second round).
    quiet_depths: tuple[float, ...] = (1.0,)
    # Optimal stopping when now is hopeless: a start the model gives less than this
    # P(success) is not taken while a later slot leaves time, even if no later slot is
    # scored better (the forecast of a later slot regresses toward the hour's level and
    # cannot see a burst end); re-planned each minute, the firing runs at the first
    # minute that reaches it, or at the last slot (docs/ai.md, round 29).
    hopeless: float = 0.3

    def step_for(self, left: timedelta) -> timedelta:
        """The slot spacing for `left` time to the deadline: left / per_window, in whole
        minutes, between min_step and step."""
        minutes = int(left.total_seconds() // 60 // self.per_window)
        return max(self.min_step, min(self.step, timedelta(minutes=minutes)))


MINUTE = timedelta(minutes=1)


def hour_starts(after: datetime, before: datetime, tz: tzinfo) -> list[datetime]:
    """The first minutes of the clock hours (in `tz`) strictly between two instants."""
    local = after.astimezone(tz)
    at = after + timedelta(minutes=60 - local.minute, seconds=-local.second)
    out = []
    while at < before:
        out.append(at)
        at += timedelta(hours=1)
    return out


class SmartAdvisor:
    """gate.Advisor: the start that minimises the expected cost over the window.

    Slots: now and every `Policy.step_for(deadline - now)`, each clock hour's first
    minute and the window's last (`_slots`), that still leave the planned runtime (and a
    retry's delay) before the deadline. With a profile in the card, a
    slot's state is `features.forecast`: load, CPU and RAM at their hour-of-week and
    minute-of-hour level plus today's departure from it, decaying with the lead time;
    the user active with P(active), so the slot is scored twice (active, away) and
    P(success) and the runtime are mixed by that probability. The load of the other
    smart runs started or planned (`plan.Commitments`) is added to the slots they
    overlap: the plan is machine-wide. Each slot's expected cost is `plan.expected_costs`;
    the firing waits only for a slot cheaper than now by `margin` x fail_cost plus
    `uncertainty` x the spread the user's unknown state puts on that slot's cost.
    Waiting is re-planned every `recheck` from fresh data (optimal stopping with a
    rolling horizon): a deferral is never a promise, and a firing that waits runs as soon
    as now is the best it will get. An away user counts as gone gradually, over
    `settle_s` of idle, so a one-minute blip does not start a job by itself.
    """

    def __init__(self, model: LoadedModel, history: StatsReader, policy: Policy | None = None):
        self.model, self.history, self.policy = model, history, policy or Policy()
        self.failures = 0  # inferences that failed (fallback to the rules)
        self.last_error: str | None = None
        self.commitments = Commitments()

    def _failed(self, err: ModelFailure) -> Any:
        from smartcron.smart.gate import Verdict

        self.failures += 1
        self.last_error = str(err)
        return Verdict(action="run", until=None, reason=f"constraints hold (model: {err})")

    def _slots(self, firing: Any, spec: Any, now: datetime) -> list[datetime]:
        """The grid, with the first minute of each clock hour the window reaches and its
        last minute: a job's failures may change with the hour (the model learns its
        hours), and a coarse grid steps over an hour the window reaches only at its end
        (dev seed 10's virus_scan: due 12:30, fails at 12-13, window to 14:01)."""
        step = self.policy.step_for(firing.deadline - now)
        every = (now + k * step for k in range(self.policy.max_slots + 1))  # step > 0
        grid = list(takewhile(lambda s: s < firing.deadline, every)) or [now]
        edges = [firing.deadline - MINUTE, *hour_starts(now, firing.deadline, self.model.tz)]
        return sorted({*grid, *(e for e in edges if now < e < firing.deadline)})

    def advise(self, firing: Any, spec: Any, snap: Any, now: datetime) -> Any:
        from smartcron.smart.gate import Verdict

        pol, key = self.policy, (firing.job_id, firing.nominal, firing.attempt)
        stats = self.history.stats(firing.job_id, now, self.model.tz)
        cores = cores_of(stats, pol.default_cores)
        slots = self._slots(firing, spec, now)
        # the background: what was measured, less the other runs going (added per slot)
        extra = np.zeros((len(slots), 3))  # load1, load5, load15 per slot
        starting = np.zeros(len(slots))  # cores of the runs starting in the slot's minute
        if pol.plan:
            self.commitments.prune(now)
            extra, starting = self.commitments.loads(now, slots, key, self.model.load_share)
        costs, room = Costs.of(spec), _room(spec, pol)
        scorer = Scorer(self.model, pol.settle_s, pol.quiet_depths)
        bound = self._last(slots, None, firing.deadline, room)  # the room alone
        try:  # the quiet-minute plan's rows in the same inference (one ONNX call)
            quiet_at = self._quiet_at(bound)
            plan = (extra, starting)
            sc = scorer.score(snap, stats, firing.nominal, slots, plan, firing.job_id, quiet_at)
            last = bound
            if pol.runtime_factor:  # planned runtimes may end the window sooner
                last = self._last(slots, sc.runtime, firing.deadline, room)
            if idle := getattr(spec, "idle", None):  # a later slot is held back by the user
                sc = held_back(sc, self.model.profile, slots, last, idle.total_seconds())
            w = Window(snap, stats, firing.nominal, slots, plan, sc, last, firing.job_id)
            waits = self._waits(w, scorer)
        except ModelFailure as err:
            return self._failed(err)
        delay_h = [(s - firing.nominal).total_seconds() / 3600.0 for s in slots]
        cost = expected_costs(sc.p, sc.runtime, sc.a, delay_h, cores, costs)
        bar = float(cost[0]) - pol.margin * costs.fail
        best, best_cost = 0, float(cost[0])
        floor = -math.inf if pol.max_loss is None else float(sc.p[0]) - pol.max_loss
        barred = False  # a cheaper slot that max_loss kept from being chosen
        for k in range(1, last + 1):
            if float(sc.p[k]) < floor:
                barred = barred or float(cost[k]) < float(cost[0])
                continue
            doubted = float(cost[k]) + self._doubt(sc, k, costs, cores)
            if doubted < min(bar, best_cost):
                best, best_cost = k, doubted
        p_best, a_best, rt_best = _slot(sc, best)
        until, when = slots[best], f"at {slots[best].astimezone(self.model.tz):%H:%M}"
        for wait in waits:  # run at the first good minute: valued at the last slot's delay
            p, rt, a = (float(v) for v in (wait.p, wait.runtime, wait.a))  # not float32
            c = expected_cost(p, rt, a, delay_h[last], cores, costs)
            if p >= floor and c < min(bar, best_cost):
                best, best_cost, p_best, a_best, rt_best = last, c, *_pa(wait)
                until = slots[last]
                when = f"{wait.when}, by {until.astimezone(self.model.tz):%H:%M}"
        if best == 0 and last and float(sc.p[0]) < pol.hopeless:
            best, best_cost, until = last, float(cost[last]), slots[last]
            p_best, a_best, rt_best = _slot(sc, last)
            when = f"by {until.astimezone(self.model.tz):%H:%M} (now below {pol.hopeless:.2f})"
        outputs = _outputs(sc, len(slots)) | {"cost_now": round(float(cost[0]), 4)}
        if best == 0:
            self.commitments.commit(key, now, float(sc.runtime[0]), cores)
            capped = f" of those giving up at most {pol.max_loss:.2f} of success" if barred else ""
            reason = (
                f"constraints hold (model: success {sc.p[0]:.2f} now, runtime"
                f" ~{_mins(sc.runtime[0])}, cost {cost[0]:.2f} now is the lowest"
                f"{capped})"
            )
            return Verdict(action="run", until=None, reason=reason, model=outputs)
        self.commitments.commit(key, until, rt_best, cores)
        outputs |= {
            "best_p_success": round(p_best, 4),
            "best_p_active": round(a_best, 4),
            "best_cost": round(best_cost, 4),
        }
        reason = (
            f"model: success {sc.p[0]:.2f} now vs {p_best:.2f} {when} (runtime"
            f" ~{_mins(rt_best)}, user active {sc.a[0]:.2f} vs {a_best:.2f},"
            f" cost {cost[0]:.2f} vs {best_cost:.2f})"
        )
        if pol.recheck is not None:
            until = min(until, now + pol.recheck)
        return Verdict(action="defer", until=until, reason=reason, model=outputs)

    def plan_start(self, firing: Any, at: datetime) -> None:
        """A start decided elsewhere (an explored firing, explore.Explorer): in the plan the
        other firings see, for the job's mean runtime, as the advisor's own starts are."""
        if not self.policy.plan:
            return
        stats = self.history.stats(firing.job_id, at, self.model.tz)
        runtime = stats.mean_runtime_s or self.policy.step.total_seconds()
        key = (firing.job_id, firing.nominal, firing.attempt)
        self.commitments.commit(key, at, float(runtime), cores_of(stats, self.policy.default_cores))

    def _last(
        self, slots: list[datetime], runtime: np.ndarray | None, deadline: datetime, room: timedelta
    ) -> int:
        """The last slot that leaves the planned runtime (and `room`) before the deadline
        (`runtime` None: the room only, an upper bound before the model is asked)."""
        last, factor = 0, self.policy.runtime_factor
        for k in range(1, len(slots)):
            planned = 0.0 if runtime is None else float(runtime[k]) * factor
            if slots[k] + timedelta(seconds=planned) + room > deadline:
                break
            last = k
        return last

    def _quiet_at(self, bound: int) -> tuple[int, ...]:
        """Where the quiet-minute plan will be scored, if it will (see `_waits`): its
        slots for `bound`, the last slot the room leaves, which is the last slot unless
        planned runtimes cut the window (runtime_factor > 0: then `Scorer.quiet` asks
        again)."""
        profile = self.model.profile
        if self.policy.recheck is None or profile is None or not profile.spread:
            return ()
        return quiet_picks(bound) if bound else ()

    def _waits(self, w: Window, scorer: Scorer) -> list[Wait]:
        """The waiting plans (smartcron.ai.waiting) worth weighing: minute re-checks on,
        a profile in the card, and a later slot that leaves time to finish."""
        snap, slots, sc, last = w.snap, w.slots, w.sc, w.last
        profile, tz = self.model.profile, self.model.tz
        if not last or self.policy.recheck is None or profile is None:
            return []
        if sc.away is None or sc.busy is None:
            return []
        out = []
        scores = (sc.away[:last], sc.busy[:last], sc.runtime[1 : last + 1])
        away = away_plan(profile, tz, snap, slots[0], slots[last], scores, self.policy.settle_s)
        if away is not None:
            out.append(away)
        if profile.spread:
            out += self._quiet(w, scorer)
        return out

    def _quiet(self, w: Window, scorer: Scorer) -> list[Wait]:
        """A quiet-minute plan per depth of `Policy.quiet_depths` (standard deviations of
        the departures below the forecast; a minute that deep comes with probability
        Phi(-z)), scored with the window (`Scorer.quiet`)."""
        slots, sc, last, depths = w.slots, w.sc, w.last, self.policy.quiet_depths
        profile, forecasts = self.model.profile, sc.forecasts
        assert profile is not None and forecasts is not None
        picks = quiet_picks(last)
        p_raw = scorer.quiet(w, picks)
        shares = [forecasts.values(slots[k])[3] for k in picks]
        weight = np.asarray(shares)[:, None]
        p_quiet = _mean(weight * p_raw[:, :, 0] + (1 - weight) * p_raw[:, :, 1])
        minutes = (slots[last] - slots[0]).total_seconds() / 60.0
        a_mean = float(_mean(np.asarray(sc.a[1 : last + 1])))
        runtime = float(_mean(sc.runtime[1 : last + 1]))
        out = []
        for z, p in zip(depths, p_quiet, strict=True):
            chance = quiet_chance(profile, minutes, 0.5 * math.erfc(z / math.sqrt(2.0)))
            out.append(quiet_plan(chance, float(p), float(sc.p[last]), a_mean, runtime))
        return out

    def _doubt(self, sc: Scores, k: int, costs: Costs, cores: float) -> float:
        """How much the unknown user state spreads slot k's cost: the standard deviation
        of P(success) between the active and away forecasts, times `uncertainty`."""
        if not self.policy.uncertainty or sc.busy is None or sc.away is None or k == 0:
            return 0.0
        q = self._q(sc, k)
        spread = abs(float(sc.busy[k - 1]) - float(sc.away[k - 1])) * math.sqrt(q * (1.0 - q))
        return self.policy.uncertainty * spread * costs.fail

    @staticmethod
    def _q(sc: Scores, k: int) -> float:
        return min(1.0, max(0.0, sc.a[k]))


def _mean(values: np.ndarray) -> Any:
    """np.mean over the first axis, the same floats without its generic checks (a
    decision takes three means of a dozen values)."""
    return np.add.reduce(values, axis=0) / len(values)


def _pa(wait: Wait) -> tuple[float, float, float]:
    return wait.p, wait.a, wait.runtime


def _slot(sc: Scores, k: int) -> tuple[float, float, float]:
    """Slot k's P(success), P(active) and runtime, as a chosen start reports them."""
    return float(sc.p[k]), sc.a[k], float(sc.runtime[k])


def _room(spec: Any, pol: Policy) -> timedelta:
    """What a slot must leave before the deadline beyond the planned runtime."""
    retries = getattr(spec, "retry", 0) or 0
    margin = getattr(spec, "retry_delay", None) if pol.retry_room and retries else None
    return margin or timedelta(0)


def _outputs(sc: Scores, slots: int) -> dict[str, float]:
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
