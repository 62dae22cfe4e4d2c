"""fleet: a fleet's PostgreSQL history (docs/fleet.md), on a real server started here
(tests/pgkit.py: initdb + pg_ctl, a Unix socket).

- Claim latency per firing, fleet=once: N claimers in N processes (3, then 10), each
  with its own connection, all claiming the same firing at once (a barrier), firing
  after firing; the latency of each claim call, median and p99; exactly one granted
  per firing is checked. Baseline: the same claim by a lone claimer.
- Records per second the PostgreSQL store takes from one daemon: the Uploader sending a
  SQLite history of runs (batches of 500 in one transaction each). Baseline: the same
  runs written to the SQLite history (record_start + record_end each, as the daemon).
- Daemon RSS, settled, with a history_url (psycopg imported, its connection open) and
  without, the same crontab, the same run.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import tempfile
import time
import unittest
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import BIN, Result, Row, median, percentile
from benchmarks.daemon import rss_kib, stop, write_config


@dataclass(frozen=True)
class Params:
    firings: int
    records: int
    settle_s: float


FULL = Params(firings=300, records=20_000, settle_s=3.0)
QUICK = Params(firings=100, records=5_000, settle_s=2.0)
TINY = Params(firings=5, records=200, settle_s=0.5)
FIELDS = (
    "claim_ms_3_median", "claim_ms_3_p99", "claim_ms_10_median", "claim_ms_10_p99",
    "claim_ms_1_median", "records_per_s", "sqlite_records_per_s", "rss_kib_fleet",
    "rss_kib_plain",
)  # fmt: skip
T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


class Unavailable(unittest.SkipTest):
    """No PostgreSQL on this machine (CI installs it; a developer's may not have it).
    unittest's SkipTest, so that pytest reports the smoke run as skipped, with why."""


def problem() -> str | None:
    """Why this benchmark cannot run here, or None (as benchmarks.debiancron.problem)."""
    from tests.pgkit import MISSING, pg_bin

    if pg_bin() is None:
        return f"fleet: {MISSING}"
    try:
        import psycopg  # noqa: F401  (the PostgreSQL driver, an optional dependency)
    except ImportError:
        return "fleet: needs psycopg (pip install smartcron[fleet])"
    return None


def _claimer(url: str, host: str, firings: int, barrier: object, out: object) -> None:
    """One process: claim each firing when every claimer is ready; (latencies, wins)."""
    from smartcron.store.claims import PgClaimer
    from smartcron.store.pgconn import PgConnection

    claimer = PgClaimer(PgConnection(url), host)
    claimer.claim("warm", "up", T0, T0)  # connect (and migrate) outside the timing
    took, won = [], []
    for i in range(firings):
        nominal = T0 + timedelta(minutes=i)
        barrier.wait()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        claim = claimer.claim("alice", "report", nominal, nominal)
        took.append(time.perf_counter() - t0)
        if claim.granted:
            won.append(i)
    out.put((took, won))  # type: ignore[attr-defined]


def claim_latency(url: str, claimers: int, firings: int) -> list[float]:
    """Every claim's latency (s); raises unless each firing was granted exactly once."""
    ctx = multiprocessing.get_context("fork")  # no connection is open in the parent
    barrier, out = ctx.Barrier(claimers), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(url, f"host-{n}", firings, barrier, out))
        for n in range(claimers)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    wins = sorted(i for _, won in results for i in won)
    if wins != list(range(firings)):
        raise RuntimeError(f"claims granted {len(wins)} times for {firings} firings")
    return [t for took, _ in results for t in took]


