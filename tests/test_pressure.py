"""max_cpu_pressure=, max_io_pressure=, max_mem_pressure= (issue 16, point 3): Linux PSI
through the grammar, -T, the gate, the real monitor (a fake /proc tree, and this
machine's), the trace format, the simulator and explain."""

from __future__ import annotations

import io
import json
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from smartcron.cli import crontab as crontab_cli
from smartcron.cli.ctl import main as ctl_main
from smartcron.errors import AnnotationError
from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import (
    ALL_COLUMNS,
    COLUMNS,
    TraceError,
    load_trace,
    record_trace,
    write_rows,
)
from smartcron.sim.world import load_world
from smartcron.smart import gate, pressure
from smartcron.smart.gate import Firing
from smartcron.smart.jobfiles import load_job_file
from smartcron.smart.monitor import Snapshot, SystemMonitor
from smartcron.smart.smartspec import SmartSpec, load_companion
from smartcron.store.history import HistoryStore
from smartcron.testing import FakeClock, ScriptedMonitor, sample_snapshot
from tests.harness import cli_config, make, utc

T0 = datetime(2026, 1, 5, tzinfo=UTC)
PSI = (
    "some avg10={} avg60=0.87 avg300=0.40 total=1234567\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)


def fake_proc(root: Path, cpu: str | None = "1.53", io_: str | None = "0.00",
              memory: str | None = "12.50") -> Path:  # fmt: skip
    """A /proc tree with PSI files (None: the file is absent) and no network files."""
    (root / "pressure").mkdir(parents=True)
    for name, value in (("cpu", cpu), ("io", io_), ("memory", memory)):
        if value is not None:
            (root / "pressure" / name).write_text(PSI.format(value))
    return root


def monitor_on(proc: Path) -> SystemMonitor:
    return SystemMonitor(proc=proc, metered=lambda: (None, None))


# ------------------------------------------------------------------ grammar, -T


def check(tmp_path: Path, crontab: str) -> tuple[int, list[str]]:
    path = tmp_path / "tab"
    path.write_text(crontab)
    result = CliRunner().invoke(crontab_cli.main, ["-T", str(path)])
    return result.exit_code, [
        line.replace(str(tmp_path), "D") for line in result.stderr.splitlines()
    ]


def test_pressure_keys_pass_smartcrontab_check(tmp_path):
    crontab = "#@smart max_cpu_pressure=20 max_io_pressure=35.5% max_mem_pressure=0\n0 1 * * * b\n"
    assert check(tmp_path, crontab) == (0, [])


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        ("max_cpu_pressure=101", "max_cpu_pressure: 101% is over 100%"),
        ("max_io_pressure=-3", "max_io_pressure: -3 is negative"),
        ("max_mem_pressure=lots", "max_mem_pressure: expected a percentage from 0 to 100"),
        ("max_mem_pressur=5", "unknown key 'max_mem_pressur' (did you mean 'max_mem_pressure'?)"),
    ],
)
def test_out_of_range_pressure_is_a_check_error_with_file_and_line(tmp_path, annotation, reason):
    code, lines = check(tmp_path, f"# backups\n#@smart window=1h {annotation}\n0 1 * * * b\n")
    assert code == 1
    assert lines[0].startswith(f"D/tab:2: {reason}")


def test_companion_and_job_file_pressure_errors_name_their_line():
    with pytest.raises(AnnotationError) as info:
        load_companion("defaults:\n  window: 1h\n  max_cpu_pressure: 150\n", "c.yaml")
    assert str(info.value.problems[0]).startswith("c.yaml:3: defaults.max_cpu_pressure:")
    text = "name: j\ncommand: c\nschedule: '0 1 * * *'\nmax_io_pressure: 30\n"
    job = load_job_file(text, "j.yaml")
    assert job.smart_spec({}).max_io_pressure == 30.0
    with pytest.raises(AnnotationError) as info:
        load_job_file("name: j\ncommand: c\nmax_io_pressure: -1\n", "j.yaml")
    assert str(info.value.problems[0]).startswith("j.yaml:3: max_io_pressure:")


# ------------------------------------------------------------------ the gate


