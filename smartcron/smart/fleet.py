"""`#@smart fleet=once` at the moment a firing would start (docs/fleet.md): the engine
asks the fleet's Claimer (smartcron.store.claims) before it starts the run.

Granted: the run starts here (and the claim is marked started). Held by a host that
started it: this firing is skipped here, with who ran it. Held by a host that has not
started it yet: this host looks again when that claim's lease ends. The fleet's
history cannot be reached: it looks again a minute later (a fleet=once firing never
runs unclaimed: that could run it twice); its window's end makes it missed, as any."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from smartcron.smart.machine import Effect, Machine
from smartcron.store.claims import Claimer, LocalClaimer
from smartcron.store.historyguard import HistoryError

log = logging.getLogger("smartcron")

RETRY_UNREACHABLE = timedelta(minutes=1)


def is_once(start: Effect) -> bool:
    spec = getattr(start.job, "smart", None)
    return getattr(spec, "fleet", "each") == "once"


def claim_key(start: Effect) -> tuple[str, str]:
    """(owner, name): the job's name= across the fleet, else its id."""
    job = start.job
    return job.owner, job.name or job.id


def hold(machine: Machine, start: Effect, claimer: Claimer, zone: tzinfo, now: datetime
         ) -> Effect | None:  # fmt: skip
    """None: start here. Else the effect to record instead of the start (a skip, or a
    wait with the firing back in the machine)."""
    if not is_once(start):
        return None
    if isinstance(claimer, LocalClaimer):  # the loader warns at the line (smart.fleetcheck)
        return None
    owner, name = claim_key(start)
    nominal = start.firing.nominal
    try:
        claim = claimer.claim(owner, name, nominal, now)
    except HistoryError as err:
        claim, reason = None, f"fleet=once: the fleet's history cannot be reached ({err})"
    if claim is not None and claim.granted:
        return None
    machine.not_started(start, None)  # the start's slot is given back
    back = replace(start.firing, attempt=start.firing.attempt - 1, state="pending")
    if claim is not None:
        reason = claim.reason(zone)
        if claim.started or claim.lease_until is None:
            return replace(start, kind="skip", firing=back, verdict="skip", reason=reason,
                           state="skipped", until=None, expect=None)  # fmt: skip
    again = now + RETRY_UNREACHABLE
    if claim is not None and claim.lease_until is not None:
        again = max(claim.lease_until + timedelta(seconds=1), now + timedelta(seconds=1))
    machine.open(back, again)
    return Effect(kind="wait", firing=back, job=start.job, verdict="defer", reason=reason,
                  next_eval=again)  # fmt: skip


def started(start: Effect, claimer: Claimer, now: datetime) -> None:
    """The run started: the claim holds (no other host takes it when the lease ends)."""
    if is_once(start):
        try:
            claimer.started(*claim_key(start), start.firing.nominal, now)
        except HistoryError as err:  # the lease then lapses; the run is in history
            log.error("%s: fleet=once: claim not marked started: %s", start.job.label, err)


def release(start: Effect, claimer: Claimer) -> None:
    """The run could not start here: another host may take the firing at once."""
    if is_once(start):
        try:
            claimer.release(*claim_key(start), start.firing.nominal)
        except HistoryError as err:
            log.error("%s: fleet=once: claim not released: %s", start.job.label, err)
