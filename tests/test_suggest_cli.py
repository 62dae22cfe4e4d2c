"""`smartcronctl suggest` as a user runs it (issue 16, point 7): a real process, its
output checked by the real `smartcrontab -T`, and the bad input the issue names."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from smartcron.cli import crontabedit
from smartcron.cron.crontab import Kind
from smartcron.daemon import installcheck
from smartcron.smart.suggest import suggest
from smartcron.smart.suggestwords import SuggestError

EXAMPLE = (
    "back up every night around 1am when I'm idle and on AC power, retry twice,"
    " give up after 6 hours"
)


def tool(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """One of the console scripts, in a process of its own."""
    code = (
        f"import sys; sys.argv[0] = {name!r}; from smartcron.cli.{MAINS[name]} import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


MAINS = {"smartcronctl": "ctl", "smartcrontab": "crontab"}


def test_the_issues_example_prints_the_smart_line_and_the_job_line_and_says_what_it_left_out():
    result = tool("smartcronctl", "suggest", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "#@smart window=6h ac=yes idle=10m retry=2 on_deadline=skip",
        "0 1 * * * /path/to/command",
    ]
    assert result.stderr.splitlines() == [
        "smartcronctl: not understood, left out: 'back up'",
        "smartcronctl: replace /path/to/command with the command to run (or pass --command)",
    ]


def test_what_suggest_prints_is_installed_as_is_by_smartcrontab_T(tmp_path: Path):
    printed = tool("smartcronctl", "suggest", EXAMPLE, "--command", "tar czf /tmp/b.tgz ~")
    tab = tmp_path / "tab"
    tab.write_text(printed.stdout)
    checked = tool("smartcrontab", "-T", str(tab))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""


def test_json_gives_schedule_annotation_line_and_unparsed_and_escapes_percent_in_the_command():
    result = tool(
        "smartcronctl", "suggest", "weekdays", "at", "9:30,", "only mail me on errors, please",
        "--command", "date +%F >> /tmp/log", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "schedule": "30 9 * * 1-5",
        "annotation": {"mail": "error"},
        "line": "#@smart mail=error\n30 9 * * 1-5 date +\\%F >> /tmp/log",
        "unparsed": [],
    }
    assert result.stderr == ""  # a command given, every word understood: nothing to say


def test_a_plain_schedule_prints_no_smart_line():
    assert suggest("every 15 minutes").lines("x") == ["*/15 * * * * x"]


def test_a_sentence_of_ten_thousand_words_is_refused_at_once_with_exit_1():
    words = " ".join(["every night at 1am when I'm idle"] * 1430)  # 10,010 words
    started = time.monotonic()
    result = tool("smartcronctl", "suggest", words)
    assert time.monotonic() - started < 20  # a process start; the refusal itself is instant
    assert result.returncode == 1
    assert result.stdout == ""
    assert re.fullmatch(
        r"the description is \d+ characters long; at most 2000: describe one job in a"
        r" sentence or two\n",
        result.stderr,
    )


def test_the_longest_text_accepted_is_read_in_bounded_time():
    # Shapes that make a careless regular expression backtrack exponentially.
    for text in ("after " + "a and " * 330, "mon and " * 250, "at " + "1am and " * 249):
        started = time.perf_counter()
        with contextlib.suppress(SuggestError):  # refusing is fine, hanging is not
            suggest(text[:2000])
        assert time.perf_counter() - started < 1.0, text[:20]


def test_a_sentence_with_nothing_recognisable_exits_1_with_a_clear_message():
    result = tool("smartcronctl", "suggest", "make me a sandwich")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("nothing recognised in 'make me a sandwich': say when")


def test_keys_without_a_schedule_are_refused():
    result = tool("smartcronctl", "suggest", "when I'm idle and on AC power")
    assert result.returncode == 1
    assert result.stderr.startswith("no schedule found: say when the job runs")


def test_two_schedules_in_one_sentence_are_refused_naming_both_parts():
    result = tool("smartcronctl", "suggest", "every night at 1am and every Sunday at noon")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "conflicting parts: 'at 1am' and 'at noon'; a crontab line has one schedule and one"
        " value per key: describe each job in its own sentence\n"
    )


def test_other_conflicts_and_impossible_values_are_refused_with_their_words():
    cases = {
        "every night, retry twice and retry 3 times": "conflicting parts: 'retry twice' and"
        " 'retry 3 times'",
        "every night at noon": "conflicting parts: 'every night' and 'at noon'",
        "every 45 minutes": "'every 45 minutes': cron cannot repeat that evenly; every N"
        " minutes needs N in 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30",
        "daily, retry 500 times": "'retry 500 times': retry: 500 is outside 0..100",
        "daily when the battery is above 150%": "'the battery is above 150%': min_battery:"
        " 150% is over 100%",
        "on the 31st of february": "'0 0 31 2 *' never fires",
        "at 13pm": "'13pm' is not a time of day",
        "every other day": "'every other day': cron cannot repeat that evenly",
        "on the last day of the month": "'on the last day of the month': crontab(5) has no"
        " last day of the month",
        "twice a week": "'twice a week': say which days (on mondays and thursdays)",
        "every minute with up to 5 minutes of jitter": "the lines would not pass smartcrontab"
        " -T: jitter=5m is longer than the job's window (30s)",
    }
    for text, message in cases.items():
        result = tool("smartcronctl", "suggest", text)
        assert (result.returncode, result.stdout) == (1, ""), text
        assert result.stderr.startswith(message), (text, result.stderr)


def test_a_command_of_two_lines_is_refused():
    result = tool("smartcronctl", "suggest", "hourly", "--command", "a\nb")
    assert result.returncode == 1
    assert result.stderr == "--command: one line only (a crontab line ends at a newline)\n"


def test_a_command_crontab_would_refuse_is_refused_with_smartcrontab_Ts_reason():
    result = tool("smartcronctl", "suggest", "hourly", "--command", "echo " + "x" * 1200)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "the lines would not pass smartcrontab -T: command too long\n"


def test_the_crontab_template_shows_a_suggest_example_that_works():
    text = crontabedit.HELP_TEXT.decode()
    found = re.search(r'^# smartcronctl suggest "([^"]+)"$', text, re.MULTILINE)
    assert found, "no suggest example in smartcrontab -e's template"
    lines = suggest(found.group(1)).lines("true")
    assert lines == ["#@smart idle=10m retry=2", "30 9 * * 1-5 true"]
    body = (text + "\n".join(lines) + "\n").encode()
    assert installcheck.check(body, "tab", Kind.USER) == ([], [])
