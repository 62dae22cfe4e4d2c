"""cron's notion of time, as a pure state machine, and the pure "what is due" function.

Debian's cron.c counts time in *local wall-clock minutes* and wakes once a minute.
When the minute it sees is not the one after the last, it classifies the change
(cron(8), "clock changes"); a job is "wildcard" when its minute or hour field starts
with `*` (@hourly included), else "fixed-time":

  +1 .. +5 minutes     late wake-up: run every job of every missed minute
  +6 min .. +3 hours   DST begins / clock forward: wildcard jobs once for the new
                       minute, fixed-time jobs for every skipped minute
  -3 hours .. 0        DST ends / clock back: wildcard jobs for the new minute only;
                       fixed-time jobs are not repeated (virtual time stays put)
  beyond 3 hours       a correction: run the new minute's jobs, no catch-up

SmartCron does not wake every minute, but it feeds this machine the minutes it would
have seen (see `observed_minutes`), so it makes exactly cron's choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from smartcron.jobs import Job
from smartcron.schedule import matches

_MAX_SMALL_JUMP = 5  # minutes
_MAX_DST_JUMP = 3 * 60  # minutes

EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Tick:
    """Run the jobs of local minute `minute`: the wildcard ones, the fixed ones, or both."""

    minute: int  # local wall-clock minutes since the epoch (cron's clockTime)
    wild: bool = True
    fixed: bool = True
    utc_minute: int | None = None  # the real minute it was observed in, when known


def local_minute(utc_minute: int, zone: tzinfo) -> int:
    """cron.c's set_time: (time + GMT offset) / 60."""
    offset = datetime.fromtimestamp(utc_minute * 60, UTC).astimezone(zone).utcoffset()
    return utc_minute + int((offset or timedelta()).total_seconds()) // 60


def wall_of(minute: int) -> datetime:
    """The naive wall-clock datetime of a local minute number (cron's gmtime trick)."""
    return EPOCH + timedelta(minutes=minute)


class Ticker:
    """cron.c's main loop over virtualTime / timeRunning, minus the sleeping."""

    def __init__(self, minute: int) -> None:
        self.virtual = minute  # all jobs up to this local minute have run
        self.running = minute  # the local minute last observed

    def observe(self, minute: int, utc_minute: int | None = None) -> list[Tick]:
        """The ticks to run now that the clock reads local minute `minute`."""
        if minute == self.running:
            return []
        self.running = minute
        diff = minute - self.virtual
        if diff == 1:
            self.virtual = minute
            return [Tick(minute, utc_minute=utc_minute)]
        if 0 < diff <= _MAX_SMALL_JUMP:  # woke up late: catch up on every minute
            ticks = [Tick(m) for m in range(self.virtual + 1, minute)]
            ticks.append(Tick(minute, utc_minute=utc_minute))
            self.virtual = minute
            return ticks
        if _MAX_SMALL_JUMP < diff <= _MAX_DST_JUMP:  # DST begins: wildcard once, fixed all
            ticks = [Tick(minute, wild=True, fixed=False, utc_minute=utc_minute)]
            ticks += [Tick(m, wild=False, fixed=True) for m in range(self.virtual + 1, minute + 1)]
            self.virtual = minute
            return ticks
        if -_MAX_DST_JUMP < diff <= 0:  # DST ends: wildcard jobs only; virtual time waits
            return [Tick(minute, wild=True, fixed=False, utc_minute=utc_minute)]
        self.virtual = minute  # a big correction: no catch-up
        return [Tick(minute, utc_minute=utc_minute)]


def observed_minutes(
    last_utc_minute: int, now_utc_minute: int, zone: tzinfo
) -> Iterator[tuple[int, int]]:
    """(utc minute, local minute) for each minute cron would have woken in since the last.

    Without a clock step the real minutes are contiguous, and each one's local minute
    follows from the zone's rules, so DST changes show up exactly as cron sees them.
    """
    for utc_minute in range(last_utc_minute + 1, now_utc_minute + 1):
        yield utc_minute, local_minute(utc_minute, zone)


def due(jobs: Iterable[Job], tick: Tick, zone: tzinfo) -> list[Job]:
    """The jobs that `tick` runs (cron.c's find_jobs). Pure."""
    wall = wall_of(tick.minute)
    out = []
    for job in jobs:
        spec = job.entry.spec
        if spec.reboot:
            continue
        if not (tick.wild if spec.wildcard else tick.fixed):
            continue
        when = wall
        if job.zone is not None and job.zone is not zone:
            # CRON_TZ: the same instant on the job's own wall clock.
            utc_minute = tick.utc_minute
            if utc_minute is None:
                utc_minute = tick.minute - (local_minute(tick.minute, zone) - tick.minute)
            instant = datetime.fromtimestamp(utc_minute * 60, UTC).astimezone(job.zone)
            when = instant.replace(tzinfo=None, fold=0)
        if matches(spec, when):
            out.append(job)
    return out
