"""smartcronctl list and explain over the history a smart daemon wrote (daemon stopped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main
from smartcron.cli.jobs import trail_lines
from smartcron.store.history import HistoryStore
from smartcron.testing import FakeOutcome
from tests.harness import battery, cli_config, make, utc

CRONTAB = (
    "#@smart name=nightly_backup window=2h min_battery=30\n0 2 * * * backup\n"
    "0 3 * * * plain\n"
    "#@smart name=later min_battery=30\n0 4 * * * later\n"
)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, object]:
    (tmp_path / "state").mkdir(parents=True)
    history = HistoryStore.open(tmp_path / "state" / "history.db")
    outcomes = {"backup": [FakeOutcome(output=b"ok\n", duration_s=12)]}
    low, high = battery(), battery("01:40")

    def script(now):  # low until 01:40Z, high until 02:30Z, low again
        return high(now) if now < utc("02:30") else low(now)

    h = make(tmp_path, CRONTAB, script, outcomes=outcomes, history=history)
    h.run_until(utc("03:10"))  # "later" fires at 03:00Z and stays deferred
    history.close()
    conf = cli_config(tmp_path)
    return conf, h


def ctl(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_tells_the_decision_trail_in_plain_words(setup, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    conf, _ = setup
    out = ctl("explain", "nightly_backup", "--user", "--config", str(conf))
    assert "deferred until 01:40: battery 18% < min_battery 30%" in out
    assert "01:40 ran (constraints hold); exit 0 in 12 s" in out
    data = json.loads(ctl("explain", "nightly_backup", "--json", "--user", "--config", str(conf)))
    (firing,) = data["firings"]
    assert firing["state"] == "done" and len(firing["run_records"]) == 1
    assert firing["decisions"][0]["snapshot"]["battery_percent"] == 18.0


def test_explain_says_a_plain_line_never_passes_the_gate(setup):
    conf, h = setup
    out = ctl("explain", h.job("plain").id, "--user", "--config", str(conf))
    assert "a plain cron line: it never passes through the gate" in out


def test_explain_of_an_unknown_job_fails():
    result = CliRunner().invoke(main, ["explain", "nope", "--user", "--config", "/nonexistent"])
    assert result.exit_code != 0


def test_list_shows_kinds_and_pending_firings(setup, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    conf, _ = setup
    data = json.loads(ctl("list", "--json", "--user", "--config", str(conf)))
    assert data["mode"] == "legacy"
    kinds = {job["command"]: job["smart"] for job in data["jobs"]}
    assert kinds == {"backup": True, "plain": False, "later": True}
    (later,) = [job for job in data["jobs"] if job["command"] == "later"]
    (pending,) = later["pending"]
    assert pending["state"] == "pending"
    assert pending["last"]["reason"] == "battery 18% < min_battery 30%"
    table = ctl("list", "--user", "--config", str(conf))
    assert "nightly_backup" in table and "deferred until" in table


def test_list_watch_and_json_do_not_mix():
    result = CliRunner().invoke(main, ["list", "--watch", "--json"])
    assert result.exit_code == 2


def test_a_run_of_identical_defers_reads_as_one_line():
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from smartcron.smart.firings import Decision

    t = utc("01:00")
    rows = [
        Decision(id=i, firing_id=1, job_id="j", at=t + timedelta(minutes=i), verdict="defer",
                 until=t + timedelta(minutes=i + 1), reason="battery 18% < min_battery 30%")
        for i in range(3)
    ]  # fmt: skip
    rows.append(Decision(id=9, firing_id=1, job_id="j", at=t + timedelta(minutes=3),
                         verdict="skip", until=None, reason="deadline 01:03 reached"))  # fmt: skip
    assert trail_lines(rows, ZoneInfo("UTC")) == [
        "01:00 deferred until 01:03: battery 18% < min_battery 30%",
        "01:03 skipped: deadline 01:03 reached",
    ]


def fails(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    return result.output


def test_history_job_takes_a_name_as_well_as_an_id(setup):
    conf, h = setup
    by_name = json.loads(
        ctl("history", "--job", "nightly_backup", "--json", "--user", "--config", str(conf))
    )
    assert [run["command"] for run in by_name] == ["backup"]
    job_id = h.job("backup").id
    by_id = json.loads(ctl("history", "--job", job_id, "--json", "--user", "--config", str(conf)))
    assert by_id == by_name


def test_history_of_an_unknown_job_is_a_one_line_error(setup):
    conf, _ = setup
    out = fails("history", "--job", "nope", "--user", "--config", str(conf))
    assert out.strip().splitlines() == ["Error: nope: no such job (give its id or name=)"]


def test_status_shows_the_pending_deferred_firings(setup, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("COLUMNS", "100")
    conf, h = setup
    data = json.loads(ctl("status", "--json", "--user", "--config", str(conf)))
    (pending,) = data["pending"]
    assert pending["job"] == h.job("later").id and pending["name"] == "later"
    assert pending["nominal"].startswith("2026-") and pending["state"] == "pending"
    assert pending["last"]["verdict"] == "defer"
    assert pending["last"]["reason"] == "battery 18% < min_battery 30%"
    out = ctl("status", "--user", "--config", str(conf))
    assert "pending firings" in out and "battery 18% < min_battery 30%" in out


def test_status_says_the_model_is_not_in_use_without_a_daemon(monkeypatch):
    from rich.console import Console

    from smartcron.cli.inspect import _print_model

    monkeypatch.setattr("smartcron.ai.modelwatch.summary_text", lambda card: "card")
    model = {"dir": "/m", "source": "/m", "in_use": True, "card": {"features": 20}}
    for running, said in ((True, "(in use)"), (False, "the daemon is not running")):
        console = Console(record=True, width=100)
        _print_model(console, {"model": model, "running_daemon": running})
        assert said in console.export_text()
