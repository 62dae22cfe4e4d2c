"""`smartcronctl report --html` opened in headless Chromium with the network cut (a
closed proxy port and DevTools' offline mode): it draws every chart from what is inside
the file, names the jobs and charts the live dashboard names, and no view is blank."""

from __future__ import annotations

import gzip
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browserkit import (
    BIN,
    NO_BROWSER,
    browser_missing,
    chrome,
    colours,
    get,
    start_dashboard,
)
from tests.dashkit import SMART_JOBS, TRACE, WORLD, LaptopWeek

VIEWS = ("jobs", "timeline", "runs", "model", "whatif")
CHARTS_DRAWN = (
    "return document.readyState === 'complete' && typeof Plotly === 'object' &&"
    " [...document.querySelectorAll('.chart')].every(c => c.querySelector('.main-svg'));"
)


@pytest.fixture(scope="module")
def offline() -> Iterator[Any]:
    if browser_missing():
        pytest.skip(NO_BROWSER)
    driver = chrome(offline=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def what_if(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """--trace (the laptop trace's first three days: the What-if view in a second, not
    the eight weeks' six) and --world, for `report` and `dashboard` alike."""
    trace = tmp_path_factory.mktemp("trace") / "laptop-3d.csv"
    with gzip.open(TRACE, "rt") as source:
        rows = [line for line in source if not line.startswith("#")]
    trace.write_text("".join(rows[: 1 + 3 * 1440]))
    return ["--trace", str(trace), "--world", str(WORLD)]


@pytest.fixture(scope="module")
def report(
    laptop: LaptopWeek, what_if: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("report") / "week.html"
    argv = [str(BIN / "smartcronctl"), "report", "--user", "--config", str(laptop.config)]
    done = subprocess.run(
        [*argv, *what_if, "--html", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def opened(offline: Any, report: Path) -> Any:
    offline.get(report.as_uri())
    WebDriverWait(offline, 30).until(lambda d: d.execute_script(CHARTS_DRAWN))
    return offline


def test_the_network_is_really_cut(opened: Any):
    """Else the next tests would prove nothing: a fetch from the page must fail."""
    outcome = opened.execute_async_script(
        "const done = arguments[0];"
        "fetch('http://example.com/').then(() => done('fetched'), e => done('failed: ' + e));"
    )
    assert outcome.startswith("failed"), outcome


def test_the_report_draws_its_charts_from_the_file_alone(opened: Any):
    charts = opened.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')]"
        ".filter(c => c.querySelector('.main-svg')).map(c => c.id)"
    )
    assert {"timeline-chart", "by-hour-chart", "spark-0"} <= set(charts), charts
    assert any("whatif" in c for c in charts), charts
    # Nothing was even asked for: scripts, styles and fonts are all inline (the one
    # request of test_the_network_is_really_cut aside).
    asked = opened.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [url for url in asked if url != "http://example.com/"] == []
    lanes = opened.execute_script(
        "return [...document.querySelectorAll('#timeline-chart .ytick text')]"
        ".map(e => e.textContent)"
    )
    assert set(SMART_JOBS) <= set(lanes)


def test_the_report_names_the_jobs_and_charts_the_dashboard_names(
    opened: Any, laptop: LaptopWeek, what_if: list[str]
):
    dash = start_dashboard("--user", "--config", str(laptop.config), *what_if)
    try:
        status, page = get(dash.url)
    finally:
        dash.stop()
    assert status == 200
    served_jobs = sorted(set(re.findall(r'<tr class="job-row" data-job="([^"]+)"', page)))
    served_charts = sorted(set(re.findall(r'<div id="([^"]+)" class="chart', page)))
    report_jobs = opened.execute_script(
        "return [...new Set([...document.querySelectorAll('tr.job-row')]"
        ".map(r => r.dataset.job))].sort()"
    )
    report_charts = opened.execute_script(
        "return [...new Set([...document.querySelectorAll('.chart')].map(c => c.id))].sort()"
    )
    assert set(SMART_JOBS) <= set(report_jobs)
    assert report_jobs == served_jobs
    assert report_charts == served_charts


@pytest.mark.parametrize("view", VIEWS)
def test_no_view_is_blank_at_1280_by_800(opened: Any, view: str):
    opened.find_element(By.ID, f"tab-{view}").click()
    WebDriverWait(opened, 10).until(lambda d: d.find_element(By.ID, f"view-{view}").is_displayed())
    shot = colours(opened, opened.get_screenshot_as_base64())
    assert (shot["width"], shot["height"]) == (1280, 800)
    assert shot["colours"] > 20, shot  # text and charts, not one flat colour
    assert shot["top"] < 0.97, shot
