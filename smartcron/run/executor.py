"""Running one job: the `Runner` interface and the real `ProcessRunner`, which starts
each job (spawn, credentials, cgroup); collector.py follows it to its end.

Who starts it: the spawner process (spawner.py, spawnserver.py) clones the job straight
into its cgroup as this process's child; where it cannot (clone3 refused, the spawner
gone, a cgroup the kernel refuses) this process forks it with Popen, as below. Both make
the same job (tests/test_spawner.py compares them).

ProcessRunner follows Debian's do_command.c child_process():
* `setsid()` (own session and process group, no controlling tty), then, as root,
  setgid + initgroups + setuid to the owner; `execle(SHELL, SHELL, "-c", cmd, env)`.
* chdir($HOME) happens *after* setuid and its failure is ignored, so a HOME the user
  cannot enter leaves the job in cron's own working directory (`fallback_cwd`; Debian's
  is /var/spool/cron, as its daemon showed for a job with HOME=/root).
* stdin is always a pipe: the `%` text, or nothing (closed at once, the job reads EOF).
* stdout and stderr share one stream. Debian writes it to a tmpfile and reads it once
  the shell has exited, so a background child that keeps the stream open neither holds
  up the mail nor dies of SIGPIPE. We use a pipe, keep at most `output_cap` bytes, and
  after the shell's exit wait at most `linger_s` for EOF; the pipe is then still
  drained (discarding) until EOF, so such a child never sees EPIPE either.
* Spawn failures become a result, never an exception: exit code 1 (cron's ERROR_EXIT)
  and the reason as output, as Debian's "SHELL: execle: ..." line.
* Where cgroup v2 is writable, each run also gets its own cgroup (cgroup.py), entered
  before exec: a timeout or stop then signals every process of the job, even one that
  left the group with setsid(), the run ends when the cgroup is empty, and CPU time
  counts the children nobody waited for. Without a timeout or stop, the run ends when
  the shell exits, as in cron: a job that daemonises a child leaves it running.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from smartcron.clock import Clock, SystemClock
from smartcron.run.cgroup import JobCgroup, JobCgroups, child_setup
from smartcron.run.collector import Child, JobCollector
from smartcron.run.jobenv import PasswdEntry, build_env, can_enter, job_environment
from smartcron.run.runapi import (
    MIB,
    Handle,
    LateHandle,
    OnDone,
    RunHandle,
    Runner,
    RunRequest,
    RunResult,
    cap_output,
    in_thread,
)
from smartcron.run.spawner import Ids, Spawned, Spawner, SpawnerUnavailable

if TYPE_CHECKING:
    from smartcron.cron.crontab import Entry

# The interface lives in runapi.py; importers keep finding it here.
__all__ = [
    "MIB", "OnDone", "ProcessRunner", "RunHandle", "RunRequest", "RunResult", "Runner",
    "cap_output", "request_for_entry",
]  # fmt: skip

log = logging.getLogger(__name__)
ERROR_EXIT = 1  # cron.h: what cron's child exits with when it cannot exec the job
DEFAULT_GRACE_S = 10.0  # SIGTERM to SIGKILL
# Wait for EOF after the shell exits. Debian waits 0 (it reads its tmpfile right away);
# 1 s catches the last words of a just-backgrounded child, and a job that leaves a
# daemon holding its output (the classic "cron job never finishes") is reported anyway.
DEFAULT_LINGER_S = 1.0


def request_for_entry(
    entry: Entry,
    pw: PasswdEntry,
    *,
    job_id: str,
    pam_env: Iterable[tuple[str, str]] = (),
    timeout: float | None = None,
    output_cap: int = MIB,
    sandbox: tuple[str, ...] = (),
) -> RunRequest:
    """The request Debian's cron would run for a crontab line owned by `pw`."""
    cron_env = job_environment(entry.env, pw)
    env = build_env(cron_env.items(), pam_env)
    return RunRequest(
        job_id=job_id, command=entry.shell_command, stdin=entry.stdin, env=env,
        user=pw.name, uid=pw.uid, gid=pw.gid, home=cron_env["HOME"], shell=env["SHELL"],
        timeout=timeout, output_cap=output_cap, sandbox=sandbox,
    )  # fmt: skip


