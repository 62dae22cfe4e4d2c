"""smartcron --container: the real daemon in container mode, run directly (no runtime).

Its log is stdout, read here from a file as JSON lines. A minute job runs on a fake
clock (libfaketime, started three seconds before a minute); @reboot jobs run at the
start, as in any container start.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.polling import wait_for
from tests.users import is_root, throwaway_user

BIN = Path(sys.executable).parent
ME = pwd.getpwuid(os.geteuid()).pw_name
FAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))


@contextmanager
def workdir(owner: int | None = None) -> Iterator[Path]:
    """A directory in /tmp another user can use (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="sc-container-"))
    path.chmod(0o755)
    if owner is not None:
        os.chown(path, owner, -1)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def crontab(where: Path, text: str) -> Path:
    tab = where / "crontab"
    tab.write_text(text)
    tab.chmod(0o644)
    return tab


def start(tab: Path, log: Path, *args: str, **popen: object) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "smartcron"), "--container", str(tab), "--log-format", "json", *args]
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]


def records(log: Path) -> list[dict]:
    """The JSON lines written so far (every line must be one)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def output_of(log: Path) -> list[str]:
    return [r["msg"] for r in records(log) if r.get("stream") == "output"]


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    """SIGTERM, then the seconds until the daemon exited."""
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=timeout)
    return time.monotonic() - began


def test_a_jobs_output_is_logged_as_json_lines() -> None:
    with workdir() as where:
        tab = crontab(where, 'MAILTO=""\n@reboot echo "hello, world"; echo second >&2\n')
        log = where / "log"
        proc = start(tab, log, "--state-dir", str(where / "state"))
        try:
            wait_for(lambda: len(output_of(log)) == 2, what="the job's output")
        finally:
            stop(proc)
        assert proc.returncode == 0
        lines = records(log)
        out = [r for r in lines if r.get("stream") == "output"]
        assert [r["msg"] for r in out] == ["hello, world", "second"]
        assert out[0]["command"] == 'echo "hello, world"; echo second >&2'
        assert out[0]["user"] == ME
        messages = [r["msg"] for r in lines]
        assert any(m.endswith('CMD (echo "hello, world"; echo second >&2)') for m in messages)
        assert messages[-1] == "stopped"
        assert all(set(r) >= {"time", "level", "msg"} for r in lines)
        # No mail: the run's record says why (the state directory was kept: --state-dir).
        assert (where / "state" / "history.db").exists()


@pytest.mark.skipif(not FAKETIME, reason="libfaketime is not installed (faketime)")
def test_a_minute_job_runs_at_its_minute_on_a_fake_clock() -> None:
    with workdir() as where:
        tab = crontab(where, "#@smart name=tick window=30s\n* * * * * echo tick\n")
        log = where / "log"
        env = {
            **os.environ,
            "LD_PRELOAD": FAKETIME[0],
            "FAKETIME": "@2026-01-01 00:00:57",
            "FAKETIME_DONT_RESET": "1",
            "TZ": "UTC",
        }
        proc = start(tab, log, env=env)
        try:
            wait_for(lambda: output_of(log), timeout=15, what="the minute job")
        finally:
            stop(proc)
        (line,) = [r for r in records(log) if r.get("stream") == "output"]
        assert (line["msg"], line["job"]) == ("tick", f"crontab-{ME}-tick")  # its name=
        assert line["time"].startswith("2026-01-01T00:01:0")  # the fake minute it was due
        starts = [r for r in records(log) if r["msg"].endswith("CMD (echo tick)")]
        assert len(starts) == 1


def test_sigterm_reaches_a_running_job_and_the_daemon_exits_within_the_grace() -> None:
    with workdir() as where:
        job = "trap 'echo got TERM; exit 3' TERM; sleep 300 & wait"
        tab = crontab(where, f"@reboot {job}\n")
        log = where / "log"
        proc = start(tab, log, "--grace", "5")
        wait_for(lambda: any("CMD (" in r["msg"] for r in records(log)), what="the job's start")
        time.sleep(0.3)  # the shell has set its trap
        took = stop(proc)
        assert proc.returncode == 0
        assert took < 5
        assert output_of(log) == ["got TERM"]
        assert any(f"END ({job}) exit 3, " in r["msg"] for r in records(log))


def test_a_job_ignoring_sigterm_is_killed_when_the_grace_is_over() -> None:
    with workdir() as where:
        tab = crontab(where, "@reboot trap '' TERM; sleep 300\n")
        log = where / "log"
        proc = start(tab, log, "--grace", "1")
        wait_for(lambda: any("CMD (" in r["msg"] for r in records(log)), what="the job's start")
        time.sleep(0.3)
        took = stop(proc)
        assert proc.returncode == 0
        assert 1 <= took < 4
        assert any("END (trap '' TERM; sleep 300) signal 9" in r["msg"] for r in records(log))


def test_a_bad_crontab_exits_1_with_file_and_line() -> None:
    with workdir() as where:
        tab = crontab(where, "* * * * * fine\n61 * * * * bad\n#@smart window=soon\n0 * * * * x\n")
        proc = subprocess.run(
            [str(BIN / "smartcron"), "--container", str(tab)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 1
        assert proc.stderr.splitlines() == [
            f"smartcron: {tab}:2: bad minute",
            f"{tab}:3: window: expected a duration (2h) or a clock window (01:00-03:00), "
            "got 'soon'",
        ]
        assert "CMD (" not in proc.stdout


def _reachable_by_others(path: str) -> bool:
    """Whether every directory above `path` lets other users through (o+x)."""
    parts = Path(os.path.realpath(path)).parents
    return all(os.stat(p).st_mode & 0o001 for p in parts)


@pytest.mark.skipif(not is_root(), reason="needs root: creates a throwaway user")
@pytest.mark.skipif(
    not _reachable_by_others(sys.executable),
    reason="the Python interpreter is in a directory other users cannot enter",
)
def test_it_runs_as_a_plain_user_with_no_root_and_no_spool() -> None:
    with throwaway_user() as user, workdir(user.pw.uid) as where:
        tab = crontab(where, "@reboot id -un; pwd\n")
        os.chown(tab, user.pw.uid, -1)
        log = where / "log"
        env = {"PATH": "/usr/bin:/bin", "HOME": user.pw.home, "TZ": "UTC"}
        proc = start(tab, log, env=env, user=user.pw.uid, group=user.pw.gid)
        try:
            wait_for(lambda: len(output_of(log)) == 2, what="the job's output")
        finally:
            stop(proc)
        assert output_of(log) == [user.pw.name, user.pw.home]
        assert proc.returncode == 0
