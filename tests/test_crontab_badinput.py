"""Hostile input: the parser gives a clear error or a documented result, never a crash
or a hang. Files come in as bytes decoded with UTF-8 + surrogateescape (or as bytes)."""

from __future__ import annotations

import random

import pytest

from smartcron.cron.crontab import Kind, parse
from smartcron.errors import CrontabSyntaxError

CRON_BYTES = b"* */-,0123456789 \t\n\n\n#@=\"'%\\\r\x00\xffmonjanSUNdailyrebootMAILTO"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _outcome(text: str | bytes, kind: Kind = Kind.USER) -> str:
    try:
        tab = parse(text, kind, "f")
    except CrontabSyntaxError as err:
        assert err.problems and all(p.path == "f" and p.line >= 1 for p in err.problems)
        return "refused"
    return f"{len(tab.entries)} entries"


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", [Kind.USER, Kind.SYSTEM])
def test_random_bytes_are_refused_or_parsed_never_crash(seed: int, kind: Kind):
    rng = random.Random(seed)
    raw = rng.randbytes(rng.randint(0, 50_000))
    mixed = bytes(rng.choice(CRON_BYTES) for _ in range(20_000))
    assert _outcome(_decode(raw), kind)
    assert _outcome(_decode(mixed), kind)
    assert _outcome(mixed, kind) == _outcome(_decode(mixed), kind)  # bytes == decoded text


def test_a_10_mb_file_of_jobs_stops_at_cron_s_line_limit():
    text = "* * * * * echo a fairly ordinary job line\n" * 250_000  # 10.5 MB
    for install, line in ((True, 10001), (False, 10004)):  # crontab(1), then cron
        with pytest.raises(CrontabSyntaxError) as err:
            parse(text, install=install)
        assert [str(p) for p in err.value.problems] == [
            f"-:{line}: crontab must not be longer than 10000 lines"
        ]


def test_a_10_mb_file_of_long_lines_reports_each_one():
    text = ("* * * * * " + "x" * 1200 + "\n") * 8500  # 10.3 MB, 8500 lines
    with pytest.raises(CrontabSyntaxError) as err:
        parse(text)
    assert len(err.value.problems) == 8500
    assert {p.reason for p in err.value.problems} == {"command too long"}


def test_a_10_mb_single_line_is_one_command_too_long():
    with pytest.raises(CrontabSyntaxError, match=r"^-:1: command too long$"):
        parse("* * * * * " + "y" * 10_000_000 + "\n")


def test_a_10_mb_comment_is_just_a_comment():
    assert parse("#" + "c" * 10_000_000 + "\n0 * * * * ok\n").entries[0].line == 2


def test_a_100000_character_command_is_too_long():
    with pytest.raises(CrontabSyntaxError, match="command too long"):
        parse("0 * * * * " + "a" * 100_000 + "\n")


def test_a_100000_character_env_line_is_cut_to_998_bytes_with_a_warning():
    tab = parse("FOO=" + "v" * 100_000 + "\n0 * * * * x\n")
    (assignment,) = tab.env
    assert assignment.value == "v" * 994  # get_string keeps 998 bytes: "FOO=" + 994
    assert "value cut to 998 bytes" in tab.warnings[0].reason


def test_a_100000_digit_minute_is_a_bad_minute():
    with pytest.raises(CrontabSyntaxError, match="bad minute"):
        parse("1" * 100_000 + " * * * * x\n")


def test_a_100000_character_user_name_is_a_bad_username():
    with pytest.raises(CrontabSyntaxError, match="bad username"):
        parse("* * * * * " + "u" * 100_000 + " x\n", Kind.SYSTEM, user_exists=lambda _: False)


def test_invalid_utf8_in_a_command_is_kept_byte_for_byte():
    raw = b"* * * * * printf '\xc3\x28 \xfe\xff \xe2\x82'\n"
    (entry,) = parse(_decode(raw)).entries
    assert entry.command.encode("utf-8", "surrogateescape") == raw[10:-1]


def test_a_missing_final_newline_still_reads_the_last_line_with_a_warning():
    tab = parse("0 * * * * first\n0 1 * * * last")
    assert [e.command for e in tab.entries] == ["first", "last"]
    assert [(w.line, "no newline at end of file" in w.reason) for w in tab.warnings] == [(2, True)]


def test_empty_and_blank_files_have_no_entries():
    for text in ("", "\n", "   \n\t\n", "# only a comment"):
        tab = parse(text)
        assert (tab.entries, tab.env, tab.warnings) == ((), (), ())


def test_crlf_lines_are_kept_as_cron_keeps_them_and_flagged():
    tab = parse("A=b\r\n0 * * * * x\r\n")
    assert tab.env[0].value == "b"  # isspace('\r'): trimmed from an unquoted value
    assert tab.entries[0].command == "x\r"  # but kept in the command, as cron does
    assert [w.line for w in tab.warnings] == [1, 2]


def test_a_crlf_line_cron_refuses_gets_a_hint():
    with pytest.raises(CrontabSyntaxError, match=r"-:2: bad time specifier \(carriage return"):
        parse("0 * * * * x\r\n@daily\r\n")


def test_nul_bytes_split_lines_as_cron_does_and_are_flagged():
    tab = parse("* * * * * a\x00* * * * * b\n")
    assert [(e.line, e.command) for e in tab.entries] == [(1, "a"), (1, "b")]
    assert "NUL byte" in tab.warnings[0].reason


def test_every_bad_line_is_collected_into_one_error():
    text = "\n".join(
        [
            "0 * * * * ok",
            "60 * * * * minute",
            "MAILTO=root",
            "* * * * monday x",
            "# comment",
            "@bogus x",
            "0 0 * * * ok",
            "* * * * * *x",
        ]
    )
    with pytest.raises(CrontabSyntaxError) as err:
        parse(text + "\n", Kind.USER, "/tmp/tab")
    assert str(err.value).splitlines() == [
        "/tmp/tab:2: bad minute",
        "/tmp/tab:4: bad day-of-week",
        "/tmp/tab:6: bad time specifier",
        "/tmp/tab:8: bad command",
    ]


def test_a_bad_line_does_not_swallow_the_next_one():
    # Debian stops at the first error; we restart at the next line, so line 2 is
    # judged on its own (entry.c leaves the stream mid-line after "60").
    with pytest.raises(CrontabSyntaxError) as err:
        parse("60 * * * * x\n0 * * * * fine\n5\n")
    assert [p.line for p in err.value.problems] == [1, 3]


def test_user_names_running_over_many_lines_do_not_make_parsing_quadratic():
    # Each "@daily" line's user name runs (get_string(" \t")) to the end of the file.
    text = "@daily\n" * 10_000 + "z" * 10_000_000 + "\n"
    with pytest.raises(CrontabSyntaxError) as err:
        parse(text, Kind.SYSTEM, install=True)
    reasons = [p.reason for p in err.value.problems]
    assert reasons == ["bad command"] * 10_000 + [
        "bad minute",  # line 10001, the z-line
        "crontab must not be longer than 10000 lines",
    ]
