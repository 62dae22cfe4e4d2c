"""Issue 11, finding 7: a job's timeout (and a stop) reaches every process it made.

A grandchild that calls setsid() leaves the job's process group, so killpg() misses
it; with cgroup v2 each run has its own cgroup, and the timeout kills the cgroup.
Real processes and the real cgroup v2 hierarchy (root only); the daemon test uses the
fake clock for scheduling and a real ProcessRunner for the run.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from smartcron.daemon.service import status_document
from smartcron.run.cgroup import JOBS_DIR, JobCgroups
from smartcron.run.executor import ProcessRunner, RunRequest, RunResult
from smartcron.run.jobenv import job_environment, resolve_user
from tests.harness import make, runs, utc
from tests.polling import wait_for
from tests.users import NOT_ROOT, is_root

GRACE = 0.5


@functools.cache
def cgroups() -> JobCgroups:
    return JobCgroups.detect()


def _why_not() -> str:
    if not is_root():
        return NOT_ROOT
    return f"no writable cgroup v2 here ({cgroups().describe()})"


needs_cgroup = pytest.mark.skipif(not is_root() or not cgroups().available, reason=_why_not())


def request(command: str, **changes: object) -> RunRequest:
    me = resolve_user("root")
    assert me is not None
    env = job_environment([], me)
    fields: dict[str, object] = dict(
        job_id="cg", command=command, stdin=None, env=env, user=me.name, uid=me.uid,
        gid=me.gid, home=env["HOME"], shell="/bin/sh",
    )  # fmt: skip
    fields.update(changes)
    return RunRequest(**fields)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped counts as gone: PID 1 here may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pid(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text().strip(), 5, str(path)))


def cgroup_dir(path: Path) -> Path:
    """The cgroup directory a job wrote (`0::` line of its /proc/self/cgroup) to `path`."""
    assert cgroups().parent is not None
    own = wait_for(lambda: path.exists() and path.read_text().strip(), 5, str(path))
    assert f"/{JOBS_DIR}/job-" in own, own
    return cgroups().parent / own.rsplit("/", 1)[1]


def own_cgroup(path: Path) -> str:
    return f"sed -n 's/^0:://p' /proc/self/cgroup > {path}"


def cleanup(*pids: int) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def run(runner: ProcessRunner, req: RunRequest, timeout: float = 15) -> RunResult:
    result = runner.start(req, lambda r: None).wait(timeout)
    assert result is not None, "the job did not finish"
    return result


@needs_cgroup
def test_a_smart_jobs_timeout_kills_its_setsid_grandchild_and_is_recorded(tmp_path):
    pidfile, cgfile = tmp_path / "grandchild.pid", tmp_path / "cgroup"
    command = (
        f"{own_cgroup(cgfile)}; setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & sleep 300"
    )
    h = make(tmp_path, f"#@smart timeout=2s\n0 2 * * * {command}\n")
    h.daemon.run_context = replace(
        h.daemon.run_context, runner=ProcessRunner(grace_s=GRACE, cgroups=cgroups())
    )
    h.clock.sleep_until(utc("01:00"))
    t0 = time.monotonic()
    h.daemon.step()
    grandchild = read_pid(pidfile)
    try:
        assert alive(grandchild) and os.getsid(grandchild) == grandchild  # its own session
        wait_for(lambda: (h.daemon.collect(), not h.daemon.running)[1], 15, "the run's end")
        elapsed = time.monotonic() - t0
        (record,) = runs(h, command)
        assert record.status == "timeout" and record.end is not None and record.end.timed_out
        assert record.end.signal == signal.SIGTERM
        assert not alive(grandchild)  # gone when the run is recorded, not later
        assert 2.0 <= elapsed < 4.0
        assert not cgroup_dir(cgfile).exists() or wait_for(
            lambda: not cgroup_dir(cgfile).exists(), 5, "the job's cgroup removed"
        )
        doc = status_document(h.daemon, utc("01:00"))
        assert doc["containment"] == f"cgroup v2 ({cgroups().parent})"
    finally:
        cleanup(grandchild)


@needs_cgroup
@pytest.mark.parametrize("kill_file", [True, False], ids=["cgroup.kill", "freeze-and-kill"])
def test_a_setsid_grandchild_ignoring_sigterm_gets_sigkill_after_the_grace(tmp_path, kill_file):
    pidfile = tmp_path / "grandchild.pid"
    found = JobCgroups.detect()
    found.kill_file = kill_file  # False: the path for kernels before 5.14
    runner = ProcessRunner(grace_s=GRACE, cgroups=found)
    # The grandchild neither holds the output nor dies of SIGTERM: only the cgroup finds it.
    grandchild_cmd = f'trap "" TERM; echo $$ > {pidfile}; exec sleep 300 >/dev/null 2>&1'
    t0 = time.monotonic()
    handle = runner.start(request(f"setsid sh -c '{grandchild_cmd}' & sleep 300", timeout=0.5),
                          lambda r: None)  # fmt: skip
    grandchild = read_pid(pidfile)
    try:
        result = handle.wait(15)
        elapsed = time.monotonic() - t0
        assert result is not None and result.timed_out
        assert result.signal == signal.SIGTERM  # the shell itself died of the SIGTERM
        assert not alive(grandchild)
        assert 0.5 + GRACE <= elapsed < 3  # the grace was granted, then SIGKILL
    finally:
        cleanup(grandchild)


@needs_cgroup
def test_stop_reaches_a_setsid_grandchild(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    runner = ProcessRunner(grace_s=GRACE, cgroups=cgroups())
    handle = runner.start(
        request(f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & wait"), lambda r: None
    )
    grandchild = read_pid(pidfile)
    try:
        handle.terminate()
        result = handle.wait(15)
        assert result is not None
        assert (result.interrupted, result.timed_out) == (True, False)
        assert not alive(grandchild)
    finally:
        cleanup(grandchild)


@needs_cgroup
def test_cpu_seconds_include_a_grandchild_nobody_waited_for(tmp_path):
    runner = ProcessRunner(grace_s=GRACE, linger_s=0.2, cgroups=cgroups())
    # The subshell exits at once: the burner is an orphan the job's shell never reaps, so
    # wait4()'s rusage cannot see it (dash reaps a plain `&` child while it waits).
    burn = "( setsid timeout 1 sh -c 'while :; do :; done' >/dev/null 2>&1 & );"
    result = run(runner, request(f"{burn} sleep 1.3"))
    assert result.exit_code == 0
    assert result.cpu_s >= 0.3, result.cpu_s  # ~1 s on an idle core; HEAD said ~0.002
    assert result.max_rss_kb > 100  # memory.peak where enabled, else the rusage maximum


@needs_cgroup
def test_a_daemonised_child_survives_the_shell_and_its_cgroup_goes_after_it(tmp_path):
    pidfile, cgfile = tmp_path / "daemon.pid", tmp_path / "cgroup"
    runner = ProcessRunner(grace_s=GRACE, linger_s=0.2, cgroups=cgroups())
    daemonise = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 0.8' >/dev/null 2>&1 &"
    result = run(runner, request(f"{own_cgroup(cgfile)}; {daemonise} echo started"))
    child = read_pid(pidfile)
    try:
        # cron(8) waits only for the shell: the run is over, the daemon lives on.
        assert result.output == b"started\n"
        assert alive(child)  # the run ended while its daemonised child still slept
        job_cg = cgroup_dir(cgfile)
        assert job_cg.is_dir() and int((job_cg / "cgroup.procs").read_text()) == child
        wait_for(lambda: not alive(child), 5, "the daemonised child's exit")
        run(runner, request("true"))  # the next start removes the emptied cgroup
        assert not job_cg.exists()
        # A job whose processes are all gone leaves nothing behind.
        run(runner, request(own_cgroup(cgfile)))
        wait_for(lambda: not cgroup_dir(cgfile).exists(), 5, "the job's cgroup removed")
    finally:
        cleanup(child)


@needs_cgroup
def test_without_cgroup_v2_the_process_group_is_killed_and_status_says_so(tmp_path):
    fallback = JobCgroups.detect(mount=tmp_path / "no-cgroup2-here")
    assert not fallback.available
    runner = ProcessRunner(grace_s=GRACE, cgroups=fallback)
    cgfile = tmp_path / "cgroup"
    result = run(runner, request(f"{own_cgroup(cgfile)}; sleep 300 & echo $!; wait", timeout=0.5))
    child = int(result.output.split()[0])
    try:
        assert (result.timed_out, result.signal) == (True, signal.SIGTERM)
        assert not alive(child)
        assert JOBS_DIR not in cgfile.read_text()  # it stayed in the daemon's cgroup
        h = make(tmp_path / "d", "0 2 * * * true\n")
        h.daemon.run_context = replace(h.daemon.run_context, runner=runner)
        doc = status_document(h.daemon, utc("01:00"))
        assert doc["containment"] == (
            f"process group: {tmp_path / 'no-cgroup2-here'} is not a cgroup v2 mount"
        )
    finally:
        cleanup(child)


@needs_cgroup
def test_a_restarted_daemon_removes_job_cgroups_of_its_predecessor_once_empty():
    parent = cgroups().parent
    assert parent is not None
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid no process has any more: the earlier daemon's
    empty, busy = parent / f"job-old-{dead.pid}-1", parent / f"job-old-{dead.pid}-2"
    empty.mkdir()
    busy.mkdir()
    survivor = subprocess.Popen(["sleep", "300"])  # a job the earlier daemon left running
    try:
        (busy / "cgroup.procs").write_text(str(survivor.pid))
        found = JobCgroups.detect()
        assert not empty.exists() and busy.exists()
        survivor.kill()
        survivor.wait()
        found.create("next").remove()  # each new run sweeps what has emptied
        assert not busy.exists()
    finally:
        survivor.kill()
        survivor.wait()
        for path in (empty, busy):
            if path.exists():
                path.rmdir()
