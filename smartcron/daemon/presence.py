"""The daemon's presence samples (smartcron.ai.activity): the user's idle time every
SAMPLE_EVERY_MIN minutes while it gates smart jobs, whether or not a firing is decided.

The activity forecast is learnt from these, not from the decisions' snapshots (a biased
sample of the day). The simulator writes the same minutes from its trace
(smartcron.sim.recorder). A sample is one small row; history_days prunes them with the
rest. The history's trouble never reaches the loop: a failed write is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from smartcron.ai.activity import next_sample, sampled
from smartcron.smart.monitor import Snapshot
from smartcron.store.history import HistoryError, HistoryStore

log = logging.getLogger("smartcron.daemon")


class PresenceSampler:
    """Takes a sample at each sample minute the daemon is awake for (`observe`), and
    says when the next one is due (`next_wake`) so a daemon with only hourly lines wakes."""

    def __init__(
        self,
        history: HistoryStore | None,
        snapshot: Callable[[datetime], Snapshot],
        enabled: bool = True,  # the config's presence: false, no sample is ever taken
    ) -> None:
        self.history = history if enabled else None
        self.snapshot = snapshot  # the wake-up's (Engine.snapshot_at)
        self._done: datetime | None = None  # the last sample minute taken

    def observe(self, now: datetime, gating: bool) -> None:
        """Sample at `now` if it is a sample minute not yet taken and smart jobs are gated."""
        minute = now.replace(second=0, microsecond=0)
        if self.history is None or not gating or not sampled(minute) or minute == self._done:
            return
        self._done = minute
        try:
            idle = self.snapshot(now).idle_seconds
            if idle is not None:
                self.history.record_presence([(minute, idle)])
        except HistoryError as err:
            log.warning("history: presence sample not written: %s", err)
        except Exception:  # a monitor's trouble must not stop cron
            log.exception("presence sample failed; carrying on")

    def next_wake(self, now: datetime, gating: bool) -> datetime | None:
        """The next sample minute (None: not sampling)."""
        if self.history is None or not gating:
            return None
        return next_sample(now)
