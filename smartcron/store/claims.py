"""`#@smart fleet=once`: each firing of a job (same owner, name and nominal time) runs
on one host of the fleet, the first whose gate lets it start (docs/fleet.md).

No leader: a claim is one row, inserted in one transaction at the moment a firing would
start (INSERT ... ON CONFLICT DO UPDATE ... WHERE, so exactly one host gets it back).
A claim not marked started within its lease (a host that claimed and died) may be
taken by another host, inside the firing's window. Instants come from the daemons'
clocks (kept in step by NTP, as any cron fleet's), so a lease is the same everywhere.
LocalClaimer, without a history_url, grants everything: fleet=once behaves as each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from smartcron.store.runrecords import from_db_time, to_db_time

LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim's outcome: `granted` to this host, else held by `holder` since
    `claimed_at`: `started` there, or not yet (then free again after `lease_until`)."""

    granted: bool
    holder: str
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    started: bool = False

    def reason(self, zone: tzinfo) -> str:
        """'claimed by host-b at 01:03:02' (and, not started yet, until when)."""
        at = "" if self.claimed_at is None else f" at {self.claimed_at.astimezone(zone):%H:%M:%S}"
        if self.started or self.lease_until is None:
            return f"fleet=once: claimed by {self.holder}{at}"
        until = self.lease_until.astimezone(zone)
        held = f"fleet=once: claimed by {self.holder}{at}, not started"
        return f"{held}; its lease ends {until:%H:%M:%S}"


class Claimer(Protocol):
    host: str

    def claim(self, owner: str, name: str, nominal: datetime, now: datetime) -> Claim:
        """Claim the firing for this host (HistoryError: the server cannot say)."""
        ...

    def started(self, owner: str, name: str, nominal: datetime, now: datetime) -> None:
        """The claimed firing's run started here: the claim holds for good."""
        ...

    def release(self, owner: str, name: str, nominal: datetime) -> None:
        """The claimed firing could not start here: another host may take it now."""
        ...


class LocalClaimer:
    """No fleet: every claim is granted (fleet=once behaves as fleet=each)."""

    def __init__(self, host: str = "localhost") -> None:
        self.host = host

    def claim(self, owner: str, name: str, nominal: datetime, now: datetime) -> Claim:
        return Claim(granted=True, holder=self.host, claimed_at=now)

    def started(self, owner: str, name: str, nominal: datetime, now: datetime) -> None:
        return None

    def release(self, owner: str, name: str, nominal: datetime) -> None:
        return None


# Granted when no row exists, or to the host holding it already (a retry), or over a
# claim whose lease ran out before it started.
_CLAIM = """
INSERT INTO claims (owner, name, nominal, host, claimed_at, lease_until)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (owner, name, nominal) DO UPDATE
SET host = EXCLUDED.host, claimed_at = EXCLUDED.claimed_at, lease_until = EXCLUDED.lease_until,
    started = CASE WHEN claims.host = EXCLUDED.host THEN claims.started END
WHERE claims.host = EXCLUDED.host
   OR (claims.started IS NULL AND claims.lease_until < EXCLUDED.claimed_at)
RETURNING host
"""
_HOLDER = (
    "SELECT host, claimed_at, lease_until, started FROM claims"
    " WHERE owner = %s AND name = %s AND nominal = %s"
)


class PgClaimer:
    """Claims in the fleet's PostgreSQL history (pgschema's `claims` table)."""

    def __init__(self, connection: object, host: str, lease: timedelta = LEASE) -> None:
        from smartcron.store.pgconn import PgConnection

        assert isinstance(connection, PgConnection)
        self.db, self.host, self.lease = connection, host, lease

    def claim(self, owner: str, name: str, nominal: datetime, now: datetime) -> Claim:
        key = (owner, name, to_db_time(nominal))
        at, until = to_db_time(now), to_db_time(now + self.lease)
        with self.db.transaction() as cur:
            cur.execute(_CLAIM.encode(), (*key, self.host, at, until))
            if cur.fetchone() is not None:
                return Claim(granted=True, holder=self.host, claimed_at=now)
            cur.execute(_HOLDER.encode(), key)
            row = cur.fetchone()
        assert row is not None  # the conflict that refused us is still there
        return Claim(
            granted=False,
            holder=row[0],
            claimed_at=from_db_time(row[1]),
            lease_until=from_db_time(row[2]),
            started=row[3] is not None,
        )

    def started(self, owner: str, name: str, nominal: datetime, now: datetime) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE claims SET started = %s WHERE owner = %s AND name = %s AND nominal = %s"
                " AND host = %s",
                (to_db_time(now), owner, name, to_db_time(nominal), self.host),
            )

    def release(self, owner: str, name: str, nominal: datetime) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "DELETE FROM claims WHERE owner = %s AND name = %s AND nominal = %s"
                " AND host = %s AND started IS NULL",
                (owner, name, to_db_time(nominal), self.host),
            )
