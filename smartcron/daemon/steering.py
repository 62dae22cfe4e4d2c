"""smartcronctl run and cancel: asked on the control socket, carried out by the daemon.

The socket serves each connection in its own thread, but only the main thread may start
a job, touch the engine's open firings or write history. A request is therefore queued
here, the loop is woken, and the connection's thread waits (at most STEER_TIMEOUT) for
the main thread's reply: `Steering.serve`, called once per wake-up.

Who may: a job's owner, or root (the caller is SO_PEERCRED's uid, never the request's
word). JOB is a job's id or its name= (as `smartcronctl explain` takes it); a name
shared by several jobs names the caller's own first.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartcron.daemon.controlwire import Reply, error
from smartcron.smart.engine import Engine
from smartcron.smart.jobs import Job
from smartcron.store.history import HistoryError
from smartcron.store.historyguard import log_history_failure
from smartcron.store.runrecords import Trigger

log = logging.getLogger("smartcron")

STEER_OPS = ("run", "cancel")
STEER_TIMEOUT = 10.0  # seconds a caller waits for the main thread (a wake-up takes ms)


@dataclass
class Request:
    op: str
    uid: int
    user: str
    key: str
    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None
    abandoned: bool = False  # the caller gave up waiting: do not act on it late


class Steering:
    """The queue between the socket's threads and the daemon's main thread."""

    def __init__(self, launch: Callable[[Job, str], Any], waker: Callable[[], Any]) -> None:
        self.launch = launch  # (job, trigger) -> the running job, or None: it did not start
        self.waker = waker  # the loop's Sleeper (None: nothing to wake)
        self.pending: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def submit(
        self, op: str, uid: int, user: str, key: str, timeout: float = STEER_TIMEOUT
    ) -> Reply:
        """A socket thread's request; the main thread's reply, or an error after `timeout`."""
        request = Request(op, uid, user, key)
        self.pending.put(request)
        if (sleeper := self.waker()) is not None:
            sleeper.notify()
        if request.done.wait(timeout):
            assert request.reply is not None
            return request.reply
        with self._lock:
            if request.reply is not None:  # answered just now
                return request.reply
            request.abandoned = True
        return error(f"{op}: the daemon did not answer within {timeout:g} s: nothing done")

    def serve(self, jobs: Sequence[Job], engine: Engine, now: datetime) -> None:
        """The main thread: carry out every queued request."""
        while True:
            try:
                request = self.pending.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                if request.abandoned:
                    continue
                try:
                    request.reply = self.act(jobs, engine, request, now)
                except Exception as err:  # one request must never stop the loop
                    log.exception("control: %s %s failed", request.op, request.key)
                    request.reply = error(f"{request.op}: {err}")
            request.done.set()

    def act(self, jobs: Sequence[Job], engine: Engine, request: Request, now: datetime) -> Reply:
        found = find_job(jobs, request.key, request.uid, request.user)
        if not isinstance(found, Job):
            return found
        if request.op == "run":
            return self.run_now(found, request.user)
        return cancel(engine, found, request.user, now)

    def run_now(self, job: Job, user: str) -> Reply:
        """Start `job` once, now, as a cron tick would, recorded as a manual run."""
        log.info("(%s) RUN NOW (%s) asked by %s", job.owner, job.label, user)
        running = self.launch(job, Trigger.MANUAL.value)
        if running is None:
            return error(f"{job.label}: could not start (see the daemon's log)")
        return {"ok": True, "job": job.id, "run_id": getattr(running, "run_id", None)}


def find_job(jobs: Sequence[Job], key: str, uid: int, user: str) -> Job | Reply:
    """The job `key` names (id, else name=), if the caller may steer it; else an error."""
    named = [job for job in jobs if job.id == key] or [job for job in jobs if job.name == key]
    if not named:
        return error(f"no job {key!r} (see smartcronctl list)", "nojob")
    mine = named if uid == 0 else [job for job in named if job.owner == user]
    if not mine:
        return error(f"{key}: not your job (it is {named[0].owner}'s)", "denied")
    if len(mine) > 1:
        ids = ", ".join(job.id for job in mine)
        return error(f"{key}: names several jobs ({ids}): give one id", "ambiguous")
    return mine[0]


def cancel(engine: Engine, job: Job, user: str, now: datetime) -> Reply:
    """Drop `job`'s pending smart firings, each recorded as a skip decision."""
    keys = sorted(key for key in engine.slots if key[0] == job.id)
    if not keys:
        return error(f"{job.label}: no pending firing to cancel", "nothing")
    reason = f"cancelled by {user}"
    dropped = []
    for key in keys:
        firing = engine.slots.pop(key).firing
        dropped.append(firing.nominal.isoformat())
        log.info("(%s) CANCEL (%s firing of %s) asked by %s", job.owner, job.label, key[1], user)
        if engine.store is None:
            continue
        try:
            engine.store.record(
                firing, now, verdict="skip", reason=reason, state="skipped", expect="pending"
            )
        except HistoryError as err:
            log_history_failure(err, f"firing {firing.id}: its cancel not recorded")
    return {"ok": True, "job": job.id, "cancelled": dropped}
