"""The dashboard's web server: a Starlette app over smartcron.dash.data and .page.

Every route wants the access token (as Jupyter's server does): the `token` query
parameter or the X-Token header, compared in constant time; the action routes take it
from the header only, so a cross-site form or link cannot trigger them (CSRF). The
history is read with this process's rights and collect() drops rows of other owners
(root sees all). /events is a server-sent event stream: the page's data again whenever
the history database or the daemon's status file changes (polled: SQLite has no change
notification across processes, and the WAL file's size and mtime move on every commit).
Actions go through the daemon's control socket, as `smartcronctl run` / `cancel` do: the
daemon checks the uid of the connecting process, so the dashboard has its user's rights.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcron.daemon.controlclient import Unreachable, call
from smartcron.dash.data import DashData, DashQuery, collect, data_json
from smartcron.dash.page import render_page
from smartcron.errors import SmartcronError

POLL = 1.0  # seconds between looks at the history and status files
MAX_AGE = 10.0  # seconds an unchanged collection is reused
KEEP_ALIVE = 15.0  # seconds: an SSE comment line, so proxies and browsers keep the stream
ACTION_TIMEOUT = 20.0  # as smartcronctl run: the daemon answers once its main thread acted
MAX_ACTION_BODY = 4096
SEEN_COOKIE = "smartcron_seen"  # the files' signature when the page was rendered
# The token must not leak through a Referer, a cache or a frame of another site.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class DashSettings:
    query: DashQuery
    token: str
    socket_path: Path  # the daemon's control socket (actions)
    watched: tuple[Path, ...]  # a change to any of these re-collects (live updates)
    allow_actions: bool = False
    poll: float = POLL


class Shutdown:
    """Tells the open event streams to end when the server is asked to stop: uvicorn
    waits for open responses before it exits, and an event stream never ends itself."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.requested = False

    def event(self) -> asyncio.Event:
        """The event, made on first use inside the server's loop."""
        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            if self.requested:
                self._event.set()
        return self._event

    def trigger(self) -> None:
        """From the signal handler: wakes the loop through its self-pipe."""
        self.requested = True
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)


