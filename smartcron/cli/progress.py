"""Progress bars with ETA on stderr for the long commands (bench-ai, train, simulate,
trace-gen, trace-record).

Only when stderr is a terminal: piped or redirected, a bar is a no-op, so logs and
captured output carry no progress noise (and stdout never does). rich is imported
lazily, only when a bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


class Bar:
    """One bar, reused phase after phase; every method is a no-op when not shown."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress, self._task = progress, task
        self._steps = 0

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def phase(self, text: str, total: float | None = None) -> None:
        """A new phase: its text, its total (None: unknown), its ETA from now on."""
        if self._progress is not None:
            self._progress.reset(self._task, total=total, description=text)

    def update(self, done: float, total: float | None = None) -> None:
        """`done` of `total` (the simulator's progress callback has this signature)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def advance(self, steps: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def step(self, text: str) -> None:
        """The next of a known number of named steps (the bar's total): the ones before
        it are done; the ETA is then from the steps' mean length."""
        if self._progress is not None:
            self._progress.update(self._task, completed=self._steps, description=text)
        self._steps += 1


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (default: stderr) is a terminal a bar may draw on."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: no bar
        return False


@contextmanager
def progress_bar(text: str, total: float | None = None) -> Iterator[Bar]:
    """A transient bar on stderr (description, bar, percentage, elapsed, ETA), or a
    no-op Bar when stderr is not a terminal."""
    if not is_terminal():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield Bar(progress, progress.add_task(text, total=total))


def plural(count: int, noun: str) -> str:
    """`1 row`, `2 rows`, `1440 rows` (no separator: scripts grep these lines)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
