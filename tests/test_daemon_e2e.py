"""The real `smartcron` process on a temporary configuration."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.polling import wait_for
from tests.realdaemon import BIN, runs, start, stop, write_config


def test_a_reboot_job_runs_at_first_start_and_is_recorded(tmp_path):
    config = write_config(tmp_path, "@reboot echo booted > out.txt\n")
    proc = start(config)
    try:
        rows = wait_for(lambda: [r for r in runs(tmp_path / "state") if r[1] == "ok"], what="a run")
        assert rows == [("echo booted > out.txt", "ok", 0, "reboot")]
        # cwd is HOME (root's here), as cron does; the job wrote there.
        assert (Path(os.environ.get("HOME", "/root")) / "out.txt").read_text() == "booted\n"
    finally:
        out = stop(proc)
        (Path(os.environ.get("HOME", "/root")) / "out.txt").unlink(missing_ok=True)
    assert "(root) CMD (echo booted > out.txt)" in out or "CMD (echo booted" in out
    assert proc.returncode == 0


def test_a_second_daemon_on_the_same_state_directory_says_who_holds_it(tmp_path):
    config = write_config(tmp_path, "")
    first = start(config)
    try:
        wait_for(lambda: (tmp_path / "state" / "status.json").exists(), what="status file")
        second = subprocess.run(
            [str(BIN / "smartcron"), "--user", "-f", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"already running (pid {first.pid}" in second.stderr
        pid_file = tmp_path / "run" / "smartcron.pid"
        wait_for(pid_file.exists, what="pid file")
        assert pid_file.read_text() == f"{first.pid}\n"
    finally:
        stop(first)
    assert not pid_file.exists()  # removed at exit; the loser never touched it


def test_sighup_reloads_an_edited_crontab(tmp_path):
    config = write_config(tmp_path, "0 4 * * * first\n", mtime_check="3600")
    proc = start(config)
    status = tmp_path / "state" / "status.json"
    try:
        wait_for(lambda: status.exists(), what="status file")
        assert [j["command"] for j in json.loads(status.read_text())["jobs"]] == ["first"]
        tab = tmp_path / "crontab"
        tab.write_text("0 4 * * * first\n0 5 * * * second\n")
        proc.send_signal(signal.SIGHUP)

        def commands():
            return [j["command"] for j in json.loads(status.read_text())["jobs"]]

        wait_for(lambda: commands() == ["first", "second"], what="reload")
    finally:
        stop(proc)


def test_a_crontab_change_is_picked_up_without_a_signal(tmp_path):
    config = write_config(tmp_path, "0 4 * * * first\n", mtime_check="3600")
    proc = start(config)
    status = tmp_path / "state" / "status.json"
    try:
        wait_for(lambda: status.exists(), what="status file")
        (tmp_path / "crontab").write_text("0 5 * * * second\n")
        wait_for(
            lambda: [j["command"] for j in json.loads(status.read_text())["jobs"]] == ["second"],
            what="first reload",
        )
        # The periodic rescan is an hour away: only inotify can explain this reload.
        (tmp_path / "crontab").write_text("0 6 * * * third\n")
        wait_for(
            lambda: [j["command"] for j in json.loads(status.read_text())["jobs"]] == ["third"],
            what="inotify reload",
        )
    finally:
        stop(proc)


def test_a_daemon_killed_mid_job_leaves_the_run_marked_interrupted_after_restart(tmp_path):
    config = write_config(tmp_path, "@reboot sleep 30\n")
    proc = start(config)
    state = tmp_path / "state"
    wait_for(lambda: runs(state) == [("sleep 30", "running", None, "reboot")], what="job start")
    proc.kill()  # kill -9: no chance to clean up
    proc.wait(timeout=10)
    subprocess.run(["pkill", "-f", "^sleep 30$"], check=False)
    again = start(config)
    try:
        wait_for(
            lambda: runs(state) and runs(state)[0][1] == "interrupted", what="interrupted mark"
        )
        assert len(runs(state)) == 1  # @reboot does not run again on a restart
    finally:
        out = stop(again)
    assert "Skipping @reboot jobs -- not system startup" in out


@pytest.mark.slow
def test_a_minute_job_runs_on_the_minute(tmp_path):
    config = write_config(tmp_path, "* * * * * echo minute\n")
    proc = start(config)
    state = tmp_path / "state"
    try:
        rows = wait_for(lambda: [r for r in runs(state) if r[1] == "ok"], timeout=75, what="a run")
    finally:
        stop(proc)
    assert rows[0] == ("echo minute", "ok", 0, "cron")
    conn = sqlite3.connect(state / "history.db")
    scheduled, started = conn.execute("SELECT scheduled, started FROM runs").fetchone()
    conn.close()
    assert scheduled.endswith(":00.000000Z")
    assert started[:16] == scheduled[:16]  # started within the scheduled minute


def test_per_job_log_files_hold_each_runs_output(tmp_path):
    config = write_config(tmp_path, "@reboot echo logged output\n", job_log_dir='"logs"')
    proc = start(config)
    try:
        wait_for(lambda: [r for r in runs(tmp_path / "state") if r[1] == "ok"], what="a run")
    finally:
        stop(proc)
    (log_file,) = (tmp_path / "logs").glob("*.log")
    text = log_file.read_text()
    assert text.startswith("=== ") and " root " in text and "exit=0" in text
    assert text.endswith("logged output\n")
