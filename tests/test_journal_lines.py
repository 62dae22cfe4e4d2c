"""The daemon's journal: one INFO line per decision that changes when a smart job runs
(smart.journal), on the fake-clock harness. Europe/Berlin, CET: 02:00 local is 01:00Z."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from smartcron.smart.journal import late_text
from smartcron.testing import FakeOutcome
from tests.harness import battery, make, utc


def _lines(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f") {word} (" in r.getMessage()]


def test_a_deferral_is_logged_once_per_reason_then_its_late_start(tmp_path, caplog):
    h = make(tmp_path, "#@smart window=2h min_battery=30\n0 2 * * * backup\n", battery("01:40"))
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("02:00"))
    assert h.starts == [("backup", "01:40Z")]
    job = h.job("backup")
    label = job.label
    # 40 minutes re-planned every minute with the same reason: one line, not 40.
    assert _lines(caplog, "DEFER") == [
        f"({job.owner}) DEFER ({label} firing of 02:00) checked each minute to 04:00: "
        "battery 18% < min_battery 30%"
    ]
    assert _lines(caplog, "START") == [
        f"({job.owner}) START ({label} firing of 02:00) 40m00s late: constraints hold"
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if "DEFER" in r.getMessage())


def test_a_deferral_whose_reason_changes_is_logged_again(tmp_path, caplog):
    def script(now):  # 18% until 01:10, 10% until 01:20: figures alone are no new reason
        from smartcron.testing import sample_snapshot

        percent = 18.0 if now < utc("01:10") else 10.0
        if now >= utc("01:20"):
            return sample_snapshot(now, on_ac=True, load1=99.0, load5=99.0, load15=99.0)
        return sample_snapshot(now, battery_percent=percent, on_ac=False, charging=False)

    crontab = "#@smart window=1h min_battery=30 max_load=4\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, script)
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("01:40"))
    reasons = [line.split(": ", 1)[1] for line in _lines(caplog, "DEFER")]
    assert len(reasons) == 2
    assert reasons[0] == "battery 18% < min_battery 30%"
    assert reasons[1] == "load5 99 > max_load 4"


def test_a_forced_run_at_the_deadline_is_logged(tmp_path, caplog):
    h = make(tmp_path, "#@smart window=30m min_battery=30\n0 2 * * * backup\n", battery())
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("02:00"))
    assert h.starts == [("backup", "01:30Z")]
    job = h.job("backup")
    label = job.label
    assert _lines(caplog, "FORCED") == [
        f"({job.owner}) FORCED ({label} firing of 02:00) at its deadline: "
        "deadline 02:30 reached: running despite battery 18% < min_battery 30%"
    ]
    assert _lines(caplog, "START") == []  # the forced line says it all
    assert len(_lines(caplog, "DEFER")) == 1


def test_a_skip_at_the_deadline_is_logged_once(tmp_path, caplog):
    crontab = "#@smart window=30m min_battery=30 on_deadline=skip\n0 2 * * * backup\n"
    h = make(tmp_path, crontab, battery())
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("02:00"))
    job = h.job("backup")
    label = job.label
    assert _lines(caplog, "SKIP") == [
        f"({job.owner}) SKIP ({label} firing of 02:00): "
        "deadline 02:30 reached: skipped: battery 18% < min_battery 30%"
    ]


def test_a_planned_deferral_names_its_time_and_the_job_name(tmp_path, caplog):
    h = make(tmp_path, "#@smart window=03:00-04:00 name=nightly\n0 2 * * * backup\n")
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("03:00"))
    job = h.job("backup")
    label = job.label
    assert _lines(caplog, "DEFER") == [
        f"({job.owner}) DEFER (nightly {label} firing of 02:00) until 03:00: window opens at 03:00"
    ]


def test_a_job_run_on_time_gets_no_decision_line(tmp_path, caplog):
    h = make(tmp_path, "#@smart window=1h\n0 2 * * * backup\n")
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("01:10"))
    assert h.starts == [("backup", "01:00Z")]
    assert [w for w in ("DEFER", "START", "SKIP", "FORCED") if _lines(caplog, w)] == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45, "45s"), (192, "3m12s"), (7500, "2h05m")]
)
def test_late_text_reads_like_an_operator_writes_it(seconds, text):
    assert late_text(timedelta(seconds=seconds)) == text


class _Planner:
    """An advisor that plans every firing 20 minutes late, re-planned each minute."""

    def advise(self, firing, spec, snap, now):
        from smartcron.smart.gate import Verdict

        target = firing.nominal + timedelta(minutes=20)
        if now >= target:
            return None
        left = (target - now).total_seconds() / 60
        reason = f"model: {left:.0f} min to a quieter slot, p(fail) 0.{int(left):02d}"
        return Verdict(action="defer", until=target, reason=reason)


def test_a_model_deferral_is_logged_once_with_its_planned_time(tmp_path, caplog):
    h = make(tmp_path, "#@smart window=1h\n0 2 * * * backup\n", advisor=_Planner())
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("01:30"))
    assert h.starts == [("backup", "01:20Z")]
    job = h.job("backup")
    assert _lines(caplog, "DEFER") == [
        f"({job.owner}) DEFER ({job.label} firing of 02:00) until 02:20: "
        "model: 20 min to a quieter slot, p(fail) 0.20"
    ]
    assert len(_lines(caplog, "START")) == 1 and "20m00s late" in _lines(caplog, "START")[0]


def test_a_firing_waiting_for_capacity_is_logged_once_then_started_late(tmp_path, caplog):
    crontab = "#@smart window=1h\n0 2 * * * first\n#@smart window=1h\n0 2 * * * second\n"
    outcomes = {"first": [FakeOutcome(duration_s=600)], "second": [FakeOutcome(duration_s=600)]}
    h = make(tmp_path, crontab, outcomes=outcomes, max_concurrent=1)
    with caplog.at_level(logging.INFO, logger="smartcron"):
        h.run_until(utc("01:30"))
    assert [at for _, at in h.starts] == ["01:00Z", "01:10Z"]
    waited = h.job(h.runner.requests[1].command)
    (wait,) = _lines(caplog, "WAIT")
    assert wait.startswith(f"({waited.owner}) WAIT ({waited.label} firing of 02:00): ")
    assert _lines(caplog, "START") == [
        f"({waited.owner}) START ({waited.label} firing of 02:00) 10m00s late: constraints hold"
    ]
    assert len(h.daemon.engine.journal) == 0  # nothing kept for closed firings


def test_a_planned_deferral_moved_by_half_an_hour_is_logged_again(caplog):
    from datetime import datetime

    from smartcron.smart.gate import Firing
    from smartcron.smart.journal import Journal
    from smartcron.smart.machine import Effect
    from tests.harness import BERLIN

    firing = Firing(id=1, job_id="j", nominal=utc("01:00"), deadline=utc("04:00"))

    def defer(now: datetime, until: datetime) -> None:
        journal.effect(Effect(kind="defer", firing=firing, job=None, verdict="defer",
                              reason="model: a quieter slot", until=until), now)  # fmt: skip

    journal = Journal(BERLIN)
    with caplog.at_level(logging.INFO, logger="smartcron"):
        defer(utc("01:00"), utc("02:00"))
        defer(utc("01:01"), utc("02:10"))  # moved 10 minutes: no new line
        defer(utc("01:02"), utc("02:31"))  # 31 minutes from the line logged: a new one
    assert [line.split(") ", 2)[2] for line in _lines(caplog, "DEFER")] == [
        "until 03:00: model: a quieter slot",
        "until 03:31: model: a quieter slot",
    ]
    assert len(journal) == 1
    journal.retain({(firing.job_id, firing.nominal)})
    assert len(journal) == 1
    journal.retain(set())  # closed without an Effect here (a cancel): forgotten
    assert len(journal) == 0
