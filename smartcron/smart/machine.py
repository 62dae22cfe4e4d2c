"""The firing state machine (SPEC 5): pure, no clock, no I/O, no persistence.

Firings go in (`open`), wake-ups drive it (`process(wakeup)`), runs end (`finished`);
out come Effects: start, defer (until), wait (capacity or a queue), skip, missed, and a
run's outcome: done, failed, retry (at), interrupted. Two drivers share it, so that
window, deadline, capacity, overlap, retry and clock-step rules exist once:

* the daemon (smartcron.smart.engine): the wall clock, the FiringStore (one record per Effect)
  and launching through lifecycle;
* the simulator (smartcron.sim.engine): a virtual clock, a trace, the world.

A firing's `attempt` counts the runs started (it goes up at `start`); a failed run is
retried while `attempt <= spec.retry` and the backoff instant is not past the deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol

from smartcron.clock import Jump
from smartcron.smart import gate
from smartcron.smart.firingtimes import hhmm, in_zone, restored, start_and_deadline
from smartcron.smart.gate import RECHECK, Advisor, Firing, Verdict, retry_at
from smartcron.smart.monitor import Snapshot
from smartcron.smart.smartspec import SmartSpec

log = logging.getLogger("smartcron")

# A firing first evaluated this long after its deadline (the daemon was down, or the
# machine asleep) is `missed`, not run: cron.c too catches up at most 3 hours.
MISSED_AFTER = timedelta(hours=3)

Key = tuple[str, datetime]
Kind = Literal["start", "defer", "wait", "skip", "missed", "done", "failed", "retry", "interrupted"]
RunOutcomeKind = Literal["ok", "failed", "interrupted"]  # how a smart run ended


class SmartJob(Protocol):
    """What the machine reads of a job (the daemon's jobs.Job, the simulator's SimJob)."""

    @property
    def id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def zone(self) -> tzinfo | None: ...
    @property
    def smart(self) -> SmartSpec | None: ...


# A policy's decision step, gate.evaluate's signature (firing, spec, snap, now, *, recheck,
# advisor) -> Verdict: random and oracle plug theirs in; capacity, overlap, retry stay here.
Decide = Callable[..., Verdict]


@dataclass(frozen=True, kw_only=True, slots=True)
class Effect:
    """One decision: a FiringStore.record's arguments (`fields()`), for the driver to
    record and, for `start`, carry out. `firing` is the firing after the decision."""

    kind: Kind
    firing: Firing
    job: Any  # the SmartJob, when the machine knew it
    verdict: str
    reason: str
    until: datetime | None = None
    model: Mapping[str, float] | None = None
    snapshot: Snapshot | None = None
    state: str | None = None
    next_eval: datetime | None = None
    expect: str | None = None

    @property
    def trigger(self) -> str:
        """A start's run trigger: the first run is `smart`, the others `retry`."""
        return "retry" if self.firing.attempt > 1 else "smart"

    def fields(self) -> dict[str, Any]:
        """FiringStore.record's keywords."""
        names = ("verdict", "reason", "until", "model", "snapshot", "state", "next_eval", "expect")
        return {name: getattr(self, name) for name in names}


@dataclass(slots=True)
class Slot:
    """An open firing: when to look at it next, and why it waits, if it does. `local`:
    the firing on its job's wall clock (`zone`), kept because a firing waiting for
    capacity is gated again every minute."""

    firing: Firing
    next_eval: datetime
    waiting: str | None = None
    local: Firing | None = None
    zone: tzinfo | None = None
    resumed: bool = False  # reloaded after a restart: its earliest start not known yet


@dataclass(frozen=True, kw_only=True)
class Wakeup:
    """What a driver sees at one wake-up. `snapshot(spec)`: the system for that job's
    constraints; `owners()`: job id -> user, for the fair cap (asked only when firings are
    ready); `jump_over(instant)`: the forward clock step over it, if one."""

    now: datetime
    jobs: Mapping[str, Any]  # job id -> SmartJob, the annotated jobs loaded
    snapshot: Callable[[SmartSpec], Snapshot]
    owners: Callable[[], Mapping[str, str]]
    max_concurrent: int
    advisor: Advisor | None = None
    jump_over: Callable[[datetime], Jump | None] = field(default=lambda _: None)


