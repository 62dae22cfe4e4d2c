"""The daemon's side of the spawner process (spawnserver.py: why it exists, and how).

`Spawner.spawn` asks the spawner to start one job and returns a `Spawned` (its pid; the
job is the daemon's own child, so the collector waits for it with wait4 as before). It
raises what Popen raises for a job that cannot start (OSError with the executable or
the working directory as its filename: the runner's "SHELL: execle: ..." message), and
`SpawnerUnavailable` when the runner should start this job itself (ProcessRunner's fork
path): no spawner (clone3 refused: an old kernel or a seccomp filter, said once and for
good), or a cgroup the kernel would not put the job in (the fork path then says why and
runs it in its process group). A spawner that died is started again at the next job.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import marshal
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVER = Path(__file__).with_name("spawnserver.py")
MAX_REQUEST = 1 << 20  # spawnserver.MAX_REQUEST
# clone3 itself refused (no such call, a seccomp filter; EINVAL: CLONE_INTO_CGROUP is
# unknown before Linux 5.7): no spawner from now on, the fork path for every job. Other
# errors with a cgroup (EBUSY, ENODEV, EOPNOTSUPP, EACCES) concern that cgroup only.
_FOR_GOOD = {errno.ENOSYS, errno.EINVAL, errno.EPERM}


class SpawnerUnavailable(Exception):
    """Start this job the other way (ProcessRunner's fork path)."""


@dataclass(slots=True)
class Spawned:
    """A job the spawner started: what the collector needs of a Popen."""

    pid: int
    returncode: int | None = None


@dataclass(frozen=True, slots=True)
class Ids:
    """The owner's credentials, set between clone and exec."""

    uid: int
    gid: int
    groups: Sequence[int]


class Spawner:
    """One spawner process for a runner, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started it: its jobs are that process's children
        self.refused: str | None = None  # why there is no spawner for good

    def start(self) -> None:
        """Start the spawner now rather than at the first job (a daemon starting up)."""
        with self._lock:
            if self.refused is None and self._sock is None:
                with contextlib.suppress(SpawnerUnavailable):  # refused, and said why
                    self._start()

    def describe(self) -> str:
        """Who starts the jobs now, for status."""
        if self.refused is not None:
            return f"the daemon itself ({self.refused})"
        proc = self._proc
        if proc is None or self._owner != os.getpid():
            return "the spawner process (started at the next job)"
        return f"the spawner process (pid {proc.pid}; clone3 into each job's cgroup)"

    def spawn(
        self,
        executable: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: str | None,
        ids: Ids | None,
        stdin: int,
        stdout: int,
        cgroup_dir: int | None,
    ) -> Spawned:
        _check(argv, env)
        request = marshal.dumps((
            os.fsencode(executable), [os.fsencode(a) for a in argv],
            [(os.fsencode(k), os.fsencode(v)) for k, v in env.items()],
            None if cwd is None else os.fsencode(cwd),
            None if ids is None else (ids.uid, ids.gid, list(ids.groups)),
            cgroup_dir is not None,
        ))  # fmt: skip
        if len(request) > MAX_REQUEST:
            raise SpawnerUnavailable("request too long")
        err_r, err_w = os.pipe()
        try:
            fds = [stdin, stdout, err_w] + ([] if cgroup_dir is None else [cgroup_dir])
            pid, failure = self._ask(request, fds)
            os.close(err_w)
            err_w = -1
            if pid == 0:
                self._refuse(failure, cgroup_dir is not None)
            report = _read_all(err_r)
        finally:
            os.close(err_r)
            if err_w >= 0:
                os.close(err_w)
        if report:
            os.waitpid(pid, 0)  # the child exits at once: reap it, as Popen does
            stage, code = marshal.loads(report)
            filename = {"exec": executable, "chdir": cwd}.get(stage)
            raise OSError(code, os.strerror(code), filename)
        return Spawned(pid)

    def close(self) -> None:
        """Stop the spawner (it exits when its socket closes)."""
        with self._lock:
            self._stop()

    def _ask(self, request: bytes, fds: list[int]) -> tuple[int, int]:
        with self._lock:
            if self.refused is not None:
                raise SpawnerUnavailable(self.refused)
            if self._owner != os.getpid():  # forked since: that spawner's jobs are not ours
                self._forget()
            sock = self._sock or self._start()
            try:
                socket.send_fds(sock, [request], fds)
            except OSError as err:  # it had died before: the job was not started
                self._stop()
                raise SpawnerUnavailable(f"the spawner process had stopped ({err})") from err
            try:
                answer = sock.recv(64)
            except OSError:
                answer = b""
            if not answer:  # it died on the request: the next job starts a new one
                self._stop()
                # perhaps after clone3: never start this job a second time
                raise OSError(errno.EAGAIN, "the spawner process stopped")
            pid, failure = marshal.loads(answer)
            return int(pid), int(failure)

    def _refuse(self, failure: int, with_cgroup: bool) -> None:
        reason = f"clone3: {os.strerror(failure)}"
        if failure in _FOR_GOOD:
            with self._lock:
                self.refused = reason
                self._stop()
            log.warning("spawner: %s; jobs are forked by the daemon itself", reason)
            raise SpawnerUnavailable(reason)
        if with_cgroup:  # the fork path enters the cgroup itself, or says why not
            raise SpawnerUnavailable(reason)
        raise OSError(failure, os.strerror(failure))  # what fork(2) would have said

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SERVER), str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True,  # no terminal's ^C
            )  # fmt: skip
        except OSError as err:  # no interpreter to run it: not worth trying at each job
            ours.close()
            self.refused = f"cannot start the spawner: {err}"
            log.warning("spawner: %s; jobs are forked by the daemon itself", self.refused)
            raise SpawnerUnavailable(self.refused) from err
        finally:
            theirs.close()
        self._sock, self._owner = ours, os.getpid()
        return ours

    def _forget(self) -> None:
        """In a forked child: let the parent's spawner be (close our copy of its socket)."""
        if self._sock is not None:
            self._sock.close()
        self._sock, self._proc = None, None

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _check(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Refuse what Popen refuses (ValueError), before the child could not exec it."""
    for key, value in env.items():
        if "=" in key:
            raise ValueError("illegal environment variable name")
        if "\0" in key or "\0" in value:
            raise ValueError("embedded null byte")
    if any("\0" in arg for arg in argv):
        raise ValueError("embedded null byte")


def _read_all(fd: int) -> bytes:
    """The child's error report: empty when it reached exec (the pipe closes on exec)."""
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)
