"""The report page in headless Chromium (issue 15 part A): opened from a file with
networking disabled, every view renders its charts; a click on a firing that waited
shows its reason and snapshot; the runs filters hide what does not match; a live
update (data_json through the page's own load()) re-renders in place without a reload;
the action buttons exist only with actions=True."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from smartcron.dash.data import DashQuery, collect, data_json
from smartcron.dash.page import render_page
from tests.dashkit import SMART_JOBS, LaptopWeek, laptop_week

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver"
)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> LaptopWeek:
    return laptop_week(tmp_path_factory.mktemp("laptop"), days=3)


@pytest.fixture(scope="module")
def data(week):
    return collect(DashQuery(history=None, config=week.config, user_mode=True))


@pytest.fixture(scope="module")
def report(data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "report.html"
    path.write_text(render_page(data))
    return path


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,800",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(arg)  # any network request fails: the page must need none
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, path: Path, html: str | None = None):
    if html is not None:
        path.write_text(html)
    browser.get(path.as_uri())
    browser.execute_script("window.__marker = 42;")  # gone if the page reloads
    return browser


def severe(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_the_offline_report_renders_every_view_and_the_timeline_names_each_smart_job(
    data, report, browser
):
    page = open_page(browser, report)
    names = page.execute_script(
        "return [...new Set(document.getElementById('timeline-chart').data"
        ".flatMap(t => (t.customdata || []).map(c => c[0])))];"
    )
    assert set(SMART_JOBS) <= set(names)
    for view in ("jobs", "timeline", "runs", "model", "whatif"):
        page.find_element("id", f"tab-{view}").click()
        assert page.find_element("id", f"view-{view}").is_displayed()
        others = page.execute_script(
            "return [...document.querySelectorAll('section.view')]"
            ".filter(s => !s.hidden).map(s => s.id);"
        )
        assert others == [f"view-{view}"]
    drawn = page.execute_script("return document.querySelectorAll('.js-plotly-plot').length;")
    assert drawn == 1 + len(data.stats) + 1  # timeline, sparklines, failure rate by hour
    assert severe(page) == []


def test_clicking_a_firing_that_waited_shows_its_reason_and_snapshot(data, report, browser):
    page = open_page(browser, report)
    page.find_element("id", "tab-timeline").click()
    waited = next(f for f in reversed(data.firings) if f["waits"])
    page.find_element("css selector", f'.firing-link[data-key="{waited["key"]}"]').click()
    detail = page.find_element("id", "decision-detail")
    assert detail.get_attribute("data-job") == waited["job"]
    trail = [li.text for li in detail.find_elements("css selector", ".trail li")]
    assert trail == waited["trail"] and any(waited["waits"][0]["reason"] in t for t in trail)
    snapshot = json.loads(detail.find_element("css selector", "pre.snapshot").text)
    assert snapshot == waited["snapshot"]
    # a click on the chart's bar does the same (plotly's own click event)
    page.execute_script(
        "const div = document.getElementById('timeline-chart');"
        "div.emit('plotly_click', {points: [{customdata: [arguments[0], arguments[1]]}]});",
        data.firings[0]["job"],
        data.firings[0]["key"],
    )
    assert detail.get_attribute("data-key") == data.firings[0]["key"]


def shown(page) -> list[list[str]]:
    """The runs table's rows on screen: [outcome, job] each."""
    return page.execute_script(
        "return [...document.querySelectorAll('tr.run-row')].filter(r => r.offsetParent)"
        ".map(r => [r.dataset.outcome, r.dataset.job]);"
    )


def test_the_outcome_filter_shows_only_failures(data, report, browser):
    page = open_page(browser, report)
    page.find_element("id", "tab-runs").click()
    from selenium.webdriver.support.ui import Select

    Select(page.find_element("id", "filter-outcome")).select_by_value("failed")
    failed = [r for r in data.runs if r["outcome"] == "failed"]
    assert failed and shown(page) == [["failed", r["job"]] for r in failed]
    Select(page.find_element("id", "filter-job")).select_by_value("photo_sync")
    assert shown(page) == [["failed", "photo_sync"] for r in failed if r["job"] == "photo_sync"]


def test_a_live_update_rerenders_in_place(week, data, report, browser):
    page = open_page(browser, report)
    before = len(page.find_elements("css selector", "tr.run-row"))
    only = collect(DashQuery(history=None, config=week.config, user_mode=True, job="photo_sync"))
    page.execute_script("load(JSON.parse(arguments[0]), true);", data_json(only))
    rows = page.find_elements("css selector", "tr.run-row")
    assert len(rows) == len(only.runs) < before
    assert {r.get_attribute("data-job") for r in rows} == {"photo_sync"}
    options = [
        o.get_attribute("value") for o in page.find_elements("css selector", "#filter-job option")
    ]
    assert options == ["", "photo_sync"]
    assert page.execute_script("return window.__marker;") == 42  # not reloaded
    assert severe(page) == []


def test_action_buttons_exist_only_with_actions(data, report, browser, tmp_path):
    page = open_page(browser, report)
    assert page.find_elements("css selector", ".action-run, .action-cancel") == []
    page = open_page(browser, tmp_path / "a.html", render_page(data, actions=True, token="tok"))
    runs = page.find_elements("css selector", "tr.job-row .action-run")
    cancels = page.find_elements("css selector", "tr.job-row .action-cancel")
    assert len(runs) == len(cancels) == len(data.jobs)
    assert [b.text for b in (runs[0], cancels[0])] == ["Run now", "Cancel"]
    assert runs[0].get_attribute("data-job") == data.jobs[0]["id"]
