"""The spawner process (smartcron/run/spawnserver.py): jobs it starts are the same jobs the
runner's own fork makes (differential), born in their cgroup as the daemon's children; a
spawner that dies, that the kernel refuses, or that a fork left behind never costs a job."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from smartcron.run.cgroup import JobCgroups
from smartcron.run.executor import ProcessRunner
from smartcron.run.spawner import Spawner, SpawnerUnavailable
from tests.runkit import request, run
from tests.users import NOT_ROOT, is_root, throwaway_user

# What a job can see of how it was started: ids, groups, cwd, session, process group,
# parent, signal dispositions and mask, capabilities, open descriptors, umask, stdin and
# its environment (including a byte that is not UTF-8), and its exit status.
PROBE = (
    "id; pwd; ps -o sid=,pgid= -p $$; test $PPID = $DAEMON && echo parent-is-daemon; "
    "grep -E '^(Sig(Blk|Ign|Cgt)|Cap(Eff|Prm)|NoNewPrivs|Umask)' /proc/self/status; "
    "ls /proc/$$/fd; cat; env | LC_ALL=C sort; cat /proc/self/cgroup | grep ^0:: | "
    "sed 's/-[0-9]*-[0-9]*$//'; exit 3"
)


@pytest.fixture(autouse=True)
def _sighup_caught_as_by_the_daemon():
    """The daemon catches SIGHUP (daemon/service.py: reload), so a job it forks starts
    with the default; a test process run under nohup ignores it, and its forked jobs
    would inherit that where the spawner's do not."""
    old = signal.signal(signal.SIGHUP, lambda *_: None)
    yield
    signal.signal(signal.SIGHUP, old)


def _probe(runner: ProcessRunner, pw=None, **changes):
    env = dict(request("x", pw).env, DAEMON=str(os.getpid()), ODD="caf\udce9")
    req = request(PROBE, pw, env=env, stdin="line one\nline two\n", **changes)
    result = run(runner, req)
    pid = str(result.pid).encode()
    return result.exit_code, result.output.replace(pid, b"PID"), result.spawn_error


def _uses_spawner(runner: ProcessRunner) -> bool:
    return runner.spawner is not None and runner.spawner.refused is None


def _clone3_refused() -> str | None:
    """Why this host's kernel will not clone3 (a seccomp filter, Linux < 5.7), or None."""
    runner = ProcessRunner(cgroups=JobCgroups.unavailable("probe"))
    run(runner, request("true"))
    assert runner.spawner is not None
    return runner.spawner.refused


REFUSED = _clone3_refused()
needs_clone3 = pytest.mark.skipif(REFUSED is not None, reason=f"{REFUSED}: nothing to compare")


@needs_clone3
def test_a_job_is_the_same_started_by_the_spawner_or_forked():
    spawned, forked = ProcessRunner(), ProcessRunner(spawner=False)
    assert _uses_spawner(spawned)
    first, second = _probe(spawned), _probe(forked)
    assert _uses_spawner(spawned)  # it did not fall back
    assert first == second
    code, output, _ = first
    assert code == 3 and b"parent-is-daemon" in output and b"line two" in output
    assert b"ODD=caf\xe9" in output  # the byte as it came, not re-encoded


@needs_clone3
@pytest.mark.skipif(not is_root(), reason=NOT_ROOT)
def test_as_root_a_users_job_is_the_same_both_ways_and_runs_as_that_user():
    with throwaway_user() as user:
        spawned, forked = ProcessRunner(), ProcessRunner(spawner=False)
        first, second = _probe(spawned, user.pw), _probe(forked, user.pw)
        assert _uses_spawner(spawned)
        assert first == second
        ids = first[1].splitlines()[0].decode()
        assert f"uid={user.pw.uid}(" in ids and f"({user.group})" in ids


@pytest.mark.parametrize(
    "changes",
    [
        {"shell": "/nonexistent/sh"},  # execle: No such file or directory
        {"shell": "/etc/passwd"},  # not executable
        {"shell": "sh", "home": "/"},  # no slash: relative to the working directory
    ],
)
@needs_clone3
def test_a_job_that_cannot_start_fails_with_the_same_words_both_ways(changes):
    spawned, forked = ProcessRunner(), ProcessRunner(spawner=False)
    results = [run(r, request("echo hi", **changes)) for r in (spawned, forked)]
    assert _uses_spawner(spawned)
    assert results[0].spawn_error == results[1].spawn_error is not None
    assert results[0].output == results[1].output
    assert (results[0].exit_code, results[0].pid) == (1, None)


@needs_clone3
def test_a_bad_working_directory_fails_the_same_both_ways(tmp_path):
    gone = str(tmp_path / "gone")  # the daemon's fallback directory, missing
    spawned = ProcessRunner(fallback_cwd=gone)
    forked = ProcessRunner(fallback_cwd=gone, spawner=False)
    req = request("echo hi", home=str(tmp_path / "no-home"))
    first, second = run(spawned, req), run(forked, req)
    assert first.spawn_error == second.spawn_error
    assert first.spawn_error is not None and gone in first.spawn_error


@needs_clone3
@pytest.mark.skipif(not JobCgroups.detect().available, reason="needs a writable cgroup v2")
def test_a_job_is_born_in_its_cgroup_and_a_timeout_reaches_a_grandchild_that_left():
    runner = ProcessRunner(grace_s=0.2)
    # First instruction: fork a child that leaves the session at once, then wait.
    req = request("setsid sleep 60 & cat /proc/self/cgroup; wait", timeout=1.0)
    result = run(runner, req)
    assert _uses_spawner(runner)
    assert result.timed_out and b"smartcron-jobs/job-job-" in result.output
    assert not _leftover("sleep 60")


