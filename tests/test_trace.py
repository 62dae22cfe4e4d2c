import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.errors import SmartcronError
from smartcron.sim.trace import (
    COLUMNS,
    TraceError,
    TraceMonitor,
    TraceRangeError,
    format_row,
    load_trace,
    read_trace,
    record_trace,
)
from smartcron.testing import FakeClock, ScriptedMonitor, sample_snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
HEADER = ",".join(COLUMNS) + "\n"


def row(minute: int, load5: str = "0.5", battery: str = "80", extra: str = "") -> str:
    stamp = (T0 + timedelta(minutes=minute)).isoformat()
    return f"{stamp},0.4,{load5},10,40,{battery},0,1,{minute * 60},55{extra}\n"


def test_rows_are_read_into_snapshots():
    trace = load_trace(HEADER + row(0) + row(1, load5="1.25"), path="t.csv")
    snap = trace.at(T0 + timedelta(minutes=1, seconds=30))
    assert snap.load5 == 1.25 and snap.load15 == 1.25
    assert (snap.battery_percent, snap.charging, snap.on_ac) == (80.0, False, True)
    assert snap.idle_seconds == 60.0 and snap.idle_source == "trace"
    assert snap.at == T0 + timedelta(minutes=1, seconds=30)
    assert (trace.start, trace.end, len(trace), trace.rows) == (
        T0,
        T0 + timedelta(minutes=2),
        2,
        2,
    )


def test_gaps_carry_the_last_row_forward():
    trace = load_trace(HEADER + row(0, load5="1") + row(3, load5="3"))
    assert [trace.at(T0 + timedelta(minutes=m)).load5 for m in range(4)] == [1, 1, 1, 3]
    assert len(trace) == 4 and trace.rows == 2


def test_outside_the_trace_is_a_lookup_error():
    trace = load_trace(HEADER + row(0) + row(1))
    assert T0 in trace and T0 + timedelta(minutes=2) not in trace
    for instant in (T0 - timedelta(seconds=1), T0 + timedelta(minutes=2)):
        with pytest.raises(TraceRangeError, match="outside the trace") as info:
            trace.at(instant)
        assert isinstance(info.value, LookupError)


def test_unknown_columns_are_ignored_and_column_order_is_free():
    text = "note,disk_free_percent,timestamp,ram_percent,cpu_percent,load5,load1\n"
    text += f"hello,55,{T0.isoformat()},40,10,0.5,0.4\n"
    snap = load_trace(text).at(T0)
    assert (snap.load1, snap.ram_percent, snap.disk_free_percent) == (0.4, 40, 55)


def test_missing_battery_columns_mean_no_battery_on_mains():
    text = "timestamp,load1,load5,cpu_percent,ram_percent,disk_free_percent\n"
    snap = load_trace(text + f"{T0.isoformat()},0.4,0.5,10,40,55\n").at(T0)
    assert (snap.battery_percent, snap.charging, snap.on_ac, snap.idle_seconds) == (
        None,
        None,
        True,
        None,
    )


def test_an_empty_battery_cell_means_no_battery_and_no_charging():
    snap = load_trace(HEADER + row(0, battery="")).at(T0)
    assert snap.battery_percent is None and snap.charging is None and snap.on_ac is True


def test_timestamps_with_seconds_and_other_offsets_belong_to_their_utc_minute():
    text = HEADER + row(0).replace("2026-01-05T00:00:00+00:00", "2026-01-05T01:00:42+01:00")
    assert load_trace(text).start == T0


def test_blank_lines_are_skipped():
    assert load_trace(HEADER + row(0) + "\n" + row(1)).rows == 2


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("", "t.csv:1", "empty trace"),
        (row(0) + row(1), "t.csv:1", "the header line is required"),
        ("timestamp,load1\n" + row(0), "t.csv:1", "missing column"),
        (HEADER + row(1) + row(0), "t.csv:3", "rows out of order"),
        (HEADER + row(0) + row(0), "t.csv:3", "duplicate minute"),
        (HEADER + row(0) + row(1, load5="nan"), "t.csv:3", "load5 must be a finite number"),
        (HEADER + row(0, load5="inf"), "t.csv:2", "finite"),
        (HEADER + row(0, load5="x"), "t.csv:2", "load5 is not a number"),
        (HEADER + row(0, load5=""), "t.csv:2", "load5 is empty"),
        (HEADER + row(0, load5="-1"), "t.csv:2", "load5 must be at least 0"),
        (HEADER + row(0, battery="101"), "t.csv:2", "battery_percent must be between 0 and 100"),
        (HEADER + "yesterday" + row(0)[25:], "t.csv:2", "bad timestamp 'yesterday'"),
        (HEADER + row(0).replace("+00:00", ""), "t.csv:2", "no UTC offset"),
        (HEADER + row(0).replace(",0,1,", ",2,1,"), "t.csv:2", "charging must be 0 or 1"),
        (HEADER + row(0, extra=",9"), "t.csv:2", "11 fields, the header has 10"),
        (HEADER, "t.csv:2", "no rows"),
        ("timestamp,load1,load1\n", "t.csv:1", "missing column"),
    ],
)
def test_bad_traces_are_refused_naming_path_and_row(text, where, reason):
    with pytest.raises(TraceError) as info:
        load_trace(text, path="t.csv")
    message = str(info.value)
    assert message.startswith(where + ":") and reason in message
    assert isinstance(info.value, SmartcronError)


