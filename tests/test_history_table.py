"""smartcronctl history, list and status as tables a human reads: nominal time and
delay, `Dec 05 01:00` times, `3m12s` durations, one line a row at 100 columns, an empty
history said in words, and --json exactly as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main
from smartcron.cli.tables import duration, short_time
from smartcron.store.history import HistoryStore
from smartcron.testing import FakeOutcome
from tests.harness import battery, cli_config, make, utc

CRONTAB = (
    "#@smart name=nightly_backup window=2h min_battery=30\n"
    "0 2 * * * backup --target /srv/backups/a-rather-long-path --verbose --compress zstd\n"
    "0 3 * * * plain\n"
    "#@smart name=later min_battery=30\n0 4 * * * later\n"
)


def _config(tmp_path: Path) -> Path:
    conf = cli_config(tmp_path)
    return conf


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A backup deferred 40 minutes by a low battery (3m12s), a plain job on time, and
    `later` (04:00 CET) still deferred by a low battery again."""
    monkeypatch.setenv("TZ", "UTC")
    (tmp_path / "state").mkdir(parents=True)
    history = HistoryStore.open(tmp_path / "state" / "history.db")
    outcomes = {CRONTAB.splitlines()[1][10:]: [FakeOutcome(output=b"ok\n", duration_s=192)]}
    low, high = battery(), battery("01:40")

    def script(now):  # low until 01:40Z, high until 02:30Z, low again
        return high(now) if now < utc("02:30") else low(now)

    h = make(tmp_path, CRONTAB, script, outcomes=outcomes, history=history)
    h.run_until(utc("03:10"))
    history.close()
    return _config(tmp_path)


def ctl(*args: str, columns: int = 100) -> str:
    result = CliRunner().invoke(
        main, list(args), catch_exceptions=False, env={"COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_history_shows_nominal_time_and_delay_in_human_words(conf):
    out = ctl("history", "--user", "--config", str(conf))
    head = out.splitlines()[0].split()
    # one user's history: no user column
    assert head == ["id", "nominal", "started", "delay", "job", "status", "exit", "runtime",
                    "mail", "command"]  # fmt: skip
    backup = next(line for line in out.splitlines() if "nightly_backup" in line)
    # nominal 02:00 CET (01:00Z, TZ=UTC), started 40 minutes later, ran 3m12s
    assert backup.split()[1:6] == ["Feb", "10", "01:00", "01:40", "40m00s"]
    assert "3m12s" in backup and "ok" in backup
    plain = next(line for line in out.splitlines() if " plain" in line)
    assert plain.split()[1:6] == ["Feb", "10", "02:00", "02:00", "0s"]
    assert ".000" not in out and "T01:" not in out  # no ISO timestamps


def test_history_rows_fit_100_columns_without_wrapping(conf):
    out = ctl("history", "--user", "--config", str(conf), columns=100)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert len(lines) == 1 + 2  # the header, one line per run
    assert "…" in next(line for line in lines if "nightly_backup" in line)  # command cut


def test_history_piped_without_columns_uses_a_readable_width(conf, monkeypatch):
    from smartcron.cli.tables import PIPE_WIDTH, console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert console().width == PIPE_WIDTH == 120
    monkeypatch.setenv("COLUMNS", "90")
    assert console().width == 90


def test_an_empty_history_says_so_in_one_line(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("0 3 * * * plain\n")
    HistoryStore.open(tmp_path / "state" / "history.db").close()
    out = ctl("history", "--user", "--config", str(_config(tmp_path)))
    assert out == "no runs recorded\n"


def test_history_json_is_unchanged(conf):
    items = json.loads(ctl("history", "--json", "--user", "--config", str(conf)))
    assert all(sorted(item) == sorted(EXPECTED_KEYS) for item in items)
    assert [(i["scheduled"], i["started"], i["runtime_s"]) for i in items][-2:] == [
        ("2026-02-10T02:00:00+00:00", "2026-02-10T02:00:00+00:00", 0.0),
        ("2026-02-10T01:00:00+00:00", "2026-02-10T01:40:00+00:00", 192.0),
    ]


EXPECTED_KEYS = (
    "command", "cpu_s", "ended", "exit_code", "id", "job_id", "job_name", "line",
    "mail_reason", "mail_sent", "max_rss_kb", "note", "output_size", "runtime_s",
    "scheduled", "signal", "source", "started", "status", "timed_out", "trigger", "user",
)  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0.04, "0.0s"), (4.25, "4.2s"), (45, "45s"), (192, "3m12s"),
     (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h")],
)  # fmt: skip
def test_durations_read_as_an_operator_writes_them(seconds, text):
    assert duration(seconds) == text


def test_times_are_month_day_and_minute_in_local_time(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert short_time("2026-12-05T00:00:30+00:00") == "Dec 05 01:00"
        assert short_time(None) == ""
    finally:
        monkeypatch.undo()
        time.tzset()


def test_list_and_status_fit_100_columns_one_line_a_row(conf):
    listed = ctl("list", "--user", "--config", str(conf), columns=100)
    lines = listed.splitlines()  # the mode line first (prose, wrapped at 100)
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("job ")) :]
    assert table[0].split() == ["job", "kind", "schedule", "next", "command", "pending", "firings"]
    assert max(len(line) for line in listed.splitlines()) <= 100
    assert len(table) == 1 + 3  # one line a job
    row = next(line for line in table if line.startswith("nightly_backup"))
    assert "smart" in row and "backup --…" in row  # the command gives way first
    later = next(line for line in table if line.startswith("later"))
    assert "03:00 deferred until 03:11: battery 18%" in later  # TZ=UTC
    status = ctl("status", "--user", "--config", str(conf), columns=100).splitlines()
    tables = status[status.index("pending firings") :]
    assert max(len(line) for line in tables) <= 100
    assert tables[1].split() == ["job", "nominal", "state", "next", "check", "last", "reason"]
    assert tables[2].split()[:6] == ["later", "Feb", "10", "03:00", "pending", "03:11"]
    assert tables[3] == "next firings"


def test_history_of_several_users_shows_the_user_and_a_manual_run_has_no_delay(tmp_path):
    from datetime import UTC, datetime, timedelta

    from smartcron.store.history import RunEnd, RunStart

    (tmp_path / "state").mkdir()
    (tmp_path / "crontab").write_text("0 3 * * * plain\n")
    store = HistoryStore.open(tmp_path / "state" / "history.db")
    at = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    for user, scheduled, late in (("alice", at, 5), ("bob", None, 0)):
        run_id = store.record_start(RunStart(
            job_id=f"{user}:1", source=f"/var/spool/cron/crontabs/{user}", line=1, user=user,
            command="report", scheduled=scheduled, started=at + timedelta(seconds=late),
        ))  # fmt: skip
        end = RunEnd(status="ok", ended=at + timedelta(seconds=90), exit_code=0,  # type: ignore[arg-type]
                     runtime_s=90.0)  # fmt: skip
        store.record_end(run_id, end)
    store.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        lines = ctl("history", "--user", "--config", str(_config(tmp_path))).splitlines()
    assert lines[0].split()[:6] == ["id", "nominal", "started", "delay", "user", "job"]
    bob, alice = lines[1].split(), lines[2].split()
    assert alice[:7] == ["1", "Dec", "05", "01:00", "01:00", "5.0s", "alice"]
    assert bob[:6] == ["2", "Dec", "05", "01:00", "bob", "bob:1"]  # no nominal, no delay
    assert "1m30s" in lines[1]
