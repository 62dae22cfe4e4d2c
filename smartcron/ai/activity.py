"""P(user active at a later slot), by how long the user has been away now (issue 13).

The daemon samples the user's idle time every SAMPLE_EVERY_MIN minutes while it gates
smart jobs (the history's ``presence`` table), whether or not a firing is being decided:
the decisions' own snapshots are a biased sample of the day (firings wait, and are
decided again, mostly while the user is active or the load is high), and a forecast
learnt from them lost 11 points of interference on the development seeds (docs/ai.md,
"Seventh round"). From those samples `fit` learns, per (how long away now, lead) cell,

    P(active at t + lead) = share(t + lead) + beta * (active now - share(now)) + gamma

where share is the hour-of-week P(active) (profile.active_table of the same samples).
Away for 2 minutes at 15:00 is a break (the user is back soon); away for an hour at 15:00
is a day that ended early. The cells tell them apart. A lead beyond MAX_LEAD_MIN, or a
cell with fewer than MIN_PAIRS pairs, says nothing (None): the forecast without samples
stands (profile.p_active_at), not the bare hour's share, which on a server whose admin
is rarely logged in would count a two-minute pause as gone for the day. A lead shorter
than the first cell's runs from the state now (known at lead 0) to that cell's forecast.
Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

SAMPLE_EVERY_MIN = 5  # the daemon's (and the simulator's) presence sampling period
AWAY_EDGES_MIN = (3, 10, 30, 90, 240)  # away-for buckets 1..6; 0: active now
LEAD_BIN_MIN = 5.0  # cell k holds the leads nearest k x 5 minutes (1 <= k <= 48)
MAX_LEAD_MIN = 240.0
MIN_PAIRS = 30  # a cell with fewer sample pairs says nothing (the hour's share stands)
# Fewer samples than this (about 3.5 days) and training keeps the snapshot forecast.
MIN_SAMPLES = 1000


def sampled(at: datetime) -> bool:
    """Whether the minute holding `at` is a presence sample's (every SAMPLE_EVERY_MIN
    minutes of the UTC clock: the daemon and the simulator sample the same minutes)."""
    return int(at.timestamp() // 60) % SAMPLE_EVERY_MIN == 0


def next_sample(after: datetime) -> datetime:
    """The first sample minute after the minute holding `after`."""
    minute = int(after.timestamp() // 60) + 1
    minute += -minute % SAMPLE_EVERY_MIN
    return datetime.fromtimestamp(minute * 60.0, UTC)


def hour_of_week(at: datetime, tz: tzinfo = UTC) -> int:
    """0 (Monday 00:xx) .. 167 (Sunday 23:xx), in `tz`."""
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


def active_table(
    samples: Iterable[tuple[datetime | None, float | None]],
    tz: tzinfo,
    idle_below: float,
    prior: float = 2.0,
) -> list[float]:
    """P(user active: idle < `idle_below` s) per hour of week from (instant, idle s)
    samples, one per minute, shrunk towards the overall share where samples are few."""
    seen: dict[datetime, float] = {}
    for at, idle in samples:
        if at is not None and idle is not None:
            seen.setdefault(at.replace(second=0, microsecond=0), idle)
    counts, actives = [0] * 168, [0] * 168
    for at, idle in seen.items():
        how = hour_of_week(at, tz)
        counts[how] += 1
        actives[how] += idle < idle_below
    share = sum(actives) / sum(counts) if seen else 0.5
    return [
        round((a + prior * share) / (n + prior), 4) for a, n in zip(actives, counts, strict=True)
    ]


_BUCKETS = len(AWAY_EDGES_MIN) + 2
_LEADS = int(MAX_LEAD_MIN / LEAD_BIN_MIN)

Cell = tuple[float, float] | None  # (beta, gamma)


def away_bucket(idle_s: float, idle_below: float) -> int:
    """0 if active now (idle below `idle_below`), else 1.. by minutes away."""
    if idle_s < idle_below:
        return 0
    minutes = idle_s / 60.0
    for k, edge in enumerate(AWAY_EDGES_MIN):
        if minutes < edge:
            return k + 1
    return _BUCKETS - 1


@dataclass(frozen=True, slots=True)
class ActivityForecast:
    """The fitted cells: `cells[bucket][lead bin]`."""

    cells: tuple[tuple[Cell, ...], ...]

    def cell(self, idle_s: float, idle_below: float, lead: float) -> Cell:
        """The cell for a user idle `idle_s` seconds now, `lead` minutes ahead (None: the
        samples say nothing there: a lead beyond MAX_LEAD_MIN, or too few pairs)."""
        k = _lead_cell(lead)
        return None if k is None else self.cells[away_bucket(idle_s, idle_below)][k]

    def row(self, idle_s: float, idle_below: float) -> tuple[Cell, ...]:
        """The cells (by lead) for a user idle `idle_s` seconds now."""
        return self.cells[away_bucket(idle_s, idle_below)]

    def p_active(
        self, share_then: float, share_now: float, idle_s: float, idle_below: float, lead: float
    ) -> float | None:
        """P(active `lead` minutes from now) for a user idle `idle_s` seconds now; None
        where the cell says nothing (the caller's forecast without samples stands)."""
        row, active = self.row(idle_s, idle_below), float(idle_s < idle_below)  # bucket 0
        return p_from_row(row, active, share_then, share_now, lead)

    def to_dict(self) -> dict:
        return {
            "away_edges_min": list(AWAY_EDGES_MIN),
            "lead_bin_min": LEAD_BIN_MIN,
            "cells": [[None if c is None else [c[0], c[1]] for c in row] for row in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ActivityForecast:
        """ValueError if the layout is not this version's or a value is not finite."""
        if list(data["away_edges_min"]) != list(AWAY_EDGES_MIN) or float(
            data["lead_bin_min"]
        ) != float(LEAD_BIN_MIN):
            raise ValueError("activity: another bucket layout")
        rows = data["cells"]
        if len(rows) != _BUCKETS or any(len(row) != _LEADS for row in rows):
            raise ValueError(f"activity: {_BUCKETS} x {_LEADS} cells expected")
        cells = tuple(
            tuple(None if c is None else (float(c[0]), float(c[1])) for c in row) for row in rows
        )
        if not all(math.isfinite(v) for row in cells for c in row if c for v in c):
            raise ValueError("activity: non-finite value")
        return cls(cells)


def fit(
    samples: Sequence[tuple[datetime, float]],
    share: Callable[[datetime], float],
    idle_below: float,
) -> ActivityForecast | None:
    """The cells from (instant, idle s) samples (any order; one per minute counts), the
    hour-of-week `share` their own; None with fewer than MIN_SAMPLES."""
    seen: dict[int, float] = {}
    for at, idle in samples:
        seen.setdefault(int(at.timestamp() // 60), idle)
    if len(seen) < MIN_SAMPLES:
        return None
    minutes = sorted(seen)
    state = []  # (minute, bucket, departure from the hour's share)
    for m in minutes:
        idle = seen[m]
        at = datetime.fromtimestamp(m * 60.0, UTC)
        state.append((m, away_bucket(idle, idle_below), float(idle < idle_below) - share(at)))
    # per cell: n, sum x, sum y, sum xx, sum xy (x: the departure now, y: then)
    sums = [[[0.0] * 5 for _ in range(_LEADS)] for _ in range(_BUCKETS)]
    for i, (m, bucket, x) in enumerate(state):
        row = sums[bucket]
        for j in range(i + 1, len(state)):
            k = _lead_cell(state[j][0] - m)
            if k is None:
                break
            y = state[j][2]
            s = row[k]
            s[0] += 1
            s[1] += x
            s[2] += y
            s[3] += x * x
            s[4] += x * y
    return ActivityForecast(tuple(tuple(_cell(s) for s in row) for row in sums))


def p_from_row(
    row: Sequence[Cell], active: float, share_then: float, share_now: float, lead: float
) -> float | None:
    """`ActivityForecast.p_active` from the pause's row of cells and whether the user is
    active now (1.0) or not (0.0); None where the lead's cell says nothing."""
    k = _lead_cell(lead)
    cell = None if k is None else row[k]
    if cell is None:
        return None
    beta, gamma = cell
    p = min(1.0, max(0.0, share_then + beta * (active - share_now) + gamma))
    if lead < LEAD_BIN_MIN:  # from the state now (lead 0) to the first cell's
        p += (1.0 - lead / LEAD_BIN_MIN) * (active - p)
    return p


def _lead_cell(lead: float) -> int | None:
    """The cell of a lead in minutes (the nearest multiple of LEAD_BIN_MIN, at least
    the first); None beyond MAX_LEAD_MIN."""
    k = max(1, round(lead / LEAD_BIN_MIN))
    return k - 1 if k <= _LEADS else None


def _cell(s: list[float]) -> Cell:
    n, sx, sy, sxx, sxy = s
    if n < MIN_PAIRS:
        return None
    var = sxx / n - (sx / n) ** 2
    beta = (sxy / n - sx * sy / n / n) / var if var > 1e-6 else 0.0
    return (round(beta, 5), round(sy / n - beta * sx / n, 5))
