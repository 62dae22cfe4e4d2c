"""`#@smart fleet=once` where no fleet history is configured (no history_url): every host
runs it, as fleet=each. `smartcrontab -T` and `smartcronctl status` both warn at the
line naming it, in the same words; with a history_url, neither does."""

from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner

from smartcron.cli.crontab import main as smartcrontab
from smartcron.cli.ctl import main as smartcronctl
from smartcron.daemon.control import ControlServer
from smartcron.daemon.controlclient import call
from tests.userconfig import make_config, user_config

TAB = (
    "#@smart name=report fleet=once window=1h\n0 6 * * * report\n"
    "#@smart name=local window=1h\n0 7 * * * local\n"
    "#@smart window=2h\n#@smart fleet=once\n0 8 * * * other\n"
)
REASON = "fleet=once without a history_url: every host runs it, as fleet=each"


def _config(tmp_path, history_url=None):
    user_config(tmp_path, TAB)
    conf = tmp_path / "smartcron.toml"
    text = (
        f'user_crontab = "{tmp_path / "crontab"}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'run_dir = "{tmp_path / "run"}"\njobs_dir = "{tmp_path / "jobs"}"\n'
    )
    if history_url is not None:
        text += f'history_url = "{history_url}"\n'
    conf.write_text(text)
    return conf


def test_T_and_status_warn_of_fleet_once_without_a_history_url_at_its_line(tmp_path):
    conf = _config(tmp_path)
    tab = tmp_path / "crontab"
    args = ["--user", "--config", str(conf)]
    checked = CliRunner().invoke(smartcrontab, ["-T", str(tab), *args])
    assert checked.exit_code == 0  # a warning, not an error: the job still runs
    expected = [f"{tab}:1: {REASON}", f"{tab}:6: {REASON}"]
    assert [line for line in checked.output.splitlines() if "fleet=" in line] == [
        f"{w} (warning)" for w in expected
    ]
    doc = json.loads(CliRunner().invoke(smartcronctl, ["status", "--json", *args]).output)
    (loaded,) = [f for f in doc["files"] if f["path"] == str(tab)]
    assert [w for w in loaded["warnings"] if "fleet=" in w] == expected
    text = CliRunner().invoke(smartcronctl, ["status", *args]).output
    assert all(w in text for w in expected)


def test_no_fleet_warning_when_a_history_url_is_configured(tmp_path):
    conf = _config(tmp_path, "postgresql://fleet@db.example/smartcron")
    tab = tmp_path / "crontab"
    args = ["--user", "--config", str(conf)]
    checked = CliRunner().invoke(smartcrontab, ["-T", str(tab), *args])
    assert (checked.exit_code, checked.output) == (0, "")
    doc = json.loads(CliRunner().invoke(smartcronctl, ["status", "--json", *args]).output)
    (loaded,) = [f for f in doc["files"] if f["path"] == str(tab)]
    assert not [w for w in loaded["warnings"] if "fleet=" in w]


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon writes a spool file for root")
def test_an_install_through_the_daemons_socket_warns_in_the_same_words(tmp_path):
    server = ControlServer(make_config(tmp_path), lambda: None)  # no history_url
    server.start()
    try:
        data = base64.b64encode(TAB.encode()).decode()
        reply = call(server.path, {"op": "install", "data": data, "source": "mytab"})
    finally:
        server.stop()
    assert reply["ok"]
    assert [w for w in reply["warnings"] if "fleet=" in w] == [
        f"mytab:1: {REASON}",
        f"mytab:6: {REASON}",
    ]
