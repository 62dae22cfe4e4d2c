"""The history database's schema: its migrations, applied in order by HistoryStore."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """A named schema step (statements end with ";" + newline), applied once, in one
    transaction with its `migrations` row. Append steps; never edit an applied one.
    Values are checked in Python: SQLite cannot alter a CHECK constraint in place."""

    name: str
    sql: str

    def statements(self) -> list[str]:
        return [part.strip() for part in self.sql.split(";\n") if part.strip()]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        name="0001_runs",
        sql="""
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, job_name TEXT, source TEXT NOT NULL, line INTEGER,
            user TEXT NOT NULL, command TEXT NOT NULL, trigger TEXT NOT NULL,
            scheduled TEXT, started TEXT NOT NULL, ended TEXT,
            status TEXT NOT NULL, exit_code INTEGER, signal INTEGER,
            timed_out INTEGER NOT NULL DEFAULT 0, interrupted INTEGER NOT NULL DEFAULT 0,
            runtime_s REAL, cpu_s REAL, max_rss_kb INTEGER,
            output_size INTEGER, output BLOB, mail_sent INTEGER, mail_reason TEXT,
            note TEXT, instance TEXT);
        CREATE INDEX runs_job_scheduled ON runs (job_id, scheduled);
        CREATE INDEX runs_started ON runs (started);
        CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
        """,
    ),
    # For the gate (SPEC 5): a smart firing, persisted before it is evaluated (state:
    # pending | running | done | skipped | missed), and each verdict (run | defer | skip)
    # with its reason, the snapshot and the model's outputs as JSON text.
    Migration(
        name="0002_firings_decisions",
        sql="""
        CREATE TABLE firings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, nominal TEXT NOT NULL, deadline TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
            next_eval TEXT, created TEXT NOT NULL, updated TEXT NOT NULL,
            UNIQUE (job_id, nominal));
        CREATE INDEX firings_due ON firings (state, next_eval);
        ALTER TABLE runs ADD COLUMN firing_id INTEGER REFERENCES firings (id) ON DELETE SET NULL;
        CREATE INDEX runs_firing ON runs (firing_id);
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            firing_id INTEGER REFERENCES firings (id) ON DELETE SET NULL,
            job_id TEXT NOT NULL, at TEXT NOT NULL, verdict TEXT NOT NULL,
            until TEXT, reason TEXT NOT NULL, snapshot TEXT, model TEXT);
        CREATE INDEX decisions_firing ON decisions (firing_id);
        CREATE INDEX decisions_job_at ON decisions (job_id, at);
        """,
    ),
    # The minute journal (smartcron.store.journal): the last wake-up's observed minute, its
    # plain firings and the clocks, written with its smart firings before any job of
    # the minute starts; and the plain firings a restart left unrun, counted per job.
    Migration(
        name="0003_minute_journal",
        sql="""
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            utc_minute INTEGER NOT NULL, at TEXT NOT NULL, boot_id TEXT, mono REAL,
            plain TEXT NOT NULL, complete INTEGER NOT NULL);
        CREATE TABLE not_run (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL, label TEXT NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL,
            count INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
        CREATE INDEX not_run_at ON not_run (at);
        """,
    ),
    # A fleet (docs/fleet.md): each run's host, and whether the server has its last
    # version (spool.py uploads the rows with synced = 0; a write sets it back to 0).
    Migration(
        name="0004_fleet_host",
        sql="""
        ALTER TABLE runs ADD COLUMN host TEXT;
        ALTER TABLE runs ADD COLUMN synced INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX runs_unsynced ON runs (id) WHERE synced = 0;
        """,
    ),
    # The boottime clock with each journaled minute (smartcron.store.journal): a restart
    # on the same boot then tells a suspend while no daemon ran from a clock step.
    Migration(
        name="0005_journal_boottime",
        sql="""
        ALTER TABLE journal ADD COLUMN boottime REAL;
        """,
    ),
    # The user's activity sampled in smart mode whether or not a firing is decided
    # (smartcron.ai.activity): decisions' snapshots alone are a biased sample of the day.
    Migration(
        name="0006_presence",
        sql="""
        CREATE TABLE presence (at TEXT PRIMARY KEY, idle_s REAL NOT NULL);
        """,
    ),
)
