"""Running one job: the `Runner` interface and the real `ProcessRunner` (the fake one is
in executor_fake.py).

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

import contextlib
import logging
import os
import resource
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from smartcron.clock import Clock, SystemClock
from smartcron.run.cgroup import JobCgroup, JobCgroups, child_setup
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
# After SIGKILL, how long a run waits for its cgroup to empty (a process in D state
# dies only when its I/O returns); then the result is recorded anyway.
EMPTY_WAIT_S = 5.0
_CHUNK = 1 << 16


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
    ) -> None:
        self.clock = clock or SystemClock()
        self.grace_s = grace_s
        self.linger_s = linger_s
        self.fallback_cwd = fallback_cwd
        self.cgroups = JobCgroups.detect() if cgroups is None else cgroups

    @property
    def containment(self) -> str:
        return self.cgroups.describe()

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
            job = _Job(self, request, (proc, cg), out_r, in_w, started, t0, on_done)
            late.attach(job.handle)
            job.run()

        try:
            in_thread(f"job-{request.job_id}", work)
        except RuntimeError as exc:  # no thread to be had
            return _failed(request, started, f"cannot start job: {exc}", on_done)
        return late

    def _spawn(self, req: RunRequest) -> tuple[subprocess.Popen[bytes], int, int, JobCgroup | None]:
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

        def popen(setup: Callable[[], None] | None, ids: _Creds) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv, executable=executable, stdin=in_r, stdout=out_w, stderr=out_w,
                env=dict(req.env), cwd=cwd, start_new_session=True, preexec_fn=setup, **ids,
            )  # fmt: skip

        try:
            try:
                # With a cgroup, child_setup drops to the owner itself (after entering it).
                proc = popen(None, creds) if cg is None else popen(child_setup(cg, **creds), {})
            except subprocess.SubprocessError:  # raised in preexec_fn: without the cgroup
                assert cg is not None
                log.warning("job %s: cannot enter %s; its process group only", req.job_id,
                            cg.path)  # fmt: skip
                self.cgroups.release(cg)
                cg = None
                proc = popen(None, creds)
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


def _decode(status: int | None) -> tuple[int | None, int | None]:
    if status is None:  # reaped by someone else: unknown
        return None, None
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    return None, None


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(OSError):  # ESRCH: nobody left; EPERM: a setuid member
        os.killpg(pgid, sig)


class _Job:
    """One running job: the collector loop, its timeout and termination."""

    def __init__(self, runner: ProcessRunner, req: RunRequest,
                 spawned: tuple[subprocess.Popen[bytes], JobCgroup | None],
                 out_r: int, in_w: int, started: datetime, t0: float,
                 on_done: OnDone) -> None:  # fmt: skip
        proc, self.cg = spawned
        self.runner, self.req, self.proc, self.pid = runner, req, proc, proc.pid
        self.out_r, self.started, self.t0, self.on_done = out_r, started, t0, on_done
        self.handle = Handle(self.pid, self._request_stop)
        self.buf, self.size, self.out_eof = bytearray(), 0, False
        self.stop_requested = threading.Event()
        self.wake_r, self.wake_w = os.pipe()
        self.sel = selectors.DefaultSelector()
        self.sel.register(out_r, selectors.EVENT_READ, "out")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.in_w: int | None = in_w
        self.stdin = memoryview((req.stdin or "").encode())
        if self.stdin:
            os.set_blocking(in_w, False)
            self.sel.register(in_w, selectors.EVENT_WRITE, "in")
        else:
            self._close_stdin()  # Debian: an empty pipe, EOF at the first read
        self.exited_at: float | None = None  # monotonic time the shell exited
        self.ended = started
        self.kill_at: float | None = None  # SIGKILL due, once SIGTERM was sent
        self.empty_by: float | None = None  # after SIGKILL: stop waiting for the cgroup
        self.killed = self.timed_out = self.interrupted = False
        self.wstatus: int | None = None
        self.rusage: resource.struct_rusage | None = None

    def _request_stop(self) -> None:
        self.stop_requested.set()
        with contextlib.suppress(OSError):  # already finished and closed
            os.write(self.wake_w, b"x")

    def run(self) -> None:
        try:
            result = self._collect()
        except Exception as exc:  # a bug here must not lose the job or kill the daemon
            log.exception("collecting job %s (pid %d) failed", self.req.job_id, self.pid)
            self._signal(signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                self._reap()
            note = f"\n[smartcron: internal error: {exc}]\n".encode()
            result = self._result(note)
        self.handle.finish(result, self.on_done)
        try:
            while not self.out_eof:  # keep background children from seeing EPIPE
                self._pump(None, keep=False)
        except Exception:
            log.exception("draining job %s (pid %d) failed", self.req.job_id, self.pid)
        finally:
            self._close_stdin()
            self.sel.close()
            for fd in (self.out_r, self.wake_r, self.wake_w):
                os.close(fd)
            if self.cg is not None:  # now, or once a daemonised child has gone
                self.runner.cgroups.release(self.cg)

    def _signal(self, sig: int) -> None:
        """The process group (the leader is unreaped: the pgid is ours), and with a cgroup
        every process in it, wherever its session (SIGKILL: cgroup.kill)."""
        _killpg(self.pid, sig)
        if self.cg is not None and sig == signal.SIGKILL:
            self.cg.kill()
        elif self.cg is not None:
            self.cg.signal_all(sig)

    def _leftovers(self, now: float) -> bool:
        """After a timeout or stop, the run ends only when its cgroup is empty (bounded)."""
        if self.cg is None or self.kill_at is None or not self.cg.populated():
            return False
        if self.empty_by is not None and now >= self.empty_by:
            if self.empty_by > 0:
                log.warning("job %s: processes left in %s %.0f s after SIGKILL",
                            self.req.job_id, self.cg.path, EMPTY_WAIT_S)  # fmt: skip
                self.empty_by = 0.0  # warned: record the run
            return False
        return True

    def _collect(self) -> RunResult:
        linger = self.runner.linger_s
        deadline = None if self.req.timeout is None else self.t0 + self.req.timeout
        pidfd: int | None = None
        try:
            pidfd = os.pidfd_open(self.pid)
            self.sel.register(pidfd, selectors.EVENT_READ, "exit")
        except OSError:
            pidfd = None  # before Linux 5.3: poll
        while True:
            now = time.monotonic()
            if self.exited_at is None:
                if self.kill_at is None and (
                    self.stop_requested.is_set() or (deadline is not None and now >= deadline)
                ):
                    self.interrupted = self.stop_requested.is_set()
                    self.timed_out = not self.interrupted
                    self._signal(signal.SIGTERM)
                    self.kill_at = now + self.runner.grace_s
                # WNOWAIT: see the exit but leave a zombie, so the group id stays ours.
                if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    self.exited_at, self.ended = now, self.runner.clock.now()
                    if pidfd is not None:
                        self.sel.unregister(pidfd)
                        os.close(pidfd)
            # After SIGTERM, the job gets SIGKILL when the grace is over, or as soon as
            # the shell is gone, nothing holds the output and its cgroup is empty.
            if (self.kill_at is not None and not self.killed) and (
                now >= self.kill_at
                or (self.exited_at is not None and self.out_eof and not self._leftovers(now))
            ):
                self._signal(signal.SIGKILL)
                self.killed, self.empty_by = True, now + EMPTY_WAIT_S
            signalling = self.kill_at is not None and not self.killed
            if self.exited_at is not None and self.rusage is None and not signalling:
                self._reap()
            leftovers = self._leftovers(now)
            if self.rusage is not None and self.exited_at is not None and not leftovers:
                lingered = linger is not None and now >= self.exited_at + linger
                if self.out_eof or lingered or self.stop_requested.is_set():
                    for _ in range(16):  # what is in the pipe (<= 1 MiB), as in Debian's tmpfile
                        if self.out_eof or not self._pump(0.0, keep=True):
                            break
                    return self._result(b"")
            timers: list[float] = []
            if deadline is not None and self.kill_at is None and self.exited_at is None:
                timers.append(deadline)
            if self.kill_at is not None and not self.killed:
                timers.append(self.kill_at)
            if self.exited_at is not None and linger is not None:
                timers.append(self.exited_at + linger)
            if pidfd is None and self.exited_at is None:
                timers.append(now + 0.05)
            if leftovers and (self.killed or self.exited_at is not None):
                timers.append(now + 0.02)  # cgroup.events could be polled; 20 ms will do
            self._pump(max(0.0, min(timers) - now) if timers else None, keep=True)

    def _reap(self) -> None:
        _, self.wstatus, self.rusage = os.wait4(self.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(self.wstatus)  # Popen: do not reap

    def _result(self, note: bytes) -> RunResult:
        exit_code, sig = _decode(self.wstatus)
        ru = self.rusage
        cpu_s, rss_kb = (ru.ru_utime + ru.ru_stime, ru.ru_maxrss) if ru else (0.0, 0)
        if self.cg is not None:  # also the children nobody waited for
            cpu_s = max(cpu_s, self.cg.cpu_s() or 0.0)
            rss_kb = self.cg.memory_peak_kb() or rss_kb
        return RunResult(
            job_id=self.req.job_id, pid=self.pid, started=self.started, ended=self.ended,
            exit_code=exit_code, signal=sig, timed_out=self.timed_out,
            interrupted=self.interrupted, wall_s=(self.exited_at or time.monotonic()) - self.t0,
            cpu_s=cpu_s, max_rss_kb=rss_kb,
            output=cap_output(bytes(self.buf), self.size, self.req.output_cap) + note,
            output_size=self.size,
        )  # fmt: skip

    def _pump(self, timeout: float | None, *, keep: bool) -> bool:
        """Wait for I/O: read output (kept up to the cap if `keep`), feed stdin; True if read."""
        got = False
        for key, _ in self.sel.select(timeout):
            if key.data == "out":
                data = os.read(self.out_r, _CHUNK)
                got = True
                if not data:
                    self.out_eof = True
                    self.sel.unregister(self.out_r)
                elif keep:
                    self.size += len(data)
                    room = self.req.output_cap - len(self.buf)
                    if room > 0:
                        self.buf += data[:room]
            elif key.data == "in" and self.in_w is not None:
                try:
                    self.stdin = self.stdin[os.write(self.in_w, self.stdin[:_CHUNK]) :]
                except BlockingIOError:
                    continue
                except OSError:  # EPIPE: the job closed its stdin; like Debian, stop
                    self.stdin = memoryview(b"")
                if not self.stdin:
                    self._close_stdin()
            elif key.data == "wake":
                os.read(self.wake_r, 64)
        return got

    def _close_stdin(self) -> None:
        if self.in_w is not None:
            registered = self.sel.get_map()
            if registered is not None and self.in_w in registered:
                self.sel.unregister(self.in_w)
            os.close(self.in_w)
            self.in_w = None


# ---------------------------------------------------------------------------- the fake
