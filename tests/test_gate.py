"""The gate's pure functions: windows, constraints, the evaluate pipeline, admission.

Zone pinned to Europe/Berlin; 2026-03-29 CET -> CEST at 02:00 local (01:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartcron.smart.gate import (
    Firing,
    Verdict,
    admit,
    constraint_failures,
    deadline_for,
    duration_text,
    evaluate,
    retry_at,
    window_for,
)
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 2, 10, 1, 0, tzinfo=BERLIN)  # 00:00 UTC


def spec(**keys: object) -> SmartSpec:
    keys.setdefault("window", timedelta(hours=2))
    return SmartSpec(**keys)  # type: ignore[arg-type]


def firing(**changes: object) -> Firing:
    values: dict[str, object] = {
        "id": 1,
        "job_id": "job",
        "nominal": T0,
        "deadline": T0 + timedelta(hours=2),
    }
    values.update(changes)
    return Firing(**values)  # type: ignore[arg-type]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


# ------------------------------------------------------------------ windows


def test_a_duration_window_ends_that_long_after_the_nominal_time():
    assert deadline_for(spec(window=timedelta(minutes=90)), T0, BERLIN) == T0 + timedelta(
        minutes=90
    )
    assert window_for(spec(), T0, BERLIN)[0] == T0


@pytest.mark.parametrize(
    ("clock", "nominal", "opens", "deadline"),
    [
        # contains the nominal time: opens at once, ends today
        ((time(1), time(3)), "2026-02-10T01:30", "2026-02-10T01:30", "2026-02-10T03:00"),
        # before the window: it opens later today
        ((time(1), time(3)), "2026-02-10T00:15", "2026-02-10T01:00", "2026-02-10T03:00"),
        # after it: tomorrow's window
        ((time(1), time(3)), "2026-02-10T03:00", "2026-02-11T01:00", "2026-02-11T03:00"),
        # wrapping midnight: inside, before midnight
        ((time(22), time(6)), "2026-02-10T23:00", "2026-02-10T23:00", "2026-02-11T06:00"),
        # wrapping midnight: inside, after midnight (the window opened yesterday)
        ((time(22), time(6)), "2026-02-10T03:00", "2026-02-10T03:00", "2026-02-10T06:00"),
        # wrapping midnight: between windows
        ((time(22), time(6)), "2026-02-10T12:00", "2026-02-10T22:00", "2026-02-11T06:00"),
    ],
)
def test_a_clock_window_is_the_one_containing_or_following_the_nominal_time(
    clock, nominal, opens, deadline
):
    window = spec(window=None, window_clock=clock)
    start, end = window_for(window, local(nominal), BERLIN)
    assert (start, end) == (local(opens), local(deadline))
    assert deadline_for(window, local(nominal), BERLIN) == local(deadline)


def test_a_clock_window_across_the_spring_forward_gap_ends_on_the_new_offset():
    # 01:00-04:00 on 2026-03-29 lasts two real hours: 02:00-02:59 never exists.
    window = spec(window=None, window_clock=(time(1), time(4)))
    start, end = window_for(window, local("2026-03-29T01:00"), BERLIN)
    assert end.astimezone(UTC).isoformat() == "2026-03-29T02:00:00+00:00"
    assert (end - start) == timedelta(hours=2)


# ------------------------------------------------------------------ constraints


def snap(**changes: object):
    return sample_snapshot(T0, **changes)


def test_each_failed_constraint_is_one_plain_words_reason_in_spec_order():
    strict = spec(
        max_load=1.5,
        max_cpu=50,
        max_ram=80,
        min_battery=30,
        ac=True,
        idle=timedelta(minutes=10),
        min_disk=10,
    )
    bad = snap(
        load5=2.4,
        cpu_percent=85.0,
        ram_percent=91.5,
        battery_percent=18.0,
        on_ac=False,
        idle_seconds=180.0,
        disk_free_percent=4.0,
    )
    assert constraint_failures(strict, bad) == (
        "load5 2.4 > max_load 1.5",
        "cpu 85% > max_cpu 50%",
        "ram 91.5% > max_ram 80%",
        "battery 18% < min_battery 30%",
        "on battery (ac=yes)",
        "user idle 3m < idle 10m",
        "disk free 4% < min_disk 10%",
    )
    assert constraint_failures(strict, snap()) == ()


def test_limits_are_inclusive():
    edge = snap(load5=1.5, battery_percent=30.0, idle_seconds=600.0)
    assert (
        constraint_failures(spec(max_load=1.5, min_battery=30, idle=timedelta(minutes=10)), edge)
        == ()
    )


def test_min_battery_is_ignored_without_a_battery():
    assert constraint_failures(spec(min_battery=30), snap(battery_percent=None)) == ()


@pytest.mark.parametrize(
    ("on_ac", "battery", "failure"),
    [
        (True, 50.0, None),
        (None, None, None),  # no battery: can only be on mains
        (False, 50.0, "on battery (ac=yes)"),
        (None, 50.0, "power source unknown (ac=yes)"),  # ac=yes needs evidence
    ],
)
def test_ac_yes_needs_mains_power(on_ac, battery, failure):
    got = constraint_failures(spec(ac=True), snap(on_ac=on_ac, battery_percent=battery))
    assert got == (() if failure is None else (failure,))


def test_unknown_readings_never_fail_a_constraint():
    unknown = snap(idle_seconds=None, disk_free_percent=None, battery_percent=None)
    assert constraint_failures(spec(idle=timedelta(minutes=5), min_disk=10), unknown) == ()


def test_min_disk_names_the_path_and_ignores_a_snapshot_of_another_path():
    home = spec(min_disk=10, disk_path="/home")
    assert constraint_failures(home, snap(disk_free_percent=4.0)) == ()  # measured "/"
    got = constraint_failures(home, snap(disk_free_percent=4.0, disk_path="/home"))
    assert got == ("disk free 4% on /home < min_disk 10%",)


def test_durations_read_like_the_annotation_grammar():
    assert [duration_text(timedelta(seconds=s)) for s in (0, 45, 600, 5400, 90061)] == [
        "0s",
        "45s",
        "10m",
        "1h30m",
        "1d1h1m1s",
    ]


# ------------------------------------------------------------------ evaluate


def test_constraints_holding_means_run():
    assert evaluate(firing(), spec(min_battery=30), snap(), T0) == Verdict(
        action="run", until=None, reason="constraints hold"
    )


def test_failing_constraints_defer_a_minute_at_most_up_to_the_deadline():
    low = snap(battery_percent=18.0)
    verdict = evaluate(firing(), spec(min_battery=30), low, T0)
    assert verdict.action == "defer"
    assert verdict.until == T0 + timedelta(minutes=1)
    assert verdict.reason == "battery 18% < min_battery 30%"
    assert verdict.failed == ("battery 18% < min_battery 30%",)
    near = T0 + timedelta(hours=2) - timedelta(seconds=20)
    assert evaluate(firing(), spec(min_battery=30), low, near).until == T0 + timedelta(hours=2)
    slow = evaluate(firing(), spec(min_battery=30), low, T0, recheck=timedelta(minutes=5))
    assert slow.until == T0 + timedelta(minutes=5)


def test_at_the_deadline_on_deadline_run_runs_despite_the_constraints():
    at = T0 + timedelta(hours=2)
    verdict = evaluate(firing(), spec(min_battery=30), snap(battery_percent=18.0), at)
    assert verdict.action == "run"
    assert verdict.reason == "deadline 03:00 reached: running despite battery 18% < min_battery 30%"


def test_at_the_deadline_on_deadline_skip_skips():
    at = T0 + timedelta(hours=2, seconds=5)
    verdict = evaluate(
        firing(), spec(min_battery=30, on_deadline="skip"), snap(battery_percent=18.0), at
    )
    assert verdict.action == "skip"
    assert verdict.reason == "deadline 03:00 reached: skipped: battery 18% < min_battery 30%"


def test_past_the_deadline_with_constraints_holding_runs_even_with_on_deadline_skip():
    at = T0 + timedelta(hours=3)
    assert evaluate(firing(), spec(on_deadline="skip"), snap(), at).action == "run"


def test_a_firing_waits_for_its_not_before_instant():
    opens = T0 + timedelta(minutes=30)
    verdict = evaluate(firing(not_before=opens), spec(), snap(), T0)
    assert (verdict.action, verdict.until, verdict.reason) == (
        "defer",
        opens,
        "window opens at 01:30",
    )
    retry = evaluate(firing(not_before=opens, attempt=1), spec(retry=2), snap(), T0)
    assert retry.reason == "retry 1 of 2 backs off until 01:30"
    assert evaluate(firing(not_before=opens), spec(), snap(), opens).action == "run"


class Advice:
    def __init__(self, verdict: Verdict | None = None, error: Exception | None = None) -> None:
        self.verdict, self.error, self.calls = verdict, error, 0

    def advise(self, firing, spec, snap, now):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.verdict


def test_the_advisor_may_defer_to_a_better_slot_but_never_past_the_deadline():
    later = Verdict(action="defer", until=T0 + timedelta(hours=5), reason="cooler at 04:00",
                    model={"p_fail": 0.4})  # fmt: skip
    verdict = evaluate(firing(), spec(), snap(), T0, advisor=Advice(later))
    assert verdict.action == "defer"
    assert verdict.until == T0 + timedelta(hours=2)
    assert verdict.model == {"p_fail": 0.4}


def test_the_advisor_can_never_skip_nor_break_a_firing():
    skip = Verdict(action="skip", until=None, reason="bad day", model={"p_fail": 0.9})
    verdict = evaluate(firing(), spec(), snap(), T0, advisor=Advice(skip))
    assert (verdict.action, verdict.model) == ("run", {"p_fail": 0.9})
    broken = evaluate(firing(), spec(), snap(), T0, advisor=Advice(error=RuntimeError("nan")))
    assert (broken.action, broken.reason) == ("run", "constraints hold (model failed: nan)")


def test_the_advisor_is_asked_only_when_the_rules_would_run_and_ai_is_on():
    advice = Advice(Verdict(action="defer", until=T0 + timedelta(minutes=30), reason="later"))
    evaluate(firing(), spec(min_battery=30), snap(battery_percent=10.0), T0, advisor=advice)
    evaluate(firing(), spec(ai=False), snap(), T0, advisor=advice)
    evaluate(firing(), spec(), snap(), T0 + timedelta(hours=2), advisor=advice)
    assert advice.calls == 0
    assert evaluate(firing(), spec(), snap(), T0, advisor=Advice(None)).reason == "constraints hold"


def test_retries_back_off_exponentially():
    every = spec(retry_delay=timedelta(minutes=5))
    assert [retry_at(every, n, T0) - T0 for n in (1, 2, 3)] == [
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=20),
    ]


# ------------------------------------------------------------------ admission


def ready(job: str, minute: int = 0, **keys: object) -> tuple[Firing, SmartSpec]:
    return firing(job_id=job, nominal=T0 + timedelta(minutes=minute)), spec(**keys)


def test_admission_starts_higher_priority_then_earlier_nominal_up_to_the_cap():
    items = [ready("low", 0), ready("high", 5, priority=10), ready("early", -5), ready("late", 9)]
    got = admit(items, running={}, running_total=0, max_concurrent=2)
    assert [f.job_id for f, _ in got.start] == ["high", "early"]
    assert [f.job_id for f, _ in got.wait] == ["low", "late"]
    assert got.reason_for(got.wait[0][0]) == "waiting: 2 smart job(s) running (max_concurrent 2)"
    full = admit(items[:1], running={"x": 1}, running_total=1, max_concurrent=1)
    assert (full.start, len(full.wait)) == ([], 1)


def test_admission_keeps_ties_in_the_order_given():
    """Same priority and nominal: the order given (the machine's: crontab order), not
    the job ids'."""
    items = [ready("zeta"), ready("alpha"), ready("mid")]
    got = admit(items, running={}, running_total=0, max_concurrent=2)
    assert [f.job_id for f, _ in got.start] == ["zeta", "alpha"]
    assert [f.job_id for f, _ in got.wait] == ["mid"]
    owners = {"zeta": "bob", "alpha": "alice", "mid": "alice"}
    fair = admit(items, running={}, running_total=0, max_concurrent=3, owners=owners)
    assert [f.job_id for f, _ in fair.start] == ["zeta", "alpha", "mid"]


@pytest.mark.parametrize(
    ("overlap", "started", "waiting", "skipped"),
    [("allow", 2, 0, 0), ("skip", 0, 0, 2), ("queue", 0, 2, 0)],
)
def test_overlap_against_a_run_still_going(overlap, started, waiting, skipped):
    items = [ready("job", 0, overlap=overlap), ready("job", 1, overlap=overlap)]
    got = admit(items, running={"job": 1}, running_total=1, max_concurrent=8)
    assert (len(got.start), len(got.wait), len(got.skip)) == (started, waiting, skipped)
    if skipped:
        assert got.skip[0][1] == "previous run still going (overlap=skip)"


def test_overlap_also_counts_a_run_started_in_the_same_round():
    items = [ready("job", 0, overlap="queue"), ready("job", 1, overlap="queue")]
    got = admit(items, running={}, running_total=0, max_concurrent=8)
    assert [f.nominal for f, _ in got.start] == [T0]
    assert got.reason_for(got.wait[0][0]) == "waiting for the previous run (overlap=queue)"
