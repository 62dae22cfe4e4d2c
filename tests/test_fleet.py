"""fleet=once across daemons sharing a PostgreSQL history (docs/fleet.md): three whole
smart daemons (tests/harness.py: each its own state directory and SQLite history, on
fake clocks in step) claim each firing in a real PostgreSQL server (tests/pgkit.py)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from smartcron.cli.jobs import explain_document
from smartcron.store.claims import Claim, LocalClaimer, PgClaimer
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


class DiesAfterClaiming(PgClaimer):
    """host-a's claimer: the daemon dies (SystemExit out of its loop) right after it
    is granted the firing of `nominal`, before it starts the run."""

    def __init__(self, connection: PgConnection, host: str, nominal: datetime) -> None:
        super().__init__(connection, host)
        self.nominal = nominal

    def claim(self, owner: str, name: str, nominal: datetime, now: datetime) -> Claim:
        claim = super().claim(owner, name, nominal, now)
        if claim.granted and nominal == self.nominal:
            raise SystemExit("host-a dies holding the claim")
        return claim


@pytest.fixture
def make_fleet(pg: PgServer, tmp_path: Path) -> Iterator[Callable[..., list[Harness]]]:
    """(busy: host -> HH:MM it stays busy until, dies_at: host-a's fatal firing) -> the
    three daemons, each with its own state directory, claiming in one database."""
    url = pg.create_db()
    conns: list[PgConnection] = []
    crontab = CRONTAB.replace("ai=no", "ai=no max_load=2")

    def build(busy: dict[str, str], dies_at: datetime | None = None) -> list[Harness]:
        daemons = []
        for host in HOSTS:
            state = tmp_path / host / "state"
            state.mkdir(parents=True)  # its history where explain looks
            script = busy_until(busy.get(host))
            h = make(
                tmp_path / host, crontab, script, history=HistoryStore.open(state / "history.db")
            )  # type: ignore[arg-type]
            conns.append(PgConnection(url))
            if host == "host-a" and dies_at is not None:
                h.daemon.engine.claimer = DiesAfterClaiming(conns[-1], host, dies_at)
            else:
                h.daemon.engine.claimer = PgClaimer(conns[-1], host)
            h.history.host = host  # as fleetparts.fleet_for names a daemon's rows
            daemons.append(h)
        return daemons

    yield build
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


def test_each_firing_of_a_fleet_once_job_runs_on_exactly_one_of_three_hosts(
    make_fleet,
) -> None:
    # host-a is busy until 01:02: the first firings go to whoever finds them good
    daemons = make_fleet({"host-a": "01:02"})
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


def test_a_daemon_killed_holding_a_claim_before_starting_loses_it_after_the_lease(
    make_fleet,
) -> None:
    nominal = utc("01:00")
    a, b, c = make_fleet({"host-b": "01:00", "host-c": "01:00"}, dies_at=nominal)
    with pytest.raises(SystemExit):  # host-a runs 00:59, claims 01:00 and dies
        a.run_until(utc("01:00") + timedelta(seconds=30))
    assert [r.start.scheduled for r in runs(a, JOB)] == [utc("00:59")]
    step_all([b, c], utc("01:04"))  # host-a never comes back
    counted = ran([a, b, c])
    per_minute = Counter(minute for minute, _ in counted.elements())
    assert set(per_minute.values()) == {1} and "01:00Z" in per_minute, counted
    taken = [row for h in (b, c) for row in runs(h, JOB) if row.start.scheduled == nominal]
    assert len(taken) == 1 and taken[0].host in ("host-b", "host-c")
    # not before host-a's lease (60 s from 01:00:00) ran out, and inside the window
    started = taken[0].start.started
    assert nominal + timedelta(seconds=60) < started < nominal + timedelta(minutes=10)
    waits = [r for h in (b, c) for _, _, r in h.trail(JOB) if "not started" in r]
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


def test_a_fleet_once_firing_waits_while_the_server_is_down_and_runs_once_when_back(
    make_fleet, pg: PgServer
) -> None:
    a = make_fleet({})[0]
    a.run_until(utc("00:59") + timedelta(seconds=30))
    pg.stop()
    try:
        a.run_until(utc("01:02") + timedelta(seconds=30))
    finally:
        pg.start()
    assert [r.start.scheduled for r in runs(a, JOB)] == [utc("00:59")]  # never unclaimed
    waits = [(at, r) for at, _, r in a.trail(JOB) if "cannot be reached" in r]
    assert [at for at, _ in waits[:3]] == ["01:00Z", "01:01Z", "01:02Z"], waits
    a.run_until(utc("01:04"))
    starts = sorted(r.start.scheduled.strftime("%H:%M") for r in runs(a, JOB))  # type: ignore[union-attr]
    assert starts == ["00:59", "01:00", "01:01", "01:02", "01:03", "01:04"]
