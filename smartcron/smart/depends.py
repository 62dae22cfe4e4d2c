"""after=NAME[,NAME]: a firing waits until the named jobs' firings have succeeded
(smartcrontab(5)). Two halves:

* `DependentMachine`, the firing state machine (smartcron.smart.machine) that also keeps
  what became of each job's recent firings (from its own Effects) and, before the gate
  decides on a firing whose job has ``after=``, looks at the most recent firing, due at
  or before it, of each named job. The daemon's engine and the simulator both drive it,
  so a chain behaves the same in both. While a dependency's firing waits or runs, the
  firing defers (it is looked at again whenever that firing moves: it starts right after
  a success); when it failed, was skipped or missed, or there is none, the firing waits
  for its deadline and then follows ``on_deadline``, its reason saying why.
* smartcron.smart.dependgraph: which job a name means, and unknown names and cycles
  among the jobs of one user and the system files (``smartcrontab -T``, ``status``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from smartcron.smart.dependgraph import resolve_name
from smartcron.smart.firingtimes import hhmm
from smartcron.smart.gate import Firing, Verdict
from smartcron.smart.machine import Effect, Machine, RunOutcomeKind, SmartJob, Wakeup

_KEEP = 16  # outcomes kept per job: a dependency is the latest firing due before one
# The effects that change a firing's state (defer and wait do not), and the state each
# leaves; the others (done, failed, missed, interrupted) are their own state.
_MOVES = {"start": "running", "retry": "pending", "skip": "skipped", "done": "done",
          "failed": "failed", "missed": "missed", "interrupted": "interrupted"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one firing of a job came to (or is doing), and since when."""

    nominal: datetime
    state: str  # pending, running, done, failed, skipped, missed, interrupted
    at: datetime | None


# job id, the dependent firing's nominal time -> the latest firing due at or before it
# that the machine no longer knows (the daemon asks the history after a restart).
Lookup = Callable[[str, datetime], Outcome | None]


@dataclass(frozen=True, slots=True)
class Status:
    """One named dependency of a firing: `state` of its latest firing due at or before
    this one (done, running, pending, failed, skipped, missed, interrupted; none: no such
    firing or job), `at` when it got there (HH:MM), and `text` saying so."""

    name: str
    state: str
    at: str
    text: str

    @property
    def ok(self) -> bool:
        return self.state == "done"

    @property
    def waiting(self) -> bool:
        """Still to come: it may yet succeed."""
        return self.state in ("pending", "running")

    @property
    def late(self) -> str:
        """The text once the deadline came: `after backup: still running (since 01:03)`."""
        if self.state == "running":
            return f"after {self.name}: still running (since {self.at})"
        if self.state == "pending":
            return f"after {self.name}: not started yet"
        return self.text


