"""smartcronctl report --html and the dashboard's data (issue 15 part A): a simulated
laptop week (tests/dashkit.py), hostile names, bad histories, 100,000 runs of one job."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.daemon.explain import trail_lines
from smartcron.dash.data import DashQuery, collect, data_json
from smartcron.dash.page import render_page
from smartcron.dash.records import RUNS_PER_JOB
from smartcron.smart.firings import FiringStore
from smartcron.store.history import HistoryStore
from tests.dashkit import SMART_JOBS, TRACE, WORLD, LaptopWeek, laptop_week

WEB = ("jinja2", "plotly", "cron_descriptor", "starlette", "uvicorn", "smartcron.dash")
_WATCH = (
    "import atexit, sys\n"
    f"atexit.register(lambda: print('LOADED', sorted(m for m in {WEB!r} if m in sys.modules),"
    " file=sys.stderr))\n"
    "import smartcron.daemon.service\n"
    "from smartcron.cli.ctl import main\n"
    "main()\n"
)
SCRIPTS_OF_THE_PAGE = 3  # the data (application/json), plotly.js, the page's own script


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> LaptopWeek:
    return laptop_week(tmp_path_factory.mktemp("laptop"))


def query(week: LaptopWeek, **changes: object) -> DashQuery:
    fields: dict[str, object] = {"history": None, **changes}
    return DashQuery(config=week.config, user_mode=True, **fields)  # type: ignore[arg-type]


def report(*args: str) -> subprocess.CompletedProcess[str]:
    """`smartcronctl report ARGS`; its stderr ends with the web modules it loaded."""
    return subprocess.run(
        [sys.executable, "-c", _WATCH, "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the watch's line and the model watch's note (no model yet)."""
    noise = ("LOADED ", "model not used")
    return [line for line in done.stderr.splitlines() if not line.startswith(noise)]


def test_report_of_a_laptop_week_is_self_contained_and_names_every_smart_job(week, tmp_path):
    out = tmp_path / "week.html"
    done = report("--config", str(week.config), "--user", "--html", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    for name in SMART_JOBS:
        assert f'data-job="{name}"' in page
    # plotly.js inlined once; besides it, no src=/href= to a network address
    from smartcron.dash.page import plotly_js

    assert page.count(plotly_js()) == 1
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.replace(plotly_js(), ""))
    assert page.count("<script") == SCRIPTS_OF_THE_PAGE
    size, packed = len(page.encode()), len(gzip.compress(page.encode()))
    assert size < 7_000_000 and packed < 2_000_000, (size, packed)
    for view in ("jobs", "timeline", "runs", "model", "whatif"):
        assert f'id="view-{view}"' in page
    assert "Every 10 minutes" in page  # cron-descriptor's English for */10
    assert f"{out}:" in done.stdout
    loaded = "['cron_descriptor', 'jinja2', 'plotly', 'smartcron.dash']"  # only here
    assert done.stderr.splitlines()[-1] == f"LOADED {loaded}"


def test_timeline_waits_carry_the_reason_and_the_explain_trail(week):
    data = collect(query(week))
    smart = [f for f in data.firings if f["smart"]]
    assert {f["job"] for f in smart} == set(SMART_JOBS)
    battery = [f for f in smart if any(w["kind"] == "battery" for w in f["waits"])]
    assert battery, "the laptop week defers on a low battery"
    firing = battery[0]
    wait = next(w for w in firing["waits"] if w["kind"] == "battery")
    assert wait["reason"].startswith("battery ") and wait["from"] < wait["to"]
    store = HistoryStore.open(week.history, readonly=True)
    try:
        decisions = FiringStore(store).decisions(int(firing["key"][1:]))
    finally:
        store.close()
    assert firing["trail"] == trail_lines(decisions, UTC)  # `explain`'s own words
    assert firing["snapshot"]["battery_percent"] is not None
    payload = json.loads(data_json(data))
    assert payload["details"][firing["key"]]["trail"] == firing["trail"]
    assert set(payload["views"]) == {"jobs", "timeline", "runs", "model", "whatif"}
    assert "timeline-chart" in payload["figures"]


def test_runs_are_capped_per_job_and_counted_in_full(week):
    data = collect(query(week))
    by_job: dict[str, int] = {}
    for run in data.runs:
        by_job[run["job"]] = by_job.get(run["job"], 0) + 1
    stats = {s["job"]: s for s in data.stats}
    fetch = next(s for s in data.stats if s["runs"] > RUNS_PER_JOB)  # */10: 1,008 in a week
    assert fetch["runs"] == 1008 and by_job[fetch["job"]] == RUNS_PER_JOB
    assert stats["photo_sync"]["runs"] == by_job["photo_sync"] == 168
    assert stats["photo_sync"]["failures"] == sum(
        1 for r in data.runs if r["job"] == "photo_sync" and r["outcome"] == "failed"
    )


