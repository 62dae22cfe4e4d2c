"""Issue 14's last asymmetries: job ids whatever way the path is typed, job-name completion
for explain/history, simulate's table within the terminal, shipped fixtures that do not warn."""

from __future__ import annotations

import json
import zlib
from datetime import UTC
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main
from smartcron.cli.inspect import history_cmd
from smartcron.cli.jobs import explain_cmd
from smartcron.daemon.loader import Database
from smartcron.sim.scenario import load_scenario
from smartcron.smart.jobids import derived_id
from tests.realdaemon import write_config
from tests.simkit import CRONTAB, WORLD, trace_text
from tests.userconfig import system_config

LINE = "*/5 * * * * root echo hi\n"


def test_derived_id_is_the_same_for_relative_dotted_and_absolute_paths(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    ids = {
        derived_id(p, "alice", "*/5 * * * *", "true")
        for p in ("tab", "./tab", "../sub/tab", str(tmp_path / "sub" / "tab"))
    }
    assert len(ids) == 1
    assert ids.pop().startswith("tab-alice-")


def test_stdin_pseudo_names_are_not_turned_into_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert derived_id("-", "a", "@daily", "x") != derived_id(
        str(tmp_path / "-"), "a", "@daily", "x"
    )


def test_simulator_ids_do_not_depend_on_how_the_crontab_path_was_typed(tmp_path, monkeypatch):
    tab = tmp_path / "my.crontab"
    tab.write_text("*/5 * * * * echo hi\n")
    monkeypatch.chdir(tmp_path)
    relative = load_scenario("my.crontab", zone=UTC, owner="alice").jobs
    absolute = load_scenario(str(tab), zone=UTC, owner="alice").jobs
    assert [j.id for j in relative] == [j.id for j in absolute]
    assert len(relative) == 1


def _old_id(source: str, owner: str, schedule: str, command: str) -> str:
    # the formula before paths were normalised, to prove a daemon's recorded ids hold
    data = "\0".join((source, owner, schedule, command)).encode()
    digest = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return f"{Path(source).name}-{owner}-{digest[:10]}"


def test_ids_a_daemon_recorded_do_not_change(tmp_path):
    cfg = system_config(tmp_path)
    path = cfg.cron_d / "good"
    path.write_text(LINE)
    path.chmod(0o644)
    db = Database(cfg)
    db.refresh()
    ids = [job.id for job in db.jobs]
    assert ids == [_old_id(str(path), "root", "*/5 * * * *", "echo hi")]


@pytest.mark.parametrize(("command", "param"), [(explain_cmd, "job"), (history_cmd, "job")])
def test_explain_and_history_complete_job_names(tmp_path, command, param):
    crontab = "#@smart name=backup\n0 2 * * * backup\n#@smart name=batch\n0 3 * * * b\n"
    config = write_config(tmp_path, crontab)
    ctx = click.Context(command)
    ctx.params = {"config_file": str(config), "user_mode": True}
    job = next(p for p in command.params if p.name == param)
    assert [item.value for item in job.shell_complete(ctx, "ba")] == ["backup", "batch"]


def _simulate_table(tmp_path: Path, columns: str, *extra: str) -> str:
    (tmp_path / "a-rather-long-crontab-file-name").write_text(CRONTAB)
    (tmp_path / "t.csv").write_text(trace_text())
    (tmp_path / "w.yaml").write_text(WORLD)
    args = ["simulate", "--crontab", str(tmp_path / "a-rather-long-crontab-file-name")]
    args += ["--trace", str(tmp_path / "t.csv"), "--world", str(tmp_path / "w.yaml")]
    result = CliRunner().invoke(
        main, [*args, "--policy", "rules", *extra], env={"COLUMNS": columns}
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", ["100", "120"])
def test_simulate_table_fits_the_terminal_with_human_durations(tmp_path, columns):
    out = _simulate_table(tmp_path, columns)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= int(columns)
    header = lines[1].split()
    assert header[:5] == ["job", "fired", "ran", "fail", "fail%"]
    assert header[-2:] == ["delay", "p95"]
    all_row = next(line.split() for line in lines if line.startswith("all "))
    assert all_row[1:3] == ["4", "4"]
    assert all_row[-1] == "9m00s"  # delay_p95_s 540.0 in --json


def test_simulate_json_keeps_seconds_and_long_names(tmp_path):
    data = json.loads(_simulate_table(tmp_path, "100", "--json"))
    assert data["delay_p95_s"] == 540.0 and data["firings"] == 4
