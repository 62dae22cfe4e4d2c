"""cron's notion of time, as a pure state machine, and the pure "what is due" function.

Debian's cron.c counts time in *local wall-clock minutes* and wakes once a minute;
when the minute it sees is not the one after the last, it applies its clock-change
rules (`smartcron.cron.clockrules`: late wake-up, DST begins, DST ends, correction).
`Ticker` replays that loop minute by minute.

SmartCron does not wake every minute, but it feeds this machine the minutes it would
have seen (see `observed_minutes`), so it makes exactly cron's choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from smartcron.cron.clockrules import WakeupKind, classify
from smartcron.cron.schedule import matches
from smartcron.smart.jobs import Job

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
        self.running_utc: int | None = None  # and the real minute it was observed in

    def observe(self, minute: int, utc_minute: int | None = None) -> list[Tick]:
        """The ticks to run now that the clock reads local minute `minute`."""
        seen = self.running_utc is None or utc_minute is None or utc_minute == self.running_utc
        if minute == self.running and seen:
            return []  # the same minute seen again (a small step back): cron sleeps on
        # A new real minute reading the same local one is a zone going back by a minute
        # or less: a jump of 0 for cron.c, which runs wildcard jobs again.
        self.running, self.running_utc = minute, utc_minute
        jump = classify(minute - self.virtual)
        if jump is WakeupKind.BACK:  # virtual time waits until the clock is past it again
            wild, fixed = jump.runs_repeated(wildcard=True), jump.runs_repeated(wildcard=False)
            return [Tick(minute, wild=wild, fixed=fixed, utc_minute=utc_minute)]
        skipped = range(self.virtual + 1, minute)
        self.virtual = minute
        wild, fixed = jump.runs_skipped(wildcard=True), jump.runs_skipped(wildcard=False)
        if wild == fixed:  # next minute, late wake-up, correction: every minute in order
            return [*(Tick(m) for m in skipped if wild), Tick(minute, utc_minute=utc_minute)]
        # DST begins (cron.c's order): wildcard jobs once, then each fixed-time minute.
        ticks = [Tick(minute, wild=True, fixed=False, utc_minute=utc_minute)]
        ticks += [Tick(m, wild=False, fixed=True) for m in [*skipped, minute]]
        return ticks


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


def instant_of(minute: int, utc_minute: int | None, zone: tzinfo) -> datetime:
    """The real instant of a tick (for history): its observed minute, else its wall time."""
    if utc_minute is not None:
        return datetime.fromtimestamp(utc_minute * 60, UTC)
    return wall_of(minute).replace(tzinfo=zone).astimezone(UTC)
