"""Issue 11, finding 4: no uid can block the crontab socket for the others.

A real ControlServer (as tests/test_control.py starts it) on a world-readable
directory; the flood and the slow peers come from a throwaway user's own process (the
system python3 run with that uid), so SO_PEERCRED sees a real second uid. The victims
are root through RemoteStore (what smartcrontab uses) and a second throwaway user
running the real smartcrontab.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smartcron
from smartcron.daemon import control, controlclient, install
from smartcron.daemon.control import ControlServer
from smartcron.daemon.controlclient import RemoteStore
from tests.polling import wait_for
from tests.userconfig import make_config
from tests.users import NOT_ROOT, ThrowawayUser, is_root, throwaway_user

needs_root = pytest.mark.skipif(not is_root(), reason=NOT_ROOT)

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
PACKAGE_ROOT = Path(smartcron.__file__).resolve().parents[1]
SITE = sysconfig.get_paths()["purelib"]
SERVED_WITHIN = 1.0  # seconds: a victim's whole request, flood or not

# Run as the flooding user: open N connections; "idle" sends nothing, "drip" sends one
# byte a second of a request that never ends. Prints one JSON line when the connections
# are open ("idle": with how many were answered at once), and for "drip" a second one
# with when and how each connection was cut; then holds what is left until stdin closes.
FLOOD = r"""
import json, select, socket, sys, time
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks, refused = [], 0
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect(path)
    except OSError:
        refused += 1
        s.close()
        continue
    socks.append(s)
def read_all(s, until):
    data = b""
    while time.monotonic() < until:
        s.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data
if mode == "idle":
    time.sleep(0.5)
    ready, _, _ = select.select(socks, [], [], 0)
    busy = sum(b'"busy"' in read_all(s, time.monotonic() + 1) for s in ready)
    print(json.dumps({"open": len(socks), "refused": refused, "busy": busy}), flush=True)
else:
    print(json.dumps({"open": len(socks), "refused": refused}), flush=True)
    payload = b'{"op": "ping"' + b" " * 100
    pending = {s: [time.monotonic(), b""] for s in socks}
    cut, sent, next_drip, end = [], 0, time.monotonic(), time.monotonic() + 15
    while pending and time.monotonic() < end:
        if time.monotonic() >= next_drip:
            for s in pending:
                try:
                    s.send(payload[sent:sent + 1])
                except OSError:
                    pass
            sent, next_drip = sent + 1, next_drip + 1.0
        ready, _, _ = select.select(list(pending), [], [], max(0, next_drip - time.monotonic()))
        for s in ready:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                pending[s][1] += chunk
                continue
            t0, data = pending.pop(s)
            cut.append([time.monotonic() - t0, data.decode(errors="replace")])
    print(json.dumps({"cut": cut, "uncut": len(pending), "sent": sent}), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def server() -> Iterator[ControlServer]:
    base = Path(tempfile.mkdtemp(prefix="smartcron-socket-", dir="/tmp"))
    base.chmod(0o755)  # the throwaway users reach the socket through it
    srv = ControlServer(make_config(base), lambda: None)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def flooder() -> Iterator[ThrowawayUser]:
    if not is_root():
        pytest.skip(NOT_ROOT)
    with throwaway_user() as user:
        yield user


@pytest.fixture(scope="module")
def victim() -> Iterator[ThrowawayUser]:
    if not is_root():
        pytest.skip(NOT_ROOT)
    with throwaway_user() as user:
        yield user


@contextlib.contextmanager
def flood(
    server: ControlServer, user: ThrowawayUser, count: int, mode: str = "idle"
) -> Iterator[tuple[dict, subprocess.Popen[str]]]:
    """`count` connections from `user`'s own process, held open until the block ends."""
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", FLOOD, str(server.path), str(count), mode],
        user=user.pw.uid,
        group=user.pw.gid,
        extra_groups=[],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the flooding process died"
        yield json.loads(line), proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=20)


def timed(action, *args):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    result = action(*args)
    return result, time.monotonic() - start


