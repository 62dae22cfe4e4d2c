"""Time as an injected dependency: the daemon never reads the wall clock directly."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
STEP_THRESHOLD = 30.0  # seconds of wall-vs-monotonic disagreement that count as a clock step
_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


class Clock(Protocol):
    """What the scheduler needs to know about time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (to tell a clock step from elapsed time)."""
        ...

    def boottime(self) -> float:
        """Seconds on a clock that never jumps but, unlike `monotonic`, goes on counting
        while the machine is suspended (Linux CLOCK_BOOTTIME): the two part after a
        suspend, and only then (to tell a suspend from a clock step)."""
        ...

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> None:
        """Block until `instant` (or until `wake` is set, if given)."""
        ...

    def boot_id(self) -> str:
        """This boot's id: monotonic readings compare only within one boot."""
        ...

    def file_time(self, stamp_ns: int) -> datetime:
        """The instant on this clock of a file's timestamp (files are stamped by the
        kernel's real clock), to tell when a crontab changed."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def boottime(self) -> float:
        # Not Linux: no suspend can be told apart, every one looks like a clock step.
        return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> None:
        delay = (instant - self.now()).total_seconds()
        if delay <= 0:
            return
        if wake is None:
            time.sleep(delay)
        else:
            wake.wait(delay)

    _boot: str | None = None

    def boot_id(self) -> str:
        if self._boot is None:  # read once: it cannot change while we run
            try:
                self._boot = BOOT_ID.read_text().strip()
            except OSError:  # not Linux: the boot time, to the minute
                self._boot = str(int(time.time() - time.monotonic()) // 60)
        return self._boot

    def file_time(self, stamp_ns: int) -> datetime:
        return datetime.fromtimestamp(stamp_ns / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class Jump:
    """A clock step: the wall clock read `end` when, by monotonic time, it should have
    read `start` (forward when end > start)."""

    start: datetime
    end: datetime

    @classmethod
    def between(cls, expected: datetime, now: datetime) -> Jump | None:
        """The step from where the wall clock should be to where it is, if one."""
        if abs((now - expected).total_seconds()) < STEP_THRESHOLD:
            return None
        return cls(expected, now)

    def covers(self, instant: datetime) -> bool:
        """Whether a forward step carried the clock over `instant`."""
        return self.start < instant <= self.end

    def text(self) -> str:
        """`the clock was stepped forward by 5 h`, `... back by 2 h 30 min`."""
        minutes = round(abs((self.end - self.start).total_seconds()) / 60)
        hours, rest = divmod(minutes, 60)
        size = " ".join(
            part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part
        )
        way = "forward" if self.end > self.start else "back"
        return f"the clock was stepped {way} by {size or 'under a minute'}"


@dataclass(frozen=True, slots=True)
class Sleep:
    """The machine did not run from `start` to `end` (wall clock): `suspend` (the boottime
    clock went on while the monotonic one stood still) or `off` (the boot id changed:
    powered off, or rebooted)."""

    start: datetime
    end: datetime
    kind: str  # "suspend" or "off"

    def covers(self, instant: datetime) -> bool:
        return self.start < instant <= self.end

    def text(self) -> str:
        """`the machine was suspended for 9 h`, `the machine was off for 2 h 5 min`."""
        state = "suspended" if self.kind == "suspend" else "off"
        size = Jump(self.start, self.end).text().removeprefix("the clock was stepped forward by ")
        return f"the machine was {state} for {size}"
