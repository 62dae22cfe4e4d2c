"""A daemon's runs reach its fleet's PostgreSQL history (smartcron.store.spool): spooled
in its own SQLite history while the server is down, sent when it returns, nothing lost,
nothing twice; plain jobs run throughout."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from smartcron.store.history import HistoryStore, HistoryUnavailable, RunEnd, RunStart
from smartcron.store.pgstore import PgHistoryStore
from smartcron.store.spool import Uploader
from tests.harness import make, runs, utc
from tests.pgkit import PgServer

PLAIN = "/usr/bin/plain-job"
SMART = "/usr/bin/smart-job"
CRONTAB = f"* * * * * {PLAIN}\n#@smart window=10m ai=no\n*/2 * * * * {SMART}\n"


def server_rows(url: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT host, local_id, status FROM runs ORDER BY local_id").fetchall()


def test_two_minutes_without_the_server_lose_no_run_and_stop_no_plain_job(
    pg: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg.create_db()
    h = make(tmp_path, CRONTAB)
    h.history.host = "host-a"
    up = Uploader(h.history, lambda: PgHistoryStore(url, host="host-a"))
    h.run_until(utc("01:01"))
    assert up.sync() == 4  # 00:59 and 01:00 plain, 01:00 smart... and 01:01's plain
    pg.stop()
    try:
        with caplog.at_level(logging.WARNING, logger="smartcron"):
            for minute in ("01:02", "01:03"):
                h.run_until(utc(minute))
                with pytest.raises(HistoryUnavailable):
                    up.sync()
    finally:
        pg.start()
    down = [r for r in caplog.records if "fleet history" in r.getMessage()]
    assert len(down) == 1 and "sent when it returns" in down[0].getMessage()  # said once
    assert up.pending() == 3  # 01:02 plain and smart, 01:03 plain: spooled
    h.run_until(utc("01:04"))
    assert up.sync() == 5
    assert up.pending() == 0
    assert "reachable again; 5 waiting run(s) sent" in caplog.text
    local = [(r.host, r.id, r.status.value) for r in reversed(h.history.runs(limit=100))]
    assert [row[1] for row in local] == list(range(1, 10))
    assert server_rows(url) == local
    assert [r.start.scheduled.strftime("%H:%M") for r in runs(h, PLAIN)] == [  # type: ignore[union-attr]
        "00:59", "01:00", "01:01", "01:02", "01:03", "01:04"
    ]  # fmt: skip
    # sent again (a crash between sending and marking): nothing changes on the server
    with h.history.connection(write=True) as conn:
        conn.execute("UPDATE runs SET synced = 0")
    assert up.sync() == 9
    assert server_rows(url) == local


def test_a_run_sent_while_running_is_replaced_by_its_end(pg: PgServer, tmp_path: Path) -> None:
    url = pg.create_db()
    history = HistoryStore.open(tmp_path / "history.db", host="host-a")
    up = Uploader(history, lambda: PgHistoryStore(url, host="host-a"))
    start = RunStart(job_id="j", source="/etc/crontab", user="root", command="x",
                     started=utc("01:00"), scheduled=utc("01:00"))  # fmt: skip
    run_id = history.record_start(start)
    assert up.sync() == 1
    assert server_rows(url) == [("host-a", run_id, "running")]
    history.record_end(run_id, RunEnd(status="ok", ended=utc("01:00") + timedelta(seconds=5)))
    assert up.pending() == 1  # its end is not on the server yet
    assert up.sync() == 1
    assert server_rows(url) == [("host-a", run_id, "ok")]
    history.close()
