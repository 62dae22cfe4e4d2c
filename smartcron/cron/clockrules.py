"""cron(8)'s clock-change rules, in one place. Pure: numbers in, verdicts out.

Debian's cron.c counts time in local wall-clock minutes and wakes once a minute. When
the minute it reads is not the one after the last minute it ran jobs for, it
classifies the jump (cron(8), "clock changes"; cron.c's wakeupKind). A job is
"wildcard" when its minute or hour field starts with `*` (@hourly included), else
"fixed-time":

  +1                   the next minute: nothing special
  +2 .. +5 minutes     late wake-up: every job runs every missed minute
  +6 min .. +3 hours   DST begins / clock forward: wildcard jobs once, for the new
                       minute; fixed-time jobs for every skipped minute
  -3 hours .. 0        DST ends / clock back: wildcard jobs for the new minute only;
                       fixed-time jobs are not repeated (virtual time stays put)
  beyond 3 hours       a correction: the new minute's jobs, no catch-up, no holding back

Two users read these rules: `ticker.Ticker`, which replays cron.c's loop minute by
minute for the daemon, and `schedule.next_fires`, which applies them in closed form
at a zone's transitions. tests/test_clock_rules.py checks that the two agree.
"""

from __future__ import annotations

import enum
import math
from datetime import timedelta

# cron.c: "if (timeDiff > 5)" and "(3*MINUTE_COUNT)", in minutes of wall-clock jump.
SMALL_JUMP = 5
DST_JUMP = 3 * 60

_MINUTE = timedelta(minutes=1)


class WakeupKind(enum.Enum):
    """How cron.c reads a change of its local minute counter (its wakeupKind)."""

    NEXT = "next minute"
    LATE = "late wake-up"
    FORWARD = "clock forward"  # DST begins, or a step forward of up to DST_JUMP
    BACK = "clock back"  # DST ends, or a step back of up to DST_JUMP
    CORRECTION = "correction"  # more than DST_JUMP either way

    def runs_skipped(self, wildcard: bool) -> bool:
        """Whether a job runs the minutes a forward jump passed over."""
        return self is WakeupKind.LATE or (self is WakeupKind.FORWARD and not wildcard)

    def runs_repeated(self, wildcard: bool) -> bool:
        """Whether a job runs again the wall minutes a backward jump returns to."""
        return self is WakeupKind.CORRECTION or (self is WakeupKind.BACK and wildcard)


def classify(jump: int) -> WakeupKind:
    """cron.c's verdict on `jump` = the new local minute - the last one jobs ran for."""
    if jump == 1:
        return WakeupKind.NEXT
    if 0 < jump <= SMALL_JUMP:
        return WakeupKind.LATE
    if SMALL_JUMP < jump <= DST_JUMP:
        return WakeupKind.FORWARD
    if -DST_JUMP < jump <= 0:
        return WakeupKind.BACK
    return WakeupKind.CORRECTION


def transition_jump(offset_change: timedelta) -> int:
    """The jump cron sees at a zone transition that changes the UTC offset by `offset_change`.

    Its local minute counter moves by one more than the change: forward by g minutes
    reads +g+1, back by d reads 1-d. A change with seconds (only pre-1900 local mean
    times have them) counts as the whole minutes it spans, away from zero.
    """
    minutes = offset_change / _MINUTE
    whole = math.ceil(minutes) if minutes > 0 else math.floor(minutes)
    return whole + 1