def tokens_match(given: str | None, token: str) -> bool:
    """Constant-time comparison (hmac.compare_digest), so timing tells nothing."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def watched_files(history: Path, status_files: tuple[Path, ...]) -> tuple[Path, ...]:
    """The history database with its WAL (where a commit lands first) and the daemon's
    status files."""
    return (history, Path(f"{history}-wal"), *status_files)


def signature(paths: tuple[Path, ...]) -> str:
    """What changes when any of `paths` is written, replaced, created or removed. An
    empty file counts as none: a read-only SQLite connection leaves an empty -wal behind
    (it may not delete it), and a commit never leaves the WAL empty."""
    result: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            result.append(None)
        else:
            result.append((st.st_mtime_ns, st.st_size, st.st_ino) if st.st_size else None)
    return hashlib.sha256(repr(result).encode()).hexdigest()[:20]


class TokenGate:
    """ASGI middleware: 401 unless the request carries the token (the action routes: in
    the X-Token header; the others: the header or the `token` query parameter)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.headers.get("x-token")
        if given is None and not request.url.path.startswith("/actions/"):
            given = request.query_params.get("token")
        if not tokens_match(given, self.token):
            response = Response(
                "401 Unauthorized: open the URL that smartcronctl dashboard printed "
                "(with its ?token=...)\n",
                status_code=401,
                media_type="text/plain",
                headers=HEADERS,
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Snapshots:
    """collect() for this process's user, shared by the page and every open stream: one
    collection per change of the watched files (ten open tabs cost one), reused for at
    most MAX_AGE seconds (next firings and "now" move with the clock)."""

    def __init__(self, query: DashQuery, watched: tuple[Path, ...]) -> None:
        self.query = replace(query, viewer_uid=os.getuid())  # never what a client says
        self.watched = watched
        self._lock = threading.Lock()
        self._last: tuple[str, float, DashData] | None = None

    def get(self) -> tuple[str, DashData]:
        """(the files' signature, the data read after it was taken)."""
        with self._lock:  # a second caller waits, then reuses this one's work
            seen = signature(self.watched)  # first: a change while reading is seen later
            last = self._last
            if last and last[0] == seen and time.monotonic() - last[1] < MAX_AGE:
                return seen, last[2]
            data = collect(self.query)
            self._last = (seen, time.monotonic(), data)
            return seen, data


def build_app(
    settings: DashSettings, shutdown: Shutdown | None = None, snapshots: Snapshots | None = None
) -> Starlette:
    """The dashboard: the page, its event stream and (with allow_actions) run / cancel."""
    shared = snapshots or Snapshots(settings.query, settings.watched)

    async def page(_request: Request) -> Response:
        try:
            seen, data = await run_in_threadpool(shared.get)
        except (SmartcronError, OSError) as err:  # e.g. the history damaged since start
            return PlainTextResponse(f"smartcronctl dashboard: {err}\n", status_code=500)
        html = render_page(data, live=True, actions=settings.allow_actions, token=settings.token)
        response = HTMLResponse(html)
        # What this page shows, for its event stream: it sends the data again only once
        # the files changed since (a page of several MB is not re-rendered for nothing).
        response.set_cookie(SEEN_COOKIE, seen, httponly=True, samesite="strict")
        return response

    async def events(request: Request) -> Response:
        return StreamingResponse(
            event_stream(request, settings, shared, shutdown or Shutdown()),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def action(request: Request) -> Response:
        if not settings.allow_actions:
            return JSONResponse(
                {"ok": False, "message": "actions are off (start with --allow-actions)"},
                status_code=403,
            )
        job = await _job_of(request)
        if job is None:
            return JSONResponse(
                {"ok": False, "message": 'send JSON {"job": "NAME or id"}'}, status_code=400
            )
        op = request.url.path.rsplit("/", 1)[-1]
        reply = await run_in_threadpool(steer, settings.socket_path, op, job)
        return JSONResponse(reply, status_code=200 if reply["ok"] else 409)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
        Route("/actions/run", action, methods=["POST"]),
        Route("/actions/cancel", action, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(TokenGate, token=settings.token)
    return app


async def _job_of(request: Request) -> str | None:
    body = await request.body()
    if len(body) > MAX_ACTION_BODY:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    job = doc.get("job") if isinstance(doc, dict) else None
    return job if isinstance(job, str) and job.strip() else None


def steer(socket_path: Path, op: str, job: str) -> dict[str, Any]:
    """`smartcronctl run` / `cancel` through the socket: {"ok": bool, "message": str}."""
    try:
        reply = call(socket_path, {"op": op, "job": job}, timeout=ACTION_TIMEOUT, retry_for=5.0)
    except Unreachable as err:
        return {"ok": False, "message": f"no SmartCron daemon answers ({err})"}
    if not reply["ok"]:
        errors = [str(e) for e in reply.get("errors") or ["refused"]]
        return {"ok": False, "message": "; ".join(errors)}
    name = reply.get("job", job)
    if op == "run":
        return {"ok": True, "message": f"{name}: started (history run {reply.get('run_id')})"}
    cancelled = reply.get("cancelled") or []
    text = ", ".join(str(c) for c in cancelled)
    return {"ok": True, "message": f"{name}: firing of {text} cancelled"}


async def event_stream(
    request: Request, settings: DashSettings, snapshots: Snapshots, shutdown: Shutdown
) -> AsyncIterator[str]:
    """The page's data whenever the watched files differ from what the client has (the
    page's cookie; without it, at once), a comment every KEEP_ALIVE seconds between.
    Ends when the client goes away or the server stops."""
    seen = request.cookies.get(SEEN_COOKIE)
    quiet = 0.0
    while not await request.is_disconnected():
        now = signature(settings.watched)
        if now != seen:
            quiet = 0.0
            try:
                seen, data = await run_in_threadpool(snapshots.get)
                yield sse(data_json(data))
            except (SmartcronError, OSError) as err:  # e.g. the history damaged since
                seen = now  # a named event: the page's onmessage keeps what it shows
                yield sse(json.dumps({"error": str(err)}), event="problem")
        elif quiet >= KEEP_ALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"
        try:
            await asyncio.wait_for(shutdown.event().wait(), settings.poll)
            return
        except TimeoutError:
            quiet += settings.poll


def sse(payload: str, event: str | None = None) -> str:
    """One server-sent event (the HTML5 event-stream format: a data: line per line)."""
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.splitlines() or [""]) + "\n"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, shutdown: Shutdown) -> None:
        super().__init__(config)
        self.stop_streams = shutdown

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.stop_streams.trigger()
        super().handle_exit(sig, frame)


def serve(settings: DashSettings, sock: socket.socket, snapshots: Snapshots) -> None:
    """Serve on `sock` until SIGINT or SIGTERM, then exit 0 (uvicorn re-raises the signal
    once it has stopped: SIGTERM then ends the process by this handler, not by default)."""
    shutdown = Shutdown()
    app = build_app(settings, shutdown, snapshots)
    # No access log: its lines would carry the token of every request.
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        _Server(config, shutdown).run(sockets=[sock])
