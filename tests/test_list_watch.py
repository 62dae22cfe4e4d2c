"""`smartcronctl list --watch` shows a deferral live, and its end, without a restart (issue 14).

The daemon is the in-process harness on a fake clock writing a real history file; the
watcher is the real command in a pseudo-terminal (rich redraws only on a terminal).
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from smartcron.store.history import HistoryStore
from tests.harness import battery, cli_config, make, utc

BIN = Path(sys.executable).parent
CRONTAB = "#@smart name=later window=3h min_battery=30\n0 4 * * * later\n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _read(fd: int, seconds: float) -> str:
    out, end = b"", time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return ANSI.sub("", out.decode(errors="replace"))


def _read_until(fd: int, text: str, seconds: float) -> str:
    seen, end = "", time.monotonic() + seconds
    while text not in seen and time.monotonic() < end:
        seen += _read(fd, 0.5)
    return seen


def test_list_watch_shows_a_deferral_live_and_then_its_end(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    history = HistoryStore.open(tmp_path / "state" / "history.db")
    charged = {"yes": False}
    low, high = battery(), battery("00:00")
    h = make(
        tmp_path, CRONTAB, lambda now: high(now) if charged["yes"] else low(now), history=history
    )
    h.run_until(utc("04:05"))  # 04:00Z fired; the battery is low: deferred
    conf = cli_config(tmp_path, "watch.toml")
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "LINES": "40", "TZ": "UTC", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [str(BIN / "smartcronctl"), "list", "--watch", "--user", "--config", str(conf)],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    try:
        before = _read_until(leader, "deferred until", 20)
        assert "later" in before and "deferred until" in before, before
        assert "battery 18% < min_battery 30%" in before, before
        charged["yes"] = True
        h.run_until(utc("04:20"))  # the battery is charged: the firing runs and is done
        time.sleep(2.5)  # one refresh (2 s) after the change
        after = _read(leader, 3.0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(leader)
        history.close()
    assert "later" in after, after  # redrawn, in place, by the same process
    assert "deferred until" not in after, after
