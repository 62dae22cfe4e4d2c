"""FakeRunner: the Runner contract without processes, for tests and the simulator.

It keeps the real runner's promises (on_done runs on a worker thread, wait() returns
after it, terminate() stops a job) so a test of the daemon exercises the same paths.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartcron.clock import Clock, SystemClock
from smartcron.runapi import (
    OnDone,
    RunHandle,
    RunRequest,
    RunResult,
    _Handle,
    _in_thread,
    cap_output,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeOutcome:
    """What a FakeRunner job does. A duration beyond the request's timeout times out."""

    exit_code: int | None = 0
    signal: int | None = None
    output: bytes = b""
    duration_s: float = 0.0
    cpu_s: float = 0.0
    max_rss_kb: int = 0
    spawn_error: str | None = None


Responder = Callable[[RunRequest], FakeOutcome]


class FakeRunner:
    """Records requests and finishes them with scripted outcomes, no processes.

    `responder` maps a request (or, given a mapping, its job id) to an outcome. With
    `auto`, each job finishes at once, on a thread as the contract says; without, it
    runs until `finish(job_id)` (on_done then runs in the caller's thread) or
    `terminate()`. Timestamps come from `clock`; nothing sleeps.
    """

    containment = "none (fake runner: no processes)"

    def __init__(
        self,
        responder: Responder | Mapping[str, FakeOutcome] | None = None,
        *,
        auto: bool = True,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(responder, Mapping):
            script = responder
            self.responder: Responder = lambda req: script.get(req.job_id, FakeOutcome())
        else:
            self.responder = responder or (lambda req: FakeOutcome())
        self.auto, self.clock = auto, clock or SystemClock()
        self.requests: list[RunRequest] = []
        self._lock = threading.Lock()
        self._running: dict[int, tuple[RunRequest, datetime, _Handle, OnDone]] = {}

    def start(self, request: RunRequest, on_done: OnDone) -> RunHandle:
        stopped = FakeOutcome(exit_code=None, signal=signal.SIGTERM)
        with self._lock:
            self.requests.append(request)
            pid = 10_000 + len(self.requests)

            def stop() -> None:
                _in_thread("fake-stop", lambda: self._finish(pid, stopped, True))

            handle = _Handle(pid, stop)
            self._running[pid] = (request, self.clock.now(), handle, on_done)
        if self.auto:
            _in_thread(f"fake-{request.job_id}", lambda: self._finish(pid, None, False))
        return handle

    @property
    def running(self) -> list[str]:
        """The job ids of the jobs not finished yet, oldest first."""
        return [entry[0].job_id for entry in list(self._running.values())]

    def finish(self, job_id: str, outcome: FakeOutcome | None = None) -> RunResult:
        """Finish the oldest running `job_id` with `outcome` (default: the responder's)."""
        pid = next(p for p, entry in list(self._running.items()) if entry[0].job_id == job_id)
        result = self._finish(pid, outcome, False)
        assert result is not None
        return result

    def _finish(self, pid: int, out: FakeOutcome | None, interrupted: bool) -> RunResult | None:
        with self._lock:
            if pid not in self._running:
                return None  # finished meanwhile
            req, started, handle, on_done = self._running.pop(pid)
        out = out or self.responder(req)
        duration, exit_code, sig, timed_out = out.duration_s, out.exit_code, out.signal, False
        if req.timeout is not None and duration > req.timeout:
            duration, exit_code, sig, timed_out = req.timeout, None, signal.SIGTERM, True
        result = RunResult(
            job_id=req.job_id, pid=None if out.spawn_error else pid, started=started,
            ended=started + timedelta(seconds=duration), exit_code=exit_code, signal=sig,
            timed_out=timed_out, interrupted=interrupted, wall_s=duration, cpu_s=out.cpu_s,
            max_rss_kb=out.max_rss_kb, output_size=len(out.output),
            output=cap_output(out.output, len(out.output), req.output_cap),
            spawn_error=out.spawn_error,
        )  # fmt: skip
        handle.finish(result, on_done)
        return result
