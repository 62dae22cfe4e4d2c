"""A firing's instants, for the state machine (smartcron.smart.machine).

Its earliest start comes from its job's spec: a clock window's opening (`window=
01:00-03:00`) plus this host's jitter= offset (smartcron.smart.jitter), never past the
deadline. New firings get it from `Machine.firing_for`. The history stores a firing's
next evaluation, not its earliest start (a retry's backoff is kept as that), so a
firing reloaded after a restart gets it again (`restored`) when first evaluated: a clock
step or a dropped model (`Machine.reconsider`) must not start it before its opening.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, tzinfo

from smartcron.smart.constraints import window_for
from smartcron.smart.gate import Firing
from smartcron.smart.jitter import jitter_offset
from smartcron.smart.smartspec import SmartSpec


def hhmm(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%H:%M")


def start_and_deadline(
    spec: SmartSpec, job_id: str, nominal: datetime, zone: tzinfo, host: str | None
) -> tuple[datetime, datetime]:
    """(earliest start, deadline) of the job's firing at `nominal` on the host `host`
    (None: this one)."""
    start, deadline = window_for(spec, nominal, zone)
    return min(start + jitter_offset(spec.jitter, job_id, host), deadline), deadline


def restored(firing: Firing, spec: SmartSpec | None, zone: tzinfo, host: str | None) -> Firing:
    """A reloaded firing with the later of its stored not_before (a retry's backoff) and
    its spec's earliest start, never past its deadline (a caught-up firing's opening has
    passed already: smart.catchup; it runs at once)."""
    if spec is None:
        return firing
    start, _ = start_and_deadline(spec, firing.job_id, firing.nominal, zone, host)
    if start <= firing.nominal or start > firing.deadline:
        return firing
    if firing.not_before is not None and firing.not_before >= start:
        return firing
    return replace(firing, not_before=start)


def in_zone(firing: Firing, zone: tzinfo) -> Firing:
    """The firing's instants on the job's wall clock, so reasons read `deadline 03:00`."""
    nb = firing.not_before
    if firing.nominal.tzinfo is firing.deadline.tzinfo is (nb or firing.nominal).tzinfo is zone:
        return firing  # astimezone to its own zone changes nothing
    return replace(
        firing,
        nominal=firing.nominal.astimezone(zone),
        deadline=firing.deadline.astimezone(zone),
        not_before=None if nb is None else nb.astimezone(zone),
    )
