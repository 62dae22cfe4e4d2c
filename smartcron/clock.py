"""Time as an injected dependency: the daemon never reads the wall clock directly."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
STEP_THRESHOLD = 30.0  # seconds of wall-vs-monotonic disagreement that count as a clock step


class Clock(Protocol):
    """What the scheduler needs to know about time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (to tell a clock step from elapsed time)."""
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


class FakeClock:
    """A clock that only moves when told to; sleeping jumps straight to the target.

    Each FakeClock is its own boot unless given `boot_id` (and the `monotonic` reading
    a restarted daemon would see). A file written while it read T has file_time T: it
    remembers the real time of each move (leave a few ms between a move and a write:
    the kernel stamps files with a coarse clock).
    """

    def __init__(
        self, start: datetime, *, monotonic: float = 1000.0, boot_id: str | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = monotonic
        self._boot = boot_id or uuid.uuid4().hex
        self._marks = [(time.time(), self._now)]  # (real time, fake time from then on)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def boot_id(self) -> str:
        return self._boot

    def file_time(self, stamp_ns: int) -> datetime:
        real = stamp_ns / 1e9
        for mark, fake in reversed(self._marks):
            if real >= mark:
                return fake
        first, fake = self._marks[0]
        return fake - timedelta(seconds=first - real)  # older than the clock

    def _moved(self) -> None:
        self._marks.append((time.time(), self._now))
        del self._marks[1:-64]  # bounded: only recent writes matter

    def set(self, instant: datetime) -> None:
        """Step the wall clock (like `date -s`): monotonic time does not move."""
        self._now = instant.astimezone(UTC)
        self._moved()

    def advance(self, delta: timedelta) -> None:
        """Let time pass."""
        self._now += delta
        self._mono += delta.total_seconds()
        self._moved()

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> None:
        if instant > self._now:
            self.advance(instant - self._now)


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
