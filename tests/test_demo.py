"""The demo `make run` starts (fixtures/demo) and the README's five-minute tour.

The first three minutes of the demo crontab on a fake clock show each visible event; the
demo script itself starts the real daemon, whose @reboot mail must land in .run/mail/;
and the tour's shell blocks, extracted from README.md, run verbatim against it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from smartcron.testing import FakeOutcome
from tests.harness import START, make

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
BIN = Path(sys.executable).parent

REBOOT = 'echo "SmartCron demo started: this message was mailed by the demo daemon"'
TICK = "date '+tick at %H:%M'  >/dev/null"  # cron unescapes the crontab's %
MAILED = 'echo "Every two minutes: this output was mailed by the demo daemon"'
EXPLORE = 'echo "demo_explore ran" >/dev/null'
FORCED = 'echo "demo_forced ran at its deadline" >/dev/null'


def test_demo_shows_plain_run_deferral_forced_start_and_mail_in_three_minutes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # START is 00:58:30Z: the */2 firings come at 01:00Z, their deadlines at 01:01/01:02Z.
    h = make(
        tmp_path,
        (DEMO / "crontab").read_text(),
        outcomes={MAILED: [FakeOutcome(output=b"Every two minutes\n")]},
        explore=True,
    )
    h.run_until(START + timedelta(minutes=3))
    starts = h.starts
    assert [at for cmd, at in starts if cmd == MAILED] == ["01:00Z"]
    assert [at for cmd, at in starts if cmd == TICK] == ["00:59Z", "01:00Z", "01:01Z"]
    # demo_forced: deferred at 01:00 with its reason, forced at its deadline 01:01.
    forced = h.trail(FORCED)
    assert forced[0][:2] == ("01:00Z", "defer")
    assert "disk free 60% < min_disk 100%" in forced[0][2]
    assert forced[1] == (
        "01:01Z",
        "run",
        "deadline 02:01 reached: running despite disk free 60% < min_disk 100%",
    )  # reasons speak the crontab's local time (Berlin, UTC+1)
    assert [at for cmd, at in starts if cmd == FORCED] == ["01:01Z"]
    # ... and the daemon's log says both, one line each, as cron logs CMD.
    said = [r.getMessage() for r in caplog.records if "demo_forced" in r.getMessage()]
    assert any(" DEFER (" in line and "disk free 60% < min_disk 100%" in line for line in said)
    assert any(" FORCED (" in line and "at its deadline" in line for line in said)
    # demo_explore: nothing to wait for but learning: its start is a random minute of its
    # window, drawn from (job, nominal time), so fixed here: the draw is its nominal minute.
    # (On a real clock it often says "explored: waiting for HH:MM" first.)
    explore = h.trail(EXPLORE)
    assert explore[0][:2] == ("01:00Z", "run")
    assert "explored: a random start at 02:00" in explore[0][2]
    assert [at for cmd, at in starts if cmd == EXPLORE] == ["01:00Z"]
    # The plain job's output was mailed, as cron mails it (@reboot: the real test below).
    assert len(h.mailer.sent) == 1
    assert b"Every two minutes" in h.mailer.sent[0].message


def _demo_copy(tmp_path: Path) -> Path:
    """The parts of a clone the demo and the tour use, with the venv linked in."""
    top = tmp_path / "clone"
    for part in ("fixtures/demo", "fixtures/bin", "fixtures/crontabs", "fixtures/worlds"):
        shutil.copytree(ROOT / part, top / part)
    (top / "fixtures/traces").mkdir(parents=True)
    shutil.copy(ROOT / "fixtures/traces/laptop-8w.csv.gz", top / "fixtures/traces")
    (top / ".venv").symlink_to(BIN.parent)
    return top


def _start_demo(top: Path) -> subprocess.Popen[str]:
    # Its own session, so the test can stop the script, its daemon and its mail watcher.
    return subprocess.Popen(
        ["fixtures/demo/run", ".venv/bin"],
        cwd=top,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stop_demo(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def _wait_for(path: Path, pattern: str, seconds: float = 20.0) -> list[Path]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = sorted(path.glob(pattern))
        if found:
            return found
        time.sleep(0.1)
    return []


def test_make_run_script_mails_to_run_mail_and_prints_the_inspect_commands(
    tmp_path: Path,
) -> None:
    top = _demo_copy(tmp_path)
    proc = _start_demo(top)
    try:
        mails = _wait_for(top / ".run/mail", "*.eml")
        time.sleep(1.5)  # the watcher looks once a second
    finally:
        out = _stop_demo(proc)
    assert len(mails) == 1, out
    message = mails[0].read_text()
    assert "SmartCron demo started: this message was mailed" in message
    assert (top / ".run/mail" / (mails[0].stem + ".argv")).read_text().splitlines()[:4] == [
        "-FCronDaemon",
        "-i",
        "-B8BITMIME",
        "-oem",
    ]
    assert f"demo: mail delivered to {mails[0]}" in out
    for command in ("status", "list", "explain demo_forced", "history"):
        line = f".venv/bin/smartcronctl {command} --user --config fixtures/demo/smartcron.toml"
        assert out.count(line) == 1, out
    assert f"CMD ({REBOOT})" in out


def tour_script(readme: str) -> str:
    """The ```sh blocks of the README's tour, in order, but `make run` (the test starts it)."""
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```", section, flags=re.S | re.M)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return "\n".join(line for line in lines if not line.startswith("make run"))


def test_readme_tour_commands_all_succeed_against_the_demo_daemon(tmp_path: Path) -> None:
    script = tour_script((ROOT / "README.md").read_text())
    assert "smartcronctl explain demo_forced $DEMO" in script
    assert script.count("smartcron") >= 8
    top = _demo_copy(tmp_path)
    proc = _start_demo(top)
    try:
        assert _wait_for(top / ".run", "smartcron.sock"), "the demo daemon did not start"
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env["PATH"] = "/usr/bin:/bin"  # a fresh shell: the venv is not on PATH
        done = subprocess.run(
            ["bash", "-e", "-x", "-c", script],
            cwd=top,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        _stop_demo(proc)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "valid" in done.stdout
    assert "demo_forced" in done.stdout
