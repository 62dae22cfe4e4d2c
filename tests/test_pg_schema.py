"""The fleet's PostgreSQL schema (smartcron.store.pgschema): versioned migrations,
applied once even by daemons starting together; a newer server schema is refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from smartcron.store.history import HistoryError
from smartcron.store.pgschema import MIGRATIONS
from smartcron.store.pgstore import PgHistoryStore
from tests.pgkit import PgServer


def applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]


def test_daemons_starting_together_apply_each_migration_once(pg: PgServer) -> None:
    url = pg.create_db()
    with ThreadPoolExecutor(5) as pool:
        stores = list(pool.map(lambda i: PgHistoryStore(url, host=f"h{i}"), range(5)))
    for store in stores:
        store.close()
    assert applied(url) == [m.name for m in MIGRATIONS]
    PgHistoryStore(url).close()  # reopening changes nothing
    assert applied(url) == [m.name for m in MIGRATIONS]


def test_a_schema_from_a_newer_smartcron_is_refused_by_name(pg: PgServer) -> None:
    url = pg.create_db()
    PgHistoryStore(url).close()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO migrations VALUES ('pg9999_future', 'x')")
    said = r"t_\w+\?host=.*: history database from a newer SmartCron \(pg9999_future\)"
    with pytest.raises(HistoryError, match=said):
        PgHistoryStore(url)
