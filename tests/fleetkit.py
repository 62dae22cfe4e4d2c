"""A fleet of real `smartcron` processes on one fast fake clock (tests/test_fleet_real.py).

Each host is a whole daemon (`smartcron --user -f --config C`) with its own directory
(state, run, jobs, crontab) and `fleet_host`, all sharing one `history_url`. They run
under libfaketime at SPEED times real time, started together at one fake instant, so
their clocks agree as NTP keeps a real fleet's (docs/fleet.md). Jobs run without the
preload (cron gives them a clean environment). Logs go to a file per host (a pipe
nobody reads would fill and stop the daemon).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from tests.fasttimekit import FastTime, faketime_env
from tests.realdaemon import BIN, write_config

HOSTS = ("host-a", "host-b", "host-c")


@dataclass
class Host:
    name: str
    where: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def history(self) -> Path:
        return self.where / "state" / "history.db"

    @property
    def log(self) -> Path:
        return self.where / "daemon.log"

    def rows(self, sql: str, *args: object) -> list[tuple]:
        """A query on this host's own SQLite history (read-only; [] before it exists)."""
        if not self.history.exists():
            return []
        conn = sqlite3.connect(f"file:{self.history}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def runs(self, command: str) -> list[tuple[str, str, str]]:
        """(scheduled, started, status) of each local run of `command`, oldest first."""
        return self.rows(
            "SELECT scheduled, started, status FROM runs WHERE command = ? ORDER BY id", command
        )

    def reasons(self) -> list[str]:
        """Every decision's reason, oldest first."""
        return [r for (r,) in self.rows("SELECT reason FROM decisions ORDER BY id")]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> str:
        """SIGTERM (the daemon sends what waits for the server as it stops); its log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)  # a daemon the test stopped takes it too
            self.proc.wait(timeout=30)
        return self.log.read_text(errors="replace")


def hosts(top: Path, crontab: str, url: str, names: tuple[str, ...] = HOSTS) -> list[Host]:
    """One directory and configuration per host, each with its own copy of `crontab`."""
    made = []
    for name in names:
        where = top / name
        where.mkdir()
        config = write_config(where, crontab, history_url=f'"{url}"', fleet_host=f'"{name}"')
        made.append(Host(name, where, config))
    return made


def start_all(fleet: list[Host], clock: FastTime) -> None:
    """Start every daemon at the same whole fake second (libfaketime's "@" start has whole
    seconds), continuing `clock`'s time line."""
    _whole, env = faketime_env(clock)
    for host in fleet:
        with host.log.open("ab") as out:
            argv = [str(BIN / "smartcron"), "--user", "-f", "--config", str(host.config)]
            # a session of its own: stop_all sweeps whatever the daemon forked (its group)
            host.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )


def stop_all(fleet: list[Host]) -> dict[str, str]:
    """Stop every daemon still running (SIGTERM, else SIGKILL); each host's log."""
    logs = {}
    for host in fleet:
        try:
            logs[host.name] = host.stop()
        except subprocess.TimeoutExpired:
            host.kill()
            logs[host.name] = host.log.read_text(errors="replace")
        finally:  # nothing of a host outlives the test (a CI run once left a daemon behind)
            if host.proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(host.proc.pid, signal.SIGKILL)
    return logs


def server(url: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def hhmm(db_time: str | None) -> str:
    """'01:03' of a history instant ('2026-03-10T01:03:00...Z')."""
    assert db_time is not None
    return db_time[11:16]


def when(db_time: str) -> datetime:
    return datetime.fromisoformat(db_time.replace("Z", "+00:00"))


def minutes(first: str, count: int) -> list[str]:
    """['01:00', '01:01', ...]: `count` minutes from HH:MM `first`."""
    start = datetime.strptime(first, "%H:%M")
    return [f"{start + timedelta(minutes=k):%H:%M}" for k in range(count)]
