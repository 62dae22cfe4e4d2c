"""The fleet's PostgreSQL schema (docs/fleet.md): versioned migrations, as schema.py is
for SQLite, applied in order under an advisory lock (daemons starting together).

Columns mirror SQLite's `runs` and `decisions`, instants as the same fixed-width UTC
text (text order is time order; one format both ways), plus where a row came from:
`host` and its id in that host's SQLite history (`local_id`), the upload's key."""

from __future__ import annotations

from smartcron.store.schema import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        name="pg0001_runs_decisions",
        sql="""
        CREATE TABLE runs (
            id BIGSERIAL PRIMARY KEY, host TEXT NOT NULL, local_id BIGINT,
            job_id TEXT NOT NULL, job_name TEXT, source TEXT NOT NULL, line INTEGER,
            "user" TEXT NOT NULL, command TEXT NOT NULL, trigger TEXT NOT NULL,
            scheduled TEXT, started TEXT NOT NULL, ended TEXT,
            status TEXT NOT NULL, exit_code INTEGER, signal INTEGER,
            timed_out INTEGER NOT NULL DEFAULT 0, interrupted INTEGER NOT NULL DEFAULT 0,
            runtime_s DOUBLE PRECISION, cpu_s DOUBLE PRECISION, max_rss_kb BIGINT,
            output_size BIGINT, output BYTEA, mail_sent INTEGER, mail_reason TEXT,
            note TEXT, instance TEXT, firing_id BIGINT,
            UNIQUE (host, local_id));
        CREATE INDEX runs_job_scheduled ON runs (job_id, scheduled);
        CREATE INDEX runs_started ON runs (started);
        CREATE TABLE decisions (
            id BIGSERIAL PRIMARY KEY, host TEXT NOT NULL, local_id BIGINT NOT NULL,
            firing_id BIGINT, job_id TEXT NOT NULL, at TEXT NOT NULL, verdict TEXT NOT NULL,
            until TEXT, reason TEXT NOT NULL, snapshot TEXT, model TEXT,
            UNIQUE (host, local_id));
        CREATE INDEX decisions_job_at ON decisions (job_id, at);
        """,
    ),
    # fleet=once (claims.py): one row per firing of a job, whoever claimed it first.
    Migration(
        name="pg0002_claims",
        sql="""
        CREATE TABLE claims (
            owner TEXT NOT NULL, name TEXT NOT NULL, nominal TEXT NOT NULL,
            host TEXT NOT NULL, claimed_at TEXT NOT NULL, lease_until TEXT NOT NULL,
            started TEXT, PRIMARY KEY (owner, name, nominal));
        CREATE INDEX claims_claimed_at ON claims (claimed_at);
        """,
    ),
)