def firing(deadline_min: int = 60) -> Firing:
    return Firing(id=1, job_id="j", nominal=T0, deadline=T0 + timedelta(minutes=deadline_min))


@pytest.mark.parametrize(
    ("snap", "action", "reason"),
    [
        ({"cpu_pressure": 42.0}, "defer", "cpu pressure 42% > max_cpu_pressure 20%"),
        ({"cpu_pressure": 20.0}, "run", "constraints hold"),  # at the limit: holds
        ({"cpu_pressure": None}, "run", "constraints hold"),  # no PSI: like no battery
        ({"io_pressure": 50.5}, "defer", "io pressure 50.5% > max_io_pressure 10%"),
        ({"mem_pressure": 7.25}, "defer", "memory pressure 7.25% > max_mem_pressure 5%"),
    ],
)
def test_the_gate_defers_on_pressure_above_its_limit_and_ignores_missing_psi(snap, action, reason):
    spec = SmartSpec(window=timedelta(hours=1), max_cpu_pressure=20, max_io_pressure=10,
                     max_mem_pressure=5)  # fmt: skip
    base = {"cpu_pressure": 1.0, "io_pressure": 1.0, "mem_pressure": 1.0}
    verdict = gate.evaluate(firing(), spec, sample_snapshot(T0, **{**base, **snap}), T0)
    assert (verdict.action, verdict.reason) == (action, reason)
    if action == "defer":
        assert verdict.until == T0 + gate.RECHECK


def test_pressure_at_the_deadline_follows_on_deadline_skip():
    spec = SmartSpec(window=timedelta(hours=1), max_io_pressure=10, on_deadline="skip")
    late = T0 + timedelta(hours=1)
    verdict = gate.evaluate(firing(), spec, sample_snapshot(T0, io_pressure=80.0), late)
    assert verdict.action == "skip"
    assert (
        verdict.reason == "deadline 01:00 reached: skipped: io pressure 80% > max_io_pressure 10%"
    )


# ------------------------------------------------------------------ PSI files


def test_some_avg10_is_read_from_a_psi_file():
    assert pressure.parse_some_avg10(PSI.format("1.53")) == 1.53
    # the kernel writes `some` first; the order must not matter
    text = "full avg10=9.00 avg60=0 avg300=0 total=0\nsome avg10=4.5 avg60=1 avg300=0 total=9\n"
    assert pressure.parse_some_avg10(text) == 4.5


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no 'some' line"),
        ("full avg10=1.00 avg60=0 avg300=0 total=0\n", "no 'some' line"),
        ("some avg60=0.87 avg300=0.40 total=1\n", "its 'some' line has no avg10= field"),
        ("some avg10=abc avg60=0 avg300=0 total=1\n", "avg10='abc' is not a number"),
        ("some avg10=150.00 avg60=0 avg300=0 total=1\n", "avg10=150.00 is not a percentage"),
        ("some avg10=nan avg60=0 avg300=0 total=1\n", "avg10=nan is not a percentage"),
        ("some avg10=-1.00 avg60=0 avg300=0 total=1\n", "avg10=-1.00 is not a percentage"),
    ],
)
def test_a_malformed_psi_file_is_none_with_the_reason(tmp_path, text, why):
    path = tmp_path / "cpu"
    path.write_text(text)
    reading = pressure.read_pressure(path)
    assert reading.value is None
    assert reading.problem == f"{path} is malformed: {why}"


@given(st.binary(max_size=300) | st.sampled_from([b"some avg10=", b"some avg10=1e2 x"]))
def test_no_bytes_in_a_psi_file_ever_raise(data):
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        got = pressure.read_pressure(Path(handle.name))
    assert (got.value is None) != (got.problem is None)
    assert got.value is None or 0.0 <= got.value <= 100.0


def test_the_monitor_reads_psi_from_a_fake_proc_tree(tmp_path):
    snap = monitor_on(fake_proc(tmp_path / "proc")).snapshot(T0)
    assert (snap.cpu_pressure, snap.io_pressure, snap.mem_pressure) == (1.53, 0.0, 12.5)


