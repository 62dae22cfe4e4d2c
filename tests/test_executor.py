"""The executor: a contract suite for every Runner, then real processes and real users."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from users import NOT_ROOT, ThrowawayUser, is_root, throwaway_user

from smartcron.cron.crontab import Kind, parse
from smartcron.run.executor import (
    ProcessRunner,
    RunResult,
    request_for_entry,
)
from smartcron.run.jobenv import job_environment, resolve_user
from tests.runkit import request, run

ROOT = resolve_user("root")
assert ROOT is not None
needs_root = pytest.mark.skipif(not is_root(), reason=NOT_ROOT)


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie nobody reaped (PID 1 here may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ---------------------------------------------------------------------------- processes


@pytest.fixture
def runner() -> ProcessRunner:
    return ProcessRunner(grace_s=0.5, linger_s=0.3)


def test_output_of_fifty_megabytes_keeps_memory_bounded(runner):
    result = run(runner, request("head -c 50000000 /dev/zero; echo done >&2"))
    note = b"\n[smartcron: output cut at 1048576 of 50000005 bytes]\n"
    assert result.output_size == 50_000_005
    assert result.output == bytes(1 << 20) + note


def test_stdout_and_stderr_share_one_stream_in_order(runner):
    assert run(runner, request("echo a; echo b >&2; echo c")).output == b"a\nb\nc\n"


def test_no_percent_input_is_an_empty_pipe_like_debian(runner):
    result = run(runner, request("test -p /dev/stdin && wc -c"))
    assert result.output.split() == [b"0"]


def test_big_input_a_job_never_reads_does_not_block(runner):
    result = run(runner, request("exit 0", stdin="y" * 5_000_000), timeout=5)
    assert result.ok


def test_background_child_holding_the_output_does_not_hold_the_result(runner, tmp_path):
    go = tmp_path / "go"  # the child writes only once the result is in: no race, no timing
    child = f"(while [ ! -e {go} ]; do sleep 0.05; done; echo late) & echo early"
    try:
        result = run(runner, request(child))
    finally:
        go.touch()
    assert result.output == b"early\n" and result.exit_code == 0


def test_wall_time_ends_at_the_shells_exit_not_at_the_pipes_eof(tmp_path):
    go = tmp_path / "go"
    child = f"(while [ ! -e {go} ]; do sleep 0.05; done; echo late) & echo early"
    done: list[RunResult] = []
    handle = ProcessRunner(linger_s=5).start(request(child), done.append)
    deadline = time.monotonic() + 20
    while (handle.pid is None or not gone(handle.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the shell has exited: its child still holds the pipe
    # The shell is a zombie now, but the collector may reap it a moment later: give it a
    # clear half second, so "ends at the exit" and "ends at the EOF" are far apart.
    time.sleep(0.5)
    released = datetime.now(UTC)
    go.touch()
    result = handle.wait(20)
    assert result is not None and result.output == b"early\nlate\n"  # within the linger
    assert result.started + timedelta(seconds=result.wall_s) <= released


def test_output_written_within_the_linger_is_kept(runner):
    result = run(ProcessRunner(linger_s=5), request("(sleep 1; echo late) & echo early"))
    assert result.output == b"early\nlate\n"


def test_background_child_is_not_killed_by_sigpipe_after_the_linger(runner, tmp_path):
    marker = tmp_path / "survived"
    run(runner, request(f"(sleep 0.6; echo late; echo ok > {marker}) & echo early"))
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "ok\n"


def test_a_background_child_that_never_stops_writing_does_not_hold_the_result():
    runner = ProcessRunner(linger_s=0.2)
    t0 = time.monotonic()
    result = run(runner, request("sh -c 'echo $$; exec yes' &", output_cap=1000))
    writer = int(result.output.split(b"\n", 1)[0])
    try:
        assert time.monotonic() - t0 < 2
        assert result.exit_code == 0 and result.output_size > 1000
    finally:
        os.kill(writer, signal.SIGKILL)


def test_timeout_kills_the_whole_process_group(runner):
    t0 = time.monotonic()
    result = run(runner, request("sleep 30 & echo $!; wait", timeout=0.3))
    grandchild = int(result.output.split()[0])
    assert (result.timed_out, result.signal, result.exit_code) == (True, signal.SIGTERM, None)
    assert time.monotonic() - t0 < 2
    assert gone(grandchild)


def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(runner):
    result = run(runner, request("trap '' TERM; sleep 30 & echo $!; wait", timeout=0.3))
    assert (result.timed_out, result.signal) == (True, signal.SIGKILL)
    assert result.wall_s >= 0.3 + runner.grace_s - 0.01  # SIGKILL only after the grace
    assert gone(int(result.output.split()[0]))


def test_exit_by_signal_is_recorded(runner):
    result = run(runner, request("kill -USR1 $$"))
    assert (result.exit_code, result.signal, result.timed_out) == (None, signal.SIGUSR1, False)


def test_cpu_time_and_peak_memory_are_recorded(runner):
    result = run(runner, request("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"))
    assert result.cpu_s > 0.01 and result.max_rss_kb > 100


def test_missing_shell_is_a_spawn_error_not_an_exception(runner):
    result = run(runner, request("echo hi", shell="/nonexistent/sh"))
    assert result.spawn_error == "/nonexistent/sh: execle: No such file or directory"
    assert (result.exit_code, result.pid) == (1, None)
    assert result.output == b"/nonexistent/sh: execle: No such file or directory\n"


def test_shell_without_a_slash_is_not_looked_up_in_path(runner):
    result = run(runner, request("echo hi", shell="sh", home="/"))  # execle: relative to cwd
    assert result.spawn_error == "sh: execle: No such file or directory"


def test_an_environment_popen_refuses_is_a_spawn_error(runner):
    result = run(runner, request("true", env={"A=B": "x"}))
    assert result.spawn_error is not None and result.exit_code == 1


def test_no_file_descriptors_or_threads_are_left_behind(runner):
    def counts() -> tuple[int, int]:
        gc.collect()  # earlier tests' runners (and their spawners' sockets) closed now
        return len(os.listdir("/proc/self/fd")), threading.active_count()

    before = counts()  # the runner's spawner socket (spawner.py) is open already
    for command in ("echo x", "cat", "exit 4"):
        run(runner, request(command, stdin="in"))
    run(runner, request("x", shell="/nonexistent"))
    deadline = time.monotonic() + 5
    while counts() != before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counts() == before


def test_on_done_raising_does_not_break_the_runner(runner):
    def boom(result: RunResult) -> None:
        raise RuntimeError("callback bug")

    assert runner.start(request("echo x"), boom).wait(20) is not None
    assert run(runner, request("echo y")).output == b"y\n"


def test_sandbox_prefix_runs_before_the_shell(runner):
    result = run(runner, request("echo $0 inside", sandbox=("env", "--")))
    assert result.output == b"/bin/sh inside\n"


def test_missing_sandbox_is_a_spawn_error(runner):
    result = run(runner, request("true", sandbox=("no-such-sandbox-scxt",)))
    assert result.spawn_error == "no-such-sandbox-scxt: sandbox command not found"


# ---------------------------------------------------------------------------- real users


@pytest.fixture(scope="module")
def user() -> Iterator[ThrowawayUser]:
    if not is_root():
        pytest.skip(NOT_ROOT)
    with throwaway_user() as created:
        yield created


@pytest.mark.root
@needs_root
def test_job_runs_with_the_owners_uid_gid_and_groups(runner, user):
    out = run(runner, request("id -u; id -g; id -G", user.pw)).output.decode().split("\n")
    assert int(out[0]) == user.pw.uid and int(out[1]) == user.pw.gid
    groups = sorted(int(g) for g in out[2].split())
    assert groups == sorted(set(os.getgrouplist(user.pw.name, user.pw.gid)))
    assert user.group_gid in groups and 0 not in groups


@pytest.mark.root
@needs_root
def test_job_environment_is_exactly_crons(runner, user):
    req = request("env; echo ===; tr '\\0' '\\n' < /proc/$$/environ", user.pw)
    listed, exec_env = run(runner, req).output.decode().split("===\n")
    seen = dict(line.split("=", 1) for line in listed.splitlines())
    assert seen.pop("PWD") == user.pw.dir  # the one variable dash adds
    expected = {"SHELL": "/bin/sh", "HOME": user.pw.dir, "PATH": "/usr/bin:/bin"}
    assert seen == expected | {"LOGNAME": user.pw.name}
    # What execve received, in env_set's order (mail's X-Cron-Env order).
    assert exec_env.splitlines() == [f"{k}={v}" for k, v in req.env.items()]


@pytest.mark.root
@needs_root
def test_job_starts_in_home(runner, user):
    assert run(runner, request("pwd", user.pw)).output.decode() == user.pw.dir + "\n"


@pytest.mark.root
@needs_root
def test_a_home_the_user_cannot_enter_leaves_the_job_in_crons_cwd(user, tmp_path):
    # Debian chdir()s after setuid() and ignores the failure: cron's own cwd is kept.
    runner = ProcessRunner(fallback_cwd=str(tmp_path))
    tmp_path.chmod(0o755)
    env = job_environment([("HOME", "/root")], user.pw)  # /root is mode 0700
    req = request("pwd; echo $HOME", user.pw, env=env, home="/root")
    result = run(runner, req)
    assert result.output.decode() == f"{tmp_path}\n/root\n" and result.ok


@pytest.mark.root
@needs_root
def test_a_missing_home_also_falls_back(user, tmp_path):
    tmp_path.chmod(0o755)
    runner = ProcessRunner(fallback_cwd=str(tmp_path))
    result = run(runner, request("pwd", user.pw, home="/nonexistent/scxt"))
    assert result.output.decode() == f"{tmp_path}\n"


@pytest.mark.root
@needs_root
def test_crontab_lines_run_with_their_assignments_and_percent_input(runner, user):
    tab = parse(
        "FOO = 'bar baz'\nSHELL=/bin/bash\n"
        '* * * * * echo "$FOO $0 \\% $LOGNAME"; cat%first%second\\%%third\n',
        Kind.USER,
    )
    req = request_for_entry(tab.entries[0], user.pw, job_id="tab:3")
    result = run(runner, req)
    assert result.output.decode() == (
        f"bar baz /bin/bash % {user.pw.name}\nfirst\nsecond%\nthird\n"
    )
    assert list(req.env) == ["FOO", "SHELL", "HOME", "PATH", "LOGNAME"]


@pytest.mark.root
@needs_root
def test_root_jobs_get_roots_own_groups(runner):
    out = run(runner, request("id -G", ROOT)).output.split()
    assert sorted(int(g) for g in out) == sorted(set(os.getgrouplist("root", 0)))


USER_MODE = """
import sys
from smartcron.run.executor import ProcessRunner, RunRequest
from smartcron.run.jobenv import job_environment, resolve_user
me = resolve_user(sys.argv[1])
env = job_environment([], me)
def req(uid):
    return RunRequest(job_id="u", command="id -u", stdin=None, env=env, user=me.name,
                      uid=uid, gid=me.gid, home=me.dir, shell="/bin/sh")
runner = ProcessRunner()
print(runner.start(req(me.uid), lambda r: None).wait(10).output.decode().strip())
print(runner.start(req(0), lambda r: None).wait(10).spawn_error)
"""


def as_user(user: ThrowawayUser, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, user=user.pw.uid, group=user.pw.gid, extra_groups=[], capture_output=True,
        cwd=Path(__file__).parents[1], env={"PATH": "/usr/bin:/bin", "HOME": user.pw.dir},
        text=True, timeout=20,
    )  # fmt: skip


@pytest.mark.root
@needs_root
def test_user_mode_runs_as_self_and_refuses_other_uids(user):
    # The venv's interpreter may live under /root; any Python 3.11 the user can run will do.
    check = "import sys; assert sys.version_info >= (3, 11)"
    for python in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        with contextlib.suppress(OSError):
            if as_user(user, [python, "-c", check]).returncode == 0:
                break
    else:
        pytest.skip("no Python 3.11 that the throwaway user may run")
    done = as_user(user, [python, "-c", USER_MODE, user.pw.name])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(user.pw.uid),
        "refused: not root, cannot run a job as uid 0",
    ]
