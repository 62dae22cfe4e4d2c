"""A real `smartcronctl dashboard` process, plain HTTP to it, a history written by hand,
and Debian's headless Chromium through Selenium (dashboard tests, tests/browser/).

Selenium never downloads a driver here: the paths of Debian's chromium and chromedriver
are given and SE_OFFLINE=1 keeps selenium-manager offline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smartcron.store.history import HistoryStore, RunEnd, RunStart, RunStatus

BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NO_BROWSER = (
    "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
)


def browser_missing() -> bool:
    return not (CHROMIUM.exists() and CHROMEDRIVER.exists())


@dataclass
class Dashboard:
    """A running `smartcronctl dashboard`; `url` is the first line it printed."""

    proc: subprocess.Popen[str]
    url: str

    @property
    def base(self) -> str:
        return self.url.split("/?token=")[0]

    @property
    def token(self) -> str:
        return self.url.split("/?token=")[1]

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


def start_dashboard(*args: str, argv: list[str] | None = None, cwd: str | None = None) -> Dashboard:
    """`smartcronctl dashboard ARGS` (or `argv + ARGS`: another user's interpreter); waits
    for its first line. A process that exits first fails the test with its stderr."""
    command = (argv or [str(BIN / "smartcronctl")]) + ["dashboard", *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if not first.startswith("http://"):
        proc.kill()
        _out, err = proc.communicate(timeout=20)
        raise AssertionError(f"dashboard did not start: {first!r} {err}")
    return Dashboard(proc, first)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET; (status, body), errors included."""
    status, body, _headers = get_with_headers(url, headers)
    return status, body


def get_with_headers(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """GET; (status, body, the reply's headers), errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode(), reply.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST JSON; (status, the reply's JSON or text)."""
    data = json.dumps(body).encode()
    heads = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=heads, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            text, status = reply.read().decode(), reply.status
    except urllib.error.HTTPError as err:
        text, status = err.read().decode(), err.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def events(
    dash: Dashboard, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The /events stream's messages, parsed, as they come; a named event's data gets
    its name under "event"."""
    url = f"{dash.base}/events?token={dash.token}"
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as stream:
        lines: list[str] = []
        name = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                lines.append(line[6:])
            elif not line and lines:
                message = json.loads("\n".join(lines))
                yield {**message, "event": name} if name else message
                lines, name = [], None


def record_run(
    db: Path, *, job: str, user: str, status: str = "ok", started: datetime | None = None
) -> int:
    """One finished run in the history, as the daemon writes it; its id."""
    begin = started or datetime.now(UTC).replace(microsecond=0)
    store = HistoryStore.open(db)
    try:
        run_id = store.record_start(
            RunStart(
                job_id=f"{job}-id", job_name=job, source="/tmp/crontab", user=user,
                command=f"echo {job}", started=begin, scheduled=begin, line=1,
            )
        )  # fmt: skip
        exit_code = 0 if status == "ok" else 1
        end = RunEnd(
            status=RunStatus(status), ended=begin + timedelta(seconds=3), exit_code=exit_code,
            runtime_s=3.0,
        )  # fmt: skip
        store.record_end(run_id, end)
        store.flush()
    finally:
        store.close()
    return run_id


def chrome(*, offline: bool = False, size: tuple[int, int] = (1280, 800)) -> Any:
    """Headless Chromium from Debian through its chromedriver. `offline`: every request
    goes to a closed port (the proxy) and the DevTools network is cut as well."""
    os.environ["SE_OFFLINE"] = "1"  # selenium-manager must never fetch a driver
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={size[0]},{size[1]}", "--hide-scrollbars",
                 "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root sandboxed
    if offline:
        options.add_argument("--proxy-server=127.0.0.1:9")
        options.add_argument("--proxy-bypass-list=<-loopback>")
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    # The viewport itself at `size` (--window-size counts the window's frame too).
    metrics = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    if offline:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
    return driver


# Counts the colours of a PNG (a data: URL) drawn on a canvas: Chromium decodes the
# screenshot itself, so no imaging library is needed.
_COLOURS_JS = """
const done = arguments[arguments.length - 1];
const img = new Image();
img.onload = () => {
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data, seen = new Map();
  for (let i = 0; i < px.length; i += 4) {
    const k = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2];
    seen.set(k, (seen.get(k) || 0) + 1);
  }
  done({width: c.width, height: c.height, colours: seen.size,
        top: Math.max(...seen.values()) / (c.width * c.height)});
};
img.onerror = () => done(null);
img.src = "data:image/png;base64," + arguments[0];
"""


def colours(driver: Any, png_base64: str) -> dict[str, float]:
    """{width, height, colours, top}: how many colours, the commonest one's share."""
    result: dict[str, float] = driver.execute_async_script(_COLOURS_JS, png_base64)
    assert result is not None, "the screenshot is not a PNG"
    return result


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that other users may enter (tmp_path is root's 0700)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
