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

from smartcron.firings import FiringStore, verdict_fields
from smartcron.gate import Firing, Verdict
from smartcron.history import HistoryStore, RunEnd, RunStart, RunStatus, Trigger
from smartcron.monitor import Snapshot
from smartcron.sim.scenario import SimJob

_STATE = {"run": "running", "defer": "pending", "skip": "skipped"}


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

    def verdict(self, firing: Firing, now: datetime, verdict: Verdict, snap: Snapshot) -> None:
        self.firings.record(
            firing,
            now,
            **verdict_fields(verdict),
            snapshot=snap,
            state=_STATE[verdict.action],
            next_eval=verdict.until,
        )

    def started(self, firing: Firing, now: datetime, snap: Snapshot) -> None:
        """A start chosen without the gate (cron, random, oracle policies)."""
        reason = f"{self.policy} policy"
        self.firings.record(
            firing, now, verdict="run", reason=reason, snapshot=snap, state="running"
        )

    def note(self, firing: Firing, now: datetime, verdict: str, reason: str) -> None:
        self.firings.note(firing, now, verdict, reason)

    def skip(self, firing: Firing, now: datetime, reason: str) -> None:
        self.firings.record(firing, now, verdict="skip", reason=reason, state="skipped")

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
        retry: datetime | None,
    ) -> None:
        """A run, and the firing's outcome: done, failed, or pending for a retry."""
        if firing.id is None:
            trigger = Trigger.CRON
        elif firing.attempt:
            trigger = Trigger.RETRY
        else:
            trigger = Trigger.CRON if self.policy == "cron" else Trigger.SMART
        run_id = self.history.record_start(
            RunStart(
                job_id=job.id,
                source=job.source,
                user=job.owner,
                command=job.command,
                started=started,
                trigger=trigger,
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
        if firing.id is None:
            return
        if retry is not None:
            reason = f"run failed; retry {firing.attempt + 1} of this firing"
            self.firings.record(
                firing, ended, verdict="retry", reason=reason, state="pending", next_eval=retry
            )
        else:
            verdict = "failed" if failed else "done"
            self.firings.record(firing, ended, verdict=verdict, reason=status.value, state=verdict)

    def close(self) -> None:
        self.history.close()
