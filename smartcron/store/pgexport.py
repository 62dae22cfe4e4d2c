"""A fleet's history as one SQLite history, for `smartcronctl train --history-url`:
every host's runs and decisions, so that the trainer (smartcron.ai.train) reads it as
it reads a daemon's own file, unchanged.

Pooled, with per-host job histories: one model learns from every host's rows, and each
job id is prefixed with its host (`host-a/backup`), so that a job's past (its failure
rate, its runtimes: the job features) is the one its own host saw. The host itself is
not a feature: a model must also serve a host that joins the fleet later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartcron.store.history import HistoryStore
from smartcron.store.pgconn import PgConnection
from smartcron.store.runrecords import RUN_COLUMNS

_RUNS = tuple(c for c in RUN_COLUMNS if c != "firing_id")  # firings stay on their host
_DECISIONS = ("id", "job_id", "at", "verdict", "until", "reason", "snapshot", "model")
BATCH = 2000


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' if n == "user" else n for n in names)


def _rows(db: PgConnection, table: str, names: tuple[str, ...]) -> Iterator[list[Any]]:
    """Every row of `table`, the job id prefixed with the host, in batches."""
    last = 0
    while True:
        with db.transaction() as cur:
            cur.execute(
                f"SELECT {_quoted(names)}, host FROM {table} WHERE id > %s"
                " ORDER BY id LIMIT %s".encode(),
                (last, BATCH),
            )
            batch = cur.fetchall()
        if not batch:
            return
        at = names.index("job_id")
        for row in batch:
            values = list(row[:-1])
            values[at] = f"{row[-1]}/{values[at]}"
            yield values
        last = batch[-1][0]


def fleet_to_sqlite(url: str, path: Path, password_file: Path | None = None) -> dict[str, int]:
    """Copy the fleet's runs and decisions into a new history at `path`; runs by host."""
    db = PgConnection(url, password_file=password_file)
    store = HistoryStore.open(path)
    hosts: dict[str, int] = {}
    try:
        with store.connection(write=True) as conn:
            runs = f"INSERT INTO runs ({', '.join(_RUNS)}) VALUES ({', '.join('?' * len(_RUNS))})"
            for values in _rows(db, "runs", _RUNS):
                conn.execute(runs, values)
                host = str(values[_RUNS.index("job_id")]).split("/", 1)[0]
                hosts[host] = hosts.get(host, 0) + 1
            marks = ", ".join("?" * len(_DECISIONS))
            decisions = f"INSERT INTO decisions ({', '.join(_DECISIONS)}) VALUES ({marks})"
            conn.executemany(decisions, _rows(db, "decisions", _DECISIONS))
    finally:
        store.close()
        db.close()
    return hosts
