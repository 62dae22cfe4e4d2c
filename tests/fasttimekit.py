"""Real daemons on a fast clock (libfaketime at SPEED times real time), for the kill -9
loop and the fleet's real-process test: the test's view of that clock, and the
environment that starts a daemon on it at a whole fake second."""

from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

SPEED = 20  # a fake minute lasts three real seconds
LIBS = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
NO_FAKETIME = "needs libfaketime (apt-get install faketime)"


@dataclass
class FastTime:
    """The test's view of the daemons' fake clock: fake = t0 + SPEED * real elapsed."""

    t0: datetime
    r0: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.t0 + timedelta(seconds=SPEED * (time.monotonic() - self.r0))

    def sleep_until(self, fake: datetime) -> None:
        delay = (fake - self.now()).total_seconds() / SPEED
        if delay > 0:
            time.sleep(delay)


def faketime_env(clock: FastTime) -> tuple[datetime, dict[str, str]]:
    """(the whole fake second a daemon started now begins at, its environment): libfaketime's
    "@" start has whole seconds, so this waits for the next one on `clock`'s time line."""
    whole = datetime.fromtimestamp(math.ceil(clock.now().timestamp()), UTC)
    clock.sleep_until(whole)
    env = {
        **os.environ,
        "LD_PRELOAD": LIBS[0],
        "FAKETIME": "@" + whole.strftime("%Y-%m-%d %H:%M:%S") + f" x{SPEED}",
        "FAKETIME_DONT_RESET": "1",
        "TZ": "UTC",
    }
    return whole, env
