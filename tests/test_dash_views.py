"""The Jobs and Model views (issue 15 part A): plain-English schedules, #@smart keys,
modes and refused files; the model card, calibration and what the model learned, on a
day of the laptop scenario decided by the shipped model."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smartcron.ai.features import FEATURES
from smartcron.dash.data import DashQuery, collect, plain_english, smart_keys
from smartcron.dash.page import render_page
from tests.dashkit import SMART_JOBS, LaptopWeek, laptop_week


@pytest.fixture(scope="module")
def smart_day(tmp_path_factory: pytest.TempPathFactory) -> LaptopWeek:
    return laptop_week(tmp_path_factory.mktemp("smart"), days=0.5, policy="smart")


def test_schedules_read_in_plain_english():
    assert plain_english("*/10 * * * *") == "Every 10 minutes"
    assert plain_english("0 8 * * 1-5") == "At 08:00, Monday through Friday"
    assert plain_english("@daily") == plain_english("0 0 * * *") == "At 00:00"
    assert plain_english("@reboot") == "At boot"
    assert plain_english("not a schedule") == "not a schedule"  # shown as written


def test_smart_keys_show_what_differs_from_the_defaults():
    keys = smart_keys(
        {
            "name": "b",
            "window": 21600,
            "idle": 600,
            "ac": True,
            "max_load": None,
            "retry": 0,
            "after": ["a", "c"],
        }
    )
    assert keys == ["window=6h", "idle=10m", "ac=yes", "after=a,c"]
    assert smart_keys(None) == []


def test_jobs_view_modes_keys_and_the_model(smart_day):
    data = collect(DashQuery(history=None, config=smart_day.config, user_mode=True))
    assert data.mode == "smart"
    jobs = {j["key"]: j for j in data.jobs}
    assert set(SMART_JOBS) <= set(jobs) and len(jobs) == 7
    backup = jobs["nightly_backup"]
    assert backup["mode"] == "smart" and backup["english"] == "At 01:00"
    assert "window=6h" in backup["smart_keys"] and "retry=2" in backup["smart_keys"]
    assert backup["next"] is not None and backup["last"]["status"] in ("ok", "failed")
    plain = [j for j in data.jobs if not j["smart"]]
    assert [j["mode"] for j in plain] == ["plain", "plain"]
    model = data.model
    assert model["summary"].startswith(f"{len(FEATURES)} features, 1084 runs")
    assert model["training_jobs"]["photo_sync"] == {"runs": 672, "failures": 78}
    shipped = json.loads((Path(__file__).parents[1] / "models" / "model.json").read_text())
    pr_auc = shipped["metrics"]["holdout"]["pr_auc_failure"]  # the card's, as it is shipped
    assert any(line.startswith(f"PR-AUC(failure) {pr_auc}") for line in model["validation"])
    bins = model["calibration"]
    smart_runs = [r for r in data.runs if r["job"] in SMART_JOBS and r["trigger"] == "smart"]
    with sqlite3.connect(smart_day.history) as conn:  # starts the gate made at a deadline
        forced = dict(
            conn.execute(
                "SELECT f.id, f.state FROM decisions d JOIN firings f ON d.firing_id = f.id"
                " WHERE d.verdict = 'run' AND d.model IS NULL AND d.reason LIKE 'deadline %'"
            ).fetchall()
        )
    assert len(smart_runs) == 20
    assert sum(b["runs"] for b in bins) == 20 - len(forced)  # every start the model advised
    failed = sum(round(b["observed"] * b["runs"]) for b in bins)
    forced_failed = sum(state == "failed" for state in forced.values())
    assert failed == sum(1 for r in smart_runs if r["outcome"] == "failed") - forced_failed
    assert all(0 <= b["predicted"] <= 1 and 0 <= b["observed"] <= 1 for b in bins)
    page = render_page(data)
    assert 'id="calibration-chart"' in page and 'id="by-hour-chart"' in page


def test_a_refused_crontab_is_listed_with_its_reason(smart_day, tmp_path):
    tab = smart_day.crontab
    os.chmod(tab, 0o666)  # writable by anyone: refused, as cron refuses it
    try:
        data = collect(DashQuery(history=None, config=smart_day.config, user_mode=True))
    finally:
        os.chmod(tab, 0o600)
    refused = [f for f in data.files if f["refused"]]
    assert [f["path"] for f in refused] == [str(tab)]
    assert refused[0]["refused"] in render_page(data).replace("&#39;", "'")
    assert data.jobs == [j for j in data.jobs if not j["loaded"]]  # its jobs not loaded


def test_a_missing_history_still_lists_the_jobs(smart_day, tmp_path):
    data = collect(
        DashQuery(history=Path(tmp_path / "none.db"), config=smart_day.config, user_mode=True)
    )
    assert data.history_note is not None and "no history database yet" in data.history_note
    assert len(data.jobs) == 7 and data.runs == [] and data.firings == []


def test_times_are_shown_in_the_system_zone(smart_day, monkeypatch):
    import time

    from smartcron.dash.charts import figure_json, timeline_figure

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        data = collect(DashQuery(history=None, config=smart_day.config, user_mode=True))
        page = render_page(data)
        figure = figure_json(timeline_figure(data))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "times in Europe/Berlin" in page
    backup = next(f for f in data.firings if f["job"] == "nightly_backup")
    assert backup["nominal"] == "2026-01-05T01:00:00+00:00"  # as recorded (its CRON_TZ)
    nominal = next(t for t in figure["data"] if t["name"] == "nominal time")
    at = nominal["x"][nominal["hovertext"].index("nightly_backup: nominal time 2026-01-05 02:00")]
    assert at == "2026-01-05 02:00:00"  # one zone for every lane: Berlin is UTC+1 in January
    run = data.runs[-1]
    assert run["started"].endswith("+00:00")
    shown = datetime.fromisoformat(run["started"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert f"<td>{shown:%Y-%m-%d %H:%M}</td>" in page


def test_a_cron_tz_job_says_its_zone(tmp_path):
    from tests.dashkit import config_text

    (tmp_path / "crontab").write_text("0 5 * * * true\nCRON_TZ=America/New_York\n0 6 * * * true\n")
    os.chmod(tmp_path / "crontab", 0o600)
    (tmp_path / "smartcron.toml").write_text(config_text(tmp_path))
    data = collect(DashQuery(history=None, config=tmp_path / "smartcron.toml", user_mode=True))
    assert [j["english"] for j in data.jobs] == ["At 05:00", "At 06:00"]
    page = render_page(data)
    assert page.count("CRON_TZ=") == 1 and "CRON_TZ=America/New_York" in page


def test_what_if_compares_smart_too_when_the_model_is_usable(smart_day, tmp_path):
    import gzip

    from tests.dashkit import TRACE, WORLD

    with gzip.open(TRACE, "rt") as src:
        head = [next(src) for _ in range(1 + 6 * 60)]  # six hours
    trace = tmp_path / "six-hours.csv"
    trace.write_text("".join(head))
    query = DashQuery(
        history=None, config=smart_day.config, user_mode=True, trace=trace, world=WORLD
    )
    data = collect(query)
    assert data.whatif is not None
    assert list(data.whatif["policies"]) == ["cron", "random", "rules", "oracle", "smart"]
    runs = {p: m["runs"] for p, m in data.whatif["policies"].items()}
    assert len(set(runs.values())) == 1 and runs["smart"] > 0  # the same firings for each
    assert f"Policy smart decides with the model {smart_day.state / 'models'}" in render_page(data)
