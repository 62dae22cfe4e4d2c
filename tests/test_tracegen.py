import gzip
import io
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from smartcron.sim.trace import load_trace, read_trace, write_rows
from smartcron.sim.tracegen import DEFAULT_START, KINDS, generate, main, write_csv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traces"


@pytest.fixture(scope="module")
def laptop() -> list[dict]:
    return list(generate("laptop", DEFAULT_START, 56, 1))


@pytest.fixture(scope="module")
def server() -> list[dict]:
    return list(generate("server", DEFAULT_START, 56, 1))


@pytest.fixture(scope="module")
def workstation() -> list[dict]:
    return list(generate("workstation", DEFAULT_START, 56, 1))


def test_the_same_seed_gives_the_same_rows_and_another_seed_others():
    def two_days(kind, seed):
        return list(generate(kind, DEFAULT_START, 2, seed))

    assert two_days("laptop", 3) == two_days("laptop", 3)
    assert two_days("laptop", 3) != two_days("laptop", 4)
    assert two_days("server", 3) == two_days("server", 3)
    assert two_days("server", 3) != two_days("server", 4)
    assert two_days("workstation", 3) == two_days("workstation", 3)
    assert two_days("workstation", 3) != two_days("workstation", 4)


def test_one_row_per_minute_from_the_start(laptop):
    assert len(laptop) == 56 * 1440
    assert laptop[0]["timestamp"] == DEFAULT_START
    assert DEFAULT_START.weekday() == 0
    assert laptop[-1]["timestamp"] == datetime(2026, 3, 1, 23, 59, tzinfo=UTC)


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_traces_are_exactly_what_the_generator_writes(kind):
    out = io.StringIO()
    write_rows(generate(kind, DEFAULT_START, 56, 1), out)
    shipped = gzip.decompress((FIXTURES / f"{kind}-8w.csv.gz").read_bytes()).decode()
    assert out.getvalue() == shipped, "regenerate: see fixtures/traces/README.md"


def test_laptop_user_is_active_mostly_in_weekday_work_hours(laptop):
    active = [r["timestamp"] for r in laptop if r["idle_seconds"] < 60]
    work = [t for t in active if t.weekday() < 5 and (9 <= t.hour < 12 or 13 <= t.hour < 18)]
    assert len(active) > 56 * 60  # an hour a day at least
    assert len(work) / len(active) > 0.7
    weekend = [t for t in active if t.weekday() >= 5]
    assert 0 < len(weekend) < 0.15 * len(active)

    # the lunch gap: 12:xx is much quieter than 11:xx
    def at_hour(hour):
        return sum(1 for t in active if t.weekday() < 5 and t.hour == hour)

    assert at_hour(12) < at_hour(11) / 2


def test_laptop_idle_time_grows_by_a_minute_a_minute_when_away(laptop):
    for prev, cur in pairwise(laptop):
        if cur["idle_seconds"] >= 60:
            assert cur["idle_seconds"] == prev["idle_seconds"] + 60


def test_laptop_battery_stays_in_range_and_never_rises_unplugged(laptop):
    assert all(0 <= r["battery_percent"] <= 100 for r in laptop)
    for prev, cur in pairwise(laptop):
        if not cur["on_ac"]:
            assert cur["battery_percent"] <= prev["battery_percent"]
            assert not cur["charging"]
    unplugged = sum(1 for r in laptop if not r["on_ac"])
    assert 0.1 < unplugged / len(laptop) < 0.6
    assert any(r["battery_percent"] < 30 for r in laptop)


def test_load5_is_a_smoothed_load1(laptop):
    def wiggle(key):
        return sum(abs(a[key] - b[key]) for a, b in pairwise(laptop))

    assert wiggle("load5") < wiggle("load1") / 2
    assert max(r["load1"] for r in laptop) > 3  # builds happen


def test_laptop_ram_and_disk_stay_plausible(laptop):
    assert all(5 <= r["ram_percent"] <= 98 for r in laptop)
    disk = [r["disk_free_percent"] for r in laptop]
    assert all(0 < d < 100 for d in disk)
    assert disk[-1] < disk[0]  # slowly filling


def test_server_has_no_battery_and_is_always_on_ac(server):
    assert all(r["battery_percent"] is None and r["on_ac"] for r in server)


