"""Issue 11, findings 1 and 3: history must never stop cron.

A non-UTF-8 command (Debian's crontab accepts any bytes), a write that can never
succeed, a corrupt database (at rest, or damaged while running), a read-only or a full
state directory: plain jobs keep running, other jobs keep being recorded, and history
comes back when it can. Mounts (a read-only bind, a tiny tmpfs) need root."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from smartcron.store.history import HistoryStore, RunStart
from smartcron.testing import FakeOutcome
from tests.harness import START, battery, make, utc
from tests.polling import wait_for
from tests.realdaemon import BIN, runs, start, stop, write_config
from tests.users import is_root

NEEDS_MOUNT = "needs root: mounts a read-only bind or a tiny tmpfs"
CAFE = b"echo caf\xe9"  # Latin-1 bytes: not UTF-8
CHECK_EVERY = timedelta(hours=1)  # the store's quick_check period


def set_crontab(tmp_path: Path, data: bytes) -> None:
    tab = tmp_path / "crontab"
    tab.write_bytes(data)
    tab.chmod(0o600)


def started(h, command: str) -> int:
    return sum(1 for r in h.runner.requests if r.command == command)


def stored(store: HistoryStore) -> list[tuple[bytes, str]]:
    return [
        (r.start.command.encode("utf-8", "surrogateescape"), str(r.status))
        for r in reversed(store.runs(limit=1000))
    ]


def adopt(store: HistoryStore, h) -> None:
    """Put a store opened before the harness on the harness's fake clock."""
    store._clock = h.clock
    store._next_reopen, store._next_check = h.clock.now(), h.clock.now() + CHECK_EVERY


def runs_now(state: Path) -> list[tuple]:
    """The e2e helper's rows, or none while the file is not (yet) a database."""
    try:
        return runs(state)
    except sqlite3.DatabaseError:
        return []


def moved(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".corrupt-" in p.name)


