"""smartcron --container: the real daemon in container mode, run directly (no runtime).

Its log is stdout, read here from a file as JSON lines. A minute job runs on a fake
clock (libfaketime, started three seconds before a minute); @reboot jobs run at the
start, as in any container start. Container mode is serve()'s one wiring: its control
socket answers smartcronctl, and a history_url sends its runs to the fleet's history.
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

from tests.pgkit import PgServer
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


def fake_clock() -> dict[str, str]:
    """The environment of a daemon whose clock starts three seconds before 00:01."""
    return {
        **os.environ,
        "LD_PRELOAD": FAKETIME[0],
        "FAKETIME": "@2026-01-01 00:00:57",
        "FAKETIME_DONT_RESET": "1",
        "TZ": "UTC",
    }


def config_file(where: Path, *lines: str) -> Path:
    conf = where / "smartcron.toml"
    conf.write_text("".join(f"{line}\n" for line in lines))
    return conf


def ctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "smartcronctl"), *argv], capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(not FAKETIME, reason="libfaketime is not installed (faketime)")
def test_a_minute_job_runs_at_its_minute_on_a_fake_clock() -> None:
    with workdir() as where:
        tab = crontab(
            where,
            "#@smart name=tick window=30s\n* * * * * echo tick\n"
            # No disk is ever 100 % free: the gate defers this one, and says so.
            "#@smart name=full window=5m min_disk=100\n* * * * * echo never\n",
        )
        log = where / "log"
        proc = start(tab, log, env=fake_clock())
        try:
            wait_for(
                lambda: output_of(log) and any(" DEFER (" in r["msg"] for r in records(log)),
                timeout=15,
                what="the minute job and the deferral",
            )
        finally:
            stop(proc)
        (line,) = [r for r in records(log) if r.get("stream") == "output"]
        assert (line["msg"], line["job"]) == ("tick", f"crontab-{ME}-tick")  # its name=
        assert line["time"].startswith("2026-01-01T00:01:0")  # the fake minute it was due
        starts = [r for r in records(log) if r["msg"].endswith("CMD (echo tick)")]
        assert len(starts) == 1
        (deferred,) = [r["msg"] for r in records(log) if " DEFER (full " in r["msg"]]
        assert "firing of 00:01" in deferred and "min_disk 100" in deferred


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


@pytest.mark.skipif(not FAKETIME, reason="libfaketime is not installed (faketime)")
def test_a_jobs_timeout_keeps_kill_grace_and_not_the_stop_grace() -> None:
    with workdir() as where:
        tab = crontab(
            where, "#@smart name=slow window=30s timeout=1s\n* * * * * trap '' TERM; sleep 300\n"
        )
        conf = config_file(where, "kill_grace = 1")
        log = where / "log"
        # --grace 30 is a stop's: the timeout's SIGTERM is followed by SIGKILL 1 s later.
        proc = start(tab, log, "--config", str(conf), "--grace", "30", env=fake_clock())
        try:
            (end,) = wait_for(
                lambda: [r["msg"] for r in records(log) if " END (trap" in r["msg"]],
                timeout=12,
                what="the timed-out job's end",
            )
        finally:
            stop(proc)
        assert end.startswith("(" + ME + ") END (trap '' TERM; sleep 300) signal 9, ")
        took = float(end.rsplit(", ", 1)[1].removesuffix(" s"))
        assert 2.0 <= took < 3.5  # timeout 1 s, then kill_grace 1 s
        assert proc.returncode == 0


def test_smartcronctl_with_the_same_config_reaches_the_container_through_its_socket() -> None:
    with workdir() as where:
        tab = crontab(where, "#@smart name=greet\n@yearly echo greeted\n")
        # The file names the state and run directories: the daemon and smartcronctl
        # both find the lock, status file and socket there (no --state-dir given).
        conf = config_file(where, 'state_dir = "state"', 'run_dir = "state"')
        log = where / "log"
        proc = start(tab, log, "--config", str(conf))
        sock = where / "state" / "smartcron.sock"
        try:
            wait_for(sock.exists, what="the control socket")
            status = ctl("status", "--config", str(conf), "--json")
            ran = ctl("run", "--config", str(conf), "greet")
            wait_for(lambda: output_of(log) == ["greeted"], what="the job run through the socket")
        finally:
            stop(proc)
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert (doc["running_daemon"], doc["pid"]) == (True, proc.pid)
        assert [f["path"] for f in doc["files"]] == [str(tab)]
        assert [job["name"] for job in doc["jobs"]] == ["greet"]
        assert doc["mail"]["command"] == "none: container mode, the output is in the log"
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == f"crontab-{ME}-greet: started (history run 1)"
        assert any(f"listening on {sock}" == r["msg"] for r in records(log))
        assert proc.returncode == 0
        assert not sock.exists()  # removed at the stop; the state stays
        assert (where / "state" / "history.db").exists()


def test_a_history_url_sends_the_containers_runs_to_the_fleet_history(pg: PgServer) -> None:
    import psycopg

    url = pg.create_db()
    with workdir() as where:
        tab = crontab(where, "@reboot echo to the fleet\n")
        conf = config_file(where, f'history_url = "{url}"', 'fleet_host = "box-1"')
        log = where / "log"
        proc = start(tab, log, "--config", str(conf))
        try:
            wait_for(lambda: output_of(log) == ["to the fleet"], what="the job's output")
        finally:
            stop(proc)  # what waits is sent as the history closes
        assert proc.returncode == 0
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT host, command, status FROM runs").fetchall()
    assert rows == [("box-1", "echo to the fleet", "ok")]


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


def _as_user(uid: int, gid: int, home: str, log: Path, argv: list[str]) -> int:
    """Fork; the child drops to `uid` and runs smartcron's main in-process, its stdout
    and stderr on `log`. (The interpreter may live where another user cannot enter, as
    under /root: so no exec, and what the daemon imports is imported here first.)"""
    import ctypes.util  # noqa: F401  (the Waker's inotify)

    import inotify_simple  # noqa: F401

    import smartcron.ai.modelwatch
    import smartcron.ai.retrain
    import smartcron.daemon.container
    import smartcron.daemon.control  # noqa: F401
    from smartcron.cli import daemon

    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # pytest's capture replaced sys.stdout: the log handler must write to fd 1.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        os.environ.clear()
        os.environ.update({"HOME": home, "PATH": "/usr/bin:/bin", "TZ": "UTC"})
        daemon.main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os._exit(code)


@pytest.mark.skipif(not is_root(), reason="needs root: creates a throwaway user")
def test_it_runs_as_a_plain_user_with_no_root_and_forwards_sigterm() -> None:
    with throwaway_user() as user, workdir(user.pw.uid) as where:
        tab = crontab(
            where, "@reboot id -un; pwd\n@reboot trap 'echo TERM; exit 3' TERM; sleep 300 & wait\n"
        )
        os.chown(tab, user.pw.uid, -1)
        log = where / "log"
        argv = ["--container", str(tab), "--log-format", "json", "--grace", "5"]
        pid = _as_user(user.pw.uid, user.pw.gid, user.pw.dir, log, argv)
        try:
            wait_for(lambda: len(output_of(log)) == 2, what="the first job's output")
            time.sleep(0.3)  # the second job's shell has set its trap
        finally:
            began = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
            took = time.monotonic() - began
        assert os.waitstatus_to_exitcode(status) == 0
        assert took < 5
        assert output_of(log) == [user.pw.name, user.pw.dir, "TERM"]
        state = [r["msg"] for r in records(log) if r["msg"].startswith("container mode:")]
        assert state and f" as {user.pw.name}, state in /tmp/smartcron-" in state[0]
        assert not list(Path("/tmp").glob(f"smartcron-*/{tab.name}"))  # nothing left behind
        assert not any(r["level"] == "warning" and "root" in r["msg"] for r in records(log))


@pytest.mark.parametrize(
    "option", [["--grace", "5"], ["--log-format", "json"], ["--state-dir", "/x"]]
)
def test_the_container_options_need_container_mode(option: list[str]) -> None:
    from click.testing import CliRunner

    from smartcron.cli.daemon import main

    result = CliRunner().invoke(main, ["--user", "-f", *option])
    assert result.exit_code == 2
    assert "--log-format, --grace and --state-dir go with --container" in result.stderr
