"""The gate: pure decisions about smart firings (SPEC 5). No clock, no I/O.

`evaluate` is a pipeline of small steps, structlog-style: each step returns a Verdict
or None to pass to the next. Only the firing state machine (smartcron.smart.machine) calls
`evaluate` and `admit`; the daemon and the simulator both drive that machine.

Windows and hard constraints (`window_for`, `deadline_for`, `constraint_failures`,
`duration_text`, and how unknown readings count) live in smartcron.smart.constraints;
the gate re-exports them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from smartcron.smart.constraints import (
    constraint_failures,
    deadline_for,
    duration_text,
    window_for,
)
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

__all__ = [
    "PIPELINE",
    "RECHECK",
    "STATES",
    "Action",
    "Admission",
    "Advisor",
    "Firing",
    "Step",
    "Verdict",
    "admit",
    "constraint_failures",
    "deadline_for",
    "duration_text",
    "evaluate",
    "retry_at",
    "window_for",
]

Action = Literal["run", "defer", "skip"]
RECHECK = timedelta(minutes=1)
STATES = ("pending", "running", "done", "failed", "skipped", "missed", "interrupted")


@dataclass(frozen=True, kw_only=True, slots=True)
class Firing:
    """One firing of a smart job. `attempt`: runs already made (retries follow them);
    `not_before`: earliest start (a clock window's opening, a retry's backoff)."""

    id: int | None
    job_id: str
    nominal: datetime
    deadline: datetime
    attempt: int = 0
    not_before: datetime | None = None
    state: str = "pending"


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """run, defer (`until` set) or skip, with a plain-words reason. `failed`: the hard
    constraints that failed; `model`: the advisor's outputs, if it was asked."""

    action: Action
    until: datetime | None
    reason: str
    failed: tuple[str, ...] = ()
    model: Mapping[str, float] | None = None


class Advisor(Protocol):
    """The model's hook (smart mode): a Verdict to defer to a better slot, or None.

    The gate clamps it: an advisor can never skip a firing nor defer it past the deadline.
    """

    def advise(
        self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime
    ) -> Verdict | None: ...


# ------------------------------------------------------------------ the pipeline


@dataclass(frozen=True, kw_only=True, slots=True)
class _Case:
    firing: Firing
    spec: SmartSpec
    snap: Snapshot
    now: datetime
    recheck: timedelta
    advisor: Advisor | None
    failures: tuple[str, ...] = field(default=())


Step = Callable[[_Case], Verdict | None]


def _hhmm(instant: datetime) -> str:
    return instant.strftime("%H:%M")


def _past_deadline(case: _Case) -> Verdict | None:
    deadline = case.firing.deadline
    if case.now < deadline:
        return None
    if not case.failures:
        _tell_start(case)
        return Verdict(action="run", until=None, reason="constraints hold")
    why = "; ".join(case.failures)
    head = f"deadline {_hhmm(deadline)} reached"
    if case.spec.on_deadline == "skip":
        return Verdict(
            action="skip", until=None, reason=f"{head}: skipped: {why}", failed=case.failures
        )
    _tell_start(case)
    return Verdict(
        action="run", until=None, reason=f"{head}: running despite {why}", failed=case.failures
    )


def _tell_start(case: _Case) -> None:
    """A start the advisor did not decide (the deadline's): into its machine-wide plan
    (ai.advisor.SmartAdvisor.plan_start), so the other firings are planned around it.
    Only a hint: it never changes the verdict, and a failing advisor is ignored."""
    plan_start = getattr(case.advisor, "plan_start", None)
    if plan_start is None or not case.spec.ai:
        return
    with contextlib.suppress(Exception):  # the plan is advice; the start stands
        plan_start(case.firing, case.now)


def _not_yet(case: _Case) -> Verdict | None:
    """A clock window not open yet, or a retry's backoff."""
    start = case.firing.not_before
    if start is None or case.now >= start:
        return None
    if case.firing.attempt:
        reason = f"retry {case.firing.attempt} of {case.spec.retry} backs off until {_hhmm(start)}"
    elif case.spec.jitter:  # smartcron.smart.jitter: this host's offset into the window
        reason = f"jitter: this host starts it at {_hhmm(start)}"
    else:
        reason = f"window opens at {_hhmm(start)}"
    return Verdict(action="defer", until=start, reason=reason)


