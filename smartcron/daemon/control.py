"""The daemon's Unix socket: a non-root smartcrontab installs into the spool through it.

Debian's crontab(1) is setgid `crontab`; SmartCron has no setuid/setgid binary: the root
daemon writes the spool for its callers (SPEC section 8). One JSON object per
connection each way (the client shuts its side down after writing). Requests:
``{"op": "ping" | "list" | "remove" | "reload"}``, ``{"op": "install", "data": BASE64,
"source": NAME}`` (the exact bytes: invalid UTF-8 must survive), ``{"op": "run" | "cancel",
"job": ID_OR_NAME}`` (smartcronctl's steering: smartcron.daemon.steering). Replies: ``{"ok",
"errors", "kind", ...}``; ``list`` adds ``data``; ``install``/``remove`` add
``previous`` (for the client's own backup) and ``warnings``.

The caller is who SO_PEERCRED says, never what the request says (a request naming a
user is refused). At most MAX_REQUEST bytes in IO_TIMEOUT seconds (the whole request,
not per byte): garbage, huge or slow peers get an error reply; never a crash. No user
can block the socket for the others: at most MAX_PER_UID connections per uid (the
kernel's word at accept) and MAX_CLIENTS in all; one more gets "busy" at once, which
the client retries for BUSY_RETRY_FOR seconds before it reports it (the client:
smartcron.daemon.controlclient).
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
import threading
import time
from collections.abc import Callable
from typing import Any

from smartcron.config import Config
from smartcron.daemon import install, installcheck
from smartcron.daemon.controlwire import (
    TOO_LARGE,
    Reply,
    b64,
    drain,
    encode,
    error,
    peer_uid,
    read_bounded,
    refuse_busy,
)
from smartcron.daemon.steering import STEER_OPS
from smartcron.errors import SmartcronError

log = logging.getLogger("smartcron")

# A connection lives at most 2 * IO_TIMEOUT: its whole request, then its reply.
IO_TIMEOUT = 3.0  # seconds a peer has to send its whole request (a real client takes ms)
MAX_CLIENTS = 16  # connections served at once (one thread each), all users together
MAX_PER_UID = 4  # of these, one uid's: a flood from one user leaves 12 for the others
LISTEN_BACKLOG = 64  # connections the kernel queues before the accept thread takes them
LOG_EVERY = 60.0  # seconds between two log lines about one uid's refused or bad requests
FIELDS = {"op", "data", "source", "job"}
OPS = ("ping", "list", "install", "remove", "reload", *STEER_OPS)
Steer = Callable[[str, int, str, str], Reply]  # Steering.submit(op, uid, user, job)


class ControlServer:
    """Accepts connections in a daemon thread; each admitted one is served in its own thread.

    The accept thread only reads the peer's uid and counts: it never reads from or waits
    on a peer, so a slow or idle client holds its own thread (and its uid's share), and
    nothing else, for at most 2 * IO_TIMEOUT.
    """

    def __init__(
        self, config: Config, on_change: Callable[[], None], steer: Steer | None = None
    ) -> None:
        self.config = config
        self.on_change = on_change
        self.steer = steer
        self.path = config.socket_path
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # guards the two dicts below
        self.active: dict[int, int] = {}  # uid -> connections being served
        self._logged: dict[tuple[int, str], float] = {}  # (uid, what) -> last logged
        self._write_lock = threading.Lock()  # one spool change at a time

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(self.path))
            # Any user may connect in system mode (SO_PEERCRED decides what they may do).
            os.chmod(self.path, 0o600 if self.config.user_mode else 0o666)
            sock.listen(LISTEN_BACKLOG)
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
        while (listening := self._sock) is not None:
            try:
                conn, _ = listening.accept()
            except OSError:
                if self._sock is None:
                    return
                time.sleep(0.1)  # EMFILE and friends: do not spin
                continue
            try:
                uid = peer_uid(conn)
            except OSError:
                conn.close()
                continue
            if not self._admit(uid):
                self._note(
                    uid, "busy", f"busy (at most {MAX_PER_UID} per uid, {MAX_CLIENTS} in all)"
                )
                refuse_busy(conn)
                continue
            try:
                threading.Thread(target=self._serve_one, args=(conn, uid), daemon=True).start()
            except RuntimeError:  # no thread to be had: as good as busy
                self._release(uid)
                refuse_busy(conn)

    def _admit(self, uid: int) -> bool:
        """Count a connection for `uid` unless that uid, or everyone, is at the limit."""
        with self._lock:
            mine = self.active.get(uid, 0)
            if mine >= MAX_PER_UID or sum(self.active.values()) >= MAX_CLIENTS:
                return False
            self.active[uid] = mine + 1
            return True

    def _release(self, uid: int) -> bool:
        """Uncount a connection of `uid`; False, for `counted = self._release(uid)`."""
        with self._lock:
            left = self.active.pop(uid) - 1
            if left:
                self.active[uid] = left
        return False

    def _note(self, uid: int, what: str, message: str) -> None:
        """Log a refused or bad request once per LOG_EVERY per uid and kind (floods too)."""
        now = time.monotonic()
        with self._lock:
            last = self._logged.get((uid, what))
            if last is not None and now - last < LOG_EVERY:
                return
            if len(self._logged) > 1024:  # forget old uids: the dict stays small
                self._logged.clear()
            self._logged[(uid, what)] = now
        log.warning("control: uid %d: %s", uid, message)

    def _serve_one(self, conn: socket.socket, uid: int) -> None:
        counted = True
        try:
            raw, problem = read_bounded(conn, time.monotonic() + IO_TIMEOUT)
            if problem:
                self._note(uid, problem, problem)
            reply = error(problem) if problem else self.respond(uid, raw)
            eager = problem is not None and problem.startswith(TOO_LARGE)
            if problem and not eager:  # a short reply into an empty buffer cannot block:
                counted = self._release(uid)  # the peer that reads it finds its slot free
            conn.settimeout(IO_TIMEOUT)  # the whole sendall, since Python 3.5
            conn.sendall(encode(reply))
            if eager:  # let a too-eager sender finish, so it reads the reply
                conn.shutdown(socket.SHUT_WR)
                drain(conn, time.monotonic() + IO_TIMEOUT)
        except OSError:
            pass  # the peer went away: nothing to tell it
        except Exception:  # a bug in one request must never take the daemon down
            log.exception("control: unexpected error")
        finally:
            if counted:  # before the close: a peer that saw EOF may connect again at once
                self._release(uid)
            conn.close()

    # ------------------------------------------------------------ requests

    def respond(self, uid: int, raw: bytes) -> Reply:
        """Answer one request from `uid` (the kernel's word). Never raises."""
        try:
            request = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return error("bad request: not JSON (not valid UTF-8)")
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
        if op in STEER_OPS:
            job = request.get("job")
            if not isinstance(job, str) or not job or self.steer is None:
                return error(f"bad request: {op} needs a job (and a daemon that runs jobs)")
            return self.steer(op, uid, user, job)
        if self.config.user_mode:
            return error(f"{op}: a user-mode daemon does not manage crontabs: use smartcrontab")
        try:
            install.check_allowed(self.config, user)
            target = install.spool_target(self.config, user, uid, pwd.getpwuid(uid).pw_gid)
            if op == "list":
                data = install.read(target)
                if data is None:
                    raise install.NoCrontab(user)
                return {"ok": True, "data": b64(data)}
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
        previous = b64(outcome.previous) if outcome.previous is not None else None
        return {"ok": True, "warnings": [*warnings, *outcome.notes], "previous": previous}

    def _install(
        self, target: install.Target, request: dict[str, Any]
    ) -> tuple[install.InstallOutcome, list[str]]:
        data = request.get("data")
        source = request.get("source", "-")
        if not isinstance(data, str) or not isinstance(source, str) or len(source) > 4096:
            raise install.InstallError("bad request: install needs data (base64) and a source")
        try:
            text = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise install.InstallError("bad request: data is not base64") from None
        fleet = self.config.history_url is not None  # fleet=once without one: a warning
        problems, warnings = installcheck.check(text, source, fleet=fleet)
        if problems:
            raise install.BadCrontab(problems)
        return install.install(target, text, source), warnings


def start_control(config: Config, daemon: Any) -> ControlServer | None:
    """serve()'s hook: listen on config.socket_path; a failure is logged, not fatal."""

    def changed() -> None:
        daemon.request_reload()
        if daemon.waker is not None:
            daemon.waker.notify()

    steering = getattr(daemon, "steering", None)
    server = ControlServer(config, changed, None if steering is None else steering.submit)
    try:
        server.start()
    except OSError as err:
        log.error("control socket: %s: smartcrontab cannot reach this daemon", err)
        return None
    atexit.register(server.stop)
    return server
