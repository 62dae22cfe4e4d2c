"""What the dashboard asks for (DashQuery) and what it shows (DashData): plain values,
aggregated server-side, that page.py renders and data.data_json serialises."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Caps on what one page carries, whatever the history holds (a job with 100,000 runs
# keeps the page small): the last RUNS_PER_JOB runs of each job in the window (counts,
# failure rates and by-hour rates are over all of them, in SQL), the last
# FIRINGS_PER_JOB smart firings (or plain runs) of each job on the timeline.
RUNS_PER_JOB = 200
FIRINGS_PER_JOB = 300
# A run is flagged when its duration is outside [median / SLOW_FACTOR, median *
# SLOW_FACTOR] of its job's runs shown, once the job has MIN_RUNS_FOR_FLAG of them.
SLOW_FACTOR = 3.0
MIN_RUNS_FOR_FLAG = 5

Row = dict[str, Any]


@dataclass(frozen=True)
class DashQuery:
    """One request for the dashboard's data. `history` None: the config's (or user
    mode's default) history database, as `smartcronctl history` reads it. Rows of
    other owners than `viewer_uid` are dropped unless it is 0 (root sees all). `trace`
    (with `world`, and `crontab`, else the config's crontab) feeds the What-if view."""

    history: Path | None
    config: Path | None
    user_mode: bool
    days: int = 7
    job: str | None = None
    viewer_uid: int = field(default_factory=os.getuid)
    trace: Path | None = None
    crontab: Path | None = None
    world: Path | None = None


@dataclass(frozen=True)
class DashData:
    """Everything the page shows. Instants are ISO 8601 text (UTC offset included)."""

    generated: str
    start: str  # the window shown: [start, end)
    end: str
    days: int
    viewer: str  # a user name, or "root (all users)"
    mode: str
    mode_reason: str
    history: str  # the database's path
    history_note: str | None  # why there is nothing to show, when so
    jobs: list[Row]  # one per job: schedule, plain English, keys, next, last outcome
    files: list[Row]  # crontab files: path, refused (reason or None), warnings
    firings: list[Row]  # the timeline: per smart firing (or plain run), its segments
    runs: list[Row]  # the last RUNS_PER_JOB runs of each job, newest first
    stats: list[Row]  # per job: runs, failures, median, durations for the sparkline
    model: Row  # card, validation figures, calibration bins, retraining, by-hour rates
    whatif: Row | None  # simulate's metrics per policy; None: no trace given
    limits: Row  # the caps above, so the page can say them