def upload_rate(url: str, directory: Path, records: int) -> tuple[float, float]:
    """(records/s sent to PostgreSQL, records/s written to SQLite) for `records` runs."""
    from smartcron.store.history import HistoryStore, RunEnd, RunStart
    from smartcron.store.pgstore import PgHistoryStore
    from smartcron.store.spool import Uploader

    history = HistoryStore.open(directory / "history.db", host="host-a")
    t0 = time.perf_counter()
    for i in range(records):
        at = T0 + timedelta(seconds=i)
        job = f"job-{i % 50}"
        start = RunStart(job_id=job, source="/etc/crontab", user="root", command=job,
                         started=at, scheduled=at)  # fmt: skip
        run_id = history.record_start(start)
        end = RunEnd(status="ok", ended=at + timedelta(seconds=2), exit_code=0, runtime_s=2.0,
                     output=b"x" * 200, output_size=200)  # fmt: skip
        history.record_end(run_id, end)
    sqlite_s = time.perf_counter() - t0
    up = Uploader(history, lambda: PgHistoryStore(url, host="host-a"))
    up.remote = PgHistoryStore(url, host="host-a")  # connected outside the timing
    t0 = time.perf_counter()
    sent = up.sync()
    pg_s = time.perf_counter() - t0
    history.close()
    if sent != records:
        raise RuntimeError(f"sent {sent} of {records} runs")
    return records / pg_s, records / sqlite_s


def daemon_rss(directory: Path, extra: str, settle_s: float) -> int:
    """The settled VmRSS (KiB) of a user daemon on a two-line crontab, `extra` config."""
    config = write_config(directory, "@daily true\n*/5 * * * * true\n")
    config.write_text(config.read_text() + extra)
    with (directory / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "smartcron"), "--user", "-f", "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=directory,
        )  # fmt: skip
    try:
        status = directory / "state" / "status.json"
        deadline = time.monotonic() + 30
        while not status.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "daemon.log").read_text()[-2000:])
            time.sleep(0.02)
        time.sleep(settle_s)
        return rss_kib(proc.pid)
    finally:
        stop(proc)


def run(params: Params) -> Result:
    from tests.pgkit import pg_server

    why = problem()
    if why is not None:
        raise Unavailable(why)
    result = Result(
        name="fleet",
        config="PostgreSQL (tests/pgkit.py) on a Unix socket, fsync off,"
        f" {params.firings} firings claimed by each fleet size, {params.records} runs uploaded",
        baseline="claims: a lone claimer; records: the same runs written to SQLite;"
        " RSS: the same daemon without a history_url",
    )
    fields: dict[str, object] = {}
    with pg_server() as server, tempfile.TemporaryDirectory(prefix="smartcron-fleet-") as tmp:
        lone = claim_latency(server.create_db(), 1, params.firings)
        fields["claim_ms_1_median"] = median(lone) * 1000
        for n in (3, 10):
            took = claim_latency(server.create_db(), n, params.firings)
            med, p99 = median(took) * 1000, percentile(took, 99) * 1000
            fields[f"claim_ms_{n}_median"], fields[f"claim_ms_{n}_p99"] = med, p99
            base = fields["claim_ms_1_median"]
            result.add(Row(f"claim, {n} daemons, median", med, "ms", base))  # type: ignore[arg-type]
            result.add(Row(f"claim, {n} daemons, p99", p99, "ms"))
        pg_rate, sqlite_rate = upload_rate(server.create_db(), Path(tmp), params.records)
        fields["records_per_s"], fields["sqlite_records_per_s"] = pg_rate, sqlite_rate
        result.add(Row("runs uploaded per second", round(pg_rate), "runs/s", round(sqlite_rate)))
        for name, extra in (("plain", ""), ("fleet", f'history_url = "{server.create_db()}"\n')):
            where = Path(tmp) / name
            where.mkdir()
            fields[f"rss_kib_{name}"] = daemon_rss(where, extra, params.settle_s)
    plain, fleet = fields["rss_kib_plain"], fields["rss_kib_fleet"]
    result.add(Row("daemon RSS with a history_url", fleet / 1024, "MiB", plain / 1024))  # type: ignore[operator]
    result.add(Row("daemon RSS without", plain / 1024, "MiB"))  # type: ignore[operator]
    result.notes.append(
        "Claimers are processes on this machine (one connection each), not hosts: the"
        " latency is the server's and the socket's, without a network's round trip."
    )
    result.fields.update(fields)
    return result
