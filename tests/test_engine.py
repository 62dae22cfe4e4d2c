"""The engine's edges: removed jobs, the advisor hook by mode, database trouble."""

from __future__ import annotations

from datetime import timedelta

from smartcron.smart.gate import Verdict
from smartcron.store.history import HistoryError
from tests.harness import battery, make, utc


class Later:
    """An advisor that always prefers half an hour later."""

    def __init__(self) -> None:
        self.calls = 0

    def advise(self, firing, spec, snap, now):
        self.calls += 1
        if now >= firing.nominal + timedelta(minutes=30):
            return None
        return Verdict(action="defer", until=now + timedelta(minutes=30), reason="cooler later",
                       model={"p_fail_now": 0.3})  # fmt: skip


def test_a_job_removed_mid_window_is_missed_at_its_deadline_not_before(tmp_path):
    crontab = "#@smart window=1h min_battery=30\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, battery())
    h.run_until(utc("01:10"))
    assert len(h.firings("backup")) == 1
    (tmp_path / "crontab").write_text("0 5 * * * other\n")
    h.daemon.reload()
    h.run_until(utc("01:30"))
    assert h.store.firings()[0].firing.state == "pending"
    h.run_until(utc("02:30"))
    assert h.store.firings()[0].firing.state == "missed"
    assert h.daemon.engine.next_eval() is None


def test_the_advisor_is_used_in_smart_mode_only_and_its_outputs_are_recorded(tmp_path):
    crontab = "#@smart window=2h\n0 2 * * * backup\n"
    later = Later()
    h = make(tmp_path / "smart", crontab, advisor=later)
    assert h.daemon.mode == "smart"
    h.run_until(utc("02:00"))
    assert h.starts == [("backup", "01:30Z")]
    (stored,) = h.firings("backup")
    first = h.store.decisions(stored.firing.id)[0]  # type: ignore[arg-type]
    assert (first.verdict, first.until, first.model) == ("defer", utc("01:30"), {"p_fail_now": 0.3})
    legacy = make(tmp_path / "legacy", crontab, advisor=Later(), mode="legacy")
    legacy.run_until(utc("02:00"))
    assert legacy.daemon.mode == "legacy" and legacy.starts == [("backup", "01:00Z")]


def test_a_database_failure_never_stops_a_smart_job(tmp_path, monkeypatch):
    h = make(tmp_path, "#@smart\n0 2 * * * backup\n")

    def broken(*args, **kwargs):
        raise HistoryError("disk full")

    monkeypatch.setattr(h.daemon.engine.store, "create", broken)
    monkeypatch.setattr(h.daemon.engine.store, "record", broken)
    h.run_until(utc("01:05"))
    assert h.starts == [("backup", "01:00Z")]


def test_a_deferred_firing_sleeps_until_its_next_evaluation(tmp_path):
    h = make(tmp_path, "#@smart min_battery=30\n0 2 * * * backup\n", battery())
    h.run_until(utc("01:00"))
    assert h.daemon.next_wake() == utc("01:01")
    h.clock.advance(timedelta(seconds=20))
    h.daemon.step()  # an early wake-up (a signal, say) evaluates nothing
    assert len(h.trail("backup")) == 1


def test_the_firing_store_creates_once_and_moves_only_from_the_expected_state():
    from dataclasses import replace

    from smartcron.smart.firings import FiringStore
    from smartcron.smart.gate import Firing
    from smartcron.store.history import HistoryStore

    store = FiringStore(HistoryStore.open(":memory:"))
    new = Firing(id=None, job_id="j", nominal=utc("01:00"), deadline=utc("02:00"))
    first = store.create(new, utc("01:00"))
    again = store.create(new, utc("01:05"))
    assert first.firing.id == again.firing.id and again.created == utc("01:00")
    running = replace(first.firing, state="running", attempt=1)
    fields = {"verdict": "run", "reason": "constraints hold", "state": "running"}
    assert store.record(running, utc("01:01"), **fields, expect="pending")
    assert not store.record(running, utc("01:02"), **fields, expect="pending")  # twice: refused
    assert [d.at for d in store.decisions(first.firing.id)] == [utc("01:01")]  # type: ignore[arg-type]
    (stored,) = store.open_firings()
    assert (stored.firing.state, stored.firing.attempt) == ("running", 1)


def test_a_minutes_smart_jobs_start_in_crontab_order(tmp_path):
    """As the daemon starts a minute's plain lines: in file order, not by job id or name."""
    crontab = "".join(
        f"#@smart name={name}\n0 2 * * * {name}\n" for name in ("zeta", "alpha", "mid")
    )
    h = make(tmp_path, crontab)
    h.run_until(utc("01:05"))
    assert h.starts == [("zeta", "01:00Z"), ("alpha", "01:00Z"), ("mid", "01:00Z")]
