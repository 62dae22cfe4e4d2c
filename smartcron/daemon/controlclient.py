"""The control socket's client: what smartcrontab uses to reach the root daemon.

`call` sends one request and returns the reply, retrying a "busy" one (a full listen
queue counts as one) with a growing, jittered pause; `RemoteStore` is a non-root
user's spool crontab through it (the protocol: smartcron.daemon.control).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from pathlib import Path

from smartcron.config import Config
from smartcron.daemon import install
from smartcron.daemon.controlwire import (
    BUSY,
    MAX_REQUEST,
    Reply,
    b64,
    decode,
    encode,
    error,
    read_bounded,
)
from smartcron.errors import SmartcronError

MAX_REPLY = 2 * MAX_REQUEST  # a list's data, or an install's previous crontab and notes
# On a "busy" reply or a full listen queue:
BUSY_WAIT = 0.1  # seconds before the first retry, doubled up to BUSY_WAIT_MAX
BUSY_WAIT_MAX = 1.0
BUSY_RETRY_FOR = 5.0  # seconds of retries before it reports "busy"


class Unreachable(SmartcronError):
    """No daemon answers on the socket."""


def call(path: Path, request: Reply, timeout: float = 30.0, retry_for: float = 0.0) -> Reply:
    """Send one request, return the daemon's reply. Raises Unreachable.

    A "busy" reply (kind "busy"; a full listen queue counts as one) is retried for
    `retry_for` seconds, with a growing, jittered pause so that waiting clients spread
    out; after that the busy reply is returned.
    """
    give_up = time.monotonic() + retry_for
    pause = BUSY_WAIT
    while True:
        reply = _call_once(path, request, timeout)
        left = give_up - time.monotonic()
        if reply.get("kind") != "busy" or left <= 0:
            return reply
        time.sleep(min(left, pause * random.uniform(0.5, 1.0)))
        pause = min(2 * pause, BUSY_WAIT_MAX)


def ask_reload(config: Config) -> None:
    """Ask a running daemon to reload now; nothing when none answers (it rescans anyway)."""
    if config.socket_path.exists():
        with contextlib.suppress(SmartcronError):
            call(config.socket_path, {"op": "reload"}, timeout=2.0)


def _call_once(path: Path, request: Reply, timeout: float) -> Reply:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except BlockingIOError:  # EAGAIN: the listen queue is full, the daemon is there
            return error(f"{BUSY} (its listen queue is full)", "busy")
        except OSError as err:
            raise Unreachable(f"{path}: {err.strerror or err}") from None
        with contextlib.suppress(OSError):  # a refused request still has a reply to read
            sock.sendall(encode(request))
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        raw, problem = read_bounded(sock, deadline, MAX_REPLY, reset_ends=True)
    finally:
        sock.close()
    if problem or not raw:
        raise Unreachable(f"{path}: no reply from the daemon ({problem or 'connection closed'})")
    try:
        reply = json.loads(raw)
    except ValueError:
        raise Unreachable(f"{path}: the daemon's reply is not JSON") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise Unreachable(f"{path}: the daemon's reply has no 'ok'")
    return reply


class Unavailable(install.InstallError):
    """No system daemon to install through: say so, and name the two ways out."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"smartcrontab: the SmartCron daemon is not running ({why}).\n"
            "  start the daemon:          sudo systemctl start smartcron\n"
            "  or use your own crontab:   smartcrontab --user -e"
        )
        self.path = path


class RemoteStore:
    """A non-root user's spool crontab, through the root daemon's socket."""

    def __init__(self, config: Config, user: str) -> None:
        self.path = config.socket_path
        self.user = user

    def _call(self, request: Reply) -> Reply:
        try:
            reply = call(self.path, request, retry_for=BUSY_RETRY_FOR)
        except Unreachable as err:
            raise Unavailable(self.path, str(err)) from None
        if reply["ok"]:
            return reply
        errors = [str(e) for e in reply.get("errors") or ["the daemon refused"]]
        kind = reply.get("kind")
        if kind == "busy":
            raise install.InstallError(f"{errors[0]} (still busy after {BUSY_RETRY_FOR:g} s)")
        if kind == "nocrontab":
            raise install.NoCrontab(self.user)
        if kind == "denied" and errors[0].startswith("You ("):
            raise install.NotAllowed(self.user)
        if kind == "syntax":
            raise install.BadCrontab(errors)
        raise install.InstallError("\n".join(errors))

    def read(self) -> bytes | None:
        try:
            return decode(self._call({"op": "list"}).get("data"))
        except install.NoCrontab:
            return None

    def install(self, data: bytes, source: str) -> list[str]:
        reply = self._call({"op": "install", "data": b64(data), "source": source})
        return self._keep_previous(reply)

    def remove(self) -> list[str]:
        return self._keep_previous(self._call({"op": "remove"}))

    def _keep_previous(self, reply: Reply) -> list[str]:
        """The daemon's backups are root's: keep the user a copy of their own."""
        notes = [str(n) for n in reply.get("warnings") or []]
        previous = reply.get("previous")
        if isinstance(previous, str):
            try:
                install.backup(install.user_backup_dir(), self.user, decode(previous))
            except OSError as err:
                notes.append(f"{install.user_backup_dir()}: no backup kept: {err.strerror}")
        return notes
