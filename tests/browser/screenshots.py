"""Make docs/img/dashboard-{jobs,timeline,runs,model,whatif}.png: the live dashboard on
a simulated laptop week (the smart policy, with the shipped model), 1280x800, in
Debian's headless Chromium. Run by hand after a change to the page:

    .venv/bin/python -m tests.browser.screenshots [OUTDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browserkit import NO_BROWSER, browser_missing, chrome, colours, start_dashboard
from tests.dashkit import TRACE, WORLD, laptop_week

VIEWS = ("jobs", "timeline", "runs", "model", "whatif")
OUT = Path(__file__).resolve().parents[2] / "docs" / "img"


def main(out: Path = OUT) -> None:
    if browser_missing():
        sys.exit(NO_BROWSER)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        week = laptop_week(Path(tmp) / "laptop", policy="smart")
        what_if = ("--trace", str(TRACE), "--world", str(WORLD))
        dash = start_dashboard("--user", "--config", str(week.config), *what_if)
        driver = chrome()
        try:
            driver.get(dash.url)
            WebDriverWait(driver, 120).until(
                lambda d: d.execute_script(
                    "return [...document.querySelectorAll('.chart')]"
                    ".every(c => c.querySelector('.main-svg'))"
                )
            )
            for view in VIEWS:
                driver.find_element(By.ID, f"tab-{view}").click()
                if view == "timeline":  # with a deferred firing's explain trail open
                    driver.find_element(By.CSS_SELECTOR, ".firing-link").click()
                png = driver.get_screenshot_as_base64()
                shot = colours(driver, png)
                path = out / f"dashboard-{view}.png"
                driver.save_screenshot(str(path))
                print(f"{path}: {path.stat().st_size // 1024} KiB, {shot['colours']} colours")
        finally:
            driver.quit()
            dash.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
