"""Online learning: the daemon retrains in a child process and swaps only a model that
validates at least as well (SPEC 6). Config keys for the model and retraining.

The schedule `daily` is 04:30 local: 03:30Z in Berlin in February. Children are real
processes: `smartcronctl train` on a simulated history (and on broken ones), or a
stand-in that copies a prepared artifact into the output directory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from smartcron import config as configuration
from smartcron.ai.modelwatch import ModelWatch
from smartcron.ai.retrain import Retrainer, train_command, worse_than
from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.errors import ConfigError
from smartcron.store.history import HistoryStore
from tests.harness import BERLIN, Harness, make, utc
from tests.modelkit import edit_card, put, simulated_history

CRONTAB = "*/30 * * * * plain\n#@smart window=1h\n0 * * * * hourly\n"


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "smartcron")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_history(tmp_path_factory.mktemp("hist") / "history.db", 8)


def copier(source: Path, nice_file: Path | None = None):
    """A stand-in child: copies `source` into its output directory (and notes its
    niceness)."""
    code = (
        "import os, shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True);"
        "len(sys.argv) > 3 and open(sys.argv[3], 'w').write(str(os.nice(0)))"
    )
    extra = [] if nice_file is None else [str(nice_file)]
    return lambda out: [sys.executable, "-c", code, str(source), str(out), *extra]


def retraining(tmp_path: Path, command, **settings: object) -> Harness:
    """The smart daemon harness with a model watch and a daily retrainer."""
    settings.setdefault("model_dir", tmp_path / "models")
    h = make(tmp_path, CRONTAB, **settings)
    config = h.daemon.config
    models = ModelWatch.from_config(config, history=h.history)
    retrainer = Retrainer(
        "30 4 * * *",
        model_dir=config.models_dir,
        command=command,
        zone=BERLIN,
        owner_uid=os.geteuid(),
        current=models.own_card,
    )
    h.daemon = Daemon(
        config,
        h.daemon.run_context,
        zone=BERLIN,
        smart=SmartParts(monitor=h.monitor, models=models, retrainer=retrainer),
    )
    h.daemon.reload(force=True)
    return h


def run_retraining(h: Harness) -> None:
    """To 03:30Z (the child starts), wait for it, then the next wake-up collects it."""
    retrainer = h.daemon.retrainer
    assert retrainer is not None
    h.run_until(utc("03:29"))
    assert retrainer.child is None
    h.run_until(utc("03:30"))
    assert retrainer.child is not None and retrainer.child.started == utc("03:30")
    retrainer.wait(120)
    h.run_until(utc("03:45"))
    assert retrainer.child is None


def plain_ran(h: Harness) -> None:
    """Scheduling went on through it all."""
    times = [when for cmd, when in h.starts if cmd == "plain"]
    assert times == ["01:00Z", "01:30Z", "02:00Z", "02:30Z", "03:00Z", "03:30Z"]
    assert ("hourly", "03:00Z") in h.starts


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


# ------------------------------------------------------------------ swapping


def test_a_child_trains_on_schedule_and_a_first_model_is_swapped_in(
    tmp_path: Path, history: Path, caplog
) -> None:
    h = retraining(tmp_path, train_command(history, BERLIN))
    assert h.daemon.mode == "legacy" and "missing" in h.daemon.mode_reason
    run_retraining(h)
    assert h.daemon.mode == "smart", h.daemon.mode_reason
    card = json.loads((tmp_path / "models" / "model.json").read_text())
    assert card["timezone"] == "Europe/Berlin"
    assert {p.name for p in (tmp_path / "models").iterdir()} == {
        "model.onnx", "model.pkl", "model.json"
    }  # fmt: skip
    assert any("retraining: swapped" in m for m in messages(caplog, logging.INFO))
    assert h.daemon.retrainer.document()["last"]["result"] == "swapped"  # type: ignore[union-attr]
    assert h.daemon.retrainer.next_due == utc("03:30") + timedelta(days=1)  # type: ignore[union-attr]
    plain_ran(h)


def test_a_better_model_is_swapped_in_by_a_low_priority_child(tmp_path: Path, trained: Path):
    put(trained, tmp_path / "models")
    old = json.loads((trained / "model.json").read_text())["metrics"]["holdout"]
    better = put(trained, tmp_path / "better")
    edit_card(better, metrics={"holdout": old | {"brier": old["brier"] - 0.01}})
    h = retraining(tmp_path, copier(better, tmp_path / "nice"))
    assert h.daemon.mode == "smart"
    run_retraining(h)
    assert (tmp_path / "nice").read_text() == "19"
    new = json.loads((tmp_path / "models" / "model.json").read_text())
    assert new["metrics"]["holdout"]["brier"] == old["brier"] - 0.01
    assert h.daemon.mode == "smart"
    assert h.daemon.models.card["metrics"]["holdout"]["brier"] == old["brier"] - 0.01  # type: ignore[union-attr,index]
    assert not list((tmp_path / "models").glob(".retrain-*"))
    plain_ran(h)


@pytest.mark.parametrize("metric", ["brier", "pr_auc_failure"])
def test_a_worse_model_is_not_swapped_in(tmp_path: Path, trained: Path, caplog, metric: str):
    put(trained, tmp_path / "models")
    before = (tmp_path / "models" / "model.json").read_text()
    old = json.loads(before)["metrics"]["holdout"]
    worse = put(trained, tmp_path / "worse")
    change = 0.05 if metric == "brier" else -0.05
    edit_card(worse, metrics={"holdout": old | {metric: old[metric] + change}})
    h = retraining(tmp_path, copier(worse))
    run_retraining(h)
    assert (tmp_path / "models" / "model.json").read_text() == before
    assert h.daemon.mode == "smart"
    (kept,) = [m for m in messages(caplog, logging.WARNING) if "retraining" in m]
    assert "kept: the new model scores worse" in kept
    assert ("Brier" if metric == "brier" else "PR-AUC") in kept
    plain_ran(h)


def test_a_refused_new_model_is_not_swapped_in(tmp_path: Path, trained: Path, caplog) -> None:
    put(trained, tmp_path / "models")
    tampered = put(trained, tmp_path / "tampered")
    with open(tampered / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    h = retraining(tmp_path, copier(tampered))
    run_retraining(h)
    assert h.daemon.mode == "smart"
    assert any("refused" in m and "tampered" in m for m in messages(caplog, logging.WARNING))


def test_a_failing_child_leaves_the_old_model(tmp_path: Path, trained: Path, caplog) -> None:
    put(trained, tmp_path / "models")
    before = (tmp_path / "models" / "model.onnx").read_bytes()
    code = "import sys; sys.exit('smartcronctl: error: out of cheese')"
    h = retraining(tmp_path, lambda out: [sys.executable, "-c", code])
    run_retraining(h)
    assert (tmp_path / "models" / "model.onnx").read_bytes() == before
    assert h.daemon.mode == "smart"
    (error,) = messages(caplog, logging.ERROR)
    assert "retraining: failed" in error and "exited with 1" in error
    assert "out of cheese" in error
    plain_ran(h)


# ------------------------------------------------------------------ bad history databases


def _empty(db: Path, history: Path) -> None:
    HistoryStore.open(db).close()


def _older(db: Path, history: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        conn.execute("INSERT INTO migrations VALUES ('0001_runs', '')")
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")


def _corrupt(db: Path, history: Path) -> None:
    db.write_bytes(b"this is not sqlite" * 100)


def _locked(db: Path, history: Path) -> sqlite3.Connection:
    shutil.copyfile(history, db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    return holder


BAD = {
    "empty": (_empty, "no finished runs"),
    "older schema": (_older, "older history schema"),
    "corrupt": (_corrupt, "corrupt, or not a database"),
    "locked": (_locked, "locked"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_history_database_is_a_clear_error_and_scheduling_goes_on(
    tmp_path: Path, history: Path, caplog, case: str
) -> None:
    prepare, words = BAD[case]
    db = tmp_path / "bad.db"
    holder = prepare(db, history)
    try:
        h = retraining(tmp_path, train_command(db, BERLIN))
        run_retraining(h)
    finally:
        if holder is not None:
            holder.close()
    (error,) = messages(caplog, logging.ERROR)
    assert "retraining: failed" in error and words in error, error
    assert h.daemon.mode == "legacy" and "missing" in h.daemon.mode_reason
    assert h.daemon.retrainer.document()["last"]["result"] == "failed"  # type: ignore[union-attr]
    assert not (tmp_path / "models" / "model.onnx").exists()
    plain_ran(h)


# ------------------------------------------------------------------ pieces


def test_worse_than_compares_what_both_cards_have() -> None:
    def card(**holdout: object) -> dict:
        return {"metrics": {"holdout": holdout}}

    assert worse_than(card(brier=0.2), None) is None
    assert (
        worse_than(card(brier=0.1, pr_auc_failure=0.5), card(brier=0.1, pr_auc_failure=0.5)) is None
    )
    assert "Brier" in (worse_than(card(brier=0.2), card(brier=0.1)) or "")
    assert "PR-AUC" in (worse_than(card(pr_auc_failure=0.4), card(pr_auc_failure=0.5)) or "")
    assert (
        worse_than(card(brier=0.1, pr_auc_failure=None), card(brier=0.1, pr_auc_failure=0.5))
        is None
    )


def test_stop_ends_a_running_child(tmp_path: Path) -> None:
    h = retraining(tmp_path, lambda out: [sys.executable, "-c", "import time; time.sleep(60)"])
    h.run_until(utc("03:30"))
    retrainer = h.daemon.retrainer
    assert retrainer is not None and retrainer.child is not None
    proc = retrainer.child.proc
    retrainer.stop()
    assert proc.poll() is not None and retrainer.child is None
    assert not list((tmp_path / "models").glob(".retrain-*"))


def test_config_keys(tmp_path: Path) -> None:
    conf = tmp_path / "smartcron.toml"

    def load(text: str) -> configuration.Config:
        conf.write_text(text)
        return configuration.read_config(conf, user_mode=True)

    c = load('state_dir = "state"\n')
    assert c.models_dir == tmp_path / "state" / "models" and c.default_model_dir is None
    assert (c.retrain_spec, c.model_max_age, c.inference_bound_ms) == (None, 365.0, 50.0)
    c = load('model_dir = "m"\nuse_default_model = true\nretrain = "daily"\n')
    assert c.models_dir == tmp_path / "m" and c.retrain_spec == "30 4 * * *"
    assert c.default_model_dir is not None and c.default_model_dir.name == "models"
    c = load('use_default_model = "shipped"\nretrain = "15 3 * * 1-5"\n')
    assert c.default_model_dir == tmp_path / "shipped" and c.retrain_spec == "15 3 * * 1-5"
    assert load('retrain = "weekly"\n').retrain_spec == "30 4 * * 0"
    for bad, key in [
        ('retrain = "sometimes"\n', "retrain"),
        ('retrain = "@reboot"\n', "retrain"),
        ("retrain = 3\n", "retrain"),
        ("use_default_model = 1\n", "use_default_model"),
        ("model_max_age = 0\n", "model_max_age"),
        ('inference_bound_ms = "fast"\n', "inference_bound_ms"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load(bad)