def test_only_this_job_with_job(week):
    data = collect(query(week, job="nightly_backup"))
    assert [j["key"] for j in data.jobs] == ["nightly_backup"]
    assert {r["job"] for r in data.runs} == {"nightly_backup"}
    assert {f["job"] for f in data.firings} == {"nightly_backup"}


def test_unknown_job_is_a_one_line_error(week, tmp_path):
    done = report(
        "--config",
        str(week.config),
        "--user",
        "--html",
        str(tmp_path / "x.html"),
        "--job",
        "no_such_job",
    )
    assert done.returncode == 1
    assert errors(done) == ["no_such_job: no such job (give its id or name=)"]


def _runs(db: Path, rows: list[tuple[object, ...]]) -> None:
    HistoryStore.open(db).close()  # the schema
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (job_id, job_name, source, line, user, command, trigger, scheduled,"
            " started, ended, status, exit_code, runtime_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )


def _row(
    i: int,
    job: str = "busy",
    user: str = "root",
    command: str = "true",
    seconds: float = 60.0,
    status: str = "ok",
    name: str | None = None,
) -> tuple[object, ...]:
    at = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=6 * i)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    end = at + timedelta(seconds=seconds)
    return (
        job,
        name,
        "/x/crontab",
        1,
        user,
        command,
        "cron",
        at.strftime(fmt),
        at.strftime(fmt),
        end.strftime(fmt),
        status,
        0 if status == "ok" else 1,
        seconds,
    )


def test_a_job_with_100000_runs_keeps_the_page_small(week, tmp_path):
    db = tmp_path / "busy.db"
    _runs(
        db,
        [
            _row(i, seconds=60 + i % 7, status="failed" if i % 10 == 0 else "ok")
            for i in range(100_000)
        ],
    )
    started = time.monotonic()
    data = collect(query(week, history=db))
    seconds = time.monotonic() - started
    page = render_page(data)
    busy = next(s for s in data.stats if s["job"] == "busy")
    assert busy["runs"] == 100_000 and busy["failures"] == 10_000
    assert sum(1 for r in data.runs if r["job"] == "busy") == RUNS_PER_JOB
    from smartcron.dash.page import plotly_js

    own = len(page.encode()) - len(plotly_js().encode())
    assert own < 600_000, f"{own} bytes besides plotly.js (collect took {seconds:.2f} s)"


def test_hostile_names_and_commands_are_escaped_everywhere(week, tmp_path):
    db = tmp_path / "hostile.db"
    evil = "<script>alert(1)</script>"
    _runs(db, [_row(i, job=f"x{evil}", command=f"echo {evil}", name=f"n{evil}") for i in range(6)])
    data = collect(query(week, history=db))
    for page in (render_page(data, live=True, actions=True, token='t"</script>'), data_json(data)):
        assert "<script>alert" not in page and "</script>alert" not in page
    page = render_page(data)
    assert page.count("<script") == SCRIPTS_OF_THE_PAGE
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    assert "\\u003cscript\\u003ealert" in page  # and inside the embedded JSON


def test_a_viewer_sees_only_their_own_runs(week, tmp_path):
    db = tmp_path / "two.db"
    _runs(
        db,
        [_row(i, job="mine", user="nobody") for i in range(3)]
        + [_row(i, job="theirs", user="root") for i in range(4)],
    )
    nobody = 65534
    data = collect(query(week, history=db, viewer_uid=nobody))
    assert {r["job"] for r in data.runs} == {"mine"}
    assert data.jobs == [j for j in data.jobs if j["owner"] == "nobody"]
    assert collect(query(week, history=db, viewer_uid=0)).viewer == "root (all users)"


def test_a_run_outside_a_third_to_three_times_the_median_is_flagged(week, tmp_path):
    db = tmp_path / "flags.db"
    seconds = [60.0] * 8 + [200.0, 181.0, 19.0, 21.0]
    _runs(db, [_row(i, seconds=s) for i, s in enumerate(seconds)])
    data = collect(query(week, history=db))
    flags = {r["runtime_s"]: r["flag"] for r in data.runs}
    assert flags == {60.0: None, 200.0: "slow", 181.0: "slow", 19.0: "fast", 21.0: None}
    assert next(s for s in data.stats if s["job"] == "busy")["flagged"] == 3


def test_an_empty_history_says_so(week, tmp_path):
    db = tmp_path / "empty.db"
    HistoryStore.open(db).close()
    data = collect(query(week, history=db))
    assert data.runs == [] and data.firings == []
    assert data.history_note is not None and "no runs recorded" in data.history_note
    assert "no runs recorded" in render_page(data)
    assert len(data.jobs) == 7  # the crontab's jobs are still listed


