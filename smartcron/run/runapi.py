"""The Runner interface, shared by the real runner (executor.py) and the fake one
(executor_fake.py): what a job run is asked (RunRequest), what it reports (RunResult),
and the handle on a running job."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

log = logging.getLogger("smartcron.executor")

MIB = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """Everything needed to run one job. `home` is the job environment's HOME."""

    job_id: str
    command: str  # what `SHELL -c` receives (the part before the first `%`)
    stdin: str | None
    env: Mapping[str, str]
    user: str
    uid: int
    gid: int
    home: str
    shell: str
    timeout: float | None = None
    output_cap: int = MIB
    sandbox: tuple[str, ...] = ()  # argv prefix, e.g. ("systemd-run", "--scope", "--")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    job_id: str
    pid: int | None  # None when nothing was spawned
    started: datetime
    ended: datetime  # when the job's own process exited (not when its output closed)
    exit_code: int | None  # None when killed by a signal or unknown
    signal: int | None
    timed_out: bool = False
    interrupted: bool = False  # stopped by RunHandle.terminate()
    wall_s: float
    cpu_s: float = 0.0  # ru_utime + ru_stime of the job and the children it waited for
    max_rss_kb: int = 0
    output: bytes  # at most output_cap bytes, plus a note when cut
    output_size: int  # every byte seen
    spawn_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.spawn_error is None


OnDone = Callable[[RunResult], None]


class RunHandle(Protocol):
    @property
    def pid(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """The result once on_done has returned, or None if `timeout` passes first."""
        ...

    def terminate(self) -> None:
        """SIGTERM the job's processes, SIGKILL after the grace period."""
        ...


class Runner(Protocol):
    @property
    def containment(self) -> str:
        """For `status`: what holds a job's processes together (cgroup, process group)."""
        ...

    def start(self, request: RunRequest, on_done: OnDone) -> RunHandle:
        """Start without blocking; `on_done` runs once, on a worker thread, never in here."""
        ...


def cap_output(data: bytes, size: int, cap: int) -> bytes:
    """At most `cap` bytes of output, with a note saying how much there was."""
    if size <= cap:
        return data
    return data[:cap] + f"\n[smartcron: output cut at {cap} of {size} bytes]\n".encode()


class Handle:
    """A RunHandle for the runners: `finish` reports the result once, then wakes waiters."""

    def __init__(self, pid: int | None, stop: Callable[[], None]) -> None:
        self._pid = pid
        self._stop = stop
        self._done = threading.Event()
        self._result: RunResult | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    def wait(self, timeout: float | None = None) -> RunResult | None:
        self._done.wait(timeout)
        return self._result

    def terminate(self) -> None:
        if not self._done.is_set():
            self._stop()

    def finish(self, result: RunResult, on_done: OnDone) -> None:
        try:
            on_done(result)
        except Exception:
            log.exception("on_done failed for job %s", result.job_id)
        self._result = result
        self._done.set()


class LateHandle:
    """A RunHandle whose process is still being forked on the job's thread."""

    def __init__(self) -> None:
        self._attached = threading.Event()
        self._handle: RunHandle | None = None
        self._stop_requested = False

    def attach(self, handle: RunHandle) -> None:
        self._handle = handle
        self._attached.set()
        if self._stop_requested:
            handle.terminate()

    @property
    def pid(self) -> int | None:
        self._attached.wait()
        assert self._handle is not None
        return self._handle.pid

    def wait(self, timeout: float | None = None) -> RunResult | None:
        start = time.monotonic()
        if not self._attached.wait(timeout):
            return None
        assert self._handle is not None
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        return self._handle.wait(left)

    def terminate(self) -> None:
        self._stop_requested = True
        if self._handle is not None:
            self._handle.terminate()


def in_thread(name: str, target: Callable[[], None]) -> None:
    """Run `target` on a daemon thread: a job's wait never holds up the daemon's exit."""
    threading.Thread(target=target, name=name, daemon=True).start()