@contextlib.contextmanager
def mounted(*argv: str, target: Path) -> Iterator[None]:
    if not is_root():
        pytest.skip(NEEDS_MOUNT)
    done = subprocess.run(["mount", *argv, str(target)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"mount refused here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """A read-only bind mount of `directory` onto itself (chmod does not stop root)."""
    with mounted("--bind", str(directory), target=directory):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield


def writable_again(directory: Path) -> None:
    subprocess.run(["mount", "-o", "remount,bind,rw", str(directory)], check=True)


# --- finding 1: one byte must not stop every job ---------------------------------------


def test_a_non_utf8_command_runs_is_recorded_byte_exact_and_other_jobs_keep_running(tmp_path):
    h = make(tmp_path, "")
    set_crontab(tmp_path, b"* * * * * " + CAFE + b"\n* * * * * echo plain\n")
    h.daemon.reload(force=True)
    h.run_until(START + timedelta(minutes=3))
    cafe = CAFE.decode("utf-8", "surrogateescape")
    assert (started(h, cafe), started(h, "echo plain")) == (3, 3)
    rows = stored(h.history)
    assert rows.count((CAFE, "ok")) == 3 and rows.count((b"echo plain", "ok")) == 3
    assert h.history.pending_writes == 0 and h.history.dropped == 0


def test_a_smart_job_with_a_non_utf8_command_frees_its_slot_and_runs_again(tmp_path):
    h = make(tmp_path, "")
    set_crontab(tmp_path, b"#@smart window=1h\n* * * * * " + CAFE + b"\n* * * * * echo plain\n")
    h.daemon.reload(force=True)
    h.run_until(START + timedelta(minutes=4))
    cafe = CAFE.decode("utf-8", "surrogateescape")
    assert started(h, cafe) >= 3 and started(h, "echo plain") == 4
    assert h.daemon.engine.running == {}  # every smart run was subtracted again
    assert [d.reason for f in h.store.firings() for d in h.store.decisions(f.firing.id)].count(
        "exit 0 in 0 s"
    ) == started(h, cafe)


def test_a_failing_record_end_still_frees_the_smart_slot_and_records_other_jobs(
    tmp_path, monkeypatch
):
    h = make(
        tmp_path,
        "#@smart window=1h max_concurrent=1\n* * * * * smart-job\n* * * * * plain-job\n",
        outcomes={"smart-job": [FakeOutcome(duration_s=5)]},
    )
    real = h.history.record_end

    def record_end(run_id, end):
        if h.history.run(run_id).start.command == "smart-job":
            raise RuntimeError("a bug in recording")
        real(run_id, end)

    monkeypatch.setattr(h.history, "record_end", record_end)
    h.run_until(START + timedelta(minutes=4))
    assert started(h, "smart-job") == 4 and started(h, "plain-job") == 4
    assert h.daemon.engine.running == {}
    assert [s for c, s in stored(h.history) if c == b"plain-job"] == ["ok"] * 4


def test_a_write_that_can_never_succeed_is_dropped_and_later_writes_go_through(tmp_path, caplog):
    store = HistoryStore.open(tmp_path / "history.db")
    base = {"job_id": "j", "source": "crontab", "user": "root", "started": START}
    with pytest.raises(Exception):  # noqa: B017 - the store's HistoryError (HEAD: OverflowError)
        store.record_start(RunStart(**base, command="huge", line=2**70))
    ids = [store.record_start(RunStart(**base, command=f"next {i}")) for i in range(3)]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert (store.pending_writes, store.dropped) == (0, 1)
    assert "dropped" in caplog.text
    store.close()


def test_the_real_daemon_runs_and_records_a_non_utf8_reboot_job_and_the_next_one(tmp_path):
    config = write_config(tmp_path, "")
    out = tmp_path / "out"
    set_crontab(tmp_path, b"@reboot " + CAFE + b" > " + bytes(out) + b"\n@reboot echo plain\n")
    proc = start(config)
    try:
        rows = wait_for(lambda: [r for r in runs(tmp_path / "state") if r[1] == "ok"], what="runs")
        wait_for(lambda: len([r for r in runs(tmp_path / "state") if r[1] == "ok"]) == 2)
        done = subprocess.run(
            [str(BIN / "smartcronctl"), "history", "--user", "--config", str(config), "--json"],
            capture_output=True,
            timeout=30,
        )
    finally:
        log = stop(proc)
    rows = runs(tmp_path / "state")
    assert sorted((r[0] if isinstance(r[0], bytes) else r[0].encode(), r[1]) for r in rows) == [
        (CAFE + b" > " + bytes(out), "ok"),
        (b"echo plain", "ok"),
    ]
    assert out.read_bytes() == b"caf\xe9\n"
    assert done.returncode == 0 and CAFE + b" > " in done.stdout  # the original bytes
    assert len(json.loads(done.stdout.decode("utf-8", "surrogateescape"))) == 2
    assert "could not start" not in log and proc.returncode == 0


# --- finding 3: damaged state must not keep cron down --------------------------------


def test_the_real_daemon_sets_a_garbage_database_aside_and_runs_and_records_jobs(tmp_path):
    config = write_config(tmp_path, "@reboot echo plain\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / "history.db").write_bytes(os.urandom(8192))
    proc = start(config)
    try:
        wait_for(lambda: [r for r in runs_now(state) if r[1] == "ok"], what="the run")
    finally:
        log = stop(proc)
    assert proc.returncode == 0
    assert runs(state) == [("echo plain", "ok", 0, "reboot")]
    assert len(moved(state)) == 1 and log.count("moved aside to") == 1


def truncated_database(path: Path) -> None:
    store = HistoryStore.open(path)
    base = {"job_id": "j", "source": "crontab", "user": "root", "started": START}
    for i in range(300):
        store.record_start(RunStart(**base, command=f"old {i} " + "x" * 400))
    store.close()
    with open(path, "r+b") as db:
        db.truncate(os.path.getsize(path) // 2)


def test_a_truncated_database_at_rest_is_set_aside_and_a_fresh_one_records(tmp_path, caplog):
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / "history.db"
    truncated_database(path)
    store = HistoryStore.open(path, resilient=True)
    h = make(tmp_path, "* * * * * plain\n", history=store)
    h.run_until(START + timedelta(minutes=2))
    assert stored(store) == [(b"plain", "ok")] * 2
    assert len(moved(path.parent)) == 1 and store.document()["available"] is True
    assert caplog.text.count("moved aside to") == 1


def test_damage_made_while_running_is_found_by_the_hourly_check_and_history_carries_on(
    tmp_path, caplog
):
    store = HistoryStore.open(tmp_path / "history.db", resilient=True)
    h = make(tmp_path, "0 * * * * hourly\n", history=store)
    adopt(store, h)
    h.clock.sleep_until(utc("01:00") - timedelta(seconds=30))
    truncated = store.record_start  # fill it, so that damage lands on real pages
    base = {"job_id": "j", "source": "crontab", "user": "root", "started": START}
    for i in range(200):
        truncated(RunStart(**base, command=f"old {i} " + "x" * 400))
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(tmp_path / "history.db", "r+b") as db:
        db.seek(4096 * 3)
        db.write(os.urandom(4096 * 6))
    h.run_until(utc("03:30"))
    assert started(h, "hourly") == 3
    assert [c for c, s in stored(store)] == [b"hourly"] * 2  # 02:00 and 03:00, after the check
    assert len(moved(tmp_path)) == 1 and caplog.text.count("moved aside to") == 1


def test_a_read_only_state_directory_runs_jobs_holds_the_lock_and_says_so(tmp_path):
    out = tmp_path / "out"
    config = write_config(tmp_path, f"@reboot echo ran >> {out}\n")
    state = tmp_path / "state"
    state.mkdir()
    with read_only(state):
        proc = start(config)
        try:
            wait_for(lambda: out.exists(), what="the job")
            status = wait_for(lambda: _history_state(config), what="status with history")
            second = subprocess.run(
                [str(BIN / "smartcron"), "--user", "-f", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        finally:
            log = stop(proc)
    assert out.read_text() == "ran\n" and proc.returncode == 0
    assert second.returncode == 1 and "already running" in second.stderr
    assert log.count("jobs still run, their history waits in memory") == 1
    assert "Traceback" not in log
    # status.json cannot go to the read-only state directory: it is published in run_dir.
    assert status["available"] is False and "Read-only" in status["reason"]


def _history_state(config: Path) -> dict | None:
    """`smartcronctl status --json`'s history entry, once the daemon has published one."""
    proc = subprocess.run(
        [str(BIN / "smartcronctl"), "status", "--user", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout).get("history")


@pytest.mark.parametrize("trouble", ["read-only", "full"])
def test_history_is_picked_up_again_when_the_state_directory_can_be_written(
    tmp_path, caplog, trouble
):
    caplog.set_level(logging.INFO, logger="smartcron")
    state = tmp_path / "state"
    state.mkdir()
    if trouble == "read-only":
        holder = read_only(state)
    else:
        holder = mounted("-t", "tmpfs", "-o", "size=8m", "tmpfs", target=state)
    with holder:
        store = HistoryStore.open(state / "history.db", resilient=True)
        filler = state / "filler"
        big = {"echo big": [FakeOutcome(output=b"y" * 8000)]}
        h = make(tmp_path, "* * * * * echo big\n* * * * * plain\n", history=store, outcomes=big)
        adopt(store, h)
        if trouble == "full":
            with open(filler, "wb") as fill, contextlib.suppress(OSError):
                fill.write(b"\0" * (16 << 20))
        h.run_until(START + timedelta(minutes=3))
        down = store.document()
        assert (started(h, "plain"), started(h, "echo big")) == (3, 3)
        assert down["available"] is False and down["pending_writes"] > 0
        if trouble == "full":
            filler.unlink()
        else:
            writable_again(state)
        h.run_until(START + timedelta(minutes=5))
        assert store.document()["available"] is True and store.pending_writes == 0
        rows = stored(store)
        store.close()
    assert rows.count((b"plain", "ok")) >= 4  # the minutes parked while down came through
    assert caplog.text.count("jobs still run, their history waits in memory") == 1
    assert caplog.text.count("can be written again") == 1
    assert "(journal" not in caplog.text  # said once when it went down, not each minute


def test_a_firing_deferred_across_a_corrupt_database_swap_still_runs_once(tmp_path, caplog):
    # The engine holds the firing's id from the old file; the fresh file has no such row.
    store = HistoryStore.open(tmp_path / "history.db", resilient=True)
    tab = "#@smart name=b window=3h min_battery=50\n0 2 * * * b\n"
    h = make(tmp_path, tab, battery(low_until="02:30"), history=store)
    adopt(store, h)
    h.run_until(utc("01:10"))  # 02:00 CET: deferred, the battery is low
    assert h.runner.requests == []
    base = {"job_id": "j", "source": "crontab", "user": "root", "started": START}
    for i in range(200):
        store.record_start(RunStart(**base, command=f"old {i} " + "x" * 400))
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(tmp_path / "history.db", "r+b") as db:
        db.seek(4096 * 3)
        db.write(os.urandom(4096 * 6))
    h.run_until(utc("03:30"))
    assert len(moved(tmp_path)) == 1
    assert started(h, "b") == 1
    (fresh,) = h.firings("b")
    assert fresh.firing.state == "done"
    assert "no longer pending" not in caplog.text