def root_installs_and_lists(server: ControlServer) -> float:
    """Root's install and list through the socket; returns the slower one's seconds."""
    store = RemoteStore(server.config, "root")
    _, took_install = timed(store.install, b"0 4 * * * served\n", "t")
    data, took_list = timed(store.read)
    assert data is not None and data.endswith(b"0 4 * * * served\n")
    return max(took_install, took_list)


def exchange(path: Path, payload: bytes) -> dict:
    """Send raw bytes as one request; return the reply."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        with contextlib.suppress(OSError):
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


# ---------------------------------------------------------------- one uid's flood


@needs_root
@pytest.mark.parametrize("count", [8, 16, 64])
def test_idle_connections_from_one_uid_never_make_another_uid_wait(server, flooder, count):
    with flood(server, flooder, count) as (opened, _):
        took = root_installs_and_lists(server)
        assert took < SERVED_WITHIN
        # over its limit the uid is told "busy" at once, and only it
        assert opened == {"open": count, "refused": 0, "busy": count - control.MAX_PER_UID}
        assert server.active.get(flooder.pw.uid) == control.MAX_PER_UID
    wait_for(lambda: not server.active, 2 * control.IO_TIMEOUT, "the flood's connections closed")


@needs_root
def test_a_user_runs_smartcrontab_while_another_holds_64_connections(server, flooder, victim):
    pw = victim.pw
    env = ["PATH=/usr/bin:/bin", f"HOME={pw.dir}", f"PYTHONPATH={PACKAGE_ROOT}:{SITE}"]
    cmd = ["runuser", "-u", pw.name, "--", "env", "-i", *env, SYSTEM_PYTHON]
    cmd += ["-m", "smartcron.cli.crontab", "--config", str(server.config.config_file)]

    def smartcrontab(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        run = subprocess.run(cmd + list(args), input=stdin, capture_output=True, timeout=30)
        return run

    with flood(server, flooder, 64) as (opened, _):
        installed, took_install = timed(lambda: smartcrontab("-", stdin=b"0 5 * * * mine\n"))
        listed, took_list = timed(smartcrontab, "-l")
    assert installed.returncode == 0, installed.stderr.decode()
    assert b"busy" not in installed.stderr  # (a note: the new spool dir was created)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, b"0 5 * * * mine\n", b"")
    assert (server.config.spool_dir / pw.name).read_bytes().endswith(b"0 5 * * * mine\n")
    # a whole smartcrontab run, interpreter start included (about 0.2 s here)
    assert max(took_install, took_list) < 3.0
    assert opened["busy"] == 64 - control.MAX_PER_UID


@needs_root
def test_a_slowloris_is_cut_at_the_deadline_and_others_are_served_meanwhile(server, flooder):
    count = 8
    with flood(server, flooder, count, mode="drip") as (opened, proc):
        assert opened == {"open": count, "refused": 0}
        time.sleep(1.5)  # the admitted ones are mid-request, a byte a second
        assert root_installs_and_lists(server) < SERVED_WITHIN
        assert proc.stdout is not None
        report = json.loads(proc.stdout.readline())
    assert report["uncut"] == 0
    busy = [t for t, text in report["cut"] if '"busy"' in text]
    timed_out = [t for t, text in report["cut"] if "request timed out" in text]
    assert (len(busy), len(timed_out)) == (count - control.MAX_PER_UID, control.MAX_PER_UID)
    assert max(busy) < min(timed_out)  # refused at once, not after a request's deadline
    # cut at the deadline for the whole request, not reset by each byte
    assert all(control.IO_TIMEOUT - 0.1 < t < control.IO_TIMEOUT + 1.0 for t in timed_out)
    assert report["sent"] <= control.IO_TIMEOUT + 2


# ---------------------------------------------------------------- bad requests

BAD = [
    (b'{"op": "install", "data": "' + b"A" * (64 << 20) + b'"}', "request too large"),
    (b"hello, daemon", "bad request: not JSON"),
    (b"[1, 2]", "bad request: not a JSON object"),
    (b'{"op": "install", "data": 5}', "install needs data"),
    (b'{"op": "install", "data": "", "source": ["x"]}', "install needs data"),
    (b'{"op": "list", "user": "root"}', "unknown field 'user'"),
    (b'{"op": "caf\xe9"}', "not JSON (not valid UTF-8)"),
    (b'{"op": "format-disk"}', "op must be one of"),
    (b'{"op": "li', "bad request: not JSON"),
]


@pytest.mark.parametrize(("payload", "message"), BAD, ids=lambda v: repr(v)[:24])
def test_a_bad_request_gets_a_clear_error_and_the_server_carries_on(server, payload, message):
    reply = exchange(server.path, payload)
    assert (reply["ok"], reply["kind"]) == (False, "error")
    assert message in reply["errors"][0]
    assert controlclient.call(server.path, {"op": "ping"})["ok"] is True
    wait_for(lambda: not server.active, 2 * control.IO_TIMEOUT, "every connection closed")


# ---------------------------------------------------------------- the client's retries


BUSY_REPLY = {"ok": False, "kind": "busy", "errors": ["the daemon is busy: try again"]}


class FakeDaemon:
    """A listener that answers "busy" to its first `busy` connections, then a crontab."""

    def __init__(self, path: Path, busy: int, backlog: int = 8, hold: float = 0.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(backlog)
        self.busy, self.hold, self.connections = busy, hold, 0
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        time.sleep(self.hold)  # not accepting yet: the kernel's queue fills up
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    while conn.recv(65536):
                        pass
                    if self.connections <= self.busy:
                        reply = BUSY_REPLY
                    else:
                        reply = {"ok": True, "data": base64.b64encode(b"0 4 * * * x\n").decode()}
                    conn.sendall(json.dumps(reply).encode())

    def __enter__(self) -> FakeDaemon:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()


def test_the_client_retries_a_busy_daemon_and_is_served(tmp_path):
    config = make_config(tmp_path)
    with FakeDaemon(config.socket_path, busy=2) as daemon:
        data, took = timed(RemoteStore(config, "someone").read)
    assert (data, daemon.connections) == (b"0 4 * * * x\n", 3)
    assert took < 1.0  # two short pauses, not the whole retry budget


def test_the_client_gives_up_after_its_retry_budget_and_says_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(controlclient, "BUSY_RETRY_FOR", 0.6)
    config = make_config(tmp_path)
    with FakeDaemon(config.socket_path, busy=1000) as daemon:
        start = time.monotonic()
        with pytest.raises(install.InstallError, match="daemon is busy") as caught:
            RemoteStore(config, "someone").read()
        took = time.monotonic() - start
    assert not isinstance(caught.value, controlclient.Unavailable)  # it runs: no "not running"
    assert daemon.connections >= 3 and 0.3 < took < 1.5


def test_a_full_listen_queue_is_retried_not_reported_as_a_stopped_daemon(tmp_path):
    config = make_config(tmp_path)
    fillers = []
    with FakeDaemon(config.socket_path, busy=0, backlog=0, hold=0.4) as daemon:
        for _ in range(8):  # fill the kernel's queue: the next connect gets EAGAIN
            filler = socket.socket(socket.AF_UNIX)
            filler.setblocking(False)
            try:
                filler.connect(str(config.socket_path))
            except BlockingIOError:
                filler.close()
                break
            filler.shutdown(socket.SHUT_WR)
            fillers.append(filler)
        else:
            pytest.fail("the listen queue never filled")
        data = RemoteStore(config, "someone").read()
    for filler in fillers:
        filler.close()
    assert data == b"0 4 * * * x\n" and daemon.connections == len(fillers) + 1


def test_a_real_server_at_a_uids_limit_serves_its_retry_once_a_slot_frees(server, monkeypatch):
    monkeypatch.setattr(control, "IO_TIMEOUT", 0.5)
    idle = [socket.socket(socket.AF_UNIX) for _ in range(control.MAX_PER_UID)]
    for sock in idle:
        sock.connect(str(server.path))
    wait_for(lambda: server.active.get(os.geteuid()) == control.MAX_PER_UID, 2, "all held")
    assert controlclient.call(server.path, {"op": "ping"})["kind"] == "busy"
    reply, took = timed(controlclient.call, server.path, {"op": "ping"}, 30.0, 5.0)
    for sock in idle:
        sock.close()
    assert reply["ok"] is True and reply["uid"] == os.geteuid()
    assert took < controlclient.BUSY_RETRY_FOR  # served inside its retry budget


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
