"""smartcronctl simulate, trace-gen and trace-record, end to end through click."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main
from smartcron.sim.metrics import KEYS
from smartcron.sim.trace import read_trace
from tests.simkit import CRONTAB, T0, WORLD, trace_text


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {"crontab": tmp_path / "tab", "trace": tmp_path / "t.csv", "world": tmp_path / "w.yaml"}
    paths["crontab"].write_text(CRONTAB)
    paths["trace"].write_text(trace_text())
    paths["world"].write_text(WORLD)
    return {name: str(path) for name, path in paths.items()}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def simulate(files: dict[str, str], *extra: str) -> tuple[int, str, str]:
    base = ["simulate", "--crontab", files["crontab"], "--trace", files["trace"]]
    return run(*base, "--world", files["world"], *extra)


def test_simulate_json_has_the_spec_keys_totals_and_jobs(files):
    code, out, err = simulate(files, "--policy", "rules", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [k for k in data if k in KEYS] == list(KEYS)
    assert (data["firings"], data["runs"], data["failures"], data["delay_p95_s"]) == (
        4,
        4,
        0,
        540.0,
    )
    assert set(data["jobs"]["backup"]) == set(KEYS)
    assert data["scenario"]["policy"] == "rules" and data["scenario"]["seed"] == 3
    # the plain line the world does not name runs by the default law, without a warning
    # (the shipped fixtures warned on every run); the JSON still lists it
    assert "runs for one minute" not in err
    assert data["scenario"]["unnamed_jobs"] == [j for j in data["jobs"] if j != "backup"]


def test_simulate_warns_about_a_smart_job_the_world_forgot(files, tmp_path):
    world = tmp_path / "bare.yaml"
    world.write_text("seed: 3\njobs: {}\n")
    code, _, err = simulate({**files, "world": str(world)}, "--policy", "rules", "--json")
    assert code == 0 and err.count("runs for one minute, no CPU, never fails") == 1
    assert "backup" in err


def test_simulate_prints_a_table_without_json(files):
    code, out, _ = simulate(files, "--policy", "cron", "--seed", "9")
    assert code == 0
    assert "policy cron" in out and "backup" in out and "seed 9" in out


def test_simulate_period_and_seed_options(files):
    code, out, _ = simulate(
        files, "--json", "--from", "2026-01-05T00:05Z", "--to", "2026-01-05T00:25Z"
    )
    assert code == 0
    data = json.loads(out)
    assert data["firings"] == 2  # plain 00:10 and 00:20; backup's 00:00 is outside
    assert data["scenario"]["from"] == (T0 + timedelta(minutes=5)).isoformat()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "2026-01-05T00:20Z", "--to", "2026-01-05T00:10Z"], "is not before"),
        (["--to", "2026-02-01T00:00Z"], "outside the trace"),
        (["--policy", "smart"], "--policy smart needs --model"),
        (["--policy", "smart", "--model", "/nonexistent"], "model /nonexistent"),
        (["--tz", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_simulate_bad_options_exit_1_with_a_message(files, extra, message):
    code, _, err = simulate(files, *extra)
    assert code == 1 and message in err


def test_a_world_naming_a_job_the_crontab_lacks_is_an_error(files):
    Path(files["world"]).write_text(WORLD + "  ghost:\n    runtime: 1m\n")
    code, _, err = simulate(files)
    assert code == 1 and "ghost" in err and "not in the crontab" in err


@pytest.mark.parametrize(
    ("edit", "row", "message"),
    [
        (lambda lines: [lines[0], lines[2], lines[1], *lines[3:]], 3, "out of order"),
        (lambda lines: [*lines[:3], lines[2], *lines[3:]], 4, "duplicate minute"),
        (
            lambda lines: [*lines[:5], lines[5].replace(",0.1,", ",nan,", 1), *lines[6:]],
            6,
            "finite",
        ),
        (lambda lines: [*lines[:7], "2026-01-05T00:06:00+00:00,1", *lines[8:]], 8, "fields"),
    ],
)
def test_bad_traces_name_the_file_and_row(files, edit, row, message):
    lines = Path(files["trace"]).read_text().splitlines()
    Path(files["trace"]).write_text("\n".join(edit(lines)) + "\n")
    code, _, err = simulate(files)
    assert code == 1 and f"{files['trace']}:{row}:" in err and message in err


def test_a_gap_in_a_trace_carries_the_last_row_forward(files):
    """SPEC 9: gaps are not errors; the minutes missing repeat the row before them."""
    lines = Path(files["trace"]).read_text().splitlines()
    Path(files["trace"]).write_text("\n".join(lines[:8] + lines[12:]) + "\n")  # 7-10 missing
    code, out, err = simulate(files, "--json", "--policy", "rules")
    assert code == 0, err
    # idle stays 120 s (minute 6's row) over 7-10: idle=5m first holds at minute 11
    assert json.loads(out)["jobs"]["backup"]["delay_mean_s"] == 660.0


def test_trace_gen_writes_a_readable_trace(tmp_path):
    out = tmp_path / "one.csv.gz"
    code, _, err = run("trace-gen", "server", "--days", "1", "--seed", "4", "--out", str(out))
    assert code == 0 and "1440 rows" in err
    trace = read_trace(out)
    assert len(trace) == 1440 and trace.at(trace.start).battery_percent is None


def test_trace_gen_writes_to_stdout_with_a_dash(tmp_path):
    code, out, err = run("trace-gen", "laptop", "--days", "1", "--out", "-")
    assert code == 0 and "-: 1440 rows" in err
    assert out.startswith("timestamp,") and len(out.splitlines()) == 1441
    assert not Path("-").exists()


def test_trace_gen_offers_every_kind_of_the_generator():
    from smartcron.cli.sim import trace_gen_cmd
    from smartcron.sim import tracegen

    kind = next(p for p in trace_gen_cmd.params if p.name == "kind")
    assert tuple(kind.type.choices) == tracegen.KINDS  # type: ignore[attr-defined]


def test_trace_record_samples_the_system_monitor_on_the_clock(tmp_path, monkeypatch):
    from smartcron import clock, testing

    monkeypatch.setattr(clock, "SystemClock", lambda: testing.FakeClock(T0))
    out = tmp_path / "rec.csv"
    code, _, err = run("trace-record", "--minutes", "3", "--out", str(out))
    assert code == 0, err
    trace = read_trace(out)
    assert (trace.start, len(trace)) == (T0, 3)


@pytest.mark.parametrize("command", ["simulate", "trace-gen", "trace-record"])
def test_every_simulator_command_has_help(command):
    code, out, _ = run(command, "-h")
    assert code == 0 and "Example" in out


@pytest.mark.parametrize(
    "args",
    [
        ("next", "--expr", "* * * * *", "--after", "notatime"),
        ("trace-gen", "laptop", "--start", "soon", "--out", "-"),
    ],
)
def test_a_time_that_is_not_iso_8601_is_a_usage_error(args):
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert "not an ISO 8601 time" in err


def test_trace_record_refuses_a_disk_path_that_does_not_exist(tmp_path):
    code, _, err = run("trace-record", "--minutes", "1", "--out", str(tmp_path / "t.csv"),
                       "--disk-path", str(tmp_path / "nowhere"))  # fmt: skip
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "t.csv").exists()


def test_simulate_history_records_a_firing_that_waits_for_capacity(files, tmp_path):
    # It crashed here (the recorder called FiringStore.note, which never existed).
    Path(files["crontab"]).write_text(
        "#@smart name=a window=1h priority=1\n0 0 * * * a\n#@smart name=b window=1h\n0 0 * * * b\n"
    )
    Path(files["world"]).write_text("jobs:\n  a: {runtime: 10m}\n  b: {runtime: 5m}\n")
    db = tmp_path / "sim.db"
    code, _, err = simulate(files, "--max-concurrent", "1", "--history", str(db), "--json")
    assert code == 0, err
    from smartcron.smart.firings import FiringStore
    from smartcron.store.history import HistoryStore

    store = FiringStore(HistoryStore.open(db))
    (b,) = [f for f in store.firings(["b"]) if f.firing.nominal == T0]
    assert b.firing.id is not None
    trail = [(d.at - T0, d.verdict, d.reason) for d in store.decisions(b.firing.id)]
    assert trail[0] == (timedelta(0), "defer", "waiting: 1 smart job(s) running (max_concurrent 1)")
    assert trail[1:] == [
        (timedelta(minutes=10), "run", "constraints hold"),
        (timedelta(minutes=15), "done", "exit 0 in 300 s"),
    ]
