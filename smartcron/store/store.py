"""The run store's interface: what the daemon and the history readers ask of a history,
on SQLite (history.HistoryStore, every daemon's own) or PostgreSQL (pgstore, a fleet's).
tests/test_store_contract.py runs the same tests against both."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from smartcron.store.runrecords import RunEnd, RunRow, RunStart


class RunStore(Protocol):
    """`host` names the rows this store writes; every row read carries its host."""

    host: str
    path: str  # what messages name (a file, or a URL without its secrets)

    def record_start(self, start: RunStart) -> int:
        """A 'running' row as the job starts; its id."""
        ...

    def record_end(self, run_id: int, end: RunEnd) -> None:
        """Complete a run begun by `record_start`."""
        ...

    def mark_interrupted_runs(self, reason: str) -> int:
        """Earlier daemons' (of this host) 'running' rows become 'interrupted'; how many."""
        ...

    def prune(self, older_than: timedelta, now: datetime) -> int:
        """Delete what finished before `now - older_than`."""
        ...

    def runs(
        self, job_id: str | None = None, limit: int = 50, *, with_output: bool = False
    ) -> list[RunRow]:
        """The latest runs, newest first, without output unless asked."""
        ...

    def run(self, run_id: int, *, with_output: bool = True) -> RunRow | None: ...

    def close(self) -> None: ...
