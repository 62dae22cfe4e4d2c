"""The real daemon with a fleet's history_url (docs/fleet.md): its runs reach the server
under its fleet_host; with the server unreachable it runs its jobs all the same and
sends their runs when it can."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.pgkit import PgServer
from tests.realdaemon import runs, start, stop, write_config


def server_runs(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT host, command, status FROM runs ORDER BY local_id")
        return rows.fetchall()


def wait_runs(state: Path, n: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len([r for r in runs(state) if r[1] != "running"]) < n:
        assert time.monotonic() < deadline, runs(state)
        time.sleep(0.1)


def test_a_daemon_sends_its_runs_to_the_fleet_history_under_its_fleet_host(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    config = write_config(tmp_path, "@reboot echo hello\n", history_url=f'"{url}"',
                          fleet_host='"host-a"')  # fmt: skip
    proc = start(config)
    try:
        wait_runs(tmp_path / "state", 1)
    finally:
        out = stop(proc)  # the daemon sends what waits as it stops
    assert server_runs(url) == [("host-a", "echo hello", "ok")], out


def test_an_unreachable_server_stops_no_job_and_the_runs_follow_later(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    down = url.replace(f"port={pg.port}", f"port={pg.port + 1}")  # nobody listens there
    config = write_config(tmp_path, "@reboot echo offline\n", history_url=f'"{down}"',
                          fleet_host='"host-b"')  # fmt: skip
    proc = start(config)
    try:
        wait_runs(tmp_path / "state", 1)  # the job ran without the server
    finally:
        out = stop(proc)
    assert "fleet history:" in out and "sent when it returns" in out, out
    config.write_text(config.read_text().replace(down, url))
    proc = start(config)  # the server is back: the spooled run goes at the next stop
    time.sleep(1.0)
    out = stop(proc)
    assert server_runs(url) == [("host-b", "echo offline", "ok")], out