def _leftover(command: str) -> bool:
    found = subprocess.run(["pgrep", "-f", "-x", command], capture_output=True)
    return found.returncode == 0


@needs_clone3
def test_a_killed_spawner_costs_no_job_and_is_started_again():
    runner = ProcessRunner()
    assert runner.spawner is not None and runner.spawner._proc is not None
    first = runner.spawner._proc.pid
    os.kill(first, signal.SIGKILL)
    time.sleep(0.1)
    assert run(runner, request("echo after")).output == b"after\n"  # forked: not lost
    assert run(runner, request("echo again")).output == b"again\n"
    assert runner.spawner._proc is not None and runner.spawner._proc.pid != first
    assert _uses_spawner(runner)


class _Refusing(Spawner):
    """A kernel without clone3 (or a seccomp filter refusing it)."""

    def _ask(self, request: bytes, fds: list[int]) -> tuple[int, int]:
        return 0, errno.ENOSYS


def test_a_kernel_refusing_clone3_leaves_every_job_to_the_fork_path():
    runner = ProcessRunner(spawner=False)
    runner.spawner = _Refusing()
    assert run(runner, request("echo one")).output == b"one\n"
    assert runner.spawner.refused == "clone3: Function not implemented"
    with pytest.raises(SpawnerUnavailable):
        runner.spawner.spawn("/bin/true", ["true"], {}, cwd=None, ids=None, stdin=0,
                             stdout=1, cgroup_dir=None)  # fmt: skip
    assert run(runner, request("echo two")).output == b"two\n"


@needs_clone3
def test_the_spawner_exits_with_the_daemon_and_a_fork_does_not_use_its_parents():
    script = textwrap.dedent(
        """
        import os, sys, time
        from smartcron.run.executor import ProcessRunner
        from tests.runkit import request, run
        runner = ProcessRunner()
        print(runner.spawner._proc.pid, flush=True)
        pid = os.fork()
        if pid == 0:  # a forked child's jobs are its own children, from its own spawner
            ok = run(runner, request("echo child")).output == b"child\\n"
            os._exit(0 if ok and runner.spawner._proc.pid != int(sys.argv[1] or 0) else 1)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
        time.sleep(60)
        """
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, ""], cwd=root, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    spawner = int(proc.stdout.readline())
    assert proc.stdout.readline() == "0\n"  # the forked child's job ran, through its own
    os.kill(proc.pid, signal.SIGKILL)  # the daemon killed: its spawner reads EOF and exits
    proc.wait()
    deadline = time.monotonic() + 5
    while _alive(spawner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(spawner)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class _Vanishing(JobCgroups):
    """Each job's cgroup is removed right after it is made (an admin, a cleanup tool)."""

    def create(self, job_id: str):
        cg = super().create(job_id)
        cg.path.rmdir()
        return cg


@pytest.mark.skipif(not JobCgroups.detect().available, reason="needs a writable cgroup v2")
def test_a_cgroup_gone_before_the_start_still_runs_the_job_and_says_so(caplog):
    parent = JobCgroups.detect().parent
    runner = ProcessRunner(cgroups=_Vanishing(parent))
    result = run(runner, request("echo ran; cat /proc/self/cgroup"))
    assert result.exit_code == 0 and result.output.startswith(b"ran\n")
    assert b"job-job-" not in result.output  # in the daemon's own cgroup instead
    assert "its process group only" in caplog.text


def test_without_an_interpreter_for_the_spawner_jobs_are_forked_and_it_is_not_retried(
    monkeypatch, caplog
):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    runner = ProcessRunner()
    assert runner.spawner is not None
    assert runner.spawner.refused is not None and "/nonexistent/python3" in runner.spawner.refused
    assert run(runner, request("echo forked")).output == b"forked\n"
    assert run(runner, request("echo again")).output == b"again\n"
    assert caplog.text.count("jobs are forked by the daemon itself") == 1


@needs_clone3
def test_status_names_the_running_daemons_spawner_and_it_exits_with_the_daemon(tmp_path):
    from tests.realdaemon import BIN, start, stop, write_config

    config = write_config(tmp_path, "@yearly true\n")
    proc = start(config)
    try:
        deadline = time.monotonic() + 20
        said = ""
        while "jobs started by" not in said and time.monotonic() < deadline:
            time.sleep(0.2)
            status = [str(BIN / "smartcronctl"), "status", "--user", "--config", str(config)]
            said = subprocess.run(status, capture_output=True, text=True).stdout
        line = next(x for x in said.splitlines() if x.startswith("jobs started by: "))
        spawner = int(line.split("(pid ")[1].split(";")[0])
        cmdline = Path(f"/proc/{spawner}/cmdline").read_bytes()
        assert b"spawnserver.py" in cmdline
        assert Path(f"/proc/{spawner}/stat").read_text().split(") ")[1].split()[1] == str(proc.pid)
    finally:
        stop(proc)
    deadline = time.monotonic() + 5
    while _alive(spawner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(spawner)


@needs_clone3
def test_a_job_starts_with_sighup_at_its_default_as_crons_do():
    """Debian's cron catches SIGHUP, so its jobs start with the default whatever cron
    inherited (a daemon started under nohup: tests/test_differential_daemon.py compares
    SigIgn); a spawner started while SIGHUP was ignored must not hand the ignore on."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        runner = ProcessRunner()
        result = run(runner, request("grep ^SigIgn /proc/self/status"))
    finally:
        signal.signal(signal.SIGHUP, old)
    assert _uses_spawner(runner)
    ignored = int(result.output.split()[1], 16)
    assert not ignored & (1 << (signal.SIGHUP - 1)), result.output
