"""Catch-up after a suspend or a power-off: anacron's promise, kept by the gate.

A smart firing whose window passed while the machine slept (a suspend: the boottime
clock ran on, the monotonic one stood still) or was off (the boot id changed since the
last journaled minute) is not lost. Per job, its `catchup=` key says what happens:

* `once` (the default): one firing, the latest of those missed, gets a new window from
  the moment of resume or boot, `catchup_window` long (default: the job's own window),
  and goes through the gate like any firing, so it runs at the next good moment in it.
  No catch-up when a firing of the job is still inside its window then: that one runs
  anyway. Never a burst: a laptop closed over three nights runs a daily job once.
* `all`: every missed firing is caught up so (at most MAX_ALL, the latest ones).
* `no`: the missed firings are recorded as missed.

Firings of the sleep whose window is still open at resume become ordinary pending
firings (cron's clock rules created none of them after a long suspend). Plain lines
keep cron(8)'s rules exactly: nothing here touches them.

Pure: `plan` decides, `apply` moves the machine's slots; the daemon's engine and the
simulator persist or count what comes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from smartcron.clock import Sleep
from smartcron.cron.crontab import TimeSpec
from smartcron.smart.constraints import duration_text, window_for
from smartcron.smart.firingtimes import hhmm
from smartcron.smart.gate import Firing
from smartcron.smart.jitter import window_span
from smartcron.smart.machine import Effect, Key, Machine
from smartcron.smart.smartspec import SmartSpec

__all__ = ["LOOKBACK", "MAX_ALL", "Plan", "apply", "catchup_window", "plan", "wake_up"]

LOOKBACK = timedelta(days=7)  # how far before the resume missed firings are looked for
MAX_ALL = 100  # catchup=all catches up at most this many firings of a job (the latest)


def catchup_window(spec: SmartSpec) -> timedelta:
    """`catchup_window=`, else the length of the job's window (a clock window's span)."""
    if spec.catchup_window is not None:
        return spec.catchup_window
    return window_span(spec.window, spec.window_clock)


@dataclass(frozen=True, kw_only=True, slots=True)
class Catch:
    """A missed firing caught up: its job, nominal time and new deadline, and why."""

    job: Any
    nominal: datetime
    deadline: datetime
    reason: str
    open: bool  # already an open firing of the machine (its deadline is moved)


@dataclass(kw_only=True, slots=True)
class Plan:
    """What a resume or a boot does to the smart firings of the time slept."""

    fresh: list[tuple[Any, datetime]] = field(default_factory=list)  # still in their window
    catch: list[Catch] = field(default_factory=list)
    drop: list[tuple[Key, str]] = field(default_factory=list)  # open firings not caught up


def _candidates(
    timespec: TimeSpec, zone: tzinfo, opened: Iterable[datetime], sleep: Sleep, now: datetime
) -> list[datetime]:
    """The job's open firings and its nominal times in the sleep, up to `now`, in order."""
    from smartcron.cron.schedule import next_fires  # croniter: only after a sleep

    out = set(opened)
    for instant in next_fires(timespec, max(sleep.start, now - LOOKBACK), zone):
        if instant > now:
            break
        out.add(instant)
    return sorted(out)


