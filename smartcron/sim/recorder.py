"""``--history DB``: the simulated firings, decisions and runs, as the daemon records them.

Through the daemon's own stores (HistoryStore for runs, FiringStore for firings and
decisions), so ``smartcronctl train`` reads a simulated history like a real one. Smart
jobs get a firing row under every policy, and every start a decision row with the
snapshot (the model's features at the start minute); plain lines get runs only.
Timestamps are the virtual clock's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from smartcron.ai.activity import sampled
from smartcron.sim.scenario import SimJob
from smartcron.sim.timeline import Timeline
from smartcron.smart.firings import FiringStore
from smartcron.smart.gate import Firing
from smartcron.smart.machine import Effect
from smartcron.smart.monitor import Snapshot
from smartcron.store.history import HistoryStore, RunEnd, RunStart, RunStatus, Trigger


class Recorder:
    """Writes one simulation into a history database (created or migrated)."""

    def __init__(self, path: str, policy: str) -> None:
        self.history = HistoryStore.open(path)
        self.firings = FiringStore(self.history)
        self.policy = policy
        self.runs = 0

    def firing(self, firing: Firing) -> Firing:
        """Persist a new firing; the same firing with its row id."""
        stored = self.firings.create(firing, firing.nominal)
        return replace(firing, id=stored.firing.id)

    def effect(self, effect: Effect, now: datetime) -> None:
        """One of the machine's decisions, written as the daemon's Engine writes it."""
        self.firings.record(effect.firing, now, **effect.fields())

    def started(self, firing: Firing, now: datetime, snap: Snapshot) -> None:
        """A start without the machine (the cron policy's smart jobs)."""
        reason = f"{self.policy} policy"
        self.firings.record(
            firing, now, verdict="run", reason=reason, snapshot=snap, state="running"
        )

    def ended(self, firing: Firing, now: datetime, failed: bool, reason: str) -> None:
        """The end of a run started without the machine: done or failed, no retry."""
        verdict = "failed" if failed else "done"
        self.firings.record(
            replace(firing, state="running"), now, verdict=verdict, reason=reason, state=verdict
        )

    def run(
        self,
        job: SimJob,
        firing: Firing,
        started: datetime,
        ended: datetime,
        *,
        cpu_s: float,
        failed: bool,
        timed_out: bool,
        trigger: str,
    ) -> None:
        """A run's row (trigger cron, smart or retry), its end known at its start."""
        run_id = self.history.record_start(
            RunStart(
                job_id=job.id,
                source=job.source,
                user=job.owner,
                command=job.command,
                started=started,
                trigger=Trigger(trigger),
                scheduled=firing.nominal,
                job_name=job.smart.name if job.smart is not None else None,
                line=job.line,
                firing_id=firing.id,
            )
        )
        runtime = (ended - started).total_seconds()
        status = RunStatus.TIMEOUT if timed_out else RunStatus.FAILED if failed else RunStatus.OK
        self.history.record_end(
            run_id,
            RunEnd(
                status=status,
                ended=ended,
                exit_code=None if timed_out else int(failed),
                signal=15 if timed_out else None,
                timed_out=timed_out,
                runtime_s=runtime,
                cpu_s=cpu_s,
                note="simulated",
            ),
        )
        self.runs += 1

    def presence(self, timeline: Timeline, lo: int, hi: int) -> None:
        """The presence samples a daemon gating smart jobs takes (smartcron.ai.activity):
        every sample minute of [lo, hi) the machine is awake and the idle time known."""
        samples = []
        for i in range(lo, hi):
            at = timeline.instant(i)
            if sampled(at) and not timeline.asleep_at(i):
                idle = timeline.trace.at(at).idle_seconds
                if idle is not None:
                    samples.append((at, idle))
        self.history.record_presence(samples)

    def close(self) -> None:
        self.history.close()
