"""The live dashboard in headless Chromium: a real `smartcronctl dashboard` process on a
simulated laptop week (tests/dashkit.py), and with --allow-actions on a real daemon.

One browser for the module (tests/browser/conftest.py); each test opens the page again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from smartcron.store.runrecords import from_db_time
from tests.browserkit import Dashboard, record_run, start_dashboard
from tests.dashkit import SMART_JOBS, LaptopWeek
from tests.polling import wait_for
from tests.realdaemon import runs as real_runs
from tests.realdaemon import start, stop, write_config


def open_page(driver: Any, url: str, view: str) -> None:
    """Load the page on `view` (already loaded: its tab, as a hash change does not
    reload) and wait until the view's charts are drawn."""
    if driver.current_url.split("#")[0] == url:
        driver.find_element(By.ID, f"tab-{view}").click()
    else:
        driver.get(f"{url}#{view}")
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "const v = document.getElementById('view-' + arguments[0]);"
            "return v && !v.hidden && document.readyState === 'complete' &&"
            " [...v.querySelectorAll('.chart')].every(c => c.querySelector('.main-svg'));",
            view,
        )
    )


@pytest.fixture(scope="module")
def history(laptop: LaptopWeek, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The laptop week's history, copied: this module writes a run into it."""
    db = tmp_path_factory.mktemp("history") / "history.db"
    shutil.copy(laptop.history, db)
    return db


@pytest.fixture(scope="module")
def dashboard(laptop: LaptopWeek, history: Path) -> Iterator[Dashboard]:
    dash = start_dashboard("--user", "--config", str(laptop.config), "--history", str(history))
    yield dash
    code, err = dash.stop()
    assert code == 0, err


def test_the_timeline_has_a_lane_for_each_smart_job_of_the_scenario(browser, dashboard):
    open_page(browser, dashboard.url, "timeline")
    lanes = browser.execute_script(
        "return [...document.querySelectorAll('#timeline-chart .ytick text')]"
        ".map(e => e.textContent)"
    )
    assert set(SMART_JOBS) <= set(lanes), lanes
    bars = browser.find_elements(By.CSS_SELECTOR, "#timeline-chart .bars path")
    assert len(bars) > 100  # a week of windows, waits and runs


def test_clicking_a_deferred_firing_shows_the_reason_recorded_for_it(
    browser, dashboard, laptop: LaptopWeek
):
    open_page(browser, dashboard.url, "timeline")
    detail = browser.find_element(By.ID, "decision-detail")
    assert "deferred" not in detail.text
    firing = browser.find_element(By.CSS_SELECTOR, ".firing-link")  # one that waited
    job, key = firing.get_attribute("data-job"), firing.get_attribute("data-key")
    firing.click()
    WebDriverWait(browser, 10).until(lambda _: detail.get_attribute("data-key") == key)
    conn = sqlite3.connect(laptop.history)
    reasons = [
        reason
        for (reason,) in conn.execute(
            "SELECT reason FROM decisions WHERE firing_id = ? AND verdict = 'defer' ORDER BY id",
            (int(key.removeprefix("f")),),
        )
    ]
    conn.close()
    assert reasons, f"firing {key} of {job} was not deferred"
    text = detail.text
    assert text.startswith(f"{job} · ")
    assert "deferred until" in text
    assert reasons[0] in text  # the gate's own words, as `smartcronctl explain` prints them


def visible_rows(driver: Any) -> list[str]:
    """The outcome of each run row the reader sees (laid out: not hidden by a filter)."""
    outcomes: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('tr.run-row')]"
        ".filter(r => r.getClientRects().length).map(r => r.dataset.outcome)"
    )
    return outcomes


def test_the_failure_filter_shows_only_failed_runs(browser, dashboard):
    open_page(browser, dashboard.url, "runs")
    rows = visible_rows(browser)
    failed = [outcome for outcome in rows if outcome == "failed"]
    assert 0 < len(failed) < len(rows)
    Select(browser.find_element(By.ID, "filter-outcome")).select_by_value("failed")
    shown = visible_rows(browser)
    assert shown == failed
    count = browser.find_element(By.ID, "filter-count").text
    assert count == f"{len(failed)} run(s) shown"