class DependentMachine(Machine):
    """Machine, plus after=. `lookup`: outcomes the machine did not see (the daemon's
    history, for firings before a restart); without it, an unseen firing is none."""

    def __init__(self, *args: Any, lookup: Lookup | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookup = lookup
        self.outcomes: dict[str, dict[datetime, Outcome]] = {}
        self.jobs: Mapping[str, Any] = {}  # the last wake-up's smart jobs, by id
        self._named: dict[str, list[Any]] | None = None
        self._depths: dict[str, int] = {}
        self._now: datetime | None = None
        inner = self.decide
        self.decide = lambda *a, **k: self._decide(inner, *a, **k)

    # ------------------------------------------------------------ what happened

    def _note(self, job_id: str, nominal: datetime, state: str, at: datetime | None) -> None:
        seen = self.outcomes.setdefault(job_id, {})
        seen[nominal] = Outcome(nominal, state, at)
        if len(seen) > _KEEP:
            del seen[min(seen)]

    def _observe(self, effects: Iterable[Effect], now: datetime) -> None:
        moved = set()
        for effect in effects:
            if effect.kind not in _MOVES:
                continue
            firing = effect.firing
            self._note(firing.job_id, firing.nominal, _MOVES[effect.kind], now)
            moved.add(firing.job_id)
        for job_id in moved:
            self._wake_dependents(job_id, now)

    def _wake_dependents(self, job_id: str, now: datetime) -> None:
        """A firing of `job_id` moved: look again now at the firings waiting for it."""
        job = self.jobs.get(job_id)
        name = job.smart.name if job is not None and job.smart is not None else None
        if not name:
            return
        for slot in self.slots.values():
            waiter = self.jobs.get(slot.firing.job_id)
            spec = None if waiter is None else waiter.smart
            if spec is not None and name in spec.after:
                slot.next_eval = min(slot.next_eval, now)

    # ------------------------------------------------------------ the machine's hooks

    def process(self, wake: Wakeup) -> list[Effect]:
        if wake.jobs is not self.jobs:
            self.jobs, self._named, self._depths = wake.jobs, None, {}
        self._now = wake.now
        effects = super().process(wake)
        self._observe(effects, wake.now)
        return effects

    def open(self, firing: Firing, next_eval: datetime) -> None:
        super().open(firing, next_eval)
        if firing.attempt == 0:  # a new firing: its waiters now wait for this one
            self._wake_dependents(firing.job_id, next_eval)

    def finished(
        self, job: SmartJob, firing: Firing, outcome: RunOutcomeKind, what: str, now: datetime
    ) -> Effect:
        effect = super().finished(job, firing, outcome, what, now)
        self._observe([effect], now)
        return effect

    def not_started(self, start: Effect, reason: str | None) -> Effect | None:
        effect = super().not_started(start, reason)
        if effect is not None and self._now is not None:
            self._observe([effect], self._now)
        return effect

    def resume(self, firing: Firing, next_eval: datetime | None, now: datetime) -> Effect | None:
        effect = super().resume(firing, next_eval, now)
        if effect is not None:
            self._note(firing.job_id, firing.nominal, effect.kind, now)
        return effect

    # ------------------------------------------------------------ deciding

    def named(self) -> dict[str, list[Any]]:
        """The loaded smart jobs by name=."""
        if self._named is None:
            self._named = {}
            for other in self.jobs.values():
                if other.smart is not None and other.smart.name:
                    self._named.setdefault(other.smart.name, []).append(other)
        return self._named

    def depth(self, job_id: str) -> int:
        """The longest chain of after= names from `job_id`'s job: a wake-up evaluates a
        job's firing before those of the jobs waiting for it (a cycle counts once)."""
        if job_id not in self._depths:
            self._depths[job_id] = 0  # while it is being computed: a cycle ends here
            job = self.jobs.get(job_id)
            after = () if job is None or job.smart is None else job.smart.after
            found = (resolve_name(name, job, self.named()) for name in after)
            deps = [dep.id for dep in found if dep is not None]
            self._depths[job_id] = max((1 + self.depth(dep) for dep in deps), default=0)
        return self._depths[job_id]

    def statuses(self, job: Any, firing: Firing) -> list[Status]:
        """Each after= name of `job` for its `firing`, in the order written."""
        zone = self.zone_of(job)
        return [self._status(name, job, firing.nominal, zone) for name in job.smart.after]

    def _latest(self, job_id: str, nominal: datetime) -> Outcome | None:
        pending = [n for (jid, n) in self.slots if jid == job_id and n <= nominal]
        seen = [o for n, o in self.outcomes.get(job_id, {}).items() if n <= nominal]
        best = max(seen, key=lambda o: o.nominal, default=None)
        if pending and (best is None or max(pending) >= best.nominal):
            return Outcome(max(pending), "pending", None)
        if best is None and self.lookup is not None:
            best = self.lookup(job_id, nominal)
        return best

    def _status(self, name: str, job: Any, nominal: datetime, zone: Any) -> Status:
        dep = resolve_name(name, job, self.named())
        if dep is None:
            return Status(name, "none", "", f"after {name}: no smart job named {name} loaded")
        seen = self._latest(dep.id, nominal)
        if seen is None:
            due = hhmm(nominal, zone)
            return Status(name, "none", "", f"after {name}: no firing due by {due}")
        at = "" if seen.at is None else hhmm(seen.at, zone)
        if seen.state == "done":
            text = f"{name} succeeded at {at}"
        elif seen.state == "running":
            text = f"waiting for {name} (running since {at})"
        elif seen.state == "pending":
            text = f"waiting for {name} (due {hhmm(seen.nominal, zone)}, not started yet)"
        else:
            text = f"after {name}: {seen.state} at {at}"
        return Status(name, seen.state, at, text)

    def _decide(
        self, inner: Callable[..., Verdict], firing: Firing, spec: Any, snap: Any,
        now: datetime, **options: Any,
    ) -> Verdict:  # fmt: skip
        """The gate's decision (`inner`), after the firing's dependencies allow it."""
        job = self.jobs.get(firing.job_id) if spec.after else None
        if job is None:
            return inner(firing, spec, snap, now, **options)
        found = self.statuses(job, firing)
        blocked = [s for s in found if not s.ok]
        if not blocked:
            verdict = inner(firing, spec, snap, now, **options)
            done = "; ".join(s.text for s in found)
            return replace(verdict, reason=f"{done}; {verdict.reason}")
        if now < firing.deadline:  # woken early whenever a dependency's firing moves
            why = "; ".join(s.text for s in blocked)
            return Verdict(action="defer", until=firing.deadline, reason=why)
        head = f"deadline {firing.deadline.strftime('%H:%M')} reached"
        late = "; ".join(s.late for s in blocked)
        if spec.on_deadline == "skip":
            return Verdict(action="skip", until=None, reason=f"{head}: skipped: {late}")
        verdict = inner(firing, spec, snap, now, **options)
        extra = "".join(f"; {failure}" for failure in verdict.failed)
        return replace(verdict, reason=f"{head}: running despite {late}{extra}")