def test_missing_psi_is_none_and_reported_once_per_file(tmp_path, caplog):
    proc = fake_proc(tmp_path / "proc", cpu=None, io_=None, memory="3.00")
    caplog.set_level(logging.WARNING, logger="smartcron")
    for _ in range(3):  # the engine makes new monitors too: still once
        snap = monitor_on(proc).snapshot(T0)
        assert (snap.cpu_pressure, snap.io_pressure, snap.mem_pressure) == (None, None, 3.0)
    said = [r.getMessage() for r in caplog.records if "PSI" in r.getMessage()]
    assert said == [
        f"PSI: {proc}/pressure/cpu does not exist (a kernel or container without PSI);"
        " max_cpu_pressure= is ignored (like no battery)",
        f"PSI: {proc}/pressure/io does not exist (a kernel or container without PSI);"
        " max_io_pressure= is ignored (like no battery)",
    ]


def test_unreadable_and_malformed_psi_files_never_crash_the_monitor(tmp_path, caplog):
    proc = fake_proc(tmp_path / "proc", cpu=None, io_="0.10")
    (
        proc / "pressure" / "cpu"
    ).mkdir()  # reading a directory fails as EACCES would (root reads all)
    (proc / "pressure" / "io").write_text("some avg10=garbage\n")
    caplog.set_level(logging.WARNING, logger="smartcron")
    snap = monitor_on(proc).snapshot(T0)
    assert (snap.cpu_pressure, snap.io_pressure, snap.mem_pressure) == (None, None, 12.5)
    text = caplog.text
    assert f"cannot read {proc}/pressure/cpu: Is a directory" in text
    assert f"{proc}/pressure/io is malformed: avg10='garbage' is not a number" in text


def test_the_real_proc_pressure_of_this_machine_is_a_percentage_or_reported_missing(caplog):
    caplog.set_level(logging.WARNING, logger="smartcron")
    snap = SystemMonitor(metered=lambda: (None, None)).snapshot(datetime.now(UTC))
    for field, name in pressure.RESOURCES:
        value = getattr(snap, field)
        if value is None:  # missing here: the reading says why (and the log did, once)
            assert pressure.read_pressure(Path("/proc/pressure") / name).problem
        else:
            assert isinstance(value, float) and 0.0 <= value <= 100.0


def test_a_snapshot_from_an_older_history_row_has_no_pressure():
    old = sample_snapshot(T0).to_dict()
    for key in ("cpu_pressure", "io_pressure", "mem_pressure", "network_online", "network_metered"):
        del old[key]
    assert Snapshot.from_dict(old).cpu_pressure is None
    new = sample_snapshot(T0, cpu_pressure=4.5, io_pressure=0.0).to_dict()
    assert Snapshot.from_dict(new).cpu_pressure == 4.5
    with pytest.raises(ValueError, match="'io_pressure' must be a number"):
        Snapshot.from_dict({**new, "io_pressure": "high"})


# ------------------------------------------------------------------ the trace


def trace_csv(pressures: dict[int, float | None], minutes: int = 30) -> str:
    """A quiet machine; `cpu_pressure` by minute (others 1.0 and absent ones empty)."""
    rows = []
    for i in range(minutes):
        rows.append({"timestamp": T0 + timedelta(minutes=i), "load1": 0.1, "load5": 0.1,
                     "cpu_percent": 5, "ram_percent": 40, "battery_percent": None,
                     "charging": None, "on_ac": True, "idle_seconds": 3600,
                     "disk_free_percent": 50, "cpu_pressure": pressures.get(i, 1.0),
                     "io_pressure": 0.25, "mem_pressure": None})  # fmt: skip
    out = io.StringIO()
    write_rows(rows, out)
    return out.getvalue()


def test_trace_pressure_columns_load_and_older_traces_still_do():
    text = trace_csv({3: 42.5})
    header = (*COLUMNS, "cpu_pressure", "io_pressure", "mem_pressure")
    assert text.splitlines()[0] == ",".join(header)
    trace = load_trace(text, "t.csv")
    snap = trace.at(T0 + timedelta(minutes=3))
    assert (snap.cpu_pressure, snap.io_pressure, snap.mem_pressure) == (42.5, 0.25, None)
    old = "\n".join(line.rsplit(",", 3)[0] for line in text.splitlines()) + "\n"
    assert load_trace(old, "old.csv").at(T0).cpu_pressure is None


