"""kill -9 at random moments: the real daemon on a fast clock (libfaketime), restarted each time.

The daemon runs under libfaketime at SPEED times real time, so a minute lasts three real
seconds; every restart continues the same fake time line (each process is started at the
fake instant the test's own mapping says it is now). Jobs run without the preload (cron
gives them a clean environment), so `sleep 1` lasts SPEED fake seconds.

Crontab: a plain line and two smart jobs every minute, max_concurrent = 1, so each minute
one smart firing waits for capacity (a deferral) while the other runs. Counted at the end
from the history database and the daemon's logs:
- doubled: a plain minute run twice, or a smart firing started twice: must be 0;
- lost: a plain minute at whose top a daemon was up (past its start-up) that neither ran
  nor was logged as not run, or a smart minute after the first start with no firing row
  (nothing deferred is lost, even in the downtime: the windows outlast it): must be 0.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fasttimekit import LIBS, FastTime, faketime_env

BIN = Path(sys.executable).parent
STARTUP = timedelta(seconds=20)  # fake time (1 s real) a restart may take to see a minute
KILLS = 10

pytestmark = pytest.mark.skipif(not LIBS, reason="libfaketime is not installed (faketime)")

CRONTAB = """\
MAILTO=""
* * * * * echo plain
#@smart name=alpha window=5m
* * * * * sleep 1
#@smart name=beta window=5m
* * * * * sleep 1
"""


@dataclass
class Life:
    proc: subprocess.Popen[bytes]
    started: datetime
    killed: datetime | None = None


def start(config: Path, clock: FastTime, log: Path) -> Life:
    # libfaketime's "@" start has whole seconds: wait for the next fake second, then exec.
    whole, env = faketime_env(clock)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "smartcron"), "--user", "--foreground", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return Life(proc, whole)


def kill(life: Life, clock: FastTime) -> None:
    life.proc.send_signal(signal.SIGKILL)
    life.killed = clock.now()
    life.proc.wait(timeout=10)


def minute_tops(lives: list[Life], margin: timedelta) -> tuple[set[datetime], set[datetime]]:
    """(sure, unsure): minute tops inside a life past `margin` after its start and at
    least a second before its kill; the tops near either end are unsure."""
    sure: set[datetime] = set()
    unsure: set[datetime] = set()
    for life in lives:
        assert life.killed is not None
        top = life.started.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while top <= life.killed:
            inside = top - life.started >= margin and life.killed - top >= timedelta(seconds=1)
            (sure if inside else unsure).add(top)
            top += timedelta(minutes=1)
    return sure, unsure - sure


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(second=0, microsecond=0)


@pytest.mark.slow
def test_kill_9_loop_doubles_nothing_and_loses_nothing_outside_crons_rules(tmp_path):
    tab = tmp_path / "crontab"
    tab.write_text(CRONTAB)
    tab.chmod(0o600)
    config = tmp_path / "smartcron.toml"
    config.write_text(
        'user_crontab = "crontab"\nstate_dir = "state"\nrun_dir = "run"\n'
        'jobs_dir = "jobs"\nmail_command = "/bin/true"\nmax_concurrent = 1\n'
    )
    log = tmp_path / "daemon.log"
    rng = random.Random(int(os.environ.get("KILL_SEED", "11")))  # KILL_SEED=N: other moments
    clock = FastTime(datetime(2026, 3, 10, 0, 50, 40, tzinfo=UTC))
    lives = [start(config, clock, log)]
    try:
        for number in range(KILLS):
            if number == KILLS // 2:  # one kill 50 ms after a minute boundary
                top = clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
                clock.sleep_until(top + timedelta(milliseconds=50))
            else:
                clock.sleep_until(clock.now() + timedelta(seconds=rng.uniform(15, 80)))
            kill(lives[-1], clock)
            time.sleep(rng.uniform(0.0, 0.5))
            lives.append(start(config, clock, log))
        clock.sleep_until(clock.now() + timedelta(minutes=2, seconds=30))
        lives[-1].killed = clock.now()  # a stopping daemon starts no new minute
        lives[-1].proc.send_signal(signal.SIGTERM)
        lives[-1].proc.wait(timeout=30)
    finally:
        for life in lives:
            if life.proc.poll() is None:
                life.proc.kill()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]

    db = tmp_path / "state" / "history.db"
    plain = [when(s) for (s,) in rows(db, "SELECT scheduled FROM runs WHERE command='echo plain'")]
    doubled_plain = len(plain) - len(set(plain))
    starts = rows(
        db, "SELECT firing_id, COUNT(*) FROM runs WHERE firing_id IS NOT NULL GROUP BY firing_id"
    )
    doubled_smart = sum(count - 1 for _, count in starts if count > 1)
    assert (doubled_plain, doubled_smart) == (0, 0)

    sure, unsure = minute_tops(lives, STARTUP)
    # A plain firing a kill (or the downtime) kept from starting is counted, not lost:
    # cron(8) does not re-run a minute, and the restarted daemon records each in not_run.
    not_run: set[datetime] = set()
    (plain_id,) = rows(db, "SELECT DISTINCT job_id FROM runs WHERE command='echo plain'")
    for first, last in rows(db, f"SELECT first, last FROM not_run WHERE job_id='{plain_id[0]}'"):
        top = when(first)
        while top <= when(last):
            not_run.add(top)
            top += timedelta(minutes=1)
    assert not set(plain) & not_run  # a minute both run and counted as not run
    lost_plain = sorted(sure - set(plain) - not_run)
    assert lost_plain == [], f"plain minutes lost: {lost_plain}"
    assert set(plain) <= sure | unsure  # nothing ran at a minute no daemon saw

    firings = rows(db, "SELECT job_id, nominal, state FROM firings")
    by_job: dict[str, set[datetime]] = {}
    for job_id, nominal, _ in firings:
        by_job.setdefault(job_id, set()).add(when(nominal))
    assert len(by_job) == 2
    first, last = min(sure | unsure), max(sure)
    expected = {
        first + timedelta(minutes=k) for k in range((last - first) // timedelta(minutes=1) + 1)
    }
    lost_smart = {job: sorted(expected - got) for job, got in by_job.items() if expected - got}
    assert lost_smart == {}, f"smart minutes lost: {lost_smart}"
    print(
        f"kills={KILLS} plain_runs={len(plain)} plain_not_run_logged={len(not_run)} "
        f"smart_firings={len(firings)} doubled=0 lost=0"
    )
