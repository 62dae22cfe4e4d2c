"""Smart mode and its fallback to legacy, in the daemon on a FakeClock (SPEC 5, 6).

A tiny real model (smartcron.ai.train on a simulated week of history) is installed in
the model directory, then broken one way per test. Each test asserts the mode, the
logged reason (once), and that the jobs still run at their rules time: `backup`
(min_battery=30, battery low until 01:20Z) at 01:20Z, `report` (no rules) and the
plain line at their cron time, 01:00Z. Then a good model is put back: smart again.
Crafted ONNX graphs (tests/modelkit.py) stand in for models failing at inference.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from smartcron.ai.features import FEATURES
from smartcron.ai.modelwatch import ModelWatch
from smartcron.cli.ctl import main
from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.daemon.service import status_document
from smartcron.smart.firings import FiringStore
from tests.harness import BERLIN, START, Harness, battery, make, utc
from tests.modelkit import edit_card, graph, install, put

ROOT = os.geteuid() == 0
CRONTAB = (
    "#@smart window=6h min_battery=30\n0 2 * * * backup\n"
    "#@smart window=6h\n0 2 * * * report\n"
    "#@smart window=1h\n*/10 * * * * poll\n"
    "0 2 * * * plain\n"
)
RULES_TIMES = [("backup", "01:20Z"), ("plain", "01:00Z"), ("report", "01:00Z")]


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "smartcron")


def smart(tmp_path: Path, **settings: object) -> Harness:
    """The test_smart_daemon harness, its daemon rebuilt with a model watch."""
    settings.setdefault("model_dir", tmp_path / "models")
    h = make(tmp_path, CRONTAB, battery("01:20"), **settings)
    config = h.daemon.config
    h.daemon = Daemon(
        config,
        h.daemon.run_context,
        zone=BERLIN,
        smart=SmartParts(
            monitor=h.monitor, models=ModelWatch.from_config(config, history=h.history)
        ),
    )
    h.daemon.reload(force=True)
    return h


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if "model not used" in r.getMessage()
    ]  # fmt: skip


def check_fallback(h: Harness, caplog: pytest.LogCaptureFixture, words: str) -> None:
    h.run_until(utc("01:30"))
    assert h.daemon.mode == "legacy"
    assert words in h.daemon.mode_reason and "rules only" in h.daemon.mode_reason
    (logged,) = warnings(caplog)  # logged once, however many wake-ups
    assert words in logged
    assert sorted(s for s in h.starts if s[0] != "poll") == RULES_TIMES
    assert ("poll", "01:00Z") in h.starts


def check_recovery(h: Harness, trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    put(trained, h.daemon.config.models_dir)  # at 01:30: the Waker sees the change at once
    h.run_until(utc("01:30") + timedelta(seconds=1))  # and lets it settle 2 s
    assert h.daemon.mode == "legacy"
    h.run_until(utc("01:31"))
    assert h.daemon.mode == "smart", h.daemon.mode_reason
    assert any("model loaded from" in r.getMessage() for r in caplog.records)


def lying_graph(inputs: int) -> bytes:
    """A graph of the right shape for `inputs` features (the card will say 20)."""
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, inputs])
    outs = [
        helper.make_tensor_value_info("p_success", TensorProto.FLOAT, [None, 2]),
        helper.make_tensor_value_info("runtime_log1p", TensorProto.FLOAT, [None, 1]),
    ]
    inits = [
        helper.make_tensor("w", TensorProto.FLOAT, [inputs, 2], [0.0] * inputs * 2),
        helper.make_tensor("v", TensorProto.FLOAT, [inputs, 1], [0.0] * inputs),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["p_success"]),
        helper.make_node("MatMul", ["features", "v"], ["runtime_log1p"]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "liar", [x], outs, initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    return model.SerializeToString()


# ------------------------------------------------------------------ smart mode


def test_a_usable_model_is_used_and_its_outputs_are_recorded(tmp_path: Path, trained: Path):
    put(trained, tmp_path / "models")
    h = smart(tmp_path)
    assert h.daemon.mode == "smart"
    assert h.daemon.mode_reason.startswith(f"rules and model ({tmp_path / 'models'}")
    h.run_until(utc("01:30"))
    assert h.daemon.mode == "smart"
    store = FiringStore(h.history)
    decided = [
        d
        for f in store.firings(limit=100)
        for d in store.decisions(f.firing.id)  # type: ignore[arg-type]
        if d.verdict in ("run", "defer") and "model" in d.reason
    ]
    assert decided and all(d.model and "p_success" in d.model for d in decided)
    doc = status_document(h.daemon, START)
    card = doc["model"]["card"]  # type: ignore[index]
    assert doc["model"]["in_use"] is True  # type: ignore[index]
    assert card["features"] == len(FEATURES) and card["training"]["rows"] >= 200
    assert set(card["metrics"]) >= {"brier", "pr_auc_failure"} and card["created"]


def test_legacy_and_cron_modes_never_load_a_model(tmp_path: Path, trained: Path) -> None:
    for mode in ("legacy", "cron"):
        put(trained, tmp_path / mode / "models")
        h = smart(tmp_path / mode, mode=mode)
        assert (h.daemon.mode, h.daemon.models) == (mode, None)


# ------------------------------------------------------------------ one test per cause


def test_missing_model(tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = smart(tmp_path)
    check_fallback(h, caplog, "missing")
    check_recovery(h, trained, caplog)


def test_unreadable_model(tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture):
    d = put(trained, tmp_path / "models")
    if ROOT:  # root reads through any mode: a FIFO cannot be read as a model
        (d / "model.onnx").unlink()
        os.mkfifo(d / "model.onnx", 0o644)
        words = "not a regular file"
    else:
        os.chmod(d / "model.onnx", 0o000)
        words = "unreadable"
    h = smart(tmp_path)
    check_fallback(h, caplog, words)
    check_recovery(h, trained, caplog)


def test_corrupt_model(tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    install(tmp_path / "models", b"\x08\x07not a model" * 50)  # a card that vouches for it
    h = smart(tmp_path)
    check_fallback(h, caplog, "corrupt ONNX")
    check_recovery(h, trained, caplog)


def test_stale_model(tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    edit_card(put(trained, tmp_path / "models"), created=(START - timedelta(days=400)).isoformat())
    h = smart(tmp_path)
    check_fallback(h, caplog, "stale")
    check_recovery(h, trained, caplog)


def test_a_model_going_stale_while_loaded(tmp_path: Path, trained: Path, caplog) -> None:
    # P(success) = hour / 24: the model defers report and backup to later in the window
    install(tmp_path / "models", graph(), created=(START - timedelta(days=1)).isoformat())
    h = smart(tmp_path, model_max_age=1.02)  # 24.48 h: stale from 01:27:18Z
    assert h.daemon.mode == "smart"
    h.run_until(utc("01:27"))
    assert h.daemon.mode == "smart" and ("report", "01:00Z") not in h.starts  # deferred
    h.run_until(utc("01:30"))
    assert h.daemon.mode == "legacy" and "stale" in h.daemon.mode_reason
    assert len(warnings(caplog)) == 1
    # the daemon woke when the model turned stale; what the model had deferred, the
    # rules run at once
    assert ("backup", "01:27Z") in h.starts and ("report", "01:27Z") in h.starts


def test_tampered_model(tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = put(trained, tmp_path / "models")
    with open(d / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    h = smart(tmp_path)
    check_fallback(h, caplog, "tampered")
    check_recovery(h, trained, caplog)


@pytest.mark.parametrize("lie", ["other features", "other input width"])
def test_feature_mismatch(tmp_path: Path, trained: Path, caplog, lie: str) -> None:
    if lie == "other features":
        edit_card(put(trained, tmp_path / "models"), features=list(reversed(FEATURES)))
        words = "feature mismatch"
    else:  # the card lists FEATURES, the graph takes 19 columns: the load probe fails
        install(tmp_path / "models", lying_graph(len(FEATURES) - 1))
        words = "inference error"
    h = smart(tmp_path)
    check_fallback(h, caplog, words)
    check_recovery(h, trained, caplog)


def test_group_writable_model(tmp_path: Path, trained: Path, caplog) -> None:
    os.chmod(put(trained, tmp_path / "models") / "model.onnx", 0o664)
    h = smart(tmp_path)
    check_fallback(h, caplog, "writable by group or others")
    check_recovery(h, trained, caplog)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_model_owned_by_someone_else(tmp_path: Path, trained: Path, caplog) -> None:
    d = put(trained, tmp_path / "models")
    os.chown(d / "model.onnx", pwd.getpwnam("nobody").pw_uid, -1)
    h = smart(tmp_path)
    check_fallback(h, caplog, "owned by uid")
    check_recovery(h, trained, caplog)


def test_a_2_gb_model_onnx(tmp_path: Path, trained: Path, caplog) -> None:
    d = put(trained, tmp_path / "models")
    os.truncate(d / "model.onnx", 2 << 30)  # sparse: refused by fstat, never read
    h = smart(tmp_path)
    check_fallback(h, caplog, "over the")
    check_recovery(h, trained, caplog)


INFERENCE: dict[str, tuple[Callable[[Path], object], str]] = {
    "inference error": (lambda d: install(d, graph(runtime="one-row-only")), "inference error"),
    "NaN": (lambda d: install(d, graph(p_success="nan")), "NaN output"),
}


@pytest.mark.parametrize("cause", sorted(INFERENCE))
def test_a_model_failing_at_inference(tmp_path: Path, trained: Path, caplog, cause: str) -> None:
    make_model, words = INFERENCE[cause]
    make_model(tmp_path / "models")
    h = smart(tmp_path)
    assert h.daemon.mode == "smart"  # the load probe passes; the first real call fails
    check_fallback(h, caplog, words)
    assert "model failed" in h.daemon.mode_reason
    check_recovery(h, trained, caplog)


def test_a_model_slower_than_the_bound(tmp_path: Path, trained: Path, caplog) -> None:
    put(trained, tmp_path / "models")
    h = smart(tmp_path, inference_bound_ms=1e-6)
    assert h.daemon.mode == "smart"
    h.run_until(utc("01:00"))  # report and poll: two slow calls, both answered `run`
    assert h.daemon.mode == "smart"
    check_fallback(h, caplog, "too slow")  # the third, poll at 01:10, drops the model
    assert "3 times in a row" in h.daemon.mode_reason
    check_recovery(h, trained, caplog)  # a changed file is tried again (and is slow again)


# ------------------------------------------------------------------ default model, status


def test_the_default_model_only_when_asked_and_only_without_an_own_model(
    tmp_path: Path, trained: Path
) -> None:
    h = smart(tmp_path / "off")
    assert h.daemon.mode == "legacy"  # use_default_model = false: the default is not used
    h = smart(tmp_path / "on", use_default_model=trained)
    assert h.daemon.mode == "smart"
    assert h.daemon.models.document()["source"] == str(trained)  # type: ignore[union-attr]
    d = put(trained, tmp_path / "refused" / "models")
    os.chmod(d / "model.onnx", 0o666)
    h = smart(tmp_path / "refused", use_default_model=trained)
    assert h.daemon.mode == "legacy"  # an own model refused is never masked by the default
    assert "writable" in h.daemon.mode_reason


def test_status_shows_mode_reason_and_card(tmp_path: Path, trained: Path) -> None:
    put(trained, tmp_path / "models")
    conf = tmp_path / "smartcron.toml"
    conf.write_text(
        f'user_crontab = "{tmp_path / "crontab"}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'run_dir = "{tmp_path / "run"}"\nmodel_dir = "models"\nmodel_max_age = 100000\n'
        'retrain = "weekly"\n'
    )
    (tmp_path / "crontab").write_text(CRONTAB)
    result = CliRunner().invoke(main, ["status", "--user", "--config", str(conf), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["mode"] == "smart" and doc["mode_reason"].startswith("rules and model")
    assert doc["model"]["card"]["features"] == len(FEATURES)
    assert doc["retrain"]["schedule"] == "30 4 * * 0"
    text = CliRunner().invoke(main, ["status", "--user", "--config", str(conf)]).output
    assert "mode: smart" in text and f"{len(FEATURES)} features" in text
    assert "retrain: 30 4 * * 0" in text
    os.chmod(tmp_path / "models" / "model.json", 0o666)
    text = CliRunner().invoke(main, ["status", "--user", "--config", str(conf)]).output
    assert "mode: legacy" in text and "writable by group or others" in text


def test_no_reason_is_logged_twice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = smart(tmp_path)
    h.run_until(utc("03:00"))
    assert len(warnings(caplog)) == 1
    (tmp_path / "models").mkdir()  # a change, the same reason: not logged again
    h.run_until(utc("03:10"))
    assert len(warnings(caplog)) == 1


def test_loading_and_advising_never_import_the_training_stack(tmp_path: Path, trained: Path):
    d = put(trained, tmp_path / "models")
    code = f"""
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from smartcron.smart.gate import Firing
from smartcron.ai.modelwatch import ModelWatch
from smartcron.testing import sample_snapshot
from smartcron.smart.smartspec import SmartSpec
now = datetime.now(UTC)
watch = ModelWatch(Path({str(d)!r}), owner_uid={os.geteuid()}, max_age=None)
watch.refresh(now)
assert watch.mode == "smart", watch.reason
firing = Firing(id=1, job_id="j", nominal=now, deadline=now + timedelta(hours=2))
verdict = watch.advise(firing, SmartSpec(window=timedelta(hours=2)), sample_snapshot(now), now)
assert verdict is not None and verdict.model, verdict
print(sorted(m for m in ("pandas", "sklearn", "joblib", "skl2onnx") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