def test_a_trace_spanning_years_is_refused_before_its_index_is_built():
    far = (T0 + timedelta(days=5 * 366)).isoformat()
    text = HEADER + row(0) + row(0).replace(T0.isoformat(), far)
    with pytest.raises(TraceError, match=r"t.csv:3: trace spans more than"):
        load_trace(text, path="t.csv")


def test_rows_are_streamed_from_an_iterable_of_lines():
    lines = iter([HEADER, row(0), row(1)])
    assert load_trace(lines).rows == 2


def test_files_and_gzipped_files_are_read(tmp_path):
    plain = tmp_path / "t.csv"
    plain.write_text(HEADER + row(0))
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress((HEADER + row(0)).encode()))
    assert read_trace(plain).at(T0) == read_trace(packed).at(T0)
    assert read_trace(packed).path == str(packed)


def test_unreadable_files_are_trace_errors(tmp_path):
    with pytest.raises(TraceError, match="cannot read trace"):
        read_trace(tmp_path / "missing.csv")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(TraceError, match=r"broken.csv.gz: cannot read trace"):
        read_trace(broken)


def test_trace_monitor_looks_up_the_shipped_laptop_trace():
    mon = TraceMonitor(read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz"))
    snap = mon.snapshot(datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC))
    assert snap.idle_source == "trace" and snap.battery_percent is not None
    assert mon.trace.start == T0 and mon.trace.end == T0 + timedelta(days=56)
    with pytest.raises(TraceRangeError):
        mon.snapshot(T0 + timedelta(days=56))


def test_format_row_rounds_and_leaves_absent_values_empty():
    cells = format_row(
        {
            "timestamp": datetime(2026, 1, 5, 0, 0, 12, tzinfo=UTC),
            "load1": 0.123,
            "load5": 2.0,
            "cpu_percent": 12.34,
            "ram_percent": 40.0,
            "battery_percent": None,
            "charging": False,
            "on_ac": True,
            "idle_seconds": 12.9,
            "disk_free_percent": 55.55,
        }
    )
    assert cells == [
        "2026-01-05T00:00:00+00:00",
        "0.12",
        "2",
        "12.3",
        "40",
        "",
        "0",
        "1",
        "12",
        "55.5",
    ]


def test_record_trace_samples_once_a_minute_on_a_fake_clock():
    clock = FakeClock(T0 + timedelta(seconds=30))
    mon = ScriptedMonitor(lambda now: sample_snapshot(now, load5=now.minute / 10))
    out = io.StringIO()
    assert record_trace(mon, clock, 3, out) == 3
    assert mon.calls == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    trace = load_trace(out.getvalue())
    assert trace.start == T0 + timedelta(minutes=1) and len(trace) == 3
    snap = trace.at(T0 + timedelta(minutes=3))
    assert snap.load5 == 0.3 and snap.battery_percent == 90 and snap.idle_seconds == 3600


class LateClock(FakeClock):
    """Wakes up 90 s late, as after a suspend."""

    def sleep_until(self, instant, wake=None):
        super().sleep_until(instant + timedelta(seconds=90))


def test_record_trace_leaves_a_gap_rather_than_a_duplicate_after_a_late_wakeup():
    clock = LateClock(T0)
    out = io.StringIO()
    record_trace(ScriptedMonitor([sample_snapshot(T0)]), clock, 3, out)
    stamps = [line.split(",")[0] for line in out.getvalue().splitlines()[1:]]
    assert stamps == [(T0 + timedelta(minutes=m)).isoformat() for m in (1, 3, 5)]
    assert load_trace(out.getvalue()).rows == 3
