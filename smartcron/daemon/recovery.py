"""At the daemon's first load: what the previous daemon left (see smartcron.store.journal).

The journal's last row says which minute was observed last, on which boot and at what
monotonic time, and which plain firings of that minute were handed to the launcher.
From it come the smart firings to resume (pending), the statements that record what
was not run and why, and the clock step made while no daemon ran, if one was.

Another boot id than the journal's means the machine was off (or rebooted) since that
minute; the same boot id with a boottime clock gone on further than the monotonic one,
that it was suspended: the smart firings whose window passed meanwhile are caught up
(smartcron.smart.catchup); plain lines are not, as cron(8) does not catch up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from smartcron.clock import Clock, Jump, Sleep
from smartcron.smart.jobs import Job
from smartcron.store.history import HistoryError
from smartcron.store.historyguard import log_history_failure
from smartcron.store.journal import (
    RESTARTED,
    Journal,
    NotRun,
    Statement,
    gap_firings,
    restart_jump,
    restart_sleep,
)

__all__ = ["Recovered", "recover"]

log = logging.getLogger("smartcron")


@dataclass(frozen=True, kw_only=True)
class Recovered:
    """What the engine takes in: smart firings to resume, and the statements written
    with them (this start's journal row, pruning, the firings not run)."""

    pending: list[tuple[Job, datetime]]
    statements: list[Statement]
    jump: Jump | None  # the clock step while no daemon ran (within one boot)
    sleep: Sleep | None = None  # the machine was off since the journal's last minute


def recover(
    journal: Journal,
    jobs: Sequence[Job],
    *,
    through: int,
    now: datetime,
    clock: Clock,
    zone: tzinfo,
    smart: bool,
    keep: timedelta,
) -> Recovered | None:
    """`through`: this daemon's first minute (it is not run, as in cron.c); `smart`: not
    in cron mode; `keep`: history's retention. None if the journal cannot be read."""
    try:
        last = journal.last()
    except HistoryError as err:
        log_history_failure(err, "journal not read")
        return None
    boot, mono, boottime = clock.boot_id(), clock.monotonic(), clock.boottime()
    also = journal.statements(through, now, boot, mono, [], complete=True, boottime=boottime)
    also += journal.prune_statements(now - keep)
    if last is None:
        return Recovered(pending=[], statements=also, jump=None)
    jump = restart_jump(last, now, boot, mono, boottime)
    if jump is not None:
        log.info("%s while the daemon was not running", jump.text())
    lost: list[NotRun] = []
    if not last.complete:  # killed while starting a minute's jobs
        for firing in last.plain:
            if not journal.started(firing):
                lost.append(
                    NotRun(
                        job_id=firing.job_id,
                        label=firing.label,
                        first=firing.scheduled,
                        last=firing.scheduled,
                        count=1,
                        reason=RESTARTED,
                    )
                )
    pending, gap = gap_firings(jobs, last.utc_minute, through, now, zone, smart=smart, jump=jump)
    sleep = None
    if smart and last.boot_id is not None and last.boot_id != boot:
        sleep = Sleep(last.at, now, "off")
    elif smart:  # the same boot: suspended while no daemon ran?
        sleep = restart_sleep(last, now, boot, mono, boottime)
    if sleep is not None:
        log.info("%s since the last minute journaled", sleep.text())
        gap = _caught_up(gap, jobs, sleep)
    for each in [*lost, *gap]:
        when = each.first.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        until = each.last.astimezone(zone)
        more = f" (and {each.count - 1} more to {until:%H:%M})" if each.count > 1 else ""
        log.warning("%s: firing of %s%s %s", each.label, when, more, each.reason)
    if pending:
        log.info("%d firing(s) of minutes no daemon saw are pending", len(pending))
    statements = [*also, *journal.not_run_statements([*lost, *gap], now)]
    return Recovered(pending=pending, statements=statements, jump=jump, sleep=sleep)


def _caught_up(gap: list[NotRun], jobs: Sequence[Job], sleep: Sleep) -> list[NotRun]:
    """The gap's closed smart firings, said to be caught up (their job's catchup= allowing)."""
    modes = {job.id: job.smart.catchup for job in jobs if job.smart is not None}
    return [
        replace(item, reason=f"{sleep.text()} over its window: left to catchup={mode}")
        if (mode := modes.get(item.job_id, "no")) != "no"
        else item
        for item in gap
    ]
