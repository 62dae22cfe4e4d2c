"""Issue 11, finding 5: a crontab's companion F.smart.yaml and the standalone job files
are watched like crontabs. A change of either alone is applied at the next rescan,
logged with the file and what it changed, and shown in `status` (Loaded.document); a
broken companion is logged once with file:line and never stops its job (SPEC 4.1: the
annotated line keeps its inline keys).

In-process daemons on a FakeClock (the once-a-minute rescan) and one real daemon whose
only way to notice changes within the test is inotify (mtime_check = 3600).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartcron.daemon.service import status_document
from smartcron.daemon.wakeup import Waker
from tests.harness import START, Harness, battery, make, utc
from tests.polling import wait_for
from tests.realdaemon import write_config

CRONTAB = "#@smart name=b\n0 2 * * * backup\n* * * * * tick\n"  # backup: 02:00 CET = 01:00Z
BIN = Path(sys.executable).parent
# The processes run the package beside this file (also from a git worktree of an older
# commit, where the venv's editable install would point elsewhere).
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
_bump = iter(range(1, 1000))


def write(path: Path, text: str) -> None:
    """Write `text`; move the mtime on by whole seconds so that two writes within one
    clock tick still differ in their stamp, as edits a minute apart do."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + next(_bump) * 1_000_000_000))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def backups(h: Harness) -> list[str]:
    return [at for command, at in h.starts if command == "backup"]


def companion_doc(h: Harness) -> object:
    (doc,) = status_document(h.daemon, START)["files"]
    return doc["companion"]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="smartcron")
    return caplog


def test_a_companion_change_alone_is_logged_published_and_used_by_the_next_firing(tmp_path, logs):
    tab, side = tmp_path / "crontab", tmp_path / "crontab.smart.yaml"
    write(side, "jobs:\n  b:\n    min_battery: 50\n")  # on 18 % battery: would defer
    h = make(tmp_path, CRONTAB, battery())
    published: list[object] = []
    h.daemon.on_reload = lambda: published.append(h.clock.now())
    write(side, "jobs:\n  b:\n    min_battery: 10\n")
    logs.clear()
    h.run_until(utc("01:30"))
    assert backups(h) == ["01:00Z"]
    said = messages(logs)
    assert said.count(f"{side}: changed, applied to 1 annotated job(s) of {tab}") == 1
    assert said.count(f"{tab}:2 (b): min_battery 50.0 -> 10.0") == 1
    assert len(published) == 1  # status.json is rewritten for it (serve's on_reload)
    assert companion_doc(h) == {"path": str(side), "state": "ok", "problems": []}


def test_a_broken_companion_is_logged_once_with_its_line_and_the_job_keeps_running(tmp_path, logs):
    tab, side = tmp_path / "crontab", tmp_path / "crontab.smart.yaml"
    write(side, "jobs:\n  b:\n    min_battery: 50\n")
    h = make(tmp_path, CRONTAB, battery())
    write(side, "jobs:\n  b:\n    min_battery: lots\n")
    logs.clear()
    h.run_until(utc("01:30"))  # 31 steps, each a rescan: still said once
    said = messages(logs)
    lines = [m for m in said if m.startswith(f"{side}:3: jobs.b.min_battery: ")]
    assert len(lines) == 1 and lines[0].endswith("; annotations use their inline keys only")
    event = f"{side}: changed, broken (1 problem(s)); the annotated lines of {tab} use their"
    assert sum(m.startswith(event) for m in said) == 1
    # Not disabled: still a smart job, on its inline keys (no constraint), so it runs.
    assert h.job("backup").smart is not None
    assert backups(h) == ["01:00Z"]
    doc = companion_doc(h)
    assert isinstance(doc, dict) and doc["state"] == "broken"
    assert [p.split(": ")[0] for p in doc["problems"]] == [f"{side}:3"]