class Machine:
    """The open firings and the smart runs going; every transition returns its Effects.

    `decide`: the policy's step (default gate.evaluate); `retries`: False for a policy
    that never retries; `skip_ahead(firing, spec, now)`: where a firing deferred because
    its constraints fail is looked at next instead of `now + recheck` (the simulator
    knows the future trace; the decisions in between would all be the same defer).
    """

    def __init__(
        self,
        zone: tzinfo,
        *,
        recheck: timedelta = RECHECK,
        decide: Decide | None = None,
        retries: bool = True,
        skip_ahead: Callable[[Firing, SmartSpec, datetime], datetime] | None = None,
    ) -> None:
        self.zone = zone
        self.host: str | None = None  # the machine id jitter= hashes (None: this one's)
        self.recheck = recheck
        self.decide = decide or gate.evaluate  # looked up late: tests wrap the gate's
        self.retries = retries
        self.skip_ahead = skip_ahead
        self.slots: dict[Key, Slot] = {}
        self.running: dict[str, int] = {}  # job id -> smart runs going
        self.evaluations = 0  # the gate decisions made, repeated ones included
        self.repeated = 0  # of which known without asking the gate (`repeat_quiet`)
        self.quiet: list[Slot] = []  # the last wake-up's firings, if it was quiet (process)

    def zone_of(self, job: SmartJob | None) -> tzinfo:
        return job.zone or self.zone if job is not None else self.zone

    def _local(self, slot: Slot, job: SmartJob) -> Firing:
        """`in_zone(slot.firing, job's zone)`, made once per slot (and zone)."""
        zone = self.zone_of(job)
        if slot.resumed:  # its clock window's opening and jitter offset (smart.firingtimes)
            slot.firing, slot.resumed = restored(slot.firing, job.smart, zone, self.host), False
        if slot.local is None or slot.zone is not zone:
            slot.local, slot.zone = in_zone(slot.firing, zone), zone
        return slot.local

    # ------------------------------------------------------------ firings in

    def firing_for(self, job: SmartJob, nominal: datetime) -> Firing:
        """The new pending firing of `job`'s tick at `nominal` (its window from the spec)."""
        assert job.smart is not None
        start, deadline = start_and_deadline(
            job.smart, job.id, nominal, self.zone_of(job), self.host
        )
        return Firing(
            id=None,
            job_id=job.id,
            nominal=nominal,
            deadline=deadline,
            not_before=start if start > nominal else None,
        )

    def is_open(self, job_id: str, nominal: datetime) -> bool:
        return (job_id, nominal) in self.slots

    def open(self, firing: Firing, next_eval: datetime) -> None:
        """A pending firing, first looked at `next_eval`."""
        self.slots[firing.job_id, firing.nominal] = Slot(firing, next_eval)

    def resume(self, firing: Firing, next_eval: datetime | None, now: datetime) -> Effect | None:
        """A stored open firing after a (re)start: a pending one resumes; one left
        `running` by a dead or stopped daemon is interrupted, never run again."""
        if firing.state == "running":
            # Its process may well have gone on and succeeded: the outcome is unknown,
            # never a failure (and so never a training label, nor retried).
            why = "the daemon stopped while it ran: outcome unknown (not run again)"
            return Effect(kind="interrupted", firing=firing, job=None, verdict="interrupted",
                          reason=why, state="interrupted")  # fmt: skip
        self.open(firing, next_eval or now)
        self.slots[firing.job_id, firing.nominal].resumed = True
        return None

    def reconsider(self, now: datetime) -> None:
        """Look at every open firing again now (a clock step; the model was dropped)."""
        for slot in self.slots.values():
            slot.next_eval = min(slot.next_eval, now)

    def next_eval(self) -> datetime | None:
        return min((slot.next_eval for slot in self.slots.values()), default=None)

    # ------------------------------------------------------------ evaluation

    def process(self, wake: Wakeup) -> list[Effect]:
        """Evaluate the firings due at `wake.now`, admit the ready ones."""
        now = wake.now
        self.quiet = []
        due = [slot for slot in self.slots.values() if slot.next_eval <= now]
        if not due:
            return []
        out: list[Effect] = []
        ready: dict[Key, tuple[Slot, Any, Verdict, Snapshot]] = {}
        place = {job_id: i for i, job_id in enumerate(wake.jobs)}
        for slot in sorted(due, key=lambda s: self._rank(s.firing, place)):
            firing = slot.firing
            job = wake.jobs.get(firing.job_id)
            # A forward clock step over the deadline is not downtime: on_deadline applies.
            jump = wake.jump_over(firing.deadline) if now >= firing.deadline else None
            if job is None or (jump is None and now - firing.deadline > MISSED_AFTER):
                out += self._missed(slot, job, now)
                continue
            spec = job.smart
            try:
                snap = wake.snapshot(spec)
            except Exception:  # a broken monitor: look again in a minute
                log.exception("%s: system snapshot failed", getattr(job, "label", job.id))
                slot.next_eval = now + self.recheck
                continue
            local = self._local(slot, job)
            verdict = self.decide(
                local, spec, snap, now, recheck=self.recheck, advisor=wake.advisor
            )
            self.evaluations += 1
            if jump is not None:
                verdict = replace(
                    verdict, reason=f"{jump.text()} past its window; {verdict.reason}"
                )
            if verdict.action == "run":
                ready[firing.job_id, firing.nominal] = (slot, job, verdict, snap)
            else:
                out.append(self._decided(slot, job, verdict, snap, now))
        out += self._admit(ready, wake)
        if not out and len(ready) == len(due) and all(slot.waiting for slot in due):
            self.quiet = due  # each waited already, was gated `run` and waits still
        return out

    def _rank(self, firing: Firing, place: Mapping[str, int]) -> tuple[Any, ...]:
        """Earlier nominal first; then a job before those waiting for it (`depth`), the
        earlier deadline (least slack first claims the plan's room), and crontab order
        (`place`, as plain lines start). gate.admit keeps it among equal priorities."""
        job = firing.job_id
        return firing.nominal, self.depth(job), firing.deadline, place.get(job, -1)

    def depth(self, job_id: str) -> int:
        """The longest chain of after= names from `job_id` (smart.depends): 0 here."""
        return 0

    def repeat_quiet(self, until: datetime, times: int) -> None:
        """The driver knows the next `times` wake-ups (a `recheck` apart) repeat the last,
        quiet one: no run ends, nothing else is due, no constraint fails, no model is
        asked, no deadline comes. Each would leave this state as it is: count them."""
        for slot in self.quiet:
            slot.next_eval = min(until, slot.firing.deadline)
        self.evaluations += times * len(self.quiet)
        self.repeated += times * len(self.quiet)

    def _missed(self, slot: Slot, job: SmartJob | None, now: datetime) -> list[Effect]:
        firing = slot.firing
        if job is None and now < firing.deadline:
            slot.next_eval = firing.deadline  # maybe a crontab mid-edit: wait and see
            return []
        if job is None:
            why = "the job is no longer in any crontab (or no longer annotated)"
        else:
            deadline = hhmm(firing.deadline, self.zone_of(job))
            why = f"the deadline {deadline} passed while the daemon was not running"
        del self.slots[firing.job_id, firing.nominal]
        log.warning("%s: firing of %s missed: %s", firing.job_id, firing.nominal, why)
        effect = Effect(kind="missed", firing=firing, job=job, verdict="missed", reason=why,
                        state="missed")  # fmt: skip
        return [effect]

    def _decided(
        self, slot: Slot, job: SmartJob, verdict: Verdict, snap: Snapshot, now: datetime
    ) -> Effect:
        """A defer or skip verdict."""
        firing = slot.firing
        effect = Effect(kind="defer", firing=firing, job=job, verdict=verdict.action,
                        reason=verdict.reason, until=verdict.until, model=verdict.model,
                        snapshot=snap)  # fmt: skip
        if verdict.action == "skip":
            del self.slots[firing.job_id, firing.nominal]
            # logged by the driver (smart.journal), with the admission's skips
            return replace(effect, kind="skip", state="skipped")
        assert verdict.until is not None and job.smart is not None
        until = max(verdict.until, now + timedelta(seconds=1))  # never a busy loop
        if self.skip_ahead is not None and verdict.failed and until == now + self.recheck:
            until = max(until, self.skip_ahead(firing, job.smart, now))
        slot.next_eval, slot.waiting = until, None
        return replace(effect, next_eval=until)

    def _admit(
        self, ready: dict[Key, tuple[Slot, Any, Verdict, Snapshot]], wake: Wakeup
    ) -> list[Effect]:
        """gate.admit (priority, overlap, the cap shared fairly between owners; a firing
        at its deadline is not held by the cap), then start, wait or skip each."""
        if not ready:
            return []
        now = wake.now
        pairs = [(self._local(slot, job), job.smart) for slot, job, _, _ in ready.values()]
        total = sum(self.running.values())
        cap = wake.max_concurrent
        admission = gate.admit(pairs, self.running, total, cap, owners=wake.owners(), now=now)
        out = []
        for firing, _ in admission.start:
            slot, job, verdict, snap = ready[firing.job_id, firing.nominal]
            over = admission.reason_for(firing)  # started over the cap at its deadline
            reason = verdict.reason if over is None else f"{verdict.reason}; {over}"
            moved = replace(slot.firing, attempt=slot.firing.attempt + 1, state="running")
            del self.slots[firing.job_id, firing.nominal]
            self.running[firing.job_id] = self.running.get(firing.job_id, 0) + 1
            extra = {"until": verdict.until, "model": verdict.model, "expect": "pending"}
            out.append(
                Effect(kind="start", firing=moved, job=job, verdict=verdict.action, reason=reason,
                       snapshot=snap, state="running", **extra)  # type: ignore[arg-type]
            )  # fmt: skip
        for firing, _ in admission.wait:
            slot, job, _, snap = ready[firing.job_id, firing.nominal]
            why = admission.reason_for(firing) or "waiting"
            # Look again in a minute, or at the deadline: there the cap stops holding it.
            slot.next_eval = now + self.recheck
            if now < slot.firing.deadline:
                slot.next_eval = min(slot.next_eval, slot.firing.deadline)
            if why != slot.waiting:  # record a wait once, not every minute
                out.append(
                    Effect(kind="wait", firing=slot.firing, job=job, verdict="defer", reason=why,
                           snapshot=snap, next_eval=slot.next_eval)
                )  # fmt: skip
                slot.waiting = why
        for firing, why in admission.skip:
            slot, job, _, snap = ready[firing.job_id, firing.nominal]
            del self.slots[firing.job_id, firing.nominal]
            out.append(
                Effect(kind="skip", firing=slot.firing, job=job, verdict="skip", reason=why,
                       snapshot=snap, state="skipped")
            )  # fmt: skip
        return out

    def not_started(self, start: Effect, reason: str | None) -> Effect | None:
        """A start the driver could not carry out: its slot is given back. `reason`: why
        it failed (the firing is then failed), None: another daemon had it already."""
        self._release(start.firing.job_id)
        if reason is None:
            return None
        return replace(start, kind="failed", verdict="failed", reason=reason, state="failed",
                       until=None, model=None, snapshot=None, expect=None)  # fmt: skip

    # ------------------------------------------------------------ outcomes

    def _release(self, job_id: str) -> None:
        count = self.running.get(job_id, 0) - 1
        if count > 0:
            self.running[job_id] = count
        else:
            self.running.pop(job_id, None)

    def finished(
        self, job: SmartJob, firing: Firing, outcome: RunOutcomeKind, what: str, now: datetime
    ) -> Effect:
        """A smart run ended (`what`: `exit 1 in 12 s`...): done, a retry inside the
        window, failed, or interrupted (the daemon stopped it: its outcome is unknown)."""
        spec = job.smart
        assert spec is not None
        self._release(firing.job_id)
        for slot in self.slots.values():  # capacity freed: look at the waiting ones now
            if slot.waiting is not None:
                slot.next_eval = min(slot.next_eval, now)

        def end(kind: Kind, reason: str) -> Effect:
            return Effect(kind=kind, firing=firing, job=job, verdict=kind, reason=reason,
                          state=kind)  # fmt: skip

        if outcome == "ok":
            return end("done", what)
        if outcome == "interrupted":  # stopped by the daemon: not the job's failure
            return end(
                "interrupted", f"stopped by the daemon ({what}): outcome unknown, not retried"
            )
        again = retry_at(spec, firing.attempt, now)
        if not self.retries or firing.attempt > spec.retry or again > firing.deadline:
            spent = firing.attempt > spec.retry
            left = "no retry left" if spent else "no retry before the deadline"
            return end("failed", f"{what}; {left}" if spec.retry and self.retries else what)
        pending = replace(firing, state="pending", not_before=again)
        at = hhmm(again, self.zone_of(job))
        self.open(pending, again)
        why = f"{what}; retry {firing.attempt} of {spec.retry} at {at}"
        return Effect(kind="retry", firing=pending, job=job, verdict="retry", reason=why,
                      until=again, state="pending", next_eval=again)  # fmt: skip