def _constraints(case: _Case) -> Verdict | None:
    if not case.failures:
        return None
    until = min(case.now + case.recheck, case.firing.deadline)
    return Verdict(
        action="defer", until=until, reason="; ".join(case.failures), failed=case.failures
    )


def _advice(case: _Case) -> Verdict | None:
    """The model may defer to a better slot inside the window; it can never lose a firing."""
    if case.advisor is None or not case.spec.ai:
        return None
    try:
        advice = case.advisor.advise(case.firing, case.spec, case.snap, case.now)
    except Exception as err:  # a failing model falls back to the rules
        return Verdict(action="run", until=None, reason=f"constraints hold (model failed: {err})")
    if advice is None:
        return None
    if advice.action == "skip":  # not the model's call: run as the rules say
        return replace(advice, action="run", until=None, reason="constraints hold")
    if advice.action == "defer":
        until = min(advice.until or case.now + case.recheck, case.firing.deadline)
        if until > case.now:
            return replace(advice, until=until)
        return replace(advice, action="run", until=None)
    return replace(advice, until=None)


def _run(case: _Case) -> Verdict | None:
    return Verdict(action="run", until=None, reason="constraints hold")


PIPELINE: tuple[Step, ...] = (_past_deadline, _not_yet, _constraints, _advice, _run)
_HOLDS = Verdict(action="run", until=None, reason="constraints hold")  # frozen: shared


def evaluate(
    firing: Firing,
    spec: SmartSpec,
    snap: Snapshot,
    now: datetime,
    *,
    recheck: timedelta = RECHECK,
    advisor: Advisor | None = None,
) -> Verdict:
    """run, defer(until, reason) or skip(reason) for `firing` at `now` (SPEC 5)."""
    now = now.astimezone(UTC)
    failures = constraint_failures(spec, snap)
    start = firing.not_before
    # The common case, the pipeline's own answer without building a _Case (a firing
    # waiting for capacity is gated again every minute): before the deadline, past
    # not_before, the constraints hold and no model is asked, so every step passes to _run.
    if (
        not failures
        and now < firing.deadline
        and (start is None or now >= start)
        and (advisor is None or not spec.ai)
    ):
        return _HOLDS
    case = _Case(
        firing=firing,
        spec=spec,
        snap=snap,
        now=now,
        recheck=recheck,
        advisor=advisor,
        failures=failures,
    )
    for step in PIPELINE:
        verdict = step(case)
        if verdict is not None:
            return verdict
    raise AssertionError("the pipeline ends with a step that always answers")


def retry_at(spec: SmartSpec, attempt: int, now: datetime) -> datetime:
    """When retry `attempt` (1 for the first) may start: exponential backoff."""
    return now.astimezone(UTC) + spec.retry_delay * 2 ** max(0, attempt - 1)


# ------------------------------------------------------------------ admission


@dataclass(frozen=True, kw_only=True, slots=True)
class Admission:
    """Which ready firings start now, wait (for capacity or a queue) or are skipped."""

    start: list[tuple[Firing, SmartSpec]]
    wait: list[tuple[Firing, SmartSpec]]
    skip: list[tuple[Firing, str]]
    why: dict[tuple[str, datetime], str] = field(default_factory=dict)  # of each waiter

    def reason_for(self, firing: Firing) -> str | None:
        """Why a waiting firing waits."""
        return self.why.get((firing.job_id, firing.nominal))


def _order(item: tuple[Firing, SmartSpec]) -> tuple[int, datetime]:
    """Priority order: higher priority first, then earlier nominal; a stable sort keeps
    ties as given (the machine's order: a job before those waiting for it, the earlier
    deadline, then crontab order, as the daemon starts a minute's plain lines)."""
    return (-item[1].priority, item[0].nominal)


def _overlap(out: Admission, firing: Firing, spec: SmartSpec, counts: Mapping[str, int]) -> bool:
    """Apply `overlap` against the job's runs going (or started here); True if it did."""
    if not counts.get(firing.job_id, 0) or spec.overlap == "allow":
        return False
    if spec.overlap == "skip":
        out.skip.append((firing, "previous run still going (overlap=skip)"))
    else:
        out.wait.append((firing, spec))
        out.why[firing.job_id, firing.nominal] = "waiting for the previous run (overlap=queue)"
    return True