def test_server_load_shows_the_backup_and_the_top_of_the_hour(server):
    def mean_load1(pick):
        values = [r["load1"] for r in server if pick(r["timestamp"])]
        return sum(values) / len(values)

    backup = mean_load1(lambda t: t.hour == 2 and t.minute < 40)
    before = mean_load1(lambda t: t.hour == 1)
    assert backup > 2 * before
    assert mean_load1(lambda t: t.minute == 1) > mean_load1(lambda t: t.minute == 30) + 1
    afternoon = mean_load1(lambda t: t.weekday() < 5 and 14 <= t.hour < 17 and t.minute > 5)
    night = mean_load1(lambda t: t.weekday() < 5 and 4 <= t.hour < 6 and t.minute > 5)
    assert afternoon > 2 * night


def test_workstation_is_on_mains_and_its_user_works_weekdays_in_sessions(workstation):
    assert all(r["battery_percent"] is None and r["on_ac"] for r in workstation)
    active = [r["timestamp"] for r in workstation if r["idle_seconds"] < 60]
    work = [t for t in active if t.weekday() < 5 and 9 <= t.hour < 18]
    evening = [t for t in active if t.weekday() < 5 and t.hour >= 19]
    weekend = [t for t in active if t.weekday() >= 5]
    assert len(active) > 56 * 120
    assert len(work) / len(active) > 0.6
    assert 0.05 < len(evening) / len(active) < 0.3
    assert 0 < len(weekend) < 0.2 * len(active)
    assert not any(t.hour < 7 for t in active)  # it is left on, alone, at night

    def at_hour(hour):
        return sum(1 for t in active if t.weekday() < 5 and t.hour == hour)

    assert at_hour(12) < 0.8 * at_hour(11)  # the lunch break
    # sessions, not a whole day at the desk: stretches away of 10 minutes or more
    away = sum(1 for a, b in pairwise(workstation) if a["idle_seconds"] < 600 <= b["idle_seconds"])
    assert away > 56 * 2


def test_workstation_renders_backup_and_the_cache_trim_show(workstation):
    def mean(key, pick):
        values = [r[key] for r in workstation if pick(r["timestamp"])]
        return sum(values) / len(values)

    assert max(r["load1"] for r in workstation) > 9  # renders take every core
    assert sum(r["cpu_percent"] > 80 for r in workstation) > 0.02 * len(workstation)
    # the 01:45 off-site backup
    assert mean("load5", lambda t: t.hour == 2 and t.minute < 30) > 3 * mean(
        "load5", lambda t: t.hour == 5
    )
    # the 04:30 timer never shrinks free disk and often frees some
    by_time = {r["timestamp"]: r["disk_free_percent"] for r in workstation}
    gains = [
        by_time[t] - by_time[t - timedelta(minutes=1)]
        for t in by_time
        if t.hour == 4 and t.minute == 30
    ]
    assert min(gains) >= 0 and sum(g > 1 for g in gains) > 10
    assert all(5 <= r["ram_percent"] <= 98 for r in workstation)
    assert all(0 < r["disk_free_percent"] < 100 for r in workstation)
    assert max(r["ram_percent"] for r in workstation) > 80  # a render or a game on top


def test_rows_survive_the_csv_round_trip(laptop, server, workstation):
    for rows in (laptop[:600], server[:600], workstation[:600]):
        out = io.StringIO()
        write_rows(rows, out)
        trace = load_trace(out.getvalue())
        for r in rows[::37]:
            snap = trace.at(r["timestamp"])
            assert snap.load5 == r["load5"] and snap.battery_percent == r["battery_percent"]
            assert snap.idle_seconds == r["idle_seconds"]


def test_gzip_output_is_byte_identical_across_runs_and_readable(tmp_path):
    first, second = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    write_csv(generate("server", DEFAULT_START, 1, 9), first)
    write_csv(generate("server", DEFAULT_START, 1, 9), second)
    assert first.read_bytes() == second.read_bytes()
    assert len(read_trace(first)) == 1440


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown trace kind"):
        generate("toaster", DEFAULT_START, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        generate("laptop", datetime(2026, 1, 5), 1, 1)


def test_the_command_line_entry_point_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["laptop", "--days", "1", "--seed", "5", "--out", str(out)]) == 0
    assert "1440 rows" in capsys.readouterr().out
    assert read_trace(out).start == DEFAULT_START
