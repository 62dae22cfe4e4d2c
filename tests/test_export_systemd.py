"""smartcronctl export --to systemd: OnCalendar= checked by systemd itself.

Each crontab is exported with the real command, and systemd-analyze calendar's next 20
elapses of every timer (the union of its OnCalendar= lines) are compared with
smartcronctl next --count 20 for the same line, from the same instant, in UTC (the
system zone here) or in the line's CRON_TZ.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcron.cli.ctl import main as ctl

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
BASE = "2026-01-01T00:00:00+00:00"
COUNT = 20
UTC_ENV = {"TZ": "UTC"}

NASTY = [
    "0 0 13 * 5",  # the 13th OR a Friday
    "0 0 1,15 * mon-wed",
    "*/7 * * * *",
    "0 0 1-31/2 * *",
    "0 12 */2 * mon",  # '*'-started day field: ANDed
    "0 0 * * */3",
    "0 0 29 2 *",  # Feb 29: leap years only
    "0 0 29 2 1",  # Feb 29 or a Monday
    "0 0 31 * *",
    "0 0 31 4,6 *",  # never
    "0 0 30 2 *",  # never
    "0 0 31 2 sun",  # the 31st never is in February: Sundays in February only
    "15 10 * jan,jul sat,sun",
    "5 4 * * 7",
    "0 22 * * 1-5",
    "23 0-23/2 * * *",
    "0 0 1-31 * 3",  # a full day-of-month list ORs: every day
    "@yearly",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
    "59 23 31 12 5",
    "1-5/2,30 */5 * * *",
    "0 0 1 1 0-6",
]


def export_units(crontab: str, tmp_path: Path) -> tuple[dict[int, list[str]], str]:
    """line -> its timer's OnCalendar= values (smartcronctl export), and stderr."""
    tab = tmp_path / "crontab"
    tab.write_text(crontab)
    out = tmp_path / "units"
    result = CliRunner().invoke(
        ctl, ["export", "--to", "systemd", "--crontab", str(tab), "--out", str(out)], env=UTC_ENV
    )
    assert result.exit_code == 0, result.stderr
    calendars: dict[int, list[str]] = {}
    for timer in sorted(out.glob("*.timer")):
        text = timer.read_text()
        line = int(re.search(r"export from .*:(\d+):", text).group(1))
        calendars[line] = re.findall(r"^OnCalendar=(.*)$", text, re.M)
    return calendars, result.stderr


def next_by_line(crontab: str, tmp_path: Path, after: str = BASE) -> dict[int, list[str]]:
    """smartcronctl next --file --count 20 --json: line -> its instants in UTC."""
    tab = tmp_path / "crontab"
    tab.write_text(crontab)
    result = CliRunner().invoke(
        ctl,
        ["next", "--file", str(tab), "--count", str(COUNT), "--after", after, "--json"],
        env=UTC_ENV,
    )
    assert result.exit_code == 0, result.stderr
    return {
        item["line"]: [_utc(datetime.fromisoformat(t)) for t in item["times"]]
        for item in json.loads(result.stdout)
    }


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


_ELAPSE = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC$", re.M)


def analyze(expressions: list[str], after: str = BASE) -> list[list[str]]:
    """systemd-analyze calendar --iterations=20 for many expressions in one call."""
    if not expressions:
        return []
    base = datetime.fromisoformat(after).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    proc = subprocess.run(
        [ANALYZE, "calendar", f"--iterations={COUNT}", f"--base-time={base}", *expressions],
        capture_output=True,
        text=True,
        env={**os.environ, **UTC_ENV},
        timeout=60,
    )
    # An expression that never elapses makes the command fail ("Next elapse: never").
    blocks = re.split(r"\n(?=\s*Original form:|Normalized form:)", proc.stdout.strip())
    blocks = [b for b in blocks if "Normalized form:" in b]
    assert len(blocks) == len(expressions), proc.stdout + proc.stderr
    return [_ELAPSE.findall(block) for block in blocks]


def compare(crontab: str, tmp_path: Path, after: str = BASE) -> dict[int, tuple]:
    """Each line whose timer and smartcronctl next disagree: line -> (timer, next)."""
    calendars, _ = export_units(crontab, tmp_path)
    expected = next_by_line(crontab, tmp_path, after)
    flat = [expr for line in sorted(calendars) for expr in calendars[line]]
    elapses = iter(analyze(flat, after))
    differ = {}
    for line in sorted(expected):
        merged: set[str] = set()
        for _ in calendars.get(line, []):
            merged.update(next(elapses))
        got = sorted(merged)[:COUNT]
        if got != expected[line]:
            differ[line] = (got, expected[line])
    return differ


