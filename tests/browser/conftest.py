"""The browser tests' shared fixtures: one simulated laptop week per session, one
headless Chromium per module (starting one costs about a second)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browserkit import NO_BROWSER, browser_missing, chrome
from tests.dashkit import LaptopWeek, laptop_week


@pytest.fixture(scope="session")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> LaptopWeek:
    """A week of the shipped laptop scenario under the rules policy (deferrals, waits,
    failures, retries). Tests that write to its history work on a copy."""
    return laptop_week(tmp_path_factory.mktemp("laptop"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if browser_missing():
        pytest.skip(NO_BROWSER)
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()
