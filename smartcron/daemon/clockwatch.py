"""The minutes cron observes between two wake-ups, and the clock steps among them.

The daemon reads the wall clock and the monotonic clock at each wake-up; a wall clock
that moved differently from the monotonic one was stepped (`date -s`, a suspend that
the monotonic clock did not count). What cron.c then observes is replayed here; the
forward steps are remembered so that a firing jumped over gets its reason.

A suspend is a step too for cron's rules (Debian's cron sees its sleep(3) overrun by the
time suspended and applies its clock-change rules: plain lines keep exactly that). But
the boottime clock counts the time suspended and the monotonic one does not, so the
watch also tells a suspend from `date -s`, for the smart firings' catch-up
(smartcron.smart.catchup).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta, tzinfo

from smartcron.clock import STEP_THRESHOLD, Clock, Jump, Sleep
from smartcron.daemon.ticker import local_minute, observed_minutes

__all__ = ["MAX_JUMPS", "ClockWatch"]

log = logging.getLogger("smartcron")

MAX_JUMPS = 8  # forward clock steps remembered, to give a jumped-over firing its reason


class ClockWatch:
    """The last wall/monotonic reading, and the forward steps seen since the start (or
    across a restart, from the journal)."""

    def __init__(self, clock: Clock, zone: tzinfo) -> None:
        self.clock = clock
        self.zone = zone
        self.last_wall = clock.now().timestamp()
        self.last_mono = clock.monotonic()
        self.last_boot = clock.boottime()
        self.utc_minute = math.floor(self.last_wall / 60)  # the last minute observed
        self.jumps: list[Jump] = []
        self.sleep: Sleep | None = None  # the suspend seen by the last observe(), if one
        self._asked = False  # behind()

    def observe(self, now: datetime) -> tuple[list[tuple[int, int]], bool]:
        """The (utc, local) minutes cron would have woken in since the last reading, and
        whether the clock was stepped.

        A stepped clock replays the minutes up to where it *should* be, then the new
        reading is seen, which is exactly the sequence cron.c observes when someone runs
        `date -s`.
        """
        wall = now.timestamp()
        mono, boot = self.clock.monotonic(), self.clock.boottime()
        expected = self.last_wall + (mono - self.last_mono)
        slept = (boot - self.last_boot) - (mono - self.last_mono)
        self.sleep = None
        if slept >= STEP_THRESHOLD:  # the timerfd wakes us at resume: it ended about now
            self.sleep = Sleep(now - timedelta(seconds=slept), now, "suspend")
            log.info("%s", self.sleep.text())
        utc_minute = math.floor(wall / 60)
        stepped = abs(wall - expected) >= STEP_THRESHOLD
        if stepped:
            log.info("clock step of %+.0f s detected", wall - expected)
            if wall > expected:
                self.jumped(datetime.fromtimestamp(expected, UTC), now)
            seen = list(observed_minutes(self.utc_minute, math.floor(expected / 60), self.zone))
            seen.append((utc_minute, local_minute(utc_minute, self.zone)))
        else:
            seen = list(observed_minutes(self.utc_minute, utc_minute, self.zone))
        self.last_wall, self.last_mono, self.last_boot = wall, mono, boot
        self.utc_minute = utc_minute
        return seen, stepped

    def behind(self, now: datetime) -> bool:
        """At the first call only: whether a minute began since the start (cron.c wakes at
        the first top after its start). Never again, so a wake-up failing before it
        observes cannot make the loop spin."""
        late = not self._asked and math.floor(now.timestamp() / 60) > self.utc_minute
        self._asked = True
        return late

    def jumped(self, start: datetime, end: datetime) -> None:
        """A forward step from `start` to `end` (seen running, or across a restart)."""
        self.jumps = [*self.jumps[-(MAX_JUMPS - 1) :], Jump(start, end)]

    def jump_over(self, instant: datetime) -> Jump | None:
        """The forward clock step that carried the wall clock over `instant`, if one did."""
        return next((jump for jump in reversed(self.jumps) if jump.covers(instant)), None)
