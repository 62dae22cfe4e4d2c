"""The daemon's control socket in-process: protocol, bounds, SO_PEERCRED, never a crash."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from smartcron.daemon import control, controlclient, controlwire
from smartcron.daemon.control import ControlServer
from smartcron.daemon.controlclient import RemoteStore, Unavailable, call
from tests.userconfig import make_config

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="writes spool files for other uids")
NOBODY = 65534


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "IO_TIMEOUT", 0.5)
    monkeypatch.setattr(control, "MAX_CLIENTS", 2)
    monkeypatch.setattr(controlclient, "BUSY_WAIT", 0.1)
    changes: list[int] = []
    srv = ControlServer(make_config(tmp_path), lambda: changes.append(1))
    srv.start()
    srv.changes = changes  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def send_raw(path: Path, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


def install_request(text: bytes, **extra: object) -> bytes:
    request = {"op": "install", "data": base64.b64encode(text).decode(), "source": "t", **extra}
    return json.dumps(request).encode()


def test_the_socket_is_open_to_every_user_in_system_mode_and_answers_ping(server):
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o666
    reply = call(server.path, {"op": "ping"})
    assert reply["ok"] and reply["uid"] == os.geteuid() and reply["mode"] == "system"


def test_stop_removes_the_socket(tmp_path):
    srv = ControlServer(make_config(tmp_path), lambda: None)
    srv.start()
    srv.stop()
    assert not srv.path.exists()


def test_a_stale_socket_is_replaced_but_a_live_one_is_not_stolen(server, tmp_path):
    second = ControlServer(server.config, lambda: None)
    with pytest.raises(OSError, match="another daemon"):
        second.start()
    server.stop()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(server.path))  # bound, never listening: what a crash leaves
    stale.close()
    second.start()
    assert call(second.path, {"op": "ping"})["ok"]
    second.stop()


@needs_root
def test_install_list_remove_for_the_peer_and_reload_requested(server):
    reply = send_raw(server.path, install_request(b"0 4 * * * x\n"))
    assert reply["ok"] and reply["previous"] is None
    spooled = server.config.spool_dir / "root"
    assert spooled.read_bytes().endswith(b"\n0 4 * * * x\n")
    assert server.changes == [1]
    listed = call(server.path, {"op": "list"})
    assert base64.b64decode(listed["data"]).endswith(b"0 4 * * * x\n")
    removed = call(server.path, {"op": "remove"})
    assert base64.b64decode(removed["previous"]) == b"0 4 * * * x\n"
    assert not spooled.exists()
    assert call(server.path, {"op": "list"})["kind"] == "nocrontab"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'"install"', "not a JSON object"),
        (b'{"op": "rm -rf"}', "op must be one of"),
        (b'{"op": "install", "data": 5}', "install needs data"),
        (b'{"op": "install", "data": "%%%"}', "not base64"),
        (b'{"op": "list", "user": "root"}', "unknown field 'user'"),
    ],
)
def test_garbage_gets_an_error_reply_and_the_server_carries_on(server, payload, message):
    reply = send_raw(server.path, payload)
    assert reply["ok"] is False and message in reply["errors"][0]
    assert call(server.path, {"op": "ping"})["ok"]


def test_a_huge_request_is_refused_with_a_reply_the_sender_can_read(server):
    huge = b'{"op": "install", "data": "' + b"A" * (controlwire.MAX_REQUEST + 1)
    reply = send_raw(server.path, huge)
    assert reply["errors"] == [f"request too large (more than {controlwire.MAX_REQUEST} bytes)"]


def test_a_syntax_error_is_reported_as_path_line_reason(server):
    reply = send_raw(server.path, install_request(b"0 4 * * * ok\n99 * * * * bad\n"))
    assert (reply["ok"], reply["kind"], reply["errors"]) == (False, "syntax", ["t:2: bad minute"])
    assert not (server.config.spool_dir / "root").exists()


def test_a_slow_peer_times_out_and_too_many_get_busy(server):
    idle = [socket.socket(socket.AF_UNIX) for _ in range(2)]
    for sock in idle:
        sock.connect(str(server.path))
        sock.sendall(b'{"op": ')
    time.sleep(0.1)
    assert "busy" in call(server.path, {"op": "ping"})["errors"][0]
    for sock in idle:
        sock.settimeout(5)
        assert json.loads(sock.recv(65536))["errors"] == ["request timed out"]
        sock.close()
    assert call(server.path, {"op": "ping"})["ok"]


@needs_root
def test_respond_acts_for_the_kernels_uid_only(server):
    reply = server.respond(NOBODY, install_request(b"0 4 * * * as-nobody\n"))
    assert reply["ok"], reply
    st = os.stat(server.config.spool_dir / "nobody")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o600)
    assert not (server.config.spool_dir / "root").exists()
    assert "passwd" in server.respond(987654, b'{"op": "list"}')["errors"][0]
    assert server.respond(NOBODY, b'{"op": "reload"}')["kind"] == "denied"


@needs_root
def test_cron_deny_is_applied_to_the_peer(server):
    server.config.deny_file.write_text("nobody\n")
    reply = server.respond(NOBODY, install_request(b"0 4 * * * x\n"))
    assert (reply["ok"], reply["kind"]) == (False, "denied")
    assert not (server.config.spool_dir / "nobody").exists()


def test_a_user_mode_server_serves_its_own_user_only(tmp_path):
    srv = ControlServer(make_config(tmp_path, user_mode=True), lambda: None)
    srv.start()
    try:
        assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600
        assert call(srv.path, {"op": "reload"})["ok"]
        assert "does not manage crontabs" in call(srv.path, {"op": "list"})["errors"][0]
        if os.geteuid() == 0:
            assert srv.respond(NOBODY, b'{"op": "ping"}')["kind"] == "denied"
    finally:
        srv.stop()


def test_the_client_reports_a_missing_daemon_with_the_two_ways_out(tmp_path):
    store = RemoteStore(make_config(tmp_path), "someone")
    with pytest.raises(Unavailable) as caught:
        store.read()
    assert "sudo systemctl start smartcron" in str(caught.value)
    assert "smartcrontab --user -e" in str(caught.value)