def test_an_older_schema_is_noted_and_a_corrupt_one_is_an_error(week, tmp_path):
    old = tmp_path / "old.db"
    HistoryStore.open(old).close()
    with sqlite3.connect(old) as conn:
        last = conn.execute("SELECT max(name) FROM migrations").fetchone()[0]
        conn.execute("DELETE FROM migrations WHERE name = ?", (last,))
    data = collect(query(week, history=old))
    assert data.history_note is not None and "older schema" in data.history_note
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    done = report(
        "--config",
        str(week.config),
        "--user",
        "--history",
        str(bad),
        "--html",
        str(tmp_path / "bad.html"),
    )
    assert done.returncode == 1, done.stdout
    lines = errors(done)
    assert len(lines) == 1 and str(bad) in lines[0], done.stderr
    assert not (tmp_path / "bad.html").exists()


def test_what_if_compares_the_policies_on_a_trace(week, tmp_path):
    with gzip.open(TRACE, "rt") as src:
        head = [next(src) for _ in range(1 + 2 * 24 * 60)]  # two days
    trace = tmp_path / "two-days.csv"
    trace.write_text("".join(head))
    data = collect(query(week, trace=trace, world=WORLD))
    assert data.whatif is not None
    assert list(data.whatif["policies"]) == ["cron", "random", "rules", "oracle"]
    cron, rules = data.whatif["policies"]["cron"], data.whatif["policies"]["rules"]
    assert rules["on_battery_cpu_s"] < cron["on_battery_cpu_s"]
    page = render_page(data)
    assert 'data-policy="oracle"' in page and 'data-policy="smart"' not in page
    assert "Policy smart is not compared: no model (smartcronctl train makes one)." in page


@pytest.mark.parametrize("command", [["status"], ["list"], ["history"], ["report", "--help"]])
def test_the_daemon_and_the_other_commands_load_no_web_library(week, command):
    done = subprocess.run(
        [sys.executable, "-c", _WATCH, *command, "--config", str(week.config), "--user"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr.splitlines()[-1] == "LOADED []", done.stderr


def test_a_hostile_crontab_is_shown_as_text(tmp_path):
    from tests.dashkit import config_text

    (tmp_path / "crontab").write_text(
        "#@smart name=<script>alert(1)</script> window=1h\n"
        '0 1 * * * echo "<script>alert(2)</script>"\n'
        "#@smart name=ok_job window=1h\n"
        '0 2 * * * echo "</script><script>alert(3)</script>"\n'
    )
    os.chmod(tmp_path / "crontab", 0o600)
    (tmp_path / "smartcron.toml").write_text(config_text(tmp_path))
    data = collect(DashQuery(history=None, config=tmp_path / "smartcron.toml", user_mode=True))
    page = render_page(data, live=True, actions=True, token="t")
    assert page.count("<script") == SCRIPTS_OF_THE_PAGE and "</script><" not in page
    for n in (1, 2, 3):  # the bad name= in the file's warning, both commands in the jobs
        assert page.count(f"&lt;script&gt;alert({n})&lt;/script&gt;") == 1


def test_an_open_firing_waits_until_the_end_of_the_period(week, tmp_path):
    from smartcron.smart.firings import FiringStore
    from smartcron.smart.gate import Firing

    db = tmp_path / "open.db"
    _runs(db, [_row(1200, job="other")])  # 2026-01-05 02:00: the newest record
    nominal = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    store = HistoryStore.open(db)
    try:
        firings = FiringStore(store)
        stored = firings.create(
            Firing(
                id=None,
                job_id="nightly_backup",
                nominal=nominal,
                deadline=nominal + timedelta(hours=6),
            ),
            nominal,
        )
        firings.record(
            stored.firing,
            nominal,
            verdict="defer",
            reason="battery 20% < min_battery 30%",
            until=nominal + timedelta(minutes=1),
        )
    finally:
        store.close()
    data = collect(query(week, history=db))
    firing = next(f for f in data.firings if f["job"] == "nightly_backup")
    assert firing["state"] == "pending"
    assert firing["waits"] == [
        {
            "from": nominal.isoformat(),
            "to": data.end,
            "kind": "battery",
            "reason": "battery 20% < min_battery 30%",
        }
    ]
    assert data.end == "2026-01-05T02:01:00+00:00"


def test_what_if_is_simulated_again_only_when_its_inputs_change(week, tmp_path, monkeypatch):
    """The live page collects its data at every run; the What-if view needs none of it."""
    from smartcron.dash import whatif

    with gzip.open(TRACE, "rt") as src:
        head = [next(src) for _ in range(1 + 6 * 60)]  # six hours
    trace = tmp_path / "hours.csv"
    trace.write_text("".join(head))
    world = tmp_path / "world.yaml"
    world.write_bytes(WORLD.read_bytes())
    made = []
    compare = whatif._compare
    monkeypatch.setattr(whatif, "_compare", lambda q, c: made.append(1) or compare(q, c))
    first = collect(query(week, trace=trace, world=world)).whatif
    again = collect(query(week, trace=trace, world=world)).whatif
    assert len(made) == 1 and again == first
    world.write_text(world.read_text() + "\n# edited\n")
    collect(query(week, trace=trace, world=world))
    assert len(made) == 2
