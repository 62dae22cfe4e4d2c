"""The daemon's Unix socket: a non-root smartcrontab installs into the spool through it.

Debian's crontab(1) is setgid `crontab`; SmartCron has no setuid/setgid binary: the root
daemon writes the spool for its callers (SPEC section 8). One JSON object per
connection each way (the client shuts its side down after writing). Requests:
``{"op": "ping" | "list" | "remove" | "reload"}``, ``{"op": "install", "data": BASE64,
"source": NAME}`` (the exact bytes: invalid UTF-8 must survive). Replies: ``{"ok",
"errors", "kind", ...}``; ``list`` adds ``data``; ``install``/``remove`` add
``previous`` (for the client's own backup) and ``warnings``.

The caller is who SO_PEERCRED says, never what the request says (a request naming a
user is refused). At most MAX_REQUEST bytes in IO_TIMEOUT seconds, MAX_CLIENTS at once:
garbage, huge or slow peers get an error reply or a closed connection; never a crash.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import json
import logging
import os
import pwd
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartcron import install
from smartcron.config import Config
from smartcron.errors import SmartcronError

log = logging.getLogger("smartcron")

MAX_REQUEST = 2 * install.MAX_CRONTAB_BYTES  # base64 of the largest crontab, and slack
MAX_REPLY = 64 * install.MAX_CRONTAB_BYTES
IO_TIMEOUT = 5.0  # seconds a peer has to send its whole request
MAX_CLIENTS = 8
BUSY_WAIT = 1.0  # seconds a connection waits for a free slot before "busy"
FIELDS = {"op", "data", "source"}
OPS = ("ping", "list", "install", "remove", "reload")

Reply = dict[str, Any]


def error(message: str, kind: str = "error") -> Reply:
    return {"ok": False, "kind": kind, "errors": message.splitlines() or [message]}


def peer_uid(conn: socket.socket) -> int:
    """The connecting process's uid from the kernel (struct ucred: pid, uid, gid)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class ControlServer:
    """Accepts connections in a daemon thread; each request is handled in its own thread."""

    def __init__(self, config: Config, on_change: Callable[[], None]) -> None:
        self.config = config
        self.on_change = on_change
        self.path = config.socket_path
        self._sock: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._write_lock = threading.Lock()  # one spool change at a time

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(self.path))
            # Any user may connect in system mode (SO_PEERCRED decides what they may do).
            os.chmod(self.path, 0o600 if self.config.user_mode else 0o666)
            sock.listen(32)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        threading.Thread(target=self._accept_loop, name="control", daemon=True).start()
        log.info("listening on %s", self.path)

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)

    def _remove_stale(self) -> None:
        """A socket left by a dead daemon is removed; a live one or a non-socket is not."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(f"{self.path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except OSError:
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise OSError(f"{self.path}: another daemon is listening on it")

    def _accept_loop(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._sock is None:
                    return
                time.sleep(0.1)  # EMFILE and friends: do not spin
                continue
            if not self._slots.acquire(timeout=BUSY_WAIT):
                threading.Thread(target=self._busy, args=(conn,), daemon=True).start()
                continue
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _busy(self, conn: socket.socket) -> None:
        """Over MAX_CLIENTS: read (briefly) and drop the request, then say so."""
        with conn, contextlib.suppress(OSError):
            _drain(conn, time.monotonic() + 0.5)
            conn.settimeout(1.0)
            conn.sendall(_encode(error("the daemon is busy: try again")))

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            with conn:
                uid = peer_uid(conn)
                deadline = time.monotonic() + IO_TIMEOUT
                raw, problem = _read_bounded(conn, deadline)
                if problem:
                    log.warning("control: uid %d: %s", uid, problem)
                reply = error(problem) if problem else self.respond(uid, raw)
                conn.settimeout(IO_TIMEOUT)
                conn.sendall(_encode(reply))
                if problem:  # let a too-eager sender finish, so it reads the reply
                    conn.shutdown(socket.SHUT_WR)
                    _drain(conn, time.monotonic() + IO_TIMEOUT)
        except OSError:
            pass  # the peer went away: nothing to tell it
        except Exception:  # a bug in one request must never take the daemon down
            log.exception("control: unexpected error")
        finally:
            self._slots.release()

    # ------------------------------------------------------------ requests

    def respond(self, uid: int, raw: bytes) -> Reply:
        """Answer one request from `uid` (the kernel's word). Never raises."""
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):
            return error("bad request: not JSON")
        if not isinstance(request, dict):
            return error("bad request: not a JSON object")
        unknown = sorted(set(request) - FIELDS)
        if unknown:
            return error(
                f"bad request: unknown field {unknown[0]!r} (the daemon acts for the"
                f" connecting user only, uid {uid})"
            )
        op = request.get("op")
        if op not in OPS:
            return error(f"bad request: op must be one of {', '.join(OPS)}")
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            return error(f"your UID ({uid}) isn't in the passwd file")
        if self.config.user_mode and uid not in (0, os.geteuid()):
            return error("this is a user-mode daemon: it serves its own user only", "denied")
        if op == "ping":
            mode = "user" if self.config.user_mode else "system"
            return {"ok": True, "pid": os.getpid(), "uid": uid, "user": user, "mode": mode}
        if op == "reload":
            if uid not in (0, os.geteuid()):
                return error("reload: only root may ask for it", "denied")
            self.on_change()
            return {"ok": True}
        if self.config.user_mode:
            return error(f"{op}: a user-mode daemon does not manage crontabs: use smartcrontab")
        try:
            install.check_allowed(self.config, user)
            target = install.spool_target(self.config, user, uid, pwd.getpwuid(uid).pw_gid)
            if op == "list":
                data = install.read(target)
                if data is None:
                    raise install.NoCrontab(user)
                return {"ok": True, "data": _b64(data)}
            with self._write_lock:
                if op == "remove":
                    outcome = install.remove(target)
                    log.info("(%s) DELETE (%s)", user, user)  # crontab.c's log_it words
                    warnings: list[str] = []
                else:
                    outcome, warnings = self._install(target, request)
                    log.info("(%s) REPLACE (%s)", user, user)
            self.on_change()
        except install.InstallError as err:
            return error(str(err), err.kind)
        except (SmartcronError, OSError) as err:
            log.error("control: %s for %s: %s", op, user, err)
            return error(f"{op}: {err}")
        previous = _b64(outcome.previous) if outcome.previous is not None else None
        return {"ok": True, "warnings": [*warnings, *outcome.notes], "previous": previous}

    def _install(
        self, target: install.Target, request: dict[str, Any]
    ) -> tuple[install.Outcome, list[str]]:
        data = request.get("data")
        source = request.get("source", "-")
        if not isinstance(data, str) or not isinstance(source, str) or len(source) > 4096:
            raise install.InstallError("bad request: install needs data (base64) and a source")
        try:
            text = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise install.InstallError("bad request: data is not base64") from None
        problems, warnings = install.check(text, source)
        if problems:
            raise install.BadCrontab(problems)
        return install.install(target, text, source), warnings