def _job_plan(
    job: Any, timespec: TimeSpec, opened: Mapping[datetime, Firing], sleep: Sleep,
    now: datetime, zone: tzinfo, out: Plan,
) -> None:  # fmt: skip
    spec: SmartSpec = job.smart
    own = job.zone or zone
    live: list[datetime] = []
    missed: list[datetime] = []
    for nominal in _candidates(timespec, own, opened, sleep, now):
        firing = opened.get(nominal)
        deadline = firing.deadline if firing else window_for(spec, nominal, own)[1]
        if deadline > now:
            live.append(nominal)
        elif deadline > sleep.start and (firing is not None or nominal > sleep.start):
            missed.append(nominal)  # (one ticked before the sleep and not open was handled)
    out.fresh += [(job, nominal) for nominal in live if nominal not in opened]
    if not missed:
        return
    if spec.catchup == "all":
        caught = missed[-MAX_ALL:]
    elif spec.catchup == "once" and not live:
        caught = missed[-1:]
    else:
        caught = []
    if spec.catchup == "no":
        why = f"{sleep.text()} over its window (catchup=no)"
    elif live:
        why = f"{sleep.text()} over its window; the firing of {hhmm(live[0], own)} runs instead"
    else:
        why = f"{sleep.text()} over its window; the firing of {hhmm(missed[-1], own)} caught up"
    out.drop += [((job.id, n), why) for n in missed if n in opened and n not in caught]
    window = catchup_window(spec)
    for nominal in caught:
        deadline = now + window
        reason = (
            f"{sleep.text()} over its window: caught up, deadline {hhmm(deadline, own)}"
            f" (catchup={spec.catchup}, catchup_window={duration_text(window)})"
        )
        out.catch.append(Catch(job=job, nominal=nominal, deadline=deadline, reason=reason,
                               open=nominal in opened))  # fmt: skip


def plan(
    jobs: Iterable[tuple[Any, TimeSpec]],
    open_firings: Mapping[Key, Firing],
    sleep: Sleep,
    now: datetime,
    zone: tzinfo,
) -> Plan:
    """What to do, at `now`, about the smart firings of `jobs` ((job, its schedule); a job
    is a machine.SmartJob) that the sleep kept from running; `open_firings`: the
    machine's, by (job id, nominal)."""
    out = Plan()
    by_job: dict[str, dict[datetime, Firing]] = {}
    for (job_id, nominal), firing in open_firings.items():
        by_job.setdefault(job_id, {})[nominal] = firing
    for job, timespec in jobs:
        if job.smart is None or timespec.reboot:
            continue
        _job_plan(job, timespec, by_job.get(job.id, {}), sleep, now, zone, out)
    return out


def apply(
    machine: Machine, found: Plan, now: datetime, make: Callable[[Firing], Firing] | None = None
) -> tuple[list[Effect], list[Catch], list[Firing]]:
    """Carry out the drops and catches on the machine: (the missed Effects of the drops,
    the catches of open firings (moved), the new catch-up firings opened). `make` turns
    a new firing into the one to open (the daemon persists it and gives it its id)."""
    missed = []
    for key, why in found.drop:
        slot = machine.slots.pop(key, None)
        if slot is not None:
            missed.append(Effect(kind="missed", firing=slot.firing, job=None, verdict="missed",
                                 reason=why, state="missed"))  # fmt: skip
    moved, opened = [], []
    for catch in found.catch:
        key = (catch.job.id, catch.nominal)
        slot = machine.slots.get(key)
        if slot is not None:
            slot.firing = replace(slot.firing, deadline=catch.deadline, not_before=None)
            slot.local, slot.next_eval, slot.waiting = None, now, None
            moved.append(catch)
            continue
        firing = Firing(id=None, job_id=catch.job.id, nominal=catch.nominal,
                        deadline=catch.deadline)  # fmt: skip
        firing = make(firing) if make is not None else firing
        if firing.state == "pending" and not firing.attempt:  # not handled already
            machine.open(firing, now)
            opened.append(firing)
    return missed, moved, opened


def wake_up(
    machine: Machine,
    jobs: Iterable[tuple[Any, TimeSpec]],
    sleep: Sleep,
    zone: tzinfo,
    make: Callable[[Firing], Firing] | None = None,
) -> list[Effect]:
    """`plan` and `apply` at the end of `sleep` for a driver whose ticks of the sleep are
    all open already (the simulator): the missed Effects to record."""
    opened = {key: slot.firing for key, slot in machine.slots.items()}
    found = plan(jobs, opened, sleep, sleep.end, zone)
    return apply(machine, found, sleep.end, make)[0]