def _partition(
    ranked: Sequence[tuple[Firing, SmartSpec]],
    running: Mapping[str, int],
    owner_of: Callable[[str], str],
    now: datetime | None,
) -> tuple[
    dict[str, int], list[tuple[Firing, SmartSpec]], dict[str, list[tuple[Firing, SmartSpec]]]
]:
    """(runs held by owner, firings at or past their deadline, the others queued by
    owner), each list in the order of `ranked` (priority order); every owner with a
    firing ready is in `held`."""
    held: dict[str, int] = {}
    for job_id, count in running.items():
        if count > 0:
            who = owner_of(job_id)
            held[who] = held.get(who, 0) + count
    late: list[tuple[Firing, SmartSpec]] = []
    queues: dict[str, list[tuple[Firing, SmartSpec]]] = {}
    for item in ranked:
        who = owner_of(item[0].job_id)
        held.setdefault(who, 0)
        if now is not None and now >= item[0].deadline:
            late.append(item)
        else:
            queues.setdefault(who, []).append(item)
    return held, late, queues


def admit(
    ready: Sequence[tuple[Firing, SmartSpec]],
    running: Mapping[str, int],
    running_total: int,
    max_concurrent: int,
    *,
    owners: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Admission:
    """Which ready firings start now, given the smart runs going (`running`: by job id).

    - `overlap` first: skip or queue behind the job's own run going (or started here).
    - Deadline: with `now` given, a firing at or past its deadline is not held back by
      the cap (it defers, it never cancels): on_deadline=run starts it over the cap,
      on_deadline=skip skips it. Such firings are admitted before the others.
    - Fair share of `max_concurrent` between owners (`owners`: job id -> user; without
      it, or for a job it lacks, one shared owner ""): N = the owners with a firing in
      `ready` or a smart run going; an owner's even share is ceil(max_concurrent / N).
      Free slots go one at a time to the owner holding the fewest (runs going + started
      here; ties: the owner whose next firing comes first in priority order): round-
      robin, so an owner holding >= its share starts nothing while an owner below its
      share has a firing waiting, and a slot no one below it can use goes round again
      (never idle while a firing waits). Runs going are never stopped: an owner may
      hold more than its share from before others came; it gets no slot until they do.
    - Within an owner: priority (higher first), then earlier nominal, then as given (the
      machine's order: after= dependencies first, then the earlier deadline, then
      crontab order).
    """
    out = Admission(start=[], wait=[], skip=[])
    counts = dict(running)
    total = running_total

    def owner_of(job_id: str) -> str:
        return owners.get(job_id, "") if owners is not None else ""

    ranked = sorted(ready, key=_order)
    rank = {(f.job_id, f.nominal): i for i, (f, _) in enumerate(ranked)}
    held, late, queues = _partition(ranked, running, owner_of, now)
    for firing, spec in late:
        if _overlap(out, firing, spec, counts):
            continue
        if total >= max_concurrent:
            full = f"{total} smart job(s) running (max_concurrent {max_concurrent})"
            head = f"deadline {_hhmm(firing.deadline)} reached"
            if spec.on_deadline == "skip":
                out.skip.append((firing, f"{head}: skipped: {full}"))
                continue
            out.why[firing.job_id, firing.nominal] = f"{head}: started although {full}"
        out.start.append((firing, spec))
        counts[firing.job_id] = counts.get(firing.job_id, 0) + 1
        held[owner_of(firing.job_id)] += 1
        total += 1
    while total < max_concurrent:
        heads = []
        for who, items in queues.items():
            while items and _overlap(out, *items[0], counts):
                items.pop(0)
            if items:
                heads.append((held[who], rank[items[0][0].job_id, items[0][0].nominal], who))
        if not heads:
            break
        who = min(heads)[2]
        firing, spec = queues[who].pop(0)
        out.start.append((firing, spec))
        counts[firing.job_id] = counts.get(firing.job_id, 0) + 1
        held[who] += 1
        total += 1
    why = f"waiting: {total} smart job(s) running (max_concurrent {max_concurrent})"
    for items in queues.values():
        for firing, spec in items:
            if not _overlap(out, firing, spec, counts):
                out.wait.append((firing, spec))
                out.why[firing.job_id, firing.nominal] = why
    return out
