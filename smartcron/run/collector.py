"""Collecting one running job (ProcessRunner's thread per job): its output and stdin
through a selector, its exit (pidfd, or polled), the timeout or stop (SIGTERM, then
SIGKILL after the grace, to its process group and cgroup), and the result."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import selectors
import signal
import threading
import time
from datetime import datetime
from typing import Protocol

from smartcron.clock import Clock
from smartcron.run.cgroup import JobCgroup, JobCgroups
from smartcron.run.runapi import Handle, OnDone, RunRequest, RunResult, cap_output

log = logging.getLogger(__name__)
# After SIGKILL, how long a run waits for its cgroup to empty (a process in D state
# dies only when its I/O returns); then the result is recorded anyway.
EMPTY_WAIT_S = 5.0
_CHUNK = 1 << 16


class CollectorSettings(Protocol):
    """What a collector reads from its runner (executor.ProcessRunner)."""

    clock: Clock
    grace_s: float
    linger_s: float | None  # None: wait for EOF forever
    cgroups: JobCgroups


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


class Child(Protocol):
    """What the collector needs of a started job: a Popen, or the spawner's `Spawned`."""

    pid: int
    returncode: int | None


class JobCollector:
    """One running job: the collector loop, its timeout and termination."""

    def __init__(self, runner: CollectorSettings, req: RunRequest,
                 spawned: tuple[Child, JobCgroup | None],
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
        elif self.cg is not None:  # those that left the group: once each
            self.cg.signal_all(sig, but_group=self.pid)

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
