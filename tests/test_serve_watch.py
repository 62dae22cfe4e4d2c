"""serve() in this process: a crontab written the moment the first status appears.

The end-to-end test (test_daemon_e2e.py) writes the crontab once status.json exists; on
a busy machine that write could land before the daemon watched the directory, and the
change then waited for the hourly rescan. Here the write happens inside the first
publish, deterministically, which is the earliest a status reader could act.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from smartcron.config import read_config
from smartcron.daemon import service
from tests.realdaemon import write_config

GIVE_UP_S = 15.0  # the daemon is stopped by a timer if the change is never seen


@pytest.fixture
def restored_signals():
    stopping = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    handlers = {sig: signal.getsignal(sig) for sig in stopping}
    yield
    signal.set_wakeup_fd(-1)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_a_crontab_written_at_the_first_status_is_reloaded_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored_signals: None
) -> None:
    config = read_config(
        write_config(tmp_path, "0 4 * * * first\n", mtime_check="3600", mode='"cron"'),
        user_mode=True,
    )
    published: list[list[str]] = []
    real_publish = service.publish_status

    def publish(cfg: object, document: dict) -> None:
        real_publish(cfg, document)
        commands = [job["command"] for job in document["jobs"]]
        published.append(commands)
        if len(published) == 1:
            (tmp_path / "crontab").write_text("0 5 * * * second\n")
        elif commands == ["second"]:
            os.kill(os.getpid(), signal.SIGTERM)  # seen: stop the daemon

    monkeypatch.setattr(service, "publish_status", publish)
    give_up = threading.Timer(GIVE_UP_S, os.kill, (os.getpid(), signal.SIGTERM))
    give_up.start()
    try:
        assert service.serve(config, foreground=True) == 0
    finally:
        give_up.cancel()
    assert published[0] == ["first"]
    assert ["second"] in published, f"the change waited for the rescan: {published}"
