"""What the human tables of smartcronctl share: a console as wide as the terminal (or
PIPE_WIDTH when piped), times as `Dec 05 01:00` in local time, durations as `3m12s`.

rich is imported lazily (only the table commands need it: completion stays fast).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = ["PIPE_WIDTH", "console", "duration", "grid", "short_time"]

# Piped output has no terminal to measure: rich's 80 wraps every row, a table as wide
# as its content can be 170 and wraps in a mail or a pager. COLUMNS, if set, wins.
PIPE_WIDTH = 120


def console() -> Any:
    """A rich Console: the terminal's width, COLUMNS, or PIPE_WIDTH when piped."""
    from rich.console import Console

    out = Console(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out = Console(highlight=False, width=PIPE_WIDTH)
    return out


def grid(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    give: Sequence[tuple[str, int]] = (),
) -> Any:
    """A borderless table of one-line rows that fits `width`: when it does not, the
    columns in `give` are cut (with `…`) in turn, each down to its floor, as `(name,
    floor)` says; a column may be named twice (first a little, later more)."""
    from rich.table import Table

    need = {name: len(name) for name in columns}
    for cells in rows:
        for name, cell in zip(columns, cells, strict=True):
            need[name] = max(need[name], len(cell))
    over = sum(need.values()) + 2 * (len(columns) - 1) - width
    for name, floor in give:
        if over <= 0:
            break
        cut = max(0, min(over, need[name] - floor))
        need[name] -= cut
        over -= cut
    out = Table(box=None, pad_edge=False, header_style="bold")
    for name in columns:
        out.add_column(name, width=need[name], no_wrap=True, overflow="ellipsis")
    for cells in rows:
        out.add_row(*cells)
    return out


def short_time(iso: str | None) -> str:
    """`Dec 05 01:00` in local time; `` for None."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%b %d %H:%M")


def duration(seconds: float | None) -> str:
    """`45s`, `3m12s`, `2h05m`, `3d04h`; `1.2s` under ten seconds; `` for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
