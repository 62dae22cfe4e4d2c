"""Real cron files shipped by Debian packages (fixtures/corpus, see its README) parse in
system format, and their schedules give plausible next fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path

import pytest

from smartcron.cron.crontab import Crontab, Kind, cron_d_name_ok, parse

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
USERS = {"root", "www-data", "amavis", "logcheck", "list", "munin"}
START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # a Friday


def _load(path: Path) -> Crontab:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return parse(text, Kind.SYSTEM, str(path), USERS.__contains__)


def test_the_corpus_has_the_files_the_readme_lists():
    readme = (CORPUS / "README.md").read_text()
    assert len(FILES) >= 15
    for path in FILES:
        assert f"| {path.parent.name} |" in readme and f"| {path.name} |" in readme


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_corpus_file_parses_cleanly_in_system_format(path: Path):
    tab = _load(path)
    assert tab.entries, "every shipped file has at least one job"
    assert tab.warnings == ()
    assert all(e.user in USERS and e.command.strip() for e in tab.entries)
    if path.name != "crontab":
        assert cron_d_name_ok(path.name), "Debian's cron would skip this cron.d name"


def test_etc_crontab_runs_the_four_run_parts_jobs_at_debian_s_times():
    tab = _load(CORPUS / "cron-daemon-common" / "crontab")
    assert dict(tab.entries[0].env) == {
        "SHELL": "/bin/sh",
        "PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
    }
    times = [(e.spec.text, e.command.split("--report ")[1].split(";")[0]) for e in tab.entries]
    assert times == [
        ("17 *\t* * *", "/etc/cron.hourly"),
        ("25 6\t* * *", "/etc/cron.daily"),
        ("47 6\t* * 7", "/etc/cron.weekly"),
        ("52 6\t1 * *", "/etc/cron.monthly"),
    ]
    assert tab.entries[2].spec.dows == frozenset({0})  # 7 is Sunday


def test_escaped_percent_in_mdadm_reaches_the_shell_as_percent():
    (entry,) = _load(CORPUS / "mdadm" / "mdadm").entries
    assert "$(date +%d)" in entry.shell_command and entry.stdin is None


EXPECTED_NEXT = {
    # file: first fire after START (2024-03-01 12:00 UTC, a Friday), in UTC
    "cron-daemon-common/crontab": "2024-03-01T12:17",  # 17 * * * *
    "e2fsprogs/e2scrub_all": "2024-03-02T03:10",  # 10 3 * * *
    "sysstat/sysstat": "2024-03-01T12:05",  # 5-55/10 * * * *
    "php-common/php": "2024-03-01T12:09",  # 09,39 * * * *
    "certbot/certbot": "2024-03-02T00:00",  # 0 */12 * * *
    "mdadm/mdadm": "2024-03-03T00:57",  # 57 0 * * 0: Sunday
    "anacron/anacron": "2024-03-01T12:30",  # 30 7-23 * * *
}


def test_next_fire_times_are_plausible():
    schedule = pytest.importorskip("smartcron.cron.schedule")
    for path in FILES:
        key = f"{path.parent.name}/{path.name}"
        fires = []
        for entry in _load(path).entries:
            upcoming = list(islice(schedule.next_fires(entry.spec, START, UTC), 5))
            if entry.spec.reboot:
                assert upcoming == [], key
                continue
            assert len(upcoming) == 5, key
            assert all(a < b for a, b in pairwise(upcoming)), key
            assert START < upcoming[0] <= START + timedelta(days=32), key
            assert all(
                schedule.matches(entry.spec, t.astimezone(UTC).replace(tzinfo=None))
                for t in upcoming
            ), key
            fires.append(upcoming[0])
        if key in EXPECTED_NEXT:
            assert min(fires).strftime("%Y-%m-%dT%H:%M") == EXPECTED_NEXT[key], key
