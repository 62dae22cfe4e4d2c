"""smartcronctl dashboard over plain HTTP: a real process on a small history.

The token on every route (401), read-only by default (403), the event stream's live
update, a warning off loopback, a clean stop, bad input as one line, and one user's
dashboard never showing another user's jobs (root: throwaway users).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.browserkit import (
    BIN,
    events,
    get,
    get_with_headers,
    post,
    record_run,
    remove_tree,
    start_dashboard,
    world_readable_dir,
)
from tests.dashkit import CRONTAB, config_text
from tests.users import NOT_ROOT, is_root, throwaway_user

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{40,})$")


def small_setup(top: Path, owner: str = "root") -> Path:
    """A user-mode config (the laptop crontab) and a history of two runs; the config."""
    for name in ("state", "run", "jobs"):
        (top / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(CRONTAB, top / "crontab")
    os.chmod(top / "crontab", 0o600)
    config = top / "smartcron.toml"
    config.write_text(config_text(top))
    db = top / "state" / "history.db"
    record_run(db, job="first_probe", user=owner)
    record_run(db, job="second_probe", user=owner, status="failed")
    return config


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return small_setup(tmp_path)


def test_the_first_line_is_a_loopback_url_and_every_route_wants_the_token(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    try:
        match = URL.match(dash.url)
        assert match, dash.url
        assert int(match.group(1)) > 0  # --port 0 (the default): the port really served
        base, token = dash.base, dash.token
        status, body = get(dash.url)
        assert status == 200 and "first_probe" in body and "second_probe" in body
        assert get(f"{base}/?token={token}x")[0] == 401
        for path in ("/", "/events", "/?token=", "/events?token=" + token[:-1]):
            status, body = get(base + path)
            assert status == 401, path
            assert "first_probe" not in body
        assert get(base + "/", {"X-Token": token})[0] == 200  # the header works too
        # An action wants the header, never the query (a cross-site form could send it).
        assert post(f"{base}/actions/run?token={token}", {"job": "first_probe"})[0] == 401
        assert post(f"{base}/actions/cancel", {"job": "first_probe"})[0] == 401
    finally:
        assert dash.stop()[0] == 0


def test_actions_are_refused_with_403_without_allow_actions(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    try:
        for op in ("run", "cancel"):
            status, reply = post(f"{dash.base}/actions/{op}", {"job": "x"}, {"X-Token": dash.token})
            assert status == 403
            assert reply == {"ok": False, "message": "actions are off (start with --allow-actions)"}
        # GET on an action route does nothing either: POST only.
        assert get(f"{dash.base}/actions/run", {"X-Token": dash.token})[0] == 405
        page = get(dash.url)[1]
        assert "const LIVE = true, ACTIONS = false;" in page
    finally:
        dash.stop()


def test_with_allow_actions_a_missing_daemon_or_a_bad_request_is_a_message(small: Path):
    dash = start_dashboard("--user", "--config", str(small), "--allow-actions")
    token = {"X-Token": dash.token}
    try:
        status, reply = post(f"{dash.base}/actions/run", {"job": "<script>x</script>"}, token)
        assert status == 409 and reply["ok"] is False
        assert reply["message"].startswith("no SmartCron daemon answers (")
        assert str(small.parent / "run" / "smartcron.sock") in reply["message"]
        for body in ({}, {"job": ""}, {"job": 3}, ["job"]):
            status, reply = post(f"{dash.base}/actions/cancel", body, token)
            assert (status, reply["ok"]) == (400, False), body
        page = get(dash.url)[1]
        assert "const LIVE = true, ACTIONS = true;" in page
    finally:
        dash.stop()


def test_a_run_recorded_while_the_stream_is_open_is_sent_within_seconds(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    db = small.parent / "state" / "history.db"
    try:
        stream = events(dash)
        first = next(stream)
        assert "first_probe" in first["views"]["runs"]
        assert "live_probe" not in first["views"]["runs"]
        recorded = time.monotonic()
        record_run(db, job="live_probe", user="root")
        second = next(stream)
        took = time.monotonic() - recorded
        assert "live_probe" in second["views"]["runs"]
        assert took < 4.0, took  # polled every second
    finally:
        dash.stop()


def test_the_pages_stream_sends_nothing_until_the_history_changes(small: Path):
    """The page sets a cookie with what it shows: its stream does not send the same
    data again (megabytes re-rendered), only what changed after the page was made."""
    dash = start_dashboard("--user", "--config", str(small))
    db = small.parent / "state" / "history.db"
    try:
        status, page, headers = get_with_headers(dash.url)
        assert status == 200 and "live_probe" not in page
        cookie = headers["Set-Cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        stream = events(dash, timeout=5, headers={"Cookie": cookie.split(";")[0]})
        opened = time.monotonic()
        record_run(db, job="live_probe", user="root")
        first = next(stream)  # after the change: not the page's data again
        assert "live_probe" in first["views"]["runs"]
        assert time.monotonic() - opened < 4.0
    finally:
        dash.stop()


def test_a_change_of_the_daemons_status_file_is_sent_too(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    try:
        _status, _page, headers = get_with_headers(dash.url)
        stream = events(dash, timeout=5, headers={"Cookie": headers["Set-Cookie"].split(";")[0]})
        opened = time.monotonic()
        (small.parent / "run" / "smartcron.status.json").write_text("{}")  # as the daemon's
        assert "first_probe" in next(stream)["views"]["runs"]
        assert time.monotonic() - opened < 4.0
    finally:
        dash.stop()


def test_a_history_damaged_while_serving_is_a_500_line_and_a_problem_event(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    db = small.parent / "state" / "history.db"
    try:
        stream = events(dash)
        assert "first_probe" in next(stream)["views"]["runs"]
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
        problem = next(stream)
        assert problem["event"] == "problem" and str(db) in problem["error"]
        status, body = get(dash.url)
        assert status == 500
        assert body.startswith("smartcronctl dashboard: ") and body.count("\n") == 1
        assert "Traceback" not in body
    finally:
        code, err = dash.stop()
    assert code == 0 and "Traceback" not in err


def test_a_bind_off_loopback_warns_on_stderr(small: Path):
    dash = start_dashboard("--user", "--config", str(small), "--bind", "0.0.0.0")
    try:
        assert dash.url.startswith("http://0.0.0.0:")
        port = dash.base.rsplit(":", 1)[1]
        assert get(f"http://127.0.0.1:{port}/?token={dash.token}")[0] == 200
    finally:
        code, err = dash.stop()
    assert code == 0
    assert "warning: 0.0.0.0 is not a loopback address" in err


def test_sigterm_stops_it_at_once_with_a_stream_open(small: Path):
    dash = start_dashboard("--user", "--config", str(small))
    stream = events(dash)
    next(stream)
    began = time.monotonic()
    code, err = dash.stop()
    assert code == 0, err
    assert time.monotonic() - began < 3.0
    assert "Traceback" not in err


def test_a_corrupt_history_is_one_line_and_exit_1(small: Path):
    db = small.parent / "state" / "history.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    result = subprocess.run(
        [str(BIN / "smartcronctl"), "dashboard", "--user", "--config", str(small)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""  # no URL: nothing is served
    assert len(result.stderr.splitlines()) == 1 and str(db) in result.stderr


def test_a_port_in_use_is_one_line_and_exit_1(small: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(BIN / "smartcronctl"), "dashboard", "--user", "--config", str(small),
             "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"--bind 127.0.0.1 --port {port}: Address already in use\n"


def test_an_unknown_option_value_is_a_usage_error(small: Path):
    result = subprocess.run(
        [str(BIN / "smartcronctl"), "dashboard", "--port", "70000"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "70000" in result.stderr


def _as_user(name: str, home: str) -> list[str]:
    """The system python of the same version on this checkout and the venv's packages
    (the venv's own interpreter lives under /root, which other users cannot enter), as
    `name`. setpriv execs (runuser would stay the parent and take our SIGTERM itself)."""
    paths = f"{REPO}:{sysconfig.get_paths()['purelib']}"
    env = [f"HOME={home}", f"PYTHONPATH={paths}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    who = ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--"]
    return [*who, "env", "-i", *env, SYSTEM_PYTHON, "-m", "smartcron.cli.ctl"]


@pytest.mark.root
@pytest.mark.skipif(not is_root(), reason=NOT_ROOT)
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the system python3 must match")
def test_a_second_users_jobs_are_not_shown_to_the_first():
    shared = world_readable_dir("scdash-")
    with throwaway_user() as alice, throwaway_user() as bob:
        try:
            top = shared / "alice"
            top.mkdir()
            config = small_setup(top, owner=alice.pw.name)
            db = shared / "history.db"  # one database with runs of both, readable by both
            record_run(db, job="alice_report", user=alice.pw.name)
            record_run(db, job="bob_secret_payroll", user=bob.pw.name, status="failed")
            db.chmod(0o644)
            # SQLite reads a WAL database only where it may make the -shm index beside
            # it: a shared directory, sticky as /tmp is (the file itself stays 0644).
            shared.chmod(0o1777)
            subprocess.run(["chown", "-R", f"{alice.pw.name}:", str(top)], check=True)
            argv = _as_user(alice.pw.name, alice.pw.dir)
            args = ("--user", "--config", str(config), "--history", str(db))
            dash = start_dashboard(*args, argv=argv, cwd="/")
            try:
                status, page = get(dash.url)
                first = next(events(dash))
            finally:
                code, err = dash.stop()
        finally:
            remove_tree(shared)
    assert code == 0, err
    assert status == 200
    assert f"viewing as {alice.pw.name}" in page  # her uid, not root's
    assert "alice_report" in page and "alice_report" in first["views"]["runs"]
    assert "bob_secret_payroll" not in page
    assert "bob_secret_payroll" not in str(first)
    assert bob.pw.name not in page


def test_open_pages_share_one_collection_until_the_files_change(small: Path):
    """Ten tabs cost one collect() per change of the history, not ten."""
    from smartcron.dash.data import DashQuery, data_json
    from smartcron.dash.server import Snapshots, watched_files

    db = small.parent / "state" / "history.db"
    snapshots = Snapshots(
        DashQuery(history=None, config=small, user_mode=True), watched_files(db, ())
    )
    seen, data = snapshots.get()
    assert snapshots.get() == (seen, data) and snapshots.get()[1] is data
    record_run(db, job="third_probe", user="root")
    later, fresh = snapshots.get()
    assert later != seen and fresh is not data
    assert "third_probe" in data_json(fresh) and "third_probe" not in data_json(data)


WEB_STACK = {"starlette", "uvicorn", "anyio", "h11", "jinja2", "plotly", "cron_descriptor"}


def _imported(*argv: str) -> set[str]:
    """The top-level packages a command imports (python -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, timeout=60
    )
    return {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}


def test_the_daemon_status_and_help_never_import_the_web_stack(small: Path):
    """Only `dashboard` and `report` pay for it (--help imports every command's module,
    smartcron.cli.dashboard included: its web imports are inside the command)."""
    status = _imported("-m", "smartcron.cli.ctl", "status", "--user", "--config", str(small))
    assert "smartcron" in status and not status & WEB_STACK
    helped = _imported("-m", "smartcron.cli.ctl", "--help")
    assert "click" in helped and not helped & WEB_STACK
    daemon = _imported("-c", "import smartcron.daemon.service, smartcron.cli.daemon")
    assert "smartcron" in daemon and not daemon & WEB_STACK
    dashboard = _imported("-c", "import smartcron.dash.server")
    assert {"starlette", "uvicorn"} <= dashboard  # the check sees them when there