@needs_analyze
def test_the_nasty_expressions_elapse_as_smartcronctl_next_says(tmp_path: Path) -> None:
    crontab = "".join(f"{expr} true\n" for expr in NASTY)
    assert compare(crontab, tmp_path) == {}
    calendars, _ = export_units(crontab, tmp_path)
    # dom and dow both restricted: two OnCalendar= lines, their union; '*/2' ANDs in one.
    assert calendars[1] == ["*-*-13 00:00:00", "Fri *-*-* 00:00:00"]
    assert calendars[5] == ["Mon *-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 12:00:00"]
    assert 10 not in calendars and 11 not in calendars  # never fire: not exported


def _field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    value = number.map(str) | (st.sampled_from(names) if names else number.map(str))
    ranged = st.tuples(number, number).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.integers(1, high - low + 1).map(str)
    part = st.one_of(
        value,
        ranged,
        st.tuples(ranged, step).map("/".join),
        step.map(lambda s: f"*/{s}"),
    )
    return st.just("*") | st.lists(part, min_size=1, max_size=3).map(",".join)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
EXPRESSIONS = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12, _MONTHS), _field(0, 7, _DAYS)
).map(" ".join)


@needs_analyze
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(EXPRESSIONS, min_size=100, max_size=100))
def test_generated_expressions_elapse_as_smartcronctl_next_says(
    tmp_path_factory: pytest.TempPathFactory, expressions: list[str]
) -> None:
    tmp_path = tmp_path_factory.mktemp("gen")
    crontab = "".join(f"{expr} true\n" for expr in expressions)
    assert compare(crontab, tmp_path) == {}


BERLIN_LINES = [
    "30 2 * * *",  # in the skipped hour: cron runs it at the gap's end
    "0 2 * * *",
    "15 2-3 * * *",
    "30 2 29 3 *",  # only when Mar 29 is the change day (2026, 2037, 2043)
    "*/15 * * * *",  # wildcard: cron runs it again in the repeated hour
    "0 */2 * * *",
    "*/20 2 * * *",
    "30 1 * * *",  # away from the change: identical
    "0 3 * * *",
    "45 12 * * mon",
]


def _dst_extra(instant: str, expr: str) -> bool:
    """An instant cron.c's clock-change rules add (schedule.py): a skipped wall time
    caught up at the gap's end, or a wildcard job's second pass in a repeated hour."""
    from zoneinfo import ZoneInfo

    from smartcron.cron.crontab import parse_timespec
    from smartcron.cron.schedule import matches

    wall = datetime.fromisoformat(instant + "+00:00").astimezone(ZoneInfo("Europe/Berlin"))
    return wall.fold == 1 or not matches(parse_timespec(expr), wall.replace(tzinfo=None))


@needs_analyze
@pytest.mark.parametrize("after", ["2026-03-28T12:00:00+00:00", "2026-10-24T22:00:00+00:00"])
def test_cron_tz_across_dst_differs_only_by_crons_clock_change_rules(
    tmp_path: Path, after: str
) -> None:
    crontab = "CRON_TZ=Europe/Berlin\n" + "".join(f"{e} true\n" for e in BERLIN_LINES)
    calendars, _ = export_units(crontab, tmp_path)
    assert calendars[2] == ["*-*-* 02:30:00 Europe/Berlin"]
    timer = next((tmp_path / "units").glob("*.timer")).read_text()
    assert "# systemd skips a DST gap's times and runs a repeated hour once" in timer
    extras = 0
    for line, (timer, cron) in compare(crontab, tmp_path, after).items():
        expr = BERLIN_LINES[line - 2]
        kept = [t for t in cron if not _dst_extra(t, expr)]
        extras += len(cron) - len(kept)
        assert timer[: len(kept)] == kept, expr
    # The rules do apply here (the comparison above is not vacuous): systemd skips the
    # catch-up at the spring gap, and the second pass of the repeated autumn hour.
    # 2026-03-29: 30 2, 0 2, 15 2-3 once each, 30 2 29 3 in 2026, 2037 and 2043;
    # 2026-10-25: */15 four times, 0 */2 once, */20 2 three times, 30 2 29 3 twice.
    assert extras == (6 if after.startswith("2026-03") else 10)


