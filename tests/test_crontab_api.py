"""The parser's small public helpers: parse_timespec, parse_env_line, split_command,
cron_d_name_ok."""

from __future__ import annotations

import pytest

from smartcron.cron.crontab import cron_d_name_ok, parse_env_line, parse_timespec, split_command
from smartcron.errors import CrontabSyntaxError


def test_parse_timespec_reads_five_fields_or_a_keyword():
    assert parse_timespec(" */20 * * * * ").minutes == frozenset({0, 20, 40})
    assert parse_timespec("@weekly").dows == frozenset({0})
    assert parse_timespec("@reboot").reboot


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "<expr>:1: bad minute"),
        ("* * * *", "<expr>:1: bad day-of-week"),
        ("@often", "<expr>:1: bad time specifier"),
        ("* * * * * echo", "<expr>:1: unexpected text after the time fields: 'echo'"),
    ],
)
def test_parse_timespec_errors_name_cron_s_reason(expr: str, message: str):
    with pytest.raises(CrontabSyntaxError) as err:
        parse_timespec(expr)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=b", ("A", "b")),
        ("A = 'b c '", ("A", "b c")),
        ("A=\"'b'\"", ("A", "b")),
        ("A=", None),
        ('A="b" c', None),
        ("not an assignment", None),
        ("A=" + "x" * 2000, ("A", "x" * 996)),
    ],
)
def test_parse_env_line_follows_env_c(line: str, expected: tuple[str, str] | None):
    assert parse_env_line(line) == expected


def test_parse_env_line_reads_leftovers_after_an_opening_quote():
    assert parse_env_line('A="') is None
    assert parse_env_line('A="', leftovers=b'junk"  ') == ("A", "")
    assert parse_env_line('A="', leftovers=b'junk" x') is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo hi", ("echo hi", None)),
        ("cat%a%b", ("cat", "a\nb\n")),
        ("date +\\%s", ("date +%s", None)),
        ("cat%", ("cat", "")),
        ("cat%x\\%y", ("cat", "x%y\n")),
    ],
)
def test_split_command_follows_do_command_c(command: str, expected: tuple[str, str | None]):
    assert split_command(command) == expected


@pytest.mark.parametrize(
    ("name", "ok"),
    [("php", True), ("e2scrub_all", True), ("my-job2", True), ("job.dpkg-old", False),
     ("x.yaml", False), ("", False), ("a b", False), ("~backup", False)],
)  # fmt: skip
def test_cron_d_name_ok_is_debian_s_run_parts_rule(name: str, ok: bool):
    assert cron_d_name_ok(name) is ok
