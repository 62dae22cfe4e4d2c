"""A fleet connection kept across a PostgreSQL restart (smartcron.store.pgconn): the
server's farewell waits on the idle socket, and the next transaction opens a new
connection instead of failing as if the server were still down (found by
tests/test_fleet_real.py: a daemon stopped after an outage left its runs unsent)."""

from __future__ import annotations

from datetime import UTC, datetime

from smartcron.store.claims import PgClaimer
from smartcron.store.pgconn import PgConnection
from smartcron.store.pgstore import PgHistoryStore
from tests.pgkit import PgServer

NOMINAL = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


def test_a_kept_connection_works_at_once_after_the_server_restarts(pg: PgServer) -> None:
    url = pg.create_db()
    store = PgHistoryStore(url, host="host-a")
    claimer = PgClaimer(PgConnection(url), "host-a")
    try:
        assert store.uploaded_decisions() == 0
        assert claimer.claim("root", "report", NOMINAL, NOMINAL).granted
        pg.stop()
        pg.start()
        # the first use after the restart, on both connections the daemon keeps
        assert store.uploaded_decisions() == 0
        later = claimer.claim("root", "report", NOMINAL.replace(minute=1), NOMINAL)
        assert (later.granted, later.holder) == (True, "host-a")
    finally:
        store.close()
        claimer.db.close()
