"""One model for a fleet (docs/ai.md): `train --history-url` trains on every host's runs,
pooled, each job's past its own host's; the daemons load it from a shared directory
with the same checks as any model (owner, mode, sha256)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.ai.model import ModelUnavailable, load_model
from smartcron.ai.train import load_dataset, train
from smartcron.cli.ai import train_cmd
from smartcron.store.history import HistoryStore
from smartcron.store.pgexport import fleet_to_sqlite
from smartcron.store.pgstore import PgHistoryStore
from smartcron.store.spool import Uploader
from tests.modelkit import TINY, simulated_history
from tests.pgkit import PgServer


def test_train_pools_every_hosts_runs_and_the_shared_model_passes_the_daemons_checks(
    pg: PgServer, tmp_path: Path
) -> None:
    url = pg.create_db()
    hosts = {}
    db = simulated_history(tmp_path / "laptop.db", 2)  # one simulation, sent by two hosts
    rows = len(load_dataset(db).ok)
    for host in ("host-a", "host-b"):
        store = HistoryStore.open(db, host=host)
        Uploader(store, lambda host=host: PgHistoryStore(url, host=host)).sync()
        hosts[host] = (len(store.runs(limit=100_000)), rows)
        with store.connection(write=True) as conn:  # as if host-b had its own history
            conn.execute("UPDATE runs SET synced = 0")
        store.close()
    copy = tmp_path / "fleet.db"
    assert fleet_to_sqlite(url, copy) == {h: runs for h, (runs, _) in hosts.items()}
    pooled = load_dataset(copy)
    # every host's training rows, each job's past its own host's (ids prefixed)
    assert len(pooled.ok) == sum(rows for _, rows in hosts.values())
    assert {job.split("/")[0] for job in pooled.jobs} == {"host-a", "host-b"}
    shared = tmp_path / "shared-models"
    result = train(copy, shared, params=TINY)
    assert result.card["training"]["rows"] == len(pooled.ok)
    assert not isinstance(load_model(shared, owner_uid=os.geteuid()), ModelUnavailable)
    os.chmod(shared, 0o775)  # a shared directory the group may write: refused, as any
    refused = load_model(shared, owner_uid=os.geteuid())
    assert isinstance(refused, ModelUnavailable) and "writable by group" in refused.reason


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://cron:s3cret@db/h", "--history-url: must not hold a password"),
        (None, "no finished runs in the history"),
    ],
)
def test_train_history_url_errors_name_the_fleet_not_a_temporary_file(
    pg: PgServer, tmp_path: Path, url: str | None, said: str
) -> None:
    url = url or pg.create_db()
    (tmp_path / "c.toml").write_text('state_dir = "state"\n')
    args = ["--config", str(tmp_path / "c.toml"), "--user", "--history-url", url,
            "--out", str(tmp_path / "m")]  # fmt: skip
    done = CliRunner().invoke(train_cmd, args)
    assert done.exit_code == 1, done.output
    assert said in done.output and "s3cret" not in done.output
    assert "smartcron-fleet-" not in done.output
