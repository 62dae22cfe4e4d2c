"""Long work speaks, numbers read (issue 14): progress bars only on a terminal's stderr,
bench-ai's number formats, trace-record's plural, the model metrics explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli import benchai, progress
from smartcron.cli.ctl import main
from tests.simkit import CRONTAB, T0, WORLD, trace_text

PROGRESS_MARKS = ("ETA", "━", "simulating", "generating", "minutes recorded")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = {"crontab": tmp_path / "tab", "trace": tmp_path / "t.csv", "world": tmp_path / "w.yaml"}
    paths["crontab"].write_text(CRONTAB)
    paths["trace"].write_text(trace_text())
    paths["world"].write_text(WORLD)
    return [f"--{name}={path}" for name, path in paths.items()]


def test_a_bar_is_a_no_op_when_stderr_is_not_a_terminal():
    with progress.progress_bar("work", 10) as bar:
        bar.phase("next", 5)
        bar.update(3, 5)
        bar.step("a step")
    assert not bar.shown and not progress.is_terminal()


def test_simulate_json_is_the_same_with_and_without_a_bar(files, monkeypatch):
    code, quiet, err = run("simulate", *files, "--json")
    assert code == 0 and json.loads(quiet)["firings"] > 0
    assert not any(mark in err for mark in PROGRESS_MARKS)
    monkeypatch.setattr(progress, "is_terminal", lambda stream=None: True)
    updates: list[tuple[float, float | None]] = []
    draw = progress.Bar.update
    monkeypatch.setattr(
        progress.Bar,
        "update",
        lambda bar, done, total=None: [updates.append((done, total)), draw(bar, done, total)],
    )
    code, shown, err = run("simulate", *files, "--json")
    assert code == 0 and json.loads(shown) == json.loads(quiet)
    assert updates and updates[-1] == (30, 30)  # the bar ran to the trace's 30 minutes


def test_trace_gen_to_stdout_has_no_progress_noise_when_piped():
    code, out, err = run("trace-gen", "laptop", "--days", "1", "--out", "-")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + 1440 and lines[0].startswith("timestamp,")
    assert not any(mark in out + err for mark in PROGRESS_MARKS)
    assert err == "-: 1440 rows\n"


def test_trace_record_says_what_it_records_and_counts_one_row_in_the_singular(
    tmp_path, monkeypatch
):
    from smartcron import clock, testing

    monkeypatch.setattr(clock, "SystemClock", lambda: testing.FakeClock(T0))
    out = tmp_path / "rec.csv"
    code, stdout, err = run("trace-record", "--minutes", "1", "--out", str(out))
    first, last = err.splitlines()
    assert code == 0 and stdout == ""
    assert first.startswith(f"recording 1 minute of this machine's state into {out}")
    assert last == f"{out}: 1 row"


def test_plural_says_row_for_one_and_rows_otherwise():
    assert [progress.plural(n, "row") for n in (0, 1, 2, 1440)] == [
        "0 rows",
        "1 row",
        "2 rows",
        "1440 rows",
    ]


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("interference_cpu_s", 64770.4, "64,770"),
        ("interference_cpu_s", 0.4, "0"),
        ("runs", 12345, "12,345"),
        ("not_done", 3, "3"),
        ("failure_rate", 0.123456, "0.1235"),
        ("failure_rate", 0, "0.0000"),
    ],
)
def test_bench_numbers_are_rates_to_4_decimals_and_whole_numbers_otherwise(key, value, shown):
    assert benchai.number(key, value) == shown


def test_bench_table_prints_no_exponent_and_separates_thousands(capsys):
    row = dict.fromkeys(benchai.SHOWN, 0) | {"interference_cpu_s": 64770.4, "runs": 12345}
    row["failure_rate"] = 0.0417
    out = {
        "train": {"policy": "cron"},
        "test": {"from": "a", "to": "b"},
        "policies": {name: dict(row) for name in benchai.POLICIES},
        "gap_closed": dict.fromkeys(benchai.GAP_KEYS),
        "gap_closed_gated": dict.fromkeys(benchai.GAP_KEYS),
    }
    benchai.print_bench(out)
    text = capsys.readouterr().out
    assert "e+" not in text and "64,770" in text and "12,345" in text
    assert "0.0417" in text and "oracle interference 64,770 CPU s" in text


CARD = {
    "created": "2026-01-05T00:00:00+00:00",
    "training": {"rows": 900, "failures": 80, "from": "a", "to": "b", "holdout_rows": 180},
    "metrics": {
        "holdout": {
            "pr_auc_failure": 0.61,
            "pr_auc_baseline": 0.09,
            "brier": 0.05,
            "runtime_mae_s": 12.5,
            "runtime_underestimated": 0.4,
        }
    },
}


def test_model_explains_each_holdout_metric_in_plain_english(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(CARD))
    code, out, _ = run("model", "--dir", str(tmp_path))
    lines = out.splitlines()
    assert code == 1  # no model.onnx: refused, but the card is still shown
    at = {name: next(i for i, s in enumerate(lines) if name in s) for name in ("PR-AUC", "Brier")}
    assert "PR-AUC(failure) 0.61 (baseline 0.09)" in lines[at["PR-AUC"]]
    assert "ranks failing runs above succeeding ones" in lines[at["PR-AUC"] + 1]
    assert "lower is better" in lines[at["Brier"] + 1] and "0.25" in lines[at["Brier"] + 1]
    runtime = next(i for i, s in enumerate(lines) if "runtime MAE 12.5 s" in s)
    assert "underestimated 40%" in lines[runtime]
    assert "mean absolute error" in lines[runtime + 1]


def test_model_json_keeps_the_card_without_explanations(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(CARD))
    code, out, _ = run("model", "--dir", str(tmp_path), "--json")
    assert code == 0  # --json reports the refusal in its document
    assert json.loads(out)["card"] == CARD and "lower is better" not in out
