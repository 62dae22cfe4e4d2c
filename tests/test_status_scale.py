"""`smartcronctl status` at scale: it reads what the running daemon published (jobs, each
job's next firing) instead of recomputing, the daemon writes status.json compactly and
only when it changed, and a stale or missing file falls back to loading the crontabs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.daemon import running, write_config
from smartcron.config import read_config
from smartcron.daemon.status import (
    current_status,
    live_status,
    next_firings,
    status_report,
)
from smartcron.daemon.statusdoc import DaemonStatus, LiveStatus
from smartcron.daemon.statusfile import publish_status, read_status

CRONTAB = """\
*/5 * * * * true every-5
0 3 * * * true nightly
15 2 1,15 * * true twice-a-month
CRON_TZ=Asia/Tokyo
30 8 * * mon-fri true tokyo-mornings
@reboot true at-boot
"""


@pytest.fixture
def config(tmp_path):
    config = read_config(str(write_config(tmp_path, CRONTAB)), user_mode=True)
    config.state_dir.mkdir()
    return config


def _document(pid: int, **changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "pid": pid,
        "started": "2026-12-05T01:00:00+00:00",
        "updated": "2026-12-05T01:00:00+00:00",
        "user_mode": True,
        "mode": "cron",
        "mode_reason": "config",
        "zone": "UTC",
        "mail": {"command": "/usr/sbin/sendmail", "available": False},
        "files": [],
        "jobs": [],
        "running": 0,
    }
    return {**doc, **changes}


def test_status_with_a_live_daemon_shows_what_loading_the_crontab_shows(tmp_path):
    with running(tmp_path, CRONTAB) as daemon:
        config = read_config(str(tmp_path / "etc" / "smartcron.toml"), user_mode=True)
        now = datetime.now(UTC)
        report = status_report(config, now)
        assert isinstance(report.status, DaemonStatus)
        assert report.pid == daemon.pid
    live = live_status(config)
    assert report.status.jobs == live.jobs
    assert report.status.files == live.files
    # The daemon's published next firings give what recomputing every schedule gives.
    assert report.next == tuple(next_firings(live.jobs, now, 10))
    assert [item.job.command for item in report.next][:1] == ["true every-5"]
    assert len(report.next) == 4  # @reboot has no next firing
    doc = report.to_json()
    assert "next_fires" not in doc  # the daemon's cache is not part of what status shows
    assert set(report.status.next_fires or {}) == {job.id for job in live.jobs[:4]}


def test_a_published_next_firing_still_ahead_is_used_and_a_past_one_recomputed(config):
    jobs = live_status(config).jobs
    now = datetime(2026, 12, 5, 1, 2, 30, tzinfo=UTC)
    every5, nightly = jobs[0], jobs[1]
    ahead = int((now + timedelta(hours=5)).timestamp())  # not the truth: proves it is read
    past = int((now - timedelta(hours=1)).timestamp())
    shown = next_firings(jobs, now, 10, {every5.id: ahead, nightly.id: past})
    at = {item.job.id: item.at for item in shown}
    assert at[every5.id] == "2026-12-05T06:02:30+00:00"
    assert at[nightly.id] == "2026-12-05T03:00:00+00:00"  # recomputed from the schedule
    assert next_firings(jobs, now, 10, {}) == next_firings(jobs, now, 10)


def test_the_status_file_is_compact_and_rewritten_only_when_it_changed(config):
    primary = config.status_files[0]
    publish_status(config, _document(42))
    text = primary.read_text()
    assert text == json.dumps(_document(42), separators=(",", ":"))
    assert "\n" not in text and ", " not in text
    first = primary.stat().st_ino
    publish_status(config, _document(42, updated="2026-12-05T01:05:00+00:00"))
    assert primary.stat().st_ino == first  # only "updated" differed: not rewritten
    assert json.loads(primary.read_text())["updated"] == "2026-12-05T01:00:00+00:00"
    publish_status(config, _document(42, running=3))
    assert primary.stat().st_ino != first  # write_atomic replaces the file
    assert json.loads(primary.read_text())["running"] == 3
    primary.unlink()
    publish_status(config, _document(42, running=3))
    assert read_status(config) == _document(42, running=3)  # gone: written again


def test_a_stale_status_file_of_another_pid_falls_back_to_loading(config):
    publish_status(config, _document(999_999, mode="smart"))
    status = current_status(config, 4242)  # the lock holder is another daemon
    assert isinstance(status, LiveStatus)
    assert len(status.jobs) == 5
    assert isinstance(current_status(config, 999_999), DaemonStatus)


def test_a_missing_status_file_falls_back_to_loading(config):
    assert not config.status_files[0].exists()
    status = current_status(config, 4242)
    assert isinstance(status, LiveStatus)
    assert [job.command for job in status.jobs][:2] == ["true every-5", "true nightly"]
