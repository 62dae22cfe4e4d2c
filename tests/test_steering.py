"""smartcronctl run, cancel and reload: the daemon steered through its socket."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import pytest

from smartcron.cli.steer import complete_job, run_cmd
from smartcron.daemon.control import ControlServer
from smartcron.daemon.steering import find_job
from tests.harness import Harness, battery, make, runs, utc
from tests.polling import wait_for
from tests.realdaemon import BIN, start, stop, write_config
from tests.realdaemon import runs as real_runs
from tests.userconfig import make_config
from tests.users import is_root, throwaway_user

ME = pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class Stand:
    """A job as find_job sees it."""

    id: str
    name: str | None
    owner: str


def while_stepping(h: Harness, ask: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`ask()` in a socket-like thread while the main thread runs the daemon's wake-ups."""
    reply: dict[str, Any] = {}
    asker = threading.Thread(target=lambda: reply.update(ask()))
    asker.start()
    give_up = time.monotonic() + 10
    while asker.is_alive() and time.monotonic() < give_up:
        h.daemon.step()
        time.sleep(0.005)
    asker.join()
    return reply


def steer(h: Harness, op: str, key: str) -> dict[str, Any]:
    return while_stepping(h, lambda: h.daemon.steering.submit(op, os.geteuid(), ME, key))


def test_run_now_starts_the_job_once_and_records_it_as_manual(tmp_path):
    h = make(tmp_path, "0 4 * * * echo manual\n")
    reply = steer(h, "run", h.job("echo manual").id)
    assert reply["ok"] and reply["job"] == h.job("echo manual").id, reply
    assert h.starts == [("echo manual", "00:58Z")]
    h.run_until(utc("01:30"))  # nothing else is due: it ran once
    assert h.starts == [("echo manual", "00:58Z")]
    (row,) = runs(h, "echo manual")
    assert (row.start.trigger, row.start.scheduled, row.start.user) == ("manual", None, ME)
    assert reply["run_id"] == row.id


def test_run_now_of_a_smart_job_finds_it_by_name_and_leaves_its_firings_alone(tmp_path):
    h = make(tmp_path, "#@smart name=backup min_battery=30\n0 2 * * * backup\n", battery())
    h.run_until(utc("01:05"))  # its 02:00 CET firing waits for the battery
    assert steer(h, "run", "backup")["ok"]
    assert h.starts == [("backup", "01:05Z")]
    assert [f.firing.state for f in h.firings("backup")] == ["pending"]
    assert [r.start.trigger for r in runs(h, "backup")] == ["manual"]


def test_cancel_drops_the_pending_firing_and_records_a_skip(tmp_path):
    h = make(tmp_path, "#@smart window=1h min_battery=30\n0 2 * * * backup\n", battery())
    h.run_until(utc("01:10"))
    assert h.daemon.engine.slots
    reply = steer(h, "cancel", h.job("backup").id)
    assert reply["cancelled"] == ["2026-02-10T01:00:00+00:00"], reply
    assert not h.daemon.engine.slots
    assert [f.firing.state for f in h.firings("backup")] == ["skipped"]
    assert h.trail("backup")[-1] == ("01:10Z", "skip", f"cancelled by {ME}")
    h.run_until(utc("02:30"))  # past its deadline: never forced
    assert h.starts == []
    again = steer(h, "cancel", "backup")  # a command is not a key: an id or a name=
    assert (again["ok"], again["kind"]) == (False, "nojob")
    nothing = steer(h, "cancel", h.job("backup").id)
    assert (nothing["ok"], nothing["kind"]) == (False, "nothing")


def test_find_job_takes_an_id_or_a_name_and_the_callers_own_job_first():
    jobs: list[Any] = [
        Stand("a-1", "backup", "alice"), Stand("b-1", "backup", "bob"), Stand("b-2", "x", "bob"),
    ]  # fmt: skip
    assert find_job(jobs, "backup", 1000, "alice") is jobs[0]
    assert find_job(jobs, "a-1", 0, "root") is jobs[0]
    assert find_job(jobs, "backup", 1001, "bob") is jobs[1]
    assert find_job(jobs, "a-1", 1001, "bob")["errors"] == ["a-1: not your job (it is alice's)"]
    assert find_job(jobs, "backup", 0, "root")["errors"] == [
        "backup: names several jobs (a-1, b-1): give one id"
    ]
    assert find_job(jobs, "nope", 0, "root")["kind"] == "nojob"