def test_without_allow_actions_the_page_has_no_action_button(browser, dashboard):
    open_page(browser, dashboard.url, "jobs")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.job-row")) >= len(SMART_JOBS)
    assert browser.find_elements(By.CSS_SELECTOR, "button.action-run, button.action-cancel") == []
    assert browser.find_elements(By.ID, "action-message") == []


def test_the_tabs_follow_the_arrow_keys_and_no_view_is_wider_than_a_phone(browser, dashboard):
    open_page(browser, dashboard.url, "jobs")
    browser.find_element(By.ID, "tab-jobs").send_keys(Keys.ARROW_RIGHT)
    shown = browser.execute_script(
        "return [document.activeElement.id,"
        " [...document.querySelectorAll('.view')].filter(v => !v.hidden).map(v => v.id)]"
    )
    assert shown == ["tab-timeline", ["view-timeline"]]
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        for view in ("jobs", "timeline", "runs", "model", "whatif"):
            browser.find_element(By.ID, f"tab-{view}").click()
            # A chart drawn while its view was hidden is resized as the view opens
            # (Plotly.Plots.resize, asynchronous); wide tables scroll inside their box.
            WebDriverWait(browser, 5).until(
                lambda d: d.execute_script(
                    "const e = document.documentElement; return e.scrollWidth <= 390;"
                ),
                message=view,
            )
    finally:
        desk = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", desk)


def test_a_run_recorded_while_the_page_is_open_appears_without_a_reload(
    browser, dashboard, history: Path
):
    open_page(browser, dashboard.url, "runs")
    browser.execute_script("window.notReloaded = true;")
    assert browser.find_elements(By.CSS_SELECTOR, 'tr.run-row[data-job="live_probe"]') == []
    conn = sqlite3.connect(history)
    (newest,) = conn.execute("SELECT max(started) FROM runs").fetchone()
    conn.close()
    when = from_db_time(newest) + timedelta(minutes=1)  # inside the week shown
    record_run(history, job="live_probe", user="root", status="failed", started=when)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.run-row[data-job="live_probe"]')
    )
    assert browser.execute_script("return window.notReloaded === true;")
    row = browser.find_element(By.CSS_SELECTOR, 'tr.run-row[data-job="live_probe"]')
    assert row.get_attribute("data-outcome") == "failed"
    assert browser.find_element(By.ID, "live-state").text == "live"


PROBE = "#@smart name=dash_probe window=1h\n0 4 1 1 * echo dashboard-ran\n"


def test_run_now_reaches_a_real_daemon_and_the_run_shows_up(browser, tmp_path: Path):
    config = write_config(tmp_path, PROBE, mtime_check="3600", explore="false")
    status = tmp_path / "state" / "status.json"
    daemon = start(config)
    dash = None
    try:
        wait_for(status.exists, what="the daemon's status file")
        (job,) = json.loads(status.read_text())["jobs"]
        dash = start_dashboard("--user", "--config", str(config), "--allow-actions")
        open_page(browser, dash.url, "jobs")
        browser.execute_script("window.notReloaded = true;")
        row = browser.find_element(By.CSS_SELECTOR, f'tr.job-row[data-job-id="{job["id"]}"]')
        message = browser.find_element(By.ID, "action-message")
        row.find_element(By.CSS_SELECTOR, "button.action-cancel").click()
        WebDriverWait(browser, 20).until(lambda _: message.text)
        assert "no pending firing" in message.text  # the daemon's refusal, as `cancel` says
        row.find_element(By.CSS_SELECTOR, "button.action-run").click()
        WebDriverWait(browser, 20).until(lambda _: "started" in message.text)
        assert message.text.startswith(f"{job['id']}: started (history run ")
        manual = [("echo dashboard-ran", "ok", 0, "manual")]
        wait_for(lambda: real_runs(tmp_path / "state") == manual, what="the manual run")
        browser.find_element(By.ID, "tab-runs").click()
        WebDriverWait(browser, 10).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.run-row[data-outcome="ok"]')
        )
        assert browser.execute_script("return window.notReloaded === true;")
    finally:
        if dash is not None:
            dash.stop()
        out = stop(daemon)
    assert "RUN NOW (" in out
