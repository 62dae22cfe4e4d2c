"""fleet=once across daemons sharing a PostgreSQL history (docs/fleet.md): three whole
smart daemons (tests/harness.py: each its own state directory and SQLite history, on
fake clocks in step) claim each firing in a real PostgreSQL server (tests/pgkit.py)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from smartcron.cli.jobs import explain_document
from smartcron.store.claims import LocalClaimer, PgClaimer
from smartcron.store.history import HistoryStore
from smartcron.store.pgconn import PgConnection
from smartcron.testing import sample_snapshot
from tests.harness import Harness, make, runs, utc
from tests.pgkit import PgServer

JOB = "/usr/bin/fleet-job"
CRONTAB = f"#@smart name=report window=10m fleet=once ai=no\n* * * * * {JOB}\n"
HOSTS = ("host-a", "host-b", "host-c")


def busy_until(hhmm: str | None) -> object:
    """load5 9 (over max_load=2) until `hhmm` UTC, then quiet."""

    def script(now: datetime) -> object:
        busy = hhmm is not None and now < utc(hhmm)
        return sample_snapshot(now, load5=9.0 if busy else 0.2)

    return script


@pytest.fixture
def fleet(pg: PgServer, tmp_path: Path) -> Iterator[tuple[str, list[Harness]]]:
    url = pg.create_db()
    daemons, conns = [], []
    # host-a is busy until 01:02: the first two firings go to whoever finds them good
    busy = {"host-a": "01:02", "host-b": None, "host-c": None}
    crontab = CRONTAB.replace("ai=no", "ai=no max_load=2")
    for host in HOSTS:
        (tmp_path / host / "state").mkdir(parents=True)  # its history where explain looks
        history = HistoryStore.open(tmp_path / host / "state" / "history.db")
        h = make(tmp_path / host, crontab, busy_until(busy[host]), history=history)  # type: ignore[arg-type]
        conns.append(PgConnection(url))
        h.daemon.engine.claimer = PgClaimer(conns[-1], host)
        h.history.host = host  # as fleetparts.fleet_for names a daemon's rows
        daemons.append(h)
    yield url, daemons
    for conn in conns:
        conn.close()


def step_all(daemons: list[Harness], until: datetime) -> None:
    """Each daemon's loop to `until`, one after another, minute by minute (the fleet's
    clocks in step; who comes first in a minute changes with the order)."""
    t = daemons[0].clock.now()
    while t < until:
        t = min(until, t.replace(second=0, microsecond=0) + timedelta(minutes=1))
        order = daemons if t.minute % 2 else daemons[::-1]
        for h in order:
            h.run_until(t + timedelta(seconds=30))


def minutes(first: datetime, last: datetime) -> list[datetime]:
    return [first + timedelta(minutes=i) for i in range(int((last - first).seconds // 60) + 1)]


def ran(daemons: list[Harness]) -> Counter[tuple[str, str]]:
    """(nominal HH:MMZ, host) of every run of the job on every host."""
    out: Counter[tuple[str, str]] = Counter()
    for host, h in zip(HOSTS, daemons, strict=True):
        for row in runs(h, JOB):
            assert row.start.scheduled is not None
            out[row.start.scheduled.strftime("%H:%MZ"), host] += 1
    return out


def test_each_firing_of_a_fleet_once_job_runs_on_exactly_one_of_three_hosts(fleet) -> None:
    _, daemons = fleet
    step_all(daemons, utc("01:05"))
    counted = ran(daemons)
    per_minute = Counter(minute for minute, _ in counted.elements())
    assert sorted(per_minute) == [f"{t:%H:%M}Z" for t in minutes(utc("00:59"), utc("01:05"))]
    assert set(per_minute.values()) == {1}, counted
    # host-a was busy until 01:02: the firings before went to the others
    assert all(host != "host-a" for minute, host in counted if minute < "01:01Z")
    assert len({host for _, host in counted}) >= 2
    # explain, on a host that did not run a firing, says who did and when
    where = {minute: host for minute, host in counted}
    c = daemons[2]
    said = explain_document(c.daemon.config, "report", 10)
    skipped = [f for f in said["firings"] if f["state"] == "skipped"]
    assert skipped
    for firing in skipped:
        ran_on = where[firing["nominal"][11:16] + "Z"]  # nominal in UTC; claims said local
        assert re.fullmatch(rf"\d\d:\d\d skipped: fleet=once: claimed by {ran_on} at "
                            r"\d\d:\d\d:\d\d", firing["trail"][-1]), firing["trail"]  # fmt: skip
    # the hosts that did not run a firing say who did
    for host, h in zip(HOSTS, daemons, strict=True):
        for _, verdict, reason in h.trail(JOB):
            if verdict == "skip":
                assert reason.startswith("fleet=once: claimed by host-") and host not in reason


def test_a_claim_whose_holder_died_before_starting_is_run_by_another_after_the_lease(
    fleet,
) -> None:
    url, daemons = fleet
    b, c = daemons[1], daemons[2]
    dead = PgClaimer(PgConnection(url), "host-a")
    nominal = utc("01:00")
    claim = dead.claim(b.job(JOB).owner, "report", nominal, nominal)
    assert claim.granted
    # host-a "dies" here: it claimed 01:00's firing and never starts it
    dead.db.close()
    step_all([b, c], utc("01:04"))
    counted = ran([daemons[0], b, c])
    assert sum(n for (minute, _), n in counted.items() if minute == "01:00Z") == 1
    taken = [row for h in (b, c) for row in runs(h, JOB) if row.start.scheduled == nominal]
    assert len(taken) == 1 and taken[0].host in ("host-b", "host-c")
    # not before the lease (60 s from 01:00:00) ran out, and inside the 10-minute window
    assert (
        nominal + timedelta(seconds=60) < taken[0].start.started < nominal + timedelta(minutes=10)
    )
    waits = [r for h in (b, c) for _, v, r in h.trail(JOB) if "not started" in r]
    assert waits and "claimed by host-a at 02:00:00, not started" in waits[0]


def test_without_a_history_url_fleet_once_runs_on_every_host_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemons = [make(tmp_path / host, CRONTAB) for host in HOSTS[:2]]
    for h in daemons:
        assert isinstance(h.daemon.engine.claimer, LocalClaimer)
    step_all(daemons, utc("01:02"))
    assert [len(runs(h, JOB)) for h in daemons] == [4, 4]  # 00:59 to 01:02 on each
    said = [r.getMessage() for r in caplog.records if "without a history_url" in r.getMessage()]
    assert len(said) == 2, said  # once per job (each daemon's job has its own id)
