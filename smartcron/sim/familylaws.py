"""Failure laws for the scenario family (smartcron.sim.family): drawn at random per job,
with thresholds read from the member's own trace so that each cause really comes and
goes inside the job's window.

A cause is a world fail rule (``when`` conditions, ``p``). Thresholds are quantiles of the
column over the minutes of the job's windows (not its nominal minutes: that would let
cron's history show the cause), drawn per job. A job that is not pure noise keeps
drawing until at least one of its causes varies inside the window for a quarter of its
firings, and that cause is made strong (p >= 0.55): otherwise no policy could do much
better than cron on it.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, replace
from datetime import timedelta

from smartcron.sim.trace import Trace

_MINUTE = timedelta(minutes=1)
# (column, direction): a cause holds above (">") or below ("<") a drawn quantile
_LEVELS = (("load5", ">"), ("load1", ">"), ("ram_percent", ">"), ("disk_free_percent", "<"))
SAMPLED_FIRINGS = 40  # firings checked for a cause that varies inside the window
MIN_VARYING = 0.25  # ... in at least this share of them


@dataclass(frozen=True, slots=True)
class Cond:
    """One condition: `column` `op` `value` (op ">", "<", "==" or "range" low-high)."""

    column: str
    op: str
    value: float
    high: float = 0.0

    def text(self) -> str:
        """As a world file writes it (quoted: a bare number would be equality)."""
        if self.op == "range":
            return f'"{self.value:g}-{self.high:g}"'
        if self.op == "==":
            return f'"{self.value:g}"'
        return f'"{self.op}{self.value:g}"'

    def holds(self, x: float) -> bool:
        if x != x:  # NaN: the trace lacks the value (no battery), the condition fails
            return False
        if self.op == ">":
            return x > self.value
        if self.op == "<":
            return x < self.value
        if self.op == "==":
            return x == self.value
        if self.value <= self.high:
            return self.value <= x <= self.high
        return x >= self.value or x <= self.high  # a wrapping hour range


@dataclass(frozen=True, slots=True)
class Cause:
    when: tuple[Cond, ...]
    p: float
    label: str  # what it stands for, for the world's comments

    def yaml(self) -> str:
        inner = ", ".join(f"{c.column}: {c.text()}" for c in self.when)
        return f"      - when: {{{inner}}}  # {self.label}\n        p: {self.p:g}"


class Columns:
    """The trace's columns by minute, as floats (NaN: missing), plus hour and weekday."""

    NAMES = (
        "load1",
        "load5",
        "ram_percent",
        "disk_free_percent",
        "battery_percent",
        "on_ac",
        "idle_seconds",
    )

    def __init__(self, trace: Trace) -> None:
        self.minutes = n = len(trace)
        self.cols: dict[str, array[float]] = {name: array("d") for name in self.NAMES}
        self.cols["hour"], self.cols["weekday"] = array("d"), array("d")
        for i in range(n):
            snap = trace.at(trace.start + i * _MINUTE)
            for name in self.NAMES:
                value = getattr(snap, name)
                self.cols[name].append(float("nan") if value is None else float(value))
            self.cols["hour"].append(float(snap.at.hour))
            self.cols["weekday"].append(float(snap.at.weekday()))

    def holds(self, cause: Cause, i: int) -> bool:
        return all(c.holds(self.cols[c.column][i]) for c in cause.when)

    def quantile(self, column: str, minutes: list[int], q: float) -> float | None:
        values = sorted(v for i in minutes if (v := self.cols[column][i]) == v)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]


