"""Fixtures shared by several test modules. Helpers that are not fixtures live in plain
modules (tests/harness.py, modelkit.py, mailkit.py, ...); no test imports another test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from smartcron.run.mail import SendmailMailer
from tests.pgkit import PgServer


@pytest.fixture(autouse=True)
def _schemas_checked_in_process() -> Iterator[None]:
    """serve() checks schemas in a child interpreter for the rest of its process (the
    daemon's memory: smartcron.smart.schemacheck). A test that runs serve() in this
    process must not leave every later test starting a Python per check: two property
    tests of tests/test_smartspec_files.py took 54 s instead of 1 s after one did."""
    from smartcron.smart import schemacheck

    yield
    schemacheck.out_of_process(False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model, trained once per session: eight days of simulated cron history on
    the laptop fixtures, tiny forests, made the day before tests.harness.START. Copy it
    (modelkit.put) before changing anything in it."""
    from smartcron.ai import train  # the train extra: only the tests that ask pay for it
    from tests.harness import START
    from tests.modelkit import TINY, simulated_history

    history = simulated_history(tmp_path_factory.mktemp("hist") / "history.db", 8)
    out = tmp_path_factory.mktemp("trained")
    train.train(history, out, params=TINY, now=START - timedelta(days=1))
    return out


@dataclass
class SendmailRecorder:
    """fixtures/bin/sendmail-recorder, keeping messages in `maildir`."""

    maildir: Path
    mailer: Callable[..., SendmailMailer]  # (**extra environment) -> a SendmailMailer

    def stored(self) -> list[tuple[list[str], bytes, dict[str, str]]]:
        from tests.mailkit import stored

        return stored(self.maildir)


@pytest.fixture
def sendmail_recorder(tmp_path: Path) -> SendmailRecorder:
    from tests.mailkit import recorder_mailer

    maildir = tmp_path / "maildir"
    maildir.mkdir()
    return SendmailRecorder(maildir, lambda **extra: recorder_mailer(maildir, **extra))


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A real PostgreSQL server for the session (tests/pgkit.py); each test makes its own
    database with `pg.create_db()`. Skipped when PostgreSQL is not installed."""
    from tests.pgkit import MISSING, pg_bin, pg_server

    if pg_bin() is None:
        pytest.skip(MISSING)
    with pg_server() as server:
        yield server