class _SpawnError(Exception):
    pass


class ProcessRunner:
    """Runs jobs as real processes, one collector thread per job."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        linger_s: float | None = DEFAULT_LINGER_S,  # None: wait for EOF forever
        fallback_cwd: str | None = None,  # None: the daemon's own cwd, as in Debian
        cgroups: JobCgroups | None = None,  # None: detect cgroup v2 now
        spawner: bool = True,  # False: every job forked by this process (spawner.py)
    ) -> None:
        self.clock = clock or SystemClock()
        self.grace_s = grace_s
        self.linger_s = linger_s
        self.fallback_cwd = fallback_cwd
        self.cgroups = JobCgroups.detect() if cgroups is None else cgroups
        self.spawner = Spawner() if spawner else None
        if self.spawner is not None:
            self.spawner.start()  # not at the first job: it would start a few ms late

    @property
    def containment(self) -> str:
        return self.cgroups.describe()

    @property
    def starter(self) -> str:
        """status's "jobs started by": the spawner process, or this one and why."""
        return "the daemon itself (no spawner)" if self.spawner is None else self.spawner.describe()

    def start(self, request: RunRequest, on_done: OnDone) -> RunHandle:
        """Fork and exec on the job's own thread, so the daemon's loop never waits for
        an exec: twenty jobs due in one minute start side by side, not one by one."""
        started, t0 = self.clock.now(), time.monotonic()
        late = LateHandle()

        def work() -> None:
            try:
                proc, out_r, in_w, cg = self._spawn(request)
            except Exception as exc:  # nothing may raise into the daemon
                late.attach(_failed(request, started, _spawn_reason(request, exc), on_done))
                return
            job = JobCollector(self, request, (proc, cg), out_r, in_w, started, t0, on_done)
            late.attach(job.handle)
            job.run()

        try:
            in_thread(f"job-{request.job_id}", work)
        except RuntimeError as exc:  # no thread to be had
            return _failed(request, started, f"cannot start job: {exc}", on_done)
        return late

    def _spawn(self, req: RunRequest) -> tuple[Child, int, int, JobCgroup | None]:
        euid = os.geteuid()
        if euid != 0 and req.uid != euid:
            raise _SpawnError(f"refused: not root, cannot run a job as uid {req.uid}")
        groups = os.getgrouplist(req.user, req.gid) if euid == 0 else os.getgroups()
        # As root, always the owner's credentials, even for root's own jobs (Debian too).
        creds: _Creds = (
            {"user": req.uid, "group": req.gid, "extra_groups": groups} if euid == 0 else {}
        )
        if req.sandbox:
            found = shutil.which(req.sandbox[0])  # the daemon's PATH, not the job's
            if found is None:
                raise _SpawnError(f"{req.sandbox[0]}: sandbox command not found")
            executable = found
        else:
            # execle() does not search PATH: a SHELL without a slash is relative to cwd.
            executable = req.shell if "/" in req.shell else os.path.join(".", req.shell)
        cwd = req.home if can_enter(req.home, req.uid, groups) else self.fallback_cwd
        cg = self._new_cgroup(req.job_id)
        out_r, out_w = os.pipe()  # both close-on-exec; Popen dup2s them onto 0, 1, 2
        in_r, in_w = os.pipe()
        argv = [*req.sandbox, req.shell, "-c", req.command]

        def popen(setup: Callable[[], None] | None, ids: _Creds) -> Child:
            return subprocess.Popen(
                argv, executable=executable, stdin=in_r, stdout=out_w, stderr=out_w,
                env=dict(req.env), cwd=cwd, start_new_session=True, preexec_fn=setup, **ids,
            )  # fmt: skip

        try:
            proc: Child | None = self._by_spawner(req, argv, executable, cwd, creds, cg,
                                                  (in_r, out_w))  # fmt: skip
            if proc is None:
                proc, entered = self._forked(req, popen, creds, cg)
                if cg is not None and not entered:
                    self.cgroups.release(cg)
                    cg = None
        except BaseException:
            os.close(out_r)
            os.close(in_w)
            if cg is not None:
                self.cgroups.release(cg)
            raise
        finally:
            os.close(out_w)
            os.close(in_r)
            if cg is not None:
                cg.close()
        return proc, out_r, in_w, cg

    def _by_spawner(
        self, req: RunRequest, argv: list[str], executable: str, cwd: str | None,
        creds: _Creds, cg: JobCgroup | None, stdio: tuple[int, int],
    ) -> Spawned | None:  # fmt: skip
        """The job started by the spawner process (born in its cgroup), or None: fork it."""
        if self.spawner is None:
            return None
        ids = Ids(creds["user"], creds["group"], creds["extra_groups"]) if creds else None
        try:
            cg_dir = None if cg is None else os.open(cg.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None  # the fork path tries the cgroup and says why not
        try:
            return self.spawner.spawn(
                executable, argv, req.env, cwd=cwd, ids=ids, stdin=stdio[0], stdout=stdio[1],
                cgroup_dir=cg_dir,
            )  # fmt: skip
        except SpawnerUnavailable:
            return None
        finally:
            if cg_dir is not None:
                os.close(cg_dir)

    def _forked(
        self, req: RunRequest, popen: Callable[[Callable[[], None] | None, _Creds], Child],
        creds: _Creds, cg: JobCgroup | None,
    ) -> tuple[Child, bool]:  # fmt: skip
        """The job forked by this process, and whether it entered its cgroup."""
        if cg is None:
            return popen(None, creds), False
        try:
            # child_setup drops to the owner itself, after entering the cgroup
            return popen(child_setup(cg, **creds), {}), True
        except subprocess.SubprocessError:  # raised in preexec_fn: without the cgroup
            log.warning("job %s: cannot enter %s; its process group only", req.job_id, cg.path)
            return popen(None, creds), False

    def _new_cgroup(self, job_id: str) -> JobCgroup | None:
        if not self.cgroups.available:
            return None
        try:
            return self.cgroups.create(job_id)
        except OSError as err:  # e.g. cgroup.max.descendants reached: run it anyway
            log.warning("job %s: no cgroup (%s); its process group only", job_id, err)
            return None


class _Creds(TypedDict, total=False):
    """Popen's user=/group=/extra_groups= (or child_setup's): empty when not root."""

    user: int
    group: int
    extra_groups: list[int]


def _failed(req: RunRequest, started: datetime, reason: str, on_done: OnDone) -> RunHandle:
    """A job that could not be started: exit 1 and the reason as its output."""
    output = f"{reason}\n".encode()
    result = RunResult(
        job_id=req.job_id, pid=None, started=started, ended=started, exit_code=ERROR_EXIT,
        signal=None, wall_s=0.0, output=output, output_size=len(output), spawn_error=reason,
    )  # fmt: skip
    handle = Handle(None, lambda: None)
    try:
        in_thread(f"job-{req.job_id}", lambda: handle.finish(result, on_done))
    except RuntimeError:  # no thread to be had: better here than an exception
        handle.finish(result, on_done)
    return handle


def _spawn_reason(req: RunRequest, exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename in (req.shell, os.path.join(".", req.shell)):
        return f"{req.shell}: execle: {os.strerror(exc.errno or 0)}"  # do_command.c's words
    if isinstance(exc, _SpawnError):
        return str(exc)
    return f"cannot start job: {exc}"
