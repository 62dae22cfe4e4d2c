"""Each benchmark runs in a tiny configuration and reports its fields. No timing is asserted:
speed and memory goals live in `make bench` and docs/benchmarks.md, not in unit tests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks import BENCHMARKS, debiancron
from benchmarks.__main__ import main
from benchmarks.cold_start import imported
from benchmarks.common import Result, percentile
from benchmarks.daemon import running
from benchmarks.report import markdown, text_table, write_section

# These wait for the next minute boundary, so they share one wait (run side by side).
BOUNDARY = ("start-latency", "burst-200")


def check(name: str, result: Result) -> None:
    module = BENCHMARKS[name]
    assert result.name == name
    assert result.rows
    missing = [f for f in module.FIELDS if f not in result.fields]
    assert not missing, f"{name} lacks {missing}"
    assert name in text_table(result)
    assert "| metric |" in markdown(result, f"python -m benchmarks {name}", "a machine", "today")


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n not in BOUNDARY])
def test_benchmark_runs_tiny(name):
    module = BENCHMARKS[name]
    check(name, module.run(module.TINY))


@pytest.mark.slow
def test_minute_boundary_benchmarks_run_tiny():
    # Debian's cron (the baseline of the full runs) at the same boundary, where it can run.
    debian_problem = debiancron.problem()
    with ThreadPoolExecutor(len(BOUNDARY) + 1) as pool:
        futures = {n: pool.submit(BENCHMARKS[n].run, BENCHMARKS[n].TINY) for n in BOUNDARY}
        debian = None if debian_problem else pool.submit(debiancron.measured, 3, 1)
        results = {n: f.result() for n, f in futures.items()}
        debian_starts = None if debian is None else debian.result()
    for name, result in results.items():
        check(name, result)
        # Correctness, not speed: every job due at the boundary started.
        assert result.fields["started"] == result.fields["expected"], result.fields
    if debian_starts is not None:
        assert not isinstance(debian_starts, str), debian_starts
        assert debian_starts.started == debian_starts.expected == 3, debian_starts.offsets
        assert all(0 <= offset < 5 for offset in debian_starts.all_offsets)


def test_the_import_check_sees_what_a_command_imports():
    tops, costs = imported(["-c", "import json"])
    assert "json" in tops
    assert any(name == "json" for _, name in costs)


def test_the_daemon_is_stopped_even_when_the_benchmark_fails(tmp_path):
    with pytest.raises(RuntimeError), running(tmp_path, "0 4 * * * true\n") as daemon:
        assert daemon.proc.poll() is None
        raise RuntimeError("benchmark failed")
    assert daemon.proc.returncode == 0  # SIGTERM: a clean stop, and reaped


def test_write_section_replaces_its_block_and_keeps_hand_written_text(tmp_path):
    doc = tmp_path / "benchmarks.md"
    write_section(doc, "parse-next", "first numbers")
    doc.write_text(doc.read_text() + "\nHand-written analysis.\n")
    write_section(doc, "cold-start", "other numbers")
    write_section(doc, "parse-next", "second numbers")
    text = doc.read_text()
    assert "second numbers" in text and "first numbers" not in text
    assert text.count("## parse-next") == 1 and "Hand-written analysis." in text
    assert text.index("parse-next") < text.index("cold-start")


def test_unknown_benchmark_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["no-such-benchmark"])
    assert exc.value.code == 2


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 50) == 50
    assert percentile([5.0], 90) == 5.0


def test_a_benchmark_that_cannot_run_here_is_skipped_with_its_reason(monkeypatch, capsys):
    import unittest

    def unavailable(params):
        raise unittest.SkipTest("no such server here")

    monkeypatch.setattr(BENCHMARKS["parse-next"], "run", unavailable)
    assert main(["parse-next", "--quick"]) == 0
    assert "skipped: no such server here" in capsys.readouterr().out
