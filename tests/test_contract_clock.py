"""The Clock and Waker contracts, one suite run against every implementation: the real
SystemClock with the real Waker, and testing.FakeClock with testing.FakeWaker.

Real time is kept short (sub-second deadlines); the fake pair moves virtual time only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.clock import Clock, SystemClock
from smartcron.daemon.wakeup import Sleeper, Waker
from smartcron.testing import FakeClock, FakeWaker

SHORT = timedelta(milliseconds=200)


@dataclass
class Pair:
    clock: Clock
    waker: Sleeper


@pytest.fixture(params=["system", "fake"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if request.param == "system":
        clock = SystemClock()
        waker = Waker(clock)
        yield Pair(clock, waker)
        waker.close()
    else:
        fake = FakeClock(datetime(2026, 2, 10, 1, 0, tzinfo=UTC))
        yield Pair(fake, FakeWaker(fake))


def test_now_is_aware_utc(pair):
    now = pair.clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_sleeping_reaches_the_instant_and_moves_monotonic_time_as_much(pair):
    clock = pair.clock
    start, mono = clock.now(), clock.monotonic()
    clock.sleep_until(start + SHORT)
    assert clock.now() >= start + SHORT
    assert clock.monotonic() - mono >= SHORT.total_seconds() * 0.9


def test_sleeping_until_a_past_instant_returns_at_once(pair):
    before = time.monotonic()
    pair.clock.sleep_until(pair.clock.now() - timedelta(hours=1))
    assert time.monotonic() - before < 0.1


def test_a_set_wake_event_cuts_a_sleep_short_in_real_time(pair):
    wake = threading.Event()
    wake.set()
    before = time.monotonic()
    pair.clock.sleep_until(pair.clock.now() + timedelta(hours=1), wake)
    assert time.monotonic() - before < 0.5


def test_boot_id_is_stable_and_not_empty(pair):
    assert pair.clock.boot_id() and pair.clock.boot_id() == pair.clock.boot_id()


def test_a_file_written_now_is_stamped_now(pair, tmp_path):
    time.sleep(0.02)  # the kernel stamps files with a coarse clock
    path = tmp_path / "f"
    path.write_text("x")
    stamped = pair.clock.file_time(path.stat().st_mtime_ns)
    assert abs((stamped - pair.clock.now()).total_seconds()) < 2


def test_wait_returns_timer_at_the_deadline(pair):
    deadline = pair.clock.now() + SHORT
    assert "timer" in pair.waker.wait(deadline)
    assert pair.clock.now() >= deadline - timedelta(milliseconds=20)  # timerfd: not before


def test_a_notify_before_the_wait_wakes_it_at_once(pair):
    start = pair.clock.now()
    pair.waker.notify()
    assert "notify" in pair.waker.wait(start + timedelta(hours=1))
    assert pair.clock.now() - start < timedelta(seconds=1)


def test_a_change_in_a_watched_directory_wakes_the_wait_with_files(pair, tmp_path: Path):
    if not pair.waker.watches_files:
        pytest.skip("this Waker has no inotify here")
    pair.waker.watch([tmp_path])
    (tmp_path / "crontab").write_text("* * * * * true\n")
    start = pair.clock.now()
    reasons = pair.waker.wait(start + timedelta(hours=1))
    assert "files" in reasons
    assert pair.clock.now() - start < timedelta(seconds=1)


def test_the_fake_waker_stops_a_loop_at_its_until():
    clock = FakeClock(datetime(2026, 2, 10, 1, 0, tzinfo=UTC))
    waker, stopped = FakeWaker(clock), []
    until = clock.now() + timedelta(minutes=5)
    waker.stop_at(until, lambda: stopped.append(clock.now()))
    waker.wait(clock.now() + timedelta(minutes=2))
    assert stopped == []
    waker.wait(clock.now() + timedelta(minutes=10))
    assert stopped == [until] and clock.now() == until
