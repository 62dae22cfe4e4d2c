"""Issue 17's fleet scenario with real `smartcron` processes (docs/fleet.md): three daemons,
each its own state directory and fleet_host, one PostgreSQL server (tests/pgkit.py), on
one fast fake clock (libfaketime, tests/fleetkit.py). tests/test_fleet.py runs the same
claims in-process on fake clocks; here the daemons, their uploads and their deaths are
real."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.smart.jobids import named_id
from smartcron.store.pgconn import PgConnection
from tests.fasttimekit import LIBS, NO_FAKETIME, FastTime
from tests.fleetkit import (
    Host,
    hhmm,
    hosts,
    minutes,
    server,
    start_all,
    stop_all,
    when,
)
from tests.pgkit import PgServer
from tests.polling import wait_for
from tests.realdaemon import BIN

pytestmark = pytest.mark.skipif(not LIBS, reason=NO_FAKETIME)

T0 = datetime(2026, 3, 10, 0, 59, 0, tzinfo=UTC)  # the fake instant the daemons start at
REPORT = "echo report"
PLAIN = "echo plain"
ONCE = f"#@smart name=report window=5m fleet=once ai=no\n* * * * * {REPORT}\n"


def at(hh_mm_ss: str) -> datetime:
    return datetime.combine(T0.date(), datetime.strptime(hh_mm_ss, "%H:%M:%S").time(), UTC)


def explain(fleet: list[Host], job: str) -> dict[str, list[dict]]:
    """`smartcronctl explain JOB --json`'s firings on each host, asked at once while the
    daemons run (a host that never ran a fleet=once job knows its name= only from its
    daemon's status: its history's firings carry the job's id)."""
    procs = {}
    for host in fleet:
        argv = [str(BIN / "smartcronctl"), "explain", job, "--config", str(host.config)]
        procs[host.name] = subprocess.Popen([*argv, "--limit", "20", "--json"], text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            env={**os.environ, "TZ": "UTC"})  # fmt: skip
    said = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        said[name] = json.loads(out)["firings"]
    return said


def no_traceback(logs: dict[str, str]) -> None:
    for name, text in logs.items():
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"


def test_three_real_daemons_run_each_firing_of_a_fleet_once_job_exactly_once(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    fleet = hosts(tmp_path, ONCE, url)
    clock = FastTime(T0)
    start_all(fleet, clock)
    try:
        clock.sleep_until(at("01:04:40"))
        # by the job's id: a host that never ran a fleet=once job knows its name= only
        # from its daemon's status, which a busy machine can be slow to answer
        owner = pwd.getpwuid(os.getuid()).pw_name
        said = explain(fleet, named_id(str(fleet[0].where / "crontab"), owner, "report"))
    finally:
        logs = stop_all(fleet)  # each sends what waits for the server as it stops
    no_traceback(logs)
    on_server = server(url, "SELECT host, scheduled, status FROM runs WHERE command = %s", REPORT)
    per_minute = Counter(hhmm(scheduled) for _, scheduled, _ in on_server)
    five = minutes("01:00", 5)
    assert [per_minute[m] for m in five] == [1] * 5, (on_server, logs)
    assert set(per_minute.values()) == {1}  # 01:05 too, if the stop came after it
    assert {status for *_, status in on_server} == {"ok"}
    runner = {hhmm(scheduled): host for host, scheduled, _ in on_server}
    # each daemon's own history agrees with the server: the same runs, no more
    for host in fleet:
        mine = sorted(hhmm(s) for s, _, _ in host.runs(REPORT))
        assert mine == sorted(m for m, h in runner.items() if h == host.name), host.name
    # a host that did not run a firing says who did (those whose lease ended: to 01:03)
    skipped: Counter[str] = Counter()
    for host in fleet:
        for firing in said[host.name]:
            minute = firing["nominal"][11:16]
            if minute not in five[:4] or runner[minute] == host.name:
                continue
            assert firing["state"] == "skipped", firing
            assert f"claimed by {runner[minute]} at {minute}:" in firing["trail"][-1], firing
            skipped[minute] += 1
    assert [skipped[m] for m in five[:4]] == [2] * 4  # both other hosts, each minute


# host-a's claim of the 01:01 firing commits slowly (a deferred trigger sleeps a real
# second, 20 fake ones, in its COMMIT), so the test can stop host-a there, see the claim
# committed, and kill it: it holds the claim and has certainly not started the job. The
# others' claims of that firing wait (20 s at most) for the first committed one, so
# host-a's comes first whoever asks first.
HOLD = """
CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON claims
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.host = 'host-a' AND NEW.nominal = '{nominal}')
    EXECUTE FUNCTION test_slow_commit();
CREATE FUNCTION test_after_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..400 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM claims WHERE owner = NEW.owner
                          AND name = NEW.name AND nominal = NEW.nominal);
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER test_after_first BEFORE INSERT ON claims FOR EACH ROW
    WHEN (NEW.host <> 'host-a' AND NEW.nominal = '{nominal}')
    EXECUTE FUNCTION test_after_first();
"""

COMMITTING = "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query = 'COMMIT'"
CLAIM = "SELECT host, claimed_at, started FROM claims WHERE nominal = %s"


def test_a_daemon_killed_holding_a_claim_before_starting_loses_the_firing_to_another(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    nominal = "2026-03-10T01:01:00.000000Z"
    conn = PgConnection(url)  # migrates, as a daemon does, so the triggers find claims
    with conn.transaction() as cur:
        cur.execute(HOLD.format(nominal=nominal).encode())
    conn.close()
    fleet = hosts(tmp_path, ONCE, url)
    a, b, c = fleet
    clock = FastTime(T0)
    start_all(fleet, clock)
    try:
        wait_for(lambda: server(url, COMMITTING), timeout=30, what="host-a's claim committing")
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        committed = wait_for(lambda: server(url, CLAIM, nominal), timeout=10, what="the claim")
        ((holder, claimed_at, started),) = committed
        assert (holder, started) == ("host-a", None)
        a.kill()  # kill -9: holding the claim, the job not started
        clock.sleep_until(at("01:02:45"))  # its lease (60 s) ends at 01:02:00
    finally:
        logs = stop_all(fleet)
    no_traceback(logs)
    assert [hhmm(s) for s, _, _ in a.runs(REPORT)] in ([], ["01:00"])  # never 01:01
    ran = [(h.name, hhmm(s), started) for h in fleet for s, started, _ in h.runs(REPORT)]
    per_minute = Counter(minute for _, minute, _ in ran)
    assert per_minute["01:01"] == 1 and set(per_minute.values()) == {1}, ran
    ((runner, _, began),) = [r for r in ran if r[1] == "01:01"]
    assert runner in ("host-b", "host-c")
    # after host-a's lease, inside the window (5 minutes)
    assert when(claimed_at) + timedelta(seconds=60) < when(began) < at("01:06:00")
    assert server(url, CLAIM, nominal)[0][0] == runner  # the claim is the runner's now
    assert server(url, "SELECT host FROM runs WHERE scheduled = %s", nominal) == [(runner,)]
    held = f"claimed by host-a at {when(claimed_at):%H:%M:%S}, not started; its lease ends"
    assert any(held in reason for h in (b, c) for reason in h.reasons()), (b.reasons(), logs)


def test_two_minutes_without_postgresql_stop_no_plain_job_and_lose_no_run(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    fleet = hosts(tmp_path, f"* * * * * {PLAIN}\n{ONCE}", url)
    four = minutes("01:00", 4)  # one minute before the outage, two in it, one after
    clock = FastTime(T0)
    start_all(fleet, clock)
    try:
        clock.sleep_until(at("01:00:20"))
        pg.stop()
        try:
            down = clock.now()
            clock.sleep_until(at("01:02:20"))
            back = clock.now()
        finally:
            pg.start()  # the session's server, for the tests after this one too
        clock.sleep_until(at("01:03:40"))
    finally:
        logs = stop_all(fleet)  # the uploads (every 30 real s) go at the latest here
    no_traceback(logs)
    assert down < at("01:01:00") and back > at("01:02:00")  # both minutes' tops inside
    rows = server(url, "SELECT host, command, scheduled, started FROM runs")
    on_server = Counter((host, command, hhmm(s)) for host, command, s, _ in rows)
    assert set(on_server.values()) == {1}, rows  # no run twice
    for host in fleet:
        plain = [hhmm(s) for s, _, status in host.runs(PLAIN) if status == "ok"]
        assert plain[:4] == four and len(plain) == len(set(plain)), (host.name, plain)
        local = [(PLAIN, m) for m in plain] + [(REPORT, hhmm(s)) for s, *_ in host.runs(REPORT)]
        assert sorted(local) == sorted((c, m) for h, c, m in on_server if h == host.name)
    # fleet=once never ran unclaimed: its firings in the outage waited, and ran once each
    # when the server was back, inside their window
    once = sorted((hhmm(s), when(started)) for _, command, s, started in rows if command == REPORT)
    assert [minute for minute, _ in once][:4] == four, once
    assert all(started > back for minute, started in once if minute in ("01:01", "01:02"))
    waited = [r for h in fleet for r in h.reasons() if "history cannot be reached" in r]
    assert waited, logs
