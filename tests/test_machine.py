"""The firing state machine alone: no clock, no database, no runner (smartcron.smart.machine)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from smartcron.smart import gate
from smartcron.smart.machine import Machine, Wakeup
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot

T0 = datetime(2026, 2, 10, 1, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    id: str
    smart: SmartSpec
    owner: str = "alice"
    zone: tzinfo | None = None


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def wake(machine: Machine, at: datetime, *jobs: Job, load: float = 0.1, cap: int = 1) -> list:
    return machine.process(
        Wakeup(
            now=at,
            jobs={job.id: job for job in jobs},
            snapshot=lambda spec: sample_snapshot(at, load5=load),
            owners=lambda: {job.id: job.owner for job in jobs},
            max_concurrent=cap,
        )
    )


def opened(machine: Machine, job: Job, at: datetime = T0) -> None:
    machine.open(machine.firing_for(job, at), at)


def test_a_firing_waiting_for_capacity_is_gated_again_when_the_slot_frees():
    spec = SmartSpec(window=timedelta(hours=2), max_load=1.0)
    a, b = Job("a", SmartSpec(window=timedelta(hours=2), max_load=1.0, priority=1)), Job("b", spec)
    machine = Machine(UTC)
    opened(machine, a)
    opened(machine, b)
    effects = wake(machine, T0, a, b)
    assert [(e.kind, e.firing.job_id) for e in effects] == [("start", "a"), ("wait", "b")]
    start = effects[0]
    assert start.firing.attempt == 1 and start.trigger == "smart"  # counted at the start
    done = machine.finished(a, start.firing, "ok", "exit 0 in 600 s", minutes(10))
    assert done.kind == "done" and machine.running == {}
    # the slot is free, but load5 is 3: b is deferred, not started over its constraints
    (again,) = wake(machine, minutes(10), a, b, load=3.0)
    assert (again.kind, again.reason) == ("defer", "load5 3 > max_load 1")
    (later,) = wake(machine, minutes(30), a, b)
    assert later.kind == "start"


def test_a_failed_run_retries_at_its_backoff_then_fails_when_none_is_left():
    job = Job("c", SmartSpec(window=timedelta(hours=1), retry=1, retry_delay=timedelta(minutes=5)))
    machine = Machine(UTC)
    opened(machine, job)
    (start,) = wake(machine, T0, job)
    retry = machine.finished(job, start.firing, "failed", "exit 1 in 60 s", minutes(1))
    assert (retry.kind, retry.next_eval) == ("retry", minutes(6))
    assert retry.reason == "exit 1 in 60 s; retry 1 of 1 at 01:06"
    assert wake(machine, minutes(3), job) == []  # not due yet
    (second,) = wake(machine, minutes(6), job)
    assert (second.kind, second.trigger, second.firing.attempt) == ("start", "retry", 2)
    failed = machine.finished(job, second.firing, "failed", "exit 1 in 60 s", minutes(7))
    assert (failed.kind, failed.reason) == ("failed", "exit 1 in 60 s; no retry left")
    assert machine.slots == {} and machine.running == {}


def test_a_start_the_driver_could_not_make_gives_its_slot_back():
    job = Job("d", SmartSpec(window=timedelta(hours=1)))
    machine = Machine(UTC)
    opened(machine, job)
    (start,) = wake(machine, T0, job)
    assert machine.running == {"d": 1}
    failed = machine.not_started(start, "could not start (see the log)")
    assert failed is not None and failed.fields()["state"] == "failed"
    assert machine.running == {}


def test_a_firing_found_running_after_a_restart_is_interrupted_not_run_again():
    job = Job("e", SmartSpec(window=timedelta(hours=1)))
    machine = Machine(UTC)
    firing = machine.firing_for(job, T0)
    effect = machine.resume(replace(firing, state="running", attempt=1), None, T0)
    assert effect is not None and effect.kind == "interrupted"
    assert machine.slots == {}


def test_skip_ahead_moves_a_deferral_whose_constraints_fail():
    job = Job("f", SmartSpec(window=timedelta(hours=1), max_load=1.0))
    machine = Machine(UTC, skip_ahead=lambda firing, spec, now: minutes(20))
    opened(machine, job)
    (defer,) = wake(machine, T0, job, load=3.0)
    assert defer.next_eval == minutes(20) and machine.next_eval() == minutes(20)


def test_the_gates_shortcut_answers_as_its_pipeline():
    """gate.evaluate answers the common case (constraints hold, window open, no model)
    without building the pipeline's case: the same Verdict as the pipeline's steps."""
    from smartcron.smart import gate

    class Defers:
        def advise(self, firing, spec, snap, now):
            return gate.Verdict(action="defer", until=now + timedelta(minutes=5), reason="m")

    t0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    for spec in (SmartSpec(), SmartSpec(max_load=1.0), SmartSpec(ai=False, max_load=1.0)):
        for load in (0.5, 2.0):
            snap = replace(sample_snapshot(t0), load5=load)
            fails = gate.constraint_failures(spec, snap)
            for minutes in (-5, 0, 30, 60, 90):
                now = t0 + timedelta(minutes=minutes)
                for nb in (None, t0 + timedelta(minutes=10)):
                    end = t0 + timedelta(hours=1)
                    f = gate.Firing(id=None, job_id="j", nominal=t0, deadline=end, not_before=nb)
                    for adv in (None, Defers()):
                        case = gate._Case(firing=f, spec=spec, snap=snap, now=now,
                                          recheck=gate.RECHECK, advisor=adv,
                                          failures=fails)  # fmt: skip
                        piped = next(v for step in gate.PIPELINE if (v := step(case)))
                        assert gate.evaluate(f, spec, snap, now, advisor=adv) == piped


def test_a_minutes_firings_are_evaluated_and_started_in_crontab_order():
    """The daemon starts a minute's plain lines in file order: the machine starts a
    minute's firings so, whatever the ids; the decide step sees them in that order too
    (the plan counts the starts decided before)."""
    spec = SmartSpec(window=timedelta(hours=1))
    jobs = [Job(name, spec) for name in ("zeta", "alpha", "mid")]  # crontab order
    seen: list[str] = []

    def decide(firing, spec, snap, now, **_):
        seen.append(firing.job_id)
        return gate.evaluate(firing, spec, snap, now)

    machine = Machine(UTC, decide=decide)
    for job in reversed(jobs):
        opened(machine, job)
    effects = wake(machine, T0, *jobs, cap=8)
    assert [(e.kind, e.firing.job_id) for e in effects] == [
        ("start", "zeta"),
        ("start", "alpha"),
        ("start", "mid"),
    ]
    assert seen == ["zeta", "alpha", "mid"]


def test_a_minutes_firings_go_earliest_deadline_first_then_in_crontab_order():
    """Among firings of one nominal the least slack is decided (and started) first: the
    plan counts the starts decided before, so the firing with the shorter window claims
    the room; equal deadlines keep crontab order."""
    hour, day, ten = timedelta(hours=1), timedelta(hours=24), timedelta(minutes=10)
    windows = {"long": day, "b": hour, "short": ten, "a": hour}  # the crontab's order
    jobs = [Job(name, SmartSpec(window=window)) for name, window in windows.items()]
    seen: list[str] = []

    def decide(firing, spec, snap, now, **_):
        seen.append(firing.job_id)
        return gate.evaluate(firing, spec, snap, now)

    machine = Machine(UTC, decide=decide)
    for job in jobs:
        opened(machine, job)
    opened(machine, Job("earlier", SmartSpec(window=day)), minutes(-1))
    effects = wake(machine, T0, *jobs, Job("earlier", SmartSpec(window=day)), cap=2)
    assert seen == ["earlier", "short", "b", "a", "long"]  # an earlier nominal still first
    assert [(e.kind, e.firing.job_id) for e in effects] == [
        ("start", "earlier"),
        ("start", "short"),
        ("wait", "b"),
        ("wait", "a"),
        ("wait", "long"),
    ]