def window_minutes(windows: list[range], limit: int = 20_000) -> list[int]:
    """The minutes of the sampled windows (every few minutes past `limit`)."""
    every = [i for w in windows for i in w]
    step = max(1, len(every) // limit)
    return every[::step]


def varies(cols: Columns, cause: Cause, windows: list[range]) -> bool:
    """Whether the cause both holds and not inside the window, often enough."""
    mixed = 0
    for window in windows:
        seen = {cols.holds(cause, i) for i in window}
        mixed += len(seen) == 2
    return bool(windows) and mixed >= MIN_VARYING * len(windows)


def _level(rng: random.Random, cols: Columns, minutes: list[int], strong: bool) -> Cause | None:
    column, op = rng.choice(_LEVELS)
    q = rng.uniform(0.55, 0.92) if op == ">" else rng.uniform(0.08, 0.45)
    value = cols.quantile(column, minutes, q)
    if value is None:
        return None
    value = round(value, 1)
    return Cause((Cond(column, op, value),), _p(rng, strong), f"{column} {op} {value:g}")


def _p(rng: random.Random, strong: bool) -> float:
    return round(rng.uniform(0.55, 0.95) if strong else rng.uniform(0.15, 0.45), 2)


def draw_cause(
    rng: random.Random, cols: Columns, windows: list[range], *, battery: bool
) -> Cause | None:
    """One cause from the catalogue: hour band, load, user active, power, RAM, disk,
    weekday. None when the drawn kind does not apply (no battery)."""
    strong = rng.random() < 0.45
    kind = rng.choice(("hour", "level", "level", "idle", "power", "weekday"))
    if kind == "hour":
        # a band of 1-4 h somewhere in (or near) the window, not at the nominal hour
        first = rng.choice(windows)
        span = max(1, len(first) // 60)
        begin = (int(cols.cols["hour"][first[0]]) + rng.randint(0, span)) % 24
        end = (begin + rng.randint(1, 4) - 1) % 24
        cond = Cond("hour", "range", begin, end) if begin != end else Cond("hour", "==", begin)
        return Cause((cond,), _p(rng, strong), f"hours {begin:02d}-{end:02d}")
    if kind == "level":
        return _level(rng, cols, window_minutes(windows), strong)
    if kind == "idle":
        below = rng.choice((60, 120, 300, 600))
        cond = Cond("idle_seconds", "<", below)
        return Cause((cond,), _p(rng, strong), f"the user active (idle < {below} s)")
    if kind == "power":
        if not battery:
            return None
        if rng.random() < 0.5:
            return Cause((Cond("on_ac", "==", 0),), _p(rng, strong), "on battery")
        level = rng.choice((25, 35, 50, 70))
        when = (Cond("battery_percent", "<", level), Cond("on_ac", "==", 0))
        return Cause(when, _p(rng, strong), f"battery below {level} % unplugged")
    if rng.random() < 0.5:
        day = rng.randint(0, 6)
        return Cause((Cond("weekday", "==", day),), _p(rng, strong), f"weekday {day}")
    return Cause((Cond("weekday", "range", 5, 6),), _p(rng, strong), "the weekend")


def draw_causes(
    rng: random.Random, cols: Columns, windows: list[range], *, battery: bool
) -> list[Cause]:
    """1-3 causes, at least one of which varies inside the window (redrawn until so)."""
    for _ in range(40):
        causes = [
            cause
            for _ in range(rng.randint(1, 3))
            if (cause := draw_cause(rng, cols, windows, battery=battery)) is not None
        ]
        varying = [i for i, cause in enumerate(causes) if varies(cols, cause, windows)]
        if varying:  # the cause waiting can avoid is a strong one: a gap to close
            first = causes[varying[0]]
            causes[varying[0]] = replace(first, p=max(first.p, round(rng.uniform(0.55, 0.95), 2)))
            return causes
    # a long search failed (short windows on a flat trace): the user at the keyboard
    # or a high load1 are what changes minute to minute
    for below in (600, 60):
        cause = Cause((Cond("idle_seconds", "<", below),), 0.6, f"the user active ({below})")
        if varies(cols, cause, windows):
            return [cause]
    value = cols.quantile("load1", window_minutes(windows), 0.7) or 0.0
    return [Cause((Cond("load1", ">", round(value, 1)),), 0.6, "load1 high")]
