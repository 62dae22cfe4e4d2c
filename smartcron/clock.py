"""Time as an injected dependency: the daemon never reads the wall clock directly."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


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


class FakeClock:
    """A clock that only moves when told to; sleeping jumps straight to the target."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, instant: datetime) -> None:
        """Step the wall clock (like `date -s`): monotonic time does not move."""
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Let time pass."""
        self._now += delta
        self._mono += delta.total_seconds()

    def sleep_until(self, instant: datetime, wake: threading.Event | None = None) -> None:
        if instant > self._now:
            self.advance(instant - self._now)