@pytest.mark.parametrize(
    ("cell", "message"),
    [("101", "t.csv:2: cpu_pressure must be between 0 and 100, not 101"),
     ("x", "t.csv:2: cpu_pressure is not a number: 'x'"),
     ("-1", "t.csv:2: cpu_pressure must be between 0 and 100, not -1")],
)  # fmt: skip
def test_a_bad_pressure_cell_names_file_and_row(cell, message):
    text = trace_csv({0: 1.0}, minutes=1).replace(",1,0.25,", f",{cell},0.25,")
    with pytest.raises(TraceError) as info:
        load_trace(text, "t.csv")
    assert str(info.value) == message


def test_trace_record_writes_the_pressure_and_network_columns():
    snaps = iter([sample_snapshot(T0, cpu_pressure=3.25, network_online=True, network_metered=None),
                  sample_snapshot(T0, io_pressure=99.5, network_online=False)])  # fmt: skip
    clock = FakeClock(T0)
    out = io.StringIO()
    assert record_trace(ScriptedMonitor(lambda now: next(snaps)), clock, 2, out) == 2
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(ALL_COLUMNS)
    assert lines[1].endswith(",3.25,,,1,")
    assert lines[2].endswith(",,99.5,,0,")
    trace = load_trace(out.getvalue(), "rec.csv")
    assert trace.at(T0 + timedelta(minutes=1)).io_pressure == 99.5


# ------------------------------------------------------------------ simulator, explain

CRONTAB = "#@smart name=build window=30m max_cpu_pressure=20\n0 0 * * * build.sh\n"
WORLD = """\
seed: 1
jobs:
  build:
    runtime: 1m
    fail:
      - when: {cpu_pressure: ">20"}
        p: 1.0
"""


def simulate_on(tmp_path: Path, text: str, policy: str) -> dict:
    tab = tmp_path / "tab"
    tab.write_text(CRONTAB)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    world = load_world(WORLD, "world.yaml")
    timeline = Timeline(load_trace(text, "t.csv"), world, sc.specs())
    return simulate(sc, timeline, world, policy).metrics()


def test_the_simulator_waits_out_cpu_pressure_from_the_trace(tmp_path):
    text = trace_csv({i: 60.0 for i in range(7)})  # pressure 60% until 00:07
    rules = simulate_on(tmp_path, text, "rules")
    assert (rules["runs"], rules["failures"], rules["delay_mean_s"]) == (1, 0, 420.0)
    cron = simulate_on(tmp_path, text, "cron")  # the world fails the run under pressure
    assert (cron["runs"], cron["failures"], cron["delay_mean_s"]) == (1, 1, 0.0)
    calm = simulate_on(tmp_path, trace_csv({}), "rules")
    assert (calm["runs"], calm["failures"], calm["delay_mean_s"]) == (1, 0, 0.0)


def test_explain_tells_a_pressure_wait_and_keeps_the_readings(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    (tmp_path / "state").mkdir()
    history = HistoryStore.open(tmp_path / "state" / "history.db")

    def script(now):  # cpu pressure 42% until 01:40Z
        return sample_snapshot(now, cpu_pressure=42.0 if now < utc("01:40") else 3.0)

    h = make(tmp_path, "#@smart name=build window=2h max_cpu_pressure=20\n0 2 * * * build\n",
             script, history=history)  # fmt: skip
    h.run_until(utc("02:30"))
    history.close()
    conf = cli_config(tmp_path)
    run = CliRunner().invoke(ctl_main, ["explain", "build", "--user", "--config", str(conf)])
    assert run.exit_code == 0, run.output
    assert "deferred until 01:40: cpu pressure 42% > max_cpu_pressure 20%" in run.output
    assert "01:40 ran (constraints hold)" in run.output
    args = ["explain", "build", "--json", "--user", "--config", str(conf)]
    data = json.loads(CliRunner().invoke(ctl_main, args).output)
    first = data["firings"][0]["decisions"][0]["snapshot"]
    assert (first["cpu_pressure"], first["io_pressure"]) == (42.0, None)
