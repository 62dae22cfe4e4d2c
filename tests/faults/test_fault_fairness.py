"""Issue 11, finding 2: one user's smart jobs must not starve everyone else's.

The cap (max_concurrent) is shared round-robin between owners, and it only ever defers:
a firing that reaches its deadline with on_deadline=run starts even when the cap is full
(on_deadline=skip is skipped there). Pure gate.admit tests, then the daemon in system
mode on a fake clock with two owners in /etc/cron.d-style files (root and daemon:
FakeRunner switches no uid).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.run.executor import RunRequest
from smartcron.run.runcontext import RunContext, RunSettings
from smartcron.smart.gate import Firing, admit
from smartcron.smart.smartspec import SmartSpec
from smartcron.store.history import HistoryStore
from smartcron.testing import (
    FakeClock,
    FakeOutcome,
    FakeRunner,
    RecordingMailer,
    ScriptedMonitor,
    sample_snapshot,
)
from tests.harness import BERLIN, Harness, utc
from tests.userconfig import system_config
from tests.users import NOT_ROOT, is_root

T0 = datetime(2026, 2, 10, 1, 0, tzinfo=BERLIN)
OWNERS = {"a1": "alice", "a2": "alice", "a3": "alice", "a4": "alice", "b1": "bob", "b2": "bob"}


def item(job: str, minute: int = 0, window: int = 60, **keys: object) -> tuple[Firing, SmartSpec]:
    nominal = T0 + timedelta(minutes=minute)
    firing = Firing(
        id=None, job_id=job, nominal=nominal, deadline=nominal + timedelta(minutes=window)
    )
    return firing, SmartSpec(window=timedelta(minutes=window), **keys)  # type: ignore[arg-type]


def ids(pairs: list[tuple[Firing, object]]) -> list[str]:
    return [firing.job_id for firing, _ in pairs]


# ------------------------------------------------------------------ gate.admit, pure


def test_free_slots_go_round_robin_between_owners():
    ready = [item("a1"), item("a2", 1), item("a3", 2), item("b1", 5), item("b2", 6)]
    got = admit(ready, {}, 0, 4, owners=OWNERS, now=T0)
    assert ids(got.start) == ["a1", "b1", "a2", "b2"]
    assert ids(got.wait) == ["a3"]
    assert got.reason_for(got.wait[0][0]) == "waiting: 4 smart job(s) running (max_concurrent 4)"


def test_an_owner_at_its_share_gets_no_slot_while_another_owner_waits():
    # alice holds 3 of 4 slots (more than ceil(4/2) = 2); one is free: bob's, although
    # alice's waiting firing has the higher priority and the earlier nominal time
    running = {"a1": 1, "a2": 1, "a3": 1}
    ready = [item("a4", 0, priority=9), item("b1", 5)]
    got = admit(ready, running, 3, 4, owners=OWNERS, now=T0 + timedelta(minutes=6))
    assert ids(got.start) == ["b1"]
    assert ids(got.wait) == ["a4"]
    # alone, alice may take every slot: the share only binds while others wait
    alone = admit([item("a4")], running, 3, 4, owners=OWNERS, now=T0)
    assert ids(alone.start) == ["a4"]


def test_a_slot_nobody_below_the_share_can_use_is_not_left_idle():
    # 3 owners, cap 8: share 3. bob (3) and alice (3) wait; carol (1) has nothing ready.
    owners = {**OWNERS, "c1": "carol"}
    running = {"a1": 3, "b1": 3, "c1": 1}
    ready = [item("a2"), item("b2", 1)]
    got = admit(ready, running, 7, 8, owners=owners, now=T0)
    assert ids(got.start) == ["a2"]  # tie on slots held: the earlier firing
    assert ids(got.wait) == ["b2"]


def test_priority_orders_the_firings_within_an_owner():
    ready = [item("a1", 0), item("a2", 3, priority=5), item("b1", 9)]
    got = admit(ready, {}, 0, 2, owners=OWNERS, now=T0)
    assert ids(got.start) == ["a2", "b1"]
    assert ids(got.wait) == ["a1"]


def test_at_its_deadline_a_firing_starts_over_the_full_cap_or_is_skipped():
    running = {"a1": 8}
    late = T0 + timedelta(minutes=3)
    ready = [
        item("b1", 0, window=3),  # on_deadline=run: starts although 8 of 8 run
        item("b2", 0, window=3, on_deadline="skip"),  # skipped at the deadline
        item("a2", 0, window=60),  # not at its deadline: waits for a slot
    ]
    got = admit(ready, running, 8, 8, owners=OWNERS, now=late)
    assert ids(got.start) == ["b1"]
    assert got.reason_for(got.start[0][0]) == (
        "deadline 01:03 reached: started although 8 smart job(s) running (max_concurrent 8)"
    )
    assert [(f.job_id, why) for f, why in got.skip] == [
        ("b2", "deadline 01:03 reached: skipped: 9 smart job(s) running (max_concurrent 8)")
    ]
    assert ids(got.wait) == ["a2"]
    assert got.reason_for(got.wait[0][0]) == "waiting: 9 smart job(s) running (max_concurrent 8)"


def test_the_deadline_does_not_override_overlap():
    running = {"b1": 1}
    ready = [item("b1", 0, window=3, overlap="queue"), item("b2", 0, window=3, overlap="skip")]
    running["b2"] = 1
    got = admit(ready, running, 2, 2, owners=OWNERS, now=T0 + timedelta(minutes=5))
    assert ids(got.wait) == ["b1"]
    assert got.reason_for(got.wait[0][0]) == "waiting for the previous run (overlap=queue)"
    assert [(f.job_id, why) for f, why in got.skip] == [
        ("b2", "previous run still going (overlap=skip)")
    ]
    assert got.start == []


# ------------------------------------------------------------------ the daemon, system mode

# 01:49:30 CET. alice's 8 long jobs start at 01:50 and fill max_concurrent 8.
START = utc("00:49") + timedelta(seconds=30)
HOUR = FakeOutcome(duration_s=3600)


def system_harness(tmp_path: Path, alice: str, bob: str, outcomes: dict) -> Harness:
    """A system-mode daemon on two /etc/cron.d-style files: alice's jobs run as root,
    bob's as daemon (FakeRunner: no uid switch, so existing users serve)."""
    cfg = system_config(tmp_path, max_concurrent=8)
    cron_d = tmp_path / "cron.d"
    for name, text in (("alice", alice), ("bob", bob)):
        (cron_d / name).write_text(text)
        (cron_d / name).chmod(0o644)  # cron's rule: root's, not group/other writable
    clock = FakeClock(START)
    plan = {cmd: [outcome] for cmd, outcome in outcomes.items()}

    def respond(request: RunRequest) -> FakeOutcome:
        return plan.get(request.command, [FakeOutcome()])[0]

    runner = FakeRunner(respond, auto=False, clock=clock)
    history = HistoryStore.open(tmp_path / "history.db", clock=clock)
    monitor = ScriptedMonitor(lambda now: sample_snapshot(now))
    mailer = RecordingMailer()
    run = RunContext(
        runner=runner, mailer=mailer, history=history, clock=clock, settings=RunSettings.of(cfg)
    )
    daemon = Daemon(cfg, run, zone=BERLIN, smart=SmartParts(monitor=monitor))
    daemon.reload(force=True)
    assert {job.owner for job in daemon.db.jobs if job.smart} == {"root", "daemon"}
    return Harness(daemon, clock, runner, mailer, history, monitor, plan)


