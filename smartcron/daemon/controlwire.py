"""The control socket's wire format and bounded I/O, shared by the daemon and smartcrontab.

One JSON object per connection each way; every read has a size limit and a deadline
(see smartcron.daemon.control for the protocol and the limits on connections).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import time
from typing import Any

from smartcron.daemon import install

# base64 of the largest crontab, and room for the JSON around it (source: 4096 at most)
MAX_REQUEST = 4 * -(-install.MAX_CRONTAB_BYTES // 3) + (64 << 10)
Reply = dict[str, Any]


def error(message: str, kind: str = "error") -> Reply:
    return {"ok": False, "kind": kind, "errors": message.splitlines() or [message]}


BUSY = "the daemon is busy: try again"
TOO_LARGE = "request too large"


def peer_uid(conn: socket.socket) -> int:
    """The connecting process's uid from the kernel (struct ucred: pid, uid, gid)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(message: Reply) -> bytes:
    return json.dumps(message, ensure_ascii=True).encode("ascii")


def read_bounded(
    conn: socket.socket, deadline: float, limit: int = MAX_REQUEST, reset_ends: bool = False
) -> tuple[bytes, str | None]:
    """Read to EOF, at most `limit` bytes, before `deadline`: (data, problem).

    With `reset_ends`, a reset after some data ends it like EOF: a server that closes
    with our unread request queued (a busy reply) resets the connection after its reply.
    """
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
            if reset_ends and chunks and isinstance(err, ConnectionResetError):
                return b"".join(chunks), None
            return b"", f"connection error: {err.strerror or err}"
        if not chunk:
            return b"".join(chunks), None
        size += len(chunk)
        if size > limit:
            return b"", f"{TOO_LARGE} (more than {limit} bytes)"
        chunks.append(chunk)


def refuse_busy(conn: socket.socket) -> None:
    """Answer "busy" and close, without ever waiting: a fresh socket's send buffer takes
    the short reply whole. What the peer already sent is read first, so that the close
    does not reset the connection before the peer reads the reply."""
    with conn, contextlib.suppress(OSError):
        conn.setblocking(False)
        conn.send(encode(error(BUSY, "busy")))
        conn.shutdown(socket.SHUT_WR)
        for _ in range(MAX_REQUEST >> 16):
            if not conn.recv(1 << 16):
                return


def drain(conn: socket.socket, deadline: float) -> None:
    """Read and drop what a peer still sends, until it stops or `deadline`."""
    with contextlib.suppress(OSError):
        while (remaining := deadline - time.monotonic()) > 0:
            conn.settimeout(remaining)
            if not conn.recv(1 << 16):
                return


def decode(field: object) -> bytes:
    """A base64 field of a reply."""
    if not isinstance(field, str):
        return b""
    return base64.b64decode(field)