def start_control(config: Config, daemon: Any) -> ControlServer | None:
    """serve()'s hook: listen on config.socket_path; a failure is logged, not fatal."""

    def changed() -> None:
        daemon.request_reload()
        if daemon.waker is not None:
            daemon.waker.notify()

    server = ControlServer(config, changed)
    try:
        server.start()
    except OSError as err:
        log.error("control socket: %s: smartcrontab cannot reach this daemon", err)
        return None
    atexit.register(server.stop)
    return server


# ---------------------------------------------------------------- both sides


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode(message: Reply) -> bytes:
    return json.dumps(message, ensure_ascii=True).encode("ascii")


def _read_bounded(
    conn: socket.socket, deadline: float, limit: int = MAX_REQUEST
) -> tuple[bytes, str | None]:
    """Read to EOF, at most `limit` bytes, before `deadline`: (data, problem)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"", "request timed out"
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            return b"", "request timed out"
        except OSError as err:
            return b"", f"connection error: {err.strerror or err}"
        if not chunk:
            return b"".join(chunks), None
        size += len(chunk)
        if size > limit:
            return b"", f"request too large (more than {limit} bytes)"
        chunks.append(chunk)


def _drain(conn: socket.socket, deadline: float) -> None:
    """Read and drop what a peer still sends, until it stops or `deadline`."""
    with contextlib.suppress(OSError):
        while (remaining := deadline - time.monotonic()) > 0:
            conn.settimeout(remaining)
            if not conn.recv(1 << 16):
                return


class Unreachable(SmartcronError):
    """No daemon answers on the socket."""


def call(path: Path, request: Reply, timeout: float = 30.0) -> Reply:
    """Send one request, return the daemon's reply. Raises Unreachable."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as err:
            raise Unreachable(f"{path}: {err.strerror or err}") from None
        with contextlib.suppress(OSError):  # a refused request still has a reply to read
            sock.sendall(_encode(request))
            sock.shutdown(socket.SHUT_WR)
        raw, problem = _read_bounded(sock, time.monotonic() + timeout, MAX_REPLY)
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


def decode(field: object) -> bytes:
    """A base64 field of a reply."""
    if not isinstance(field, str):
        return b""
    return base64.b64decode(field)


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
            reply = call(self.path, request)
        except Unreachable as err:
            raise Unavailable(self.path, str(err)) from None
        if reply["ok"]:
            return reply
        errors = [str(e) for e in reply.get("errors") or ["the daemon refused"]]
        kind = reply.get("kind")
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
        reply = self._call({"op": "install", "data": _b64(data), "source": source})
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