def alice_jobs(count: int = 8) -> str:
    return "".join(f"#@smart window=1h\n50 1 * * * root a{n}\n" for n in range(1, count + 1))


@pytest.mark.skipif(not is_root(), reason=NOT_ROOT)
def test_another_users_firing_starts_at_its_deadline_though_one_user_fills_the_cap(tmp_path):
    bob = (
        "#@smart window=3m priority=1\n0 2 * * * daemon b1\n"  # admitted first
        "#@smart window=3m on_deadline=skip\n0 2 * * * daemon b2\n"
    )
    outcomes = {f"a{n}": HOUR for n in range(1, 9)} | {"b1": HOUR}
    h = system_harness(tmp_path, alice_jobs(), bob, outcomes)
    h.run_until(utc("01:10"))
    assert sorted(h.starts[:8]) == [(f"a{n}", "00:50Z") for n in range(1, 9)]
    assert h.starts[8:] == [("b1", "01:03Z")]
    b1 = h.trail("b1")
    assert [verdict for _, verdict, _ in b1] == ["defer", "run"]
    assert b1[0] == ("01:00Z", "defer", "waiting: 8 smart job(s) running (max_concurrent 8)")
    assert b1[1][2] == (
        "constraints hold; deadline 02:03 reached:"
        " started although 8 smart job(s) running (max_concurrent 8)"
    )
    (b2,) = h.firings("b2")
    assert b2.firing.state == "skipped"
    assert h.trail("b2")[-1] == (
        "01:03Z",
        "skip",
        "deadline 02:03 reached: skipped: 9 smart job(s) running (max_concurrent 8)",
    )


@pytest.mark.skipif(not is_root(), reason=NOT_ROOT)
def test_a_freed_slot_goes_to_the_owner_holding_fewer_not_to_the_higher_priority(tmp_path):
    # a1 ends at 02:01 local; alice's a9 (priority 9) and bob's b1 both wait for a slot
    alice = alice_jobs() + "#@smart window=3m priority=9\n0 2 * * * root a9\n"
    bob = "#@smart window=3m\n0 2 * * * daemon b1\n"
    outcomes = {f"a{n}": HOUR for n in range(2, 10)} | {"a1": FakeOutcome(duration_s=660)}
    outcomes["b1"] = HOUR
    h = system_harness(tmp_path, alice, bob, outcomes)
    h.run_until(utc("01:10"))
    later = [start for start in h.starts if start[1] != "00:50Z"]
    # bob's firing takes the freed slot; alice's starts at its deadline, over the cap
    assert later == [("b1", "01:01Z"), ("a9", "01:03Z")]
    assert len(h.runner.running) == 9