def test_smart_keys_become_timer_and_service_settings_and_the_rest_comments(
    tmp_path: Path,
) -> None:
    tab = tmp_path / "crontab"
    tab.write_text(
        "#@smart name=nightly window=2h timeout=30m ac=yes max_load=1.5 jitter=10m overlap=skip\n"
        "0 3 * * * backup --all 50%% off%in\n"
        "#@smart name=plain-catchup catchup=no\n"
        "0 4 * * * other\n"
        "0 5 * * * plain\n"
    )
    out = tmp_path / "units"
    args = ["export", "--to", "systemd", "--crontab", str(tab), "--out", str(out)]
    result = CliRunner().invoke(ctl, args, env=UTC_ENV)
    assert result.exit_code == 0, result.stderr
    timer, service = (out / "nightly.timer").read_text(), (out / "nightly.service").read_text()
    assert "OnCalendar=*-*-* 03:00:00\n" in timer
    # catchup=once, the default: a missed firing runs once after boot.
    assert "RandomizedDelaySec=600\nFixedRandomDelay=true\nPersistent=true\n" in timer
    assert "ConditionACPower=true\n" in service
    assert f"User={pwd.getpwuid(os.geteuid()).pw_name}\n" in service  # the file's owner
    assert "RuntimeMaxSec=1800\n" in service
    # '%' ends cron's command: the rest is stdin, each further '%' a newline.
    execute = r"ExecStart='/bin/sh' -c 'printf %%s \'\n off\nin\n\' | {\nbackup --all 50\n}'"
    assert execute + "\n" in service
    for text in (timer, service):
        assert "# smartcron: window=7200 (no systemd equivalent)" in text
        assert "# smartcron: max_load=1.5 (no systemd equivalent)" in text
        assert "ac=" not in text.replace("ConditionACPower", "")
    assert "Persistent" not in (out / "plain-catchup.timer").read_text()  # catchup=no
    assert "Persistent" not in (out / "plain-5.timer").read_text()  # cron: none missed
    assert "DST" not in timer  # TZ=UTC here
    assert (
        f"{tab}:2: nightly: the smart gate does not run under systemd; keys kept as "
        "comments: window, max_load" in result.stderr
    )


def test_stdout_has_each_unit_under_a_file_header_and_warns_on_stderr(tmp_path: Path) -> None:
    tab = tmp_path / "crontab"
    tab.write_text("#@smart name=Nightly_Backup max_load=2\n0 3 * * * backup\n@reboot boot\n")
    result = CliRunner().invoke(ctl, ["export", "--to", "systemd", "--crontab", str(tab)])
    assert result.exit_code == 0, result.stderr
    headers = re.findall(r"^# FILE: (.*)$", result.stdout, re.M)
    assert headers == ["nightly-backup.timer", "nightly-backup.service"]
    assert f"{tab}:2: nightly-backup: the smart gate does not run under systemd" in result.stderr
    assert "max_load" in result.stderr
    assert f"{tab}:3: not exported: @reboot" in result.stderr


def test_system_crontabs_run_as_their_user_field(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("17 * * * * root cd / && run-parts /etc/cron.hourly\n")
    (tmp_path / "cron.d").mkdir()
    (tmp_path / "cron.d" / "php").write_text("09,39 * * * * www-data [ -x /x ] && /x\n")
    (tmp_path / "cron.d" / "skipped.dpkg-old").write_text("* * * * * root no\n")
    config = tmp_path / "smartcron.toml"
    config.write_text('crontab = "crontab"\ncron_d = "cron.d"\n')
    out = tmp_path / "units"
    args = ["export", "--to", "systemd", "--system", "--config", str(config), "--out", str(out)]
    result = CliRunner().invoke(ctl, args)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "cd-1.service", "cd-1.timer", "php-1.service", "php-1.timer",
    ]  # fmt: skip
    assert "User=root\n" in (out / "cd-1.service").read_text()
    assert "User=www-data\n" in (out / "php-1.service").read_text()
    assert "OnCalendar=*-*-* *:09,39:00\n" in (out / "php-1.timer").read_text()


def test_a_bad_crontab_line_fails_the_export_with_its_place(tmp_path: Path) -> None:
    tab = tmp_path / "crontab"
    tab.write_text("0 3 * * * fine\n61 * * * * bad\n")
    result = CliRunner().invoke(ctl, ["export", "--to", "systemd", "--crontab", str(tab)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tab}:2: ")


@needs_analyze
def test_systemd_analyze_verify_accepts_the_generated_units(tmp_path: Path) -> None:
    crontab = (
        'MAILTO=""\nGREETING=it\'s "100%" $fine\\n\n'
        "#@smart name=odd timeout=90 ac=yes\n"
        "0 0 13 * 5 echo \"$GREETING\" 'x' \\% \\\\ $((1+1))%in%put\n"
        "*/7 1-5 * * * date\n"
    )
    export_units(crontab, tmp_path)
    units = sorted(str(p) for p in (tmp_path / "units").iterdir())
    assert len(units) == 4
    proc = subprocess.run(
        [ANALYZE, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )
    if "Failed to" in proc.stderr and "bus" in proc.stderr.lower():
        pytest.skip(f"systemd-analyze verify cannot run here: {proc.stderr.strip()}")
    assert (proc.returncode, proc.stderr) == (0, "")
