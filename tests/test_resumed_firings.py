"""Firings reloaded after a restart keep their earliest start (issue 16 follow-up): the
history stores a firing's next evaluation, not its `not_before`, so a clock window's
opening and a jitter= offset are computed again from the job's spec when the reloaded
firing is evaluated. Restarted before the opening, then a clock step (the daemon looks
at every open firing again at once): neither job starts early.

The daemon on the fake clock (tests/harness.py): Europe/Berlin, 02:00 CET is 01:00Z."""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

from smartcron.smart.jitter import jitter_offset
from tests.harness import make, utc

TAB = (
    "#@smart name=win window=03:00-05:00\n0 2 * * * win\n"  # opens 03:00 CET, 02:00Z
    "#@smart name=spread window=2h jitter=90m\n0 2 * * * spread\n"
)
JITTER = timedelta(minutes=90)


def _host_for(job_id: str) -> str:
    """A machine id giving `spread` an offset of 40 to 80 minutes (the test's clock step
    lands before it, the window's end after it)."""
    for n in range(1000):
        offset = jitter_offset(JITTER, job_id, f"host-{n}")
        if timedelta(minutes=40) <= offset < timedelta(minutes=80):
            return f"host-{n}"
    raise AssertionError("no host key found")  # pragma: no cover - 1 in 2 fits


def test_a_restart_then_a_clock_step_starts_neither_before_its_opening_or_offset(tmp_path):
    first = make(tmp_path, TAB)
    host = _host_for(first.job("spread").id)
    offset = jitter_offset(JITTER, first.job("spread").id, host)
    first.daemon.engine.machine.host = host
    first.run_until(utc("01:05"))
    assert first.starts == []
    deferred = {f.firing.job_id: f.next_eval for f in first.store.open_firings()}
    assert deferred == {
        first.job("win").id: utc("02:00"),
        first.job("spread").id: utc("01:00") + offset,
    }
    # the daemon restarts on the same boot, then the wall clock steps 10 minutes forward
    again = make(tmp_path, TAB, clock=first.clock, history=first.history)
    again.daemon.engine.machine.host = host
    again.run_until(utc("01:10"))
    again.clock.set(again.clock.now() + timedelta(minutes=10))
    again.daemon.step()
    assert again.daemon.jumps  # seen as a clock step: every open firing looked at again
    again.run_until(utc("04:30"))
    spread_at = (utc("01:00") + offset).strftime("%H:%MZ")  # at the offset, to the second
    assert sorted(again.starts) == [("spread", spread_at), ("win", "02:00Z")]
    assert again.runner.started_at[[r.command for r in again.runner.requests].index("spread")] == (
        utc("01:00") + offset
    )
    reasons = {t[2] for t in again.trail("win") if t[1] == "defer"}
    assert "window opens at 03:00" in reasons
    assert any(r.startswith("jitter: this host starts it at") for r in
               {t[2] for t in again.trail("spread") if t[1] == "defer"})  # fmt: skip


def test_a_reloaded_firing_keeps_the_later_of_its_retry_backoff_and_its_opening():
    from smartcron.smart.firingtimes import restored
    from smartcron.smart.gate import Firing
    from smartcron.smart.smartspec import SmartSpec
    from tests.harness import BERLIN

    spec = SmartSpec(window_clock=(time(3, 0), time(5, 0)))  # 02:00Z-04:00Z in February
    bare = Firing(id=1, job_id="j", nominal=utc("01:00"), deadline=utc("04:00"))
    assert restored(bare, spec, BERLIN, "h").not_before == utc("02:00")
    backoff = replace(bare, attempt=1, not_before=utc("02:30"))
    assert restored(backoff, spec, BERLIN, "h") == backoff  # the retry's is later: kept
    early = replace(backoff, not_before=utc("01:30"))
    assert restored(early, spec, BERLIN, "h").not_before == utc("02:00")
    plain = SmartSpec(window=timedelta(hours=2))  # opens at the nominal time: nothing to add
    assert restored(bare, plain, BERLIN, "h") == bare
    assert restored(bare, None, BERLIN, "h") == bare
