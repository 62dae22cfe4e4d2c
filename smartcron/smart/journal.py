"""The journal lines of the smart decisions: one cron-like INFO line per decision that
changes when a job runs (deferred, waiting, forced at the deadline, skipped, started
late, retried), as cron logs CMD.

A firing is re-planned every minute while it waits; the Journal logs a deferral only
when its reason changes (figures aside: `load 4.2` and `load 4.3` are the same reason)
or its planned time moves by at least MOVED, so a long wait is a line or two, not one
per minute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container
from datetime import datetime, timedelta, tzinfo
from typing import Any

from smartcron.smart.machine import Effect

__all__ = ["MOVED", "Journal", "late_text"]

log = logging.getLogger("smartcron")

MOVED = timedelta(minutes=30)  # a planned start moved this far is worth a new line
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


def late_text(delay: timedelta) -> str:
    """`3m12s`, `2h05m`, `45s`: a delay as an operator reads it."""
    seconds = max(0, int(delay.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def _who(effect: Effect) -> tuple[str, str]:
    """(owner, `name source:line`) of the effect's job; its id when the job is gone."""
    job: Any = effect.job
    if job is None:
        return "?", effect.firing.job_id
    label = job.label if job.name is None else f"{job.name} {job.label}"
    return job.owner, label


def _moved(planned: datetime | None, before: datetime | None) -> bool:
    """A planned start set, or moved by MOVED or more, since the last line."""
    if planned is None:
        return False
    return before is None or abs(planned - before) >= MOVED


class Journal:
    """Logs the Effects the engine applies; remembers the last deferral logged per firing."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._told: dict[tuple[str, datetime], tuple[str, datetime | None]] = {}
        self._deferred: set[tuple[str, datetime]] = set()

    def __len__(self) -> int:
        """Firings remembered (each deferred one; `_told` holds a subset of them)."""
        return len(self._deferred)

    def retain(self, open_keys: Container[tuple[str, datetime]]) -> None:
        """Forget the firings closed without an Effect here (cancelled, dropped)."""
        self._told = {key: told for key, told in self._told.items() if key in open_keys}
        self._deferred = {key for key in self._deferred if key in open_keys}

    def _hhmm(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%H:%M")

    def effect(self, effect: Effect, now: datetime) -> None:
        """The line for `effect`, if it deserves one."""
        key = (effect.firing.job_id, effect.firing.nominal)
        kind = effect.kind
        if kind in ("defer", "wait"):
            self._defer(effect, key, now)
            return
        self._told.pop(key, None)
        late = key in self._deferred
        self._deferred.discard(key)
        owner, label = _who(effect)
        nominal = self._hhmm(effect.firing.nominal)
        if kind == "skip":
            log.info("(%s) SKIP (%s firing of %s): %s", owner, label, nominal, effect.reason)
        elif kind == "retry" and effect.until is not None:
            until = self._hhmm(effect.until)
            log.info("(%s) RETRY (%s firing of %s) at %s: %s",
                     owner, label, nominal, until, effect.reason)  # fmt: skip
        elif kind == "start" and "running despite" in effect.reason:
            log.info("(%s) FORCED (%s firing of %s) at its deadline: %s",
                     owner, label, nominal, effect.reason)  # fmt: skip
        elif kind == "start" and (late or now - effect.firing.nominal >= timedelta(minutes=1)):
            delay = late_text(now - effect.firing.nominal)
            log.info("(%s) START (%s firing of %s) %s late: %s",
                     owner, label, nominal, delay, effect.reason)  # fmt: skip

    def _defer(self, effect: Effect, key: tuple[str, datetime], now: datetime) -> None:
        self._deferred.add(key)
        reason = _FIGURE.sub("#", effect.reason)
        until = effect.until if effect.kind == "defer" else None
        # A look again in a minute (a constraint failing) is not a planned time.
        planned = until if until is not None and until - now > timedelta(minutes=1) else None
        told = self._told.get(key)
        if told is not None and told[0] == reason and not _moved(planned, told[1]):
            return
        self._told[key] = (reason, planned)
        owner, label = _who(effect)
        nominal = self._hhmm(effect.firing.nominal)
        if effect.kind == "wait":
            log.info("(%s) WAIT (%s firing of %s): %s", owner, label, nominal, effect.reason)
            return
        deadline = self._hhmm(effect.firing.deadline)
        at = f"until {self._hhmm(planned)}" if planned else f"checked each minute to {deadline}"
        log.info("(%s) DEFER (%s firing of %s) %s: %s", owner, label, nominal, at, effect.reason)