@pytest.mark.skipif(not is_root(), reason="makes a throwaway user")
def test_another_users_job_is_refused_through_the_socket(tmp_path):
    h = make(tmp_path / "d", "#@smart min_battery=30\n0 2 * * * backup\n", battery())
    h.run_until(utc("01:05"))
    server = ControlServer(make_config(tmp_path), lambda: None, h.daemon.steering.submit)
    key = json.dumps({"op": "run", "job": h.job("backup").id}).encode()
    with throwaway_user() as other:
        uid = other.pw.uid
        ran = while_stepping(h, lambda: server.respond(uid, key))
        cancel = key.replace(b'"run"', b'"cancel"')
        cancelled = while_stepping(h, lambda: server.respond(uid, cancel))
    assert (ran["ok"], ran["kind"]) == (False, "denied")
    assert ran["errors"] == [f"{h.job('backup').id}: not your job (it is {ME}'s)"]
    assert cancelled["kind"] == "denied"
    assert h.starts == []
    assert [f.firing.state for f in h.firings("backup")] == ["pending"]
    mine = while_stepping(h, lambda: server.respond(os.geteuid(), key))
    assert mine["ok"] and h.starts == [("backup", "01:05Z")]


def ctl(config: Any, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "smartcronctl"), *args[:1], "--user", "--config", str(config), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_a_real_daemon_runs_now_and_reloads_an_edited_crontab_over_the_socket(tmp_path):
    config = write_config(tmp_path, "0 4 1 1 * echo manual-run\n", mtime_check="3600")
    status = tmp_path / "state" / "status.json"
    proc = start(config)
    try:
        wait_for(status.exists, what="status file")
        (job,) = json.loads(status.read_text())["jobs"]
        done = ctl(config, "run", job["id"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{job['id']}: started (history run ")
        wait_for(lambda: real_runs(tmp_path / "state") == [("echo manual-run", "ok", 0, "manual")],
                 what="the manual run")  # fmt: skip
        missing = ctl(config, "run", "no-such-job")
        assert (missing.returncode, missing.stderr) == (
            1, "smartcronctl: no job 'no-such-job' (see smartcronctl list)\n",
        )  # fmt: skip
        (tmp_path / "crontab").write_text("0 4 1 1 * echo manual-run\n0 5 1 1 * added\n")
        reload = ctl(config, "reload")
        assert (reload.returncode, reload.stdout) == (0, "reload requested\n")

        def commands() -> list[str]:
            return sorted(j["command"] for j in json.loads(status.read_text())["jobs"])

        wait_for(lambda: commands() == ["added", "echo manual-run"], what="the reload")
    finally:
        out = stop(proc)
    assert f"({ME}) RUN NOW (" in out and f") asked by {ME}" in out
    assert f"({ME}) CMD (echo manual-run)" in out  # the launch path of a cron tick


def test_no_daemon_is_one_line_and_exit_1(tmp_path):
    config = write_config(tmp_path, "0 4 * * * x\n")
    done = ctl(config, "cancel", "x")
    assert done.returncode == 1
    assert done.stderr.startswith("no SmartCron daemon answers (")
    assert done.stderr.count("\n") == 1


def test_job_arguments_complete_to_the_names_and_ids_the_cli_sees(tmp_path):
    crontab = "#@smart name=backup\n0 2 * * * backup\n#@smart name=batch\n0 3 * * * b\n"
    config = write_config(tmp_path, crontab)
    ctx = click.Context(run_cmd)
    job_param = next(p for p in run_cmd.params if p.name == "job")
    ctx.params = {"config_file": str(config), "user_mode": True}
    found = complete_job(ctx, job_param, "ba")
    assert [item.value for item in found] == ["backup", "batch"]
    assert found[0].help == f"{ME}: backup"
    ids = [item.value for item in complete_job(ctx, job_param, "")]
    assert ids == ["backup", f"crontab-{ME}-backup", "batch", f"crontab-{ME}-batch"]