def test_a_companion_created_then_removed_is_logged_each_time_and_applied(tmp_path, logs):
    tab, side = tmp_path / "crontab", tmp_path / "crontab.smart.yaml"
    h = make(tmp_path, CRONTAB, battery())
    write(side, "defaults:\n  min_battery: 50\n")
    logs.clear()
    h.run_until(utc("01:30"))
    assert backups(h) == []  # deferred: 18 % < 50 %
    said = messages(logs)
    assert said.count(f"{side}: created, applied to 1 annotated job(s) of {tab}") == 1
    assert said.count(f"{tab}:2 (b): min_battery None -> 50.0") == 1
    assert companion_doc(h) == {"path": str(side), "state": "ok", "problems": []}
    side.unlink()
    logs.clear()
    h.run_until(utc("01:45"))
    said = messages(logs)
    removed = f"{side}: removed; the annotated lines of {tab} use their inline keys only"
    assert said.count(removed) == 1
    assert said.count(f"{tab}:2 (b): min_battery 50.0 -> None") == 1
    assert len(backups(h)) == 1  # the deferred firing runs on the settings now in force
    assert companion_doc(h) is None


def test_a_job_file_added_changed_broken_and_removed_is_logged_and_applied(tmp_path, logs):
    h = make(tmp_path, "* * * * * tick\n")
    jobs = tmp_path / "jobs"
    jobs.mkdir()  # after the start
    job = jobs / "nightly.yaml"
    write(job, "job_name: nightly\ncommand: nightly\nschedule: 0 2 * * *\n")
    h.run_until(utc("01:30"))
    write(job, "job_name: nightly\ncommand: nightly\nschedule: 0 3 * * *\n")
    h.run_until(utc("02:30"))
    write(job, "job_name: nightly\ncommand: nightly\nschedule: 0 25 * * *\n")
    h.run_until(utc("03:30"))
    refused = h.daemon.db.files[str(job)].document()["refused"]
    job.unlink()
    h.run_until(utc("03:45"))
    assert [at for command, at in h.starts if command == "nightly"] == ["01:00Z", "02:00Z"]
    said = messages(logs)
    assert said.count(f"{job}: loaded, 1 job(s)") == 1
    assert said.count(f"{job}: reloaded, 1 job(s)") == 1
    assert said.count(f"{job}:1 (nightly): schedule 0 2 * * * -> 0 3 * * *") == 1
    bad = [m for m in said if m.startswith(f"{job}: refused: {job}:3: schedule: ")]
    assert len(bad) == 1 and isinstance(refused, str) and refused.startswith(f"{job}:3:")
    assert said.count(f"{job}: removed, its jobs stop") == 1
    assert str(job) not in h.daemon.db.files


@pytest.mark.skipif(not Waker().watches_files, reason="needs inotify")
def test_the_real_daemon_sees_a_companion_and_a_jobs_directory_made_later_by_inotify(tmp_path):
    # An hour between rescans: within this test only inotify can make the daemon look.
    config = write_config(
        tmp_path, "#@smart name=b\n0 2 * * * true\n", mtime_check="3600", mode='"legacy"'
    )
    side, status = tmp_path / "crontab.smart.yaml", tmp_path / "state" / "status.json"
    output = tmp_path / "daemon.log"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "smartcron"), "--user", "--foreground", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
        )

    def logged(text: str) -> bool:
        return text in output.read_text()

    try:
        wait_for(status.exists, what="status.json (written once the watches are set)")
        side.write_text("jobs:\n  b:\n    min_battery: 30\n")
        wait_for(lambda: logged(f"{side}: created, applied to 1 annotated job(s)"), 30, "log")
        (tmp_path / "jobs").mkdir()
        time.sleep(0.5)  # the daemon has rescanned for the mkdir; the file comes later
        (tmp_path / "jobs" / "x.yaml").write_text(
            "job_name: x\ncommand: 'true'\nschedule: '@daily'\n"
        )
        # Its creation's event may come before its content: then the daemon refuses the
        # empty file and its close's event reloads it, logged as "reloaded".
        job_file = tmp_path / "jobs" / "x.yaml"
        found = (f"{job_file}: loaded, 1 job(s)", f"{job_file}: reloaded, 1 job(s)")
        wait_for(lambda: any(logged(text) for text in found), 30, "log")
        shown = subprocess.run(
            [str(BIN / "smartcronctl"), "status", "--user", "--config", str(config), "--json"],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        )
        files = {Path(f["path"]).name: f for f in json.loads(shown.stdout)["files"]}
        assert files["crontab"]["companion"] == {"path": str(side), "state": "ok", "problems": []}
        assert files["x.yaml"]["jobs"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
