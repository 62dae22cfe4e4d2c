"""smartcron.ai.jobstats: a job's past (counts per hour and weekday of the start), the
same from the reference `job_stats`, the running-total `JobRecord` and both readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.ai import jobstats
from smartcron.ai.jobstats import (
    NO_STATS,
    HistoryStats,
    JobRecord,
    MemoryStats,
    RunOutcome,
    job_stats,
)
from smartcron.store.history import HistoryStore
from smartcron.store.runrecords import RunEnd, RunStart

T = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Saturday, the eve of Paris' DST change
PARIS = ZoneInfo("Europe/Paris")


def run(start: datetime, ok: bool = True, minutes: float = 10, late: float = 0) -> RunOutcome:
    return RunOutcome(
        ended=start + timedelta(minutes=minutes),
        ok=ok,
        runtime_s=60 * minutes,
        started=start,
        nominal=start - timedelta(minutes=late),
        cpu_s=30 * minutes,
    )


def test_counts_are_by_local_start_hour_and_weekday() -> None:
    runs = [
        run(T.replace(hour=22, minute=55), ok=False, minutes=20),  # starts Sat 23:55 Paris
        run(T + timedelta(days=1, hours=-1)),  # Sun 11:00 UTC = 13:00 Paris (summer time)
    ]
    stats = job_stats(runs, T + timedelta(days=2), tz=PARIS)
    assert (stats.total_runs, stats.total_ok) == (2, 1)
    assert stats.hour_runs[23] == 1 and stats.hour_ok[23] == 0
    assert stats.hour_runs[13] == 1 and stats.hour_ok[13] == 1  # 11:00 UTC
    assert stats.weekday_runs == (0, 0, 0, 0, 0, 1, 1) and stats.weekday_ok[6] == 1
    assert stats.mean_cpu_s == pytest.approx((600 + 300) / 2)


def test_a_start_five_minutes_late_or_more_is_off_nominal() -> None:
    runs = [run(T + timedelta(hours=k), late=late) for k, late in enumerate((0, 4.9, 5, 90))]
    runs.append(RunOutcome(ended=T + timedelta(hours=9), ok=True, runtime_s=1.0))  # unknown
    assert job_stats(runs, T + timedelta(days=1)).off_nominal_runs == 2


def test_counts_cover_the_last_lookback_runs_and_the_record_the_last_ten() -> None:
    runs = [run(T + timedelta(hours=k), ok=k >= 1990) for k in range(2000)]
    stats = job_stats(runs, T + timedelta(days=1000))
    assert (stats.runs, stats.success_rate) == (10, 1.0)
    assert (stats.total_runs, stats.total_ok) == (jobstats.LOOKBACK_RUNS, 10)


def test_a_job_without_runs_before_the_instant_has_no_stats() -> None:
    assert job_stats([run(T)], T) == NO_STATS
    assert MemoryStats().stats("nobody", T) == NO_STATS


outcomes = st.lists(
    st.tuples(
        st.integers(0, 60 * 24 * 9),  # start, minutes after T - 2 days
        st.integers(0, 200),  # runtime, minutes: runs end out of start order
        st.booleans(),
        st.sampled_from([0, 3, 5, 30]),  # minutes late
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(outcomes, st.lists(st.integers(0, 60 * 24 * 10), min_size=1, max_size=8))
def test_the_running_totals_equal_the_reference(
    drawn: list[tuple[int, int, bool, int]], asked: list[int]
) -> None:
    base = T - timedelta(days=2)
    runs = [run(base + timedelta(minutes=s), ok, m, late) for s, m, ok, late in drawn]
    record, memory = JobRecord(PARIS), MemoryStats()
    for outcome in runs:  # in start order, not end order: inserted where they belong
        record.add(outcome)
        memory.add("job", outcome)
    ordered = sorted(runs, key=lambda o: o.ended)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobstats, "LOOKBACK_RUNS", 7)  # small, so the window slides
        for minute in asked:
            at = base + timedelta(minutes=minute)
            expected = job_stats(ordered, at, tz=PARIS, lookback=7)
            assert record.stats(at) == expected
            assert memory.stats("job", at, PARIS) == expected
            assert record.stats(at) == expected  # memoised: the same answer again


def test_a_record_keeps_its_newest_runs_and_still_answers_now_exactly() -> None:
    runs = [run(T + timedelta(hours=k), ok=k % 3 > 0) for k in range(3000)]
    record = JobRecord(UTC, keep=1200)
    for outcome in runs:
        record.add(outcome)
    assert 1200 <= len(record.outcomes) <= 1200 + jobstats.LOOKBACK_RUNS // 2
    now = T + timedelta(days=200)
    assert record.stats(now) == job_stats(runs, now)


def _start(store: HistoryStore, at: datetime, nominal: datetime) -> int:
    start = RunStart(
        job_id="job", source="crontab", user="u", command="true", started=at, scheduled=nominal
    )
    return store.record_start(start)


def _end(store: HistoryStore, run_id: int, ended: datetime, ok: bool) -> None:
    end = RunEnd(
        status="ok" if ok else "failed",
        ended=ended,
        exit_code=0 if ok else 1,
        runtime_s=600.0,
        cpu_s=120.0,
    )
    store.record_end(run_id, end)


def test_history_stats_read_start_nominal_cpu_and_only_what_is_new(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.db")
    reader = HistoryStats(store)
    for k in range(5):
        at = T + timedelta(hours=k)
        _end(
            store, _start(store, at + timedelta(minutes=7 * k), at), at + timedelta(hours=1), k > 0
        )
    running = _start(store, T + timedelta(hours=6), T + timedelta(hours=6))
    other = RunStart(job_id="other", source="c", user="u", command="x", started=T)
    _end(store, store.record_start(other), T + timedelta(minutes=1), False)
    later = T + timedelta(days=1)
    stats = reader.stats("job", later, PARIS)
    assert (stats.total_runs, stats.total_ok, stats.off_nominal_runs) == (5, 4, 4)
    assert stats.mean_cpu_s == 120.0 and stats.hour_runs[13] == 1  # 12:00 UTC = 13:00 Paris
    _end(store, running, T + timedelta(hours=7), False)  # the run it saw going ends
    _end(store, _start(store, T + timedelta(hours=8), T + timedelta(hours=8)), later, True)
    stats = reader.stats("job", later + timedelta(seconds=1), PARIS)
    assert (stats.total_runs, stats.total_ok, stats.last_ok) == (7, 5, True)
    fresh = HistoryStats(store).stats("job", later + timedelta(seconds=1), PARIS)
    assert fresh == stats  # the incremental reads add up to one full read
    store.close()


def test_history_stats_keep_their_record_while_the_store_is_unreadable(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "h.db")
    _end(store, _start(store, T, T), T + timedelta(minutes=5), True)
    reader = HistoryStats(store)
    before = reader.stats("job", T + timedelta(hours=1))
    store.close()
    assert before.total_runs == 1
    assert reader.stats("job", T + timedelta(hours=1)) == before


def test_the_advisor_still_exports_the_readers() -> None:
    from smartcron.ai import advisor

    assert advisor.MemoryStats is MemoryStats and advisor.HistoryStats is HistoryStats
