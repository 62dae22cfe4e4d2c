"""The accept/reject table of tests/test_crontab_table.py: one crontab (usually one
line), the verdict Debian's cron 3.0pl1-162 gives it, and why (entry.c, env.c, misc.c,
crontab.c). "ok" means accepted; anything else is the reason of the first problem,
reported on `line`. Cases marked "regression" are disagreements with Debian's
`crontab -n` found and fixed. tests/test_differential_crontab.py replays it on Debian.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartcron.cron.crontab import Kind


@dataclass(frozen=True)
class Case:
    text: str
    verdict: str  # "ok" or cron's reason
    why: str
    kind: Kind = Kind.USER
    line: int = 1
    install: bool = True  # crontab(1)'s check (-n), else the daemon's (user.c)


U, S = Kind.USER, Kind.SYSTEM
CASES: dict[str, Case] = {
    # ---- minute .. day-of-week ranges (set_element / get_range's range check)
    "plain_line": Case("0 * * * * x", "ok", "five fields and a command"),
    "minute_60": Case("60 * * * * x", "bad minute", "minutes are 0-59"),
    "hour_24": Case("* 24 * * * x", "bad hour", "hours are 0-23"),
    "dom_0": Case("* * 0 * * x", "bad day-of-month", "days of month are 1-31"),
    "dom_32": Case("* * 32 * * x", "bad day-of-month", "days of month are 1-31"),
    "month_0": Case("* * * 0 * x", "bad month", "months are 1-12"),
    "month_13": Case("* * * 13 * x", "bad month", "months are 1-12"),
    "dow_8": Case("* * * * 8 x", "bad day-of-week", "days of week are 0-7"),
    "dow_7_sunday": Case("* * * * 7 x", "ok", "7 is Sunday too (LAST_DOW is 7)"),
    "dow_0_sunday": Case("* * * * 0 x", "ok", "0 is Sunday"),
    "dow_1_to_7": Case("* * * * 1-7 x", "ok", "a range may end on 7"),
    "range_past_end": Case("5-64/30 * * * * x", "bad minute", "get_range checks both ends"),
    "never_on_feb_31": Case("0 0 31 2 * x", "ok", "valid fields, even if the date never comes"),
    # ---- steps
    "star_step": Case("*/5 * * * * x", "ok", "'*' takes a step"),
    "range_step": Case("1-5/2 * * * * x", "ok", "a range takes a step"),
    "step_zero": Case("*/0 * * * * x", "bad minute", "num3 <= 0 is refused"),
    "step_without_range": Case("5/10 * * * * x", "bad minute", "'Step specified without range'"),
    "step_60": Case("*/60 * * * * x", "ok", "a step as wide as the field gives minute 0"),
    "step_missing": Case("*/ * * * * x", "bad minute", "get_number finds no digits"),
    "step_on_names": Case("* * * * mon-fri/2 x", "ok", "names make ranges that take steps"),
    "step_overflow_regression": Case(
        "1-59/2147483647 * * * * x",
        "bad minute",
        "regression: `i += num3` overflows a C int to a negative i, refused by set_element",
    ),
    "step_overflow_from_zero": Case(
        "0-59/2147483647 * * * * x", "ok", "0 + INT_MAX does not overflow: the loop just ends"
    ),
    # ---- odd shapes get_list tolerates or not
    "reversed_range": Case("10-5 * * * * x", "ok", "accepted; the loop sets no bit, never runs"),
    "trailing_junk": Case("5; * * * * x", "ok", "Skip_Nonblanks ignores junk after a range"),
    "alnum_junk": Case("5x * * * * x", "bad minute", "'5x' is one token, not all digits"),
    "empty_list_item": Case("1,,2 * * * * x", "bad minute", "a range cannot start with ','"),
    "dangling_dash": Case("1- * * * * x", "bad minute", "a range needs its second number"),
    "negative": Case("-1 * * * * x", "bad minute", "'-' cannot start a number"),
    "star_in_list": Case("*,5 * * * * x", "ok", "'*' is a range like any other"),
    "leading_zeros": Case("00 007 01 01 00 x", "ok", "atoi ignores leading zeros"),
    "atoi_wraps": Case("4294967301 * * * * x", "ok", "strtol, then the int cast: minute 5"),
    "atoi_saturates": Case("99999999999999999999 * * * * x", "bad minute", "LONG_MAX -> -1"),
    "token_999": Case("0" * 998 + "5 * * * * x", "ok", "a 999-character number still fits"),
    "token_1000": Case("0" * 999 + "5 * * * * x", "bad minute", "MAX_TEMPSTR: 1000 is too long"),
    # ---- names
    "names_any_case": Case("* * * JAN,feb,Mar SUN x", "ok", "strcasecmp"),
    "monday": Case("* * * * monday x", "bad day-of-week", "only three-letter names"),
    "sunday": Case("* * * * sunday x", "bad day-of-week", "only three-letter names"),
    "unknown_month": Case("* * * foo * x", "bad month", "not a name, not digits"),
    "name_in_minutes": Case("jan * * * * x", "bad minute", "names only in month and dow"),
    "month_name_in_dow": Case("* * * * jan x", "bad day-of-week", "each field has its names"),
    # ---- @keywords
    "at_reboot": Case("@reboot x", "ok", "WHEN_REBOOT"),
    "at_bogus": Case("@bogus x", "bad time specifier", "not one of entry.c's keywords"),
    "at_upper_case": Case("@DAILY x", "bad time specifier", "keywords compare with strcmp"),
    "at_alone": Case("@ x", "bad time specifier", "the empty keyword"),
    "at_no_command": Case("@daily", "ok", "an empty command is accepted"),
    # ---- the command
    "empty_command": Case("* * * * *", "ok", "get_string gives an empty command"),
    "star_command": Case("* * * * * *x", "bad command", "user crontab command starting '*'"),
    "six_fields": Case("* * * * * * x", "bad command", "the sixth '*' starts the command"),
    "at_star_command": Case("@daily *x", "bad command", "the '*' rule also follows @keywords"),
    "command_998": Case("* * * * * " + "a" * 998, "ok", "strnlen(cmd) 998 < MAX_COMMAND - 1"),
    "command_999": Case("* * * * * " + "a" * 999, "command too long", "== MAX_COMMAND - 1"),
    "command_bytes_regression": Case(
        "* * * * * " + "é" * 500,
        "command too long",
        "regression: MAX_COMMAND counts bytes; 500 'é' are 1000 bytes",
    ),
    "command_multibyte_fits": Case("* * * * * " + "é" * 499, "ok", "998 bytes fit"),
    "command_crlf": Case("* * * * * x\r", "ok", "'\\r' is part of the command"),
    "blank_crlf_line": Case("\r", "bad minute", "a CRLF blank line is not blank to cron"),
    "leading_blanks": Case(" \t0 * * * * x", "ok", "skip_comments skips blanks"),
    "comment_only": Case("  # just a comment", "ok", "comments and blank lines are skipped"),
    # ---- environment lines (env.c)
    "env_plain": Case("FOO=bar", "ok", "NAME=VALUE"),
    "env_spaces": Case("FOO = bar baz  ", "ok", "blanks around '=' and trailing ones go"),
    "env_empty_value": Case("FOO=", "bad minute", "ends in EQ2: not an assignment, bad entry"),
    "env_comment_after_quote": Case(
        'FOO="a" # x', "bad minute", "only blanks may follow a closing quote (FINI -> ERROR)"
    ),
    "env_unclosed_quote": Case('FOO="a', "bad minute", "ends in a quoted VALUE: not one"),
    "env_quoted_name": Case("'A B'=c", "ok", "a quoted name may hold blanks"),
    "env_equals_in_quoted_name": Case("'a=b'=c", "bad minute", "'=' inside a quoted name"),
    "env_blank_in_name": Case("a b = c", "bad minute", "a blank ends the name; then '=' needed"),
    "env_leftovers_regression": Case(
        'ab"=x\n"',
        "ok",
        "regression: env.c reads past a line ending in an opening quote into what the"
        ' previous line left in its buffer ("=x"), so `"` alone is an assignment',
    ),
    "env_leftovers_need_a_quote": Case(
        '"', "bad minute", "with nothing left in the buffer it is a bad entry"
    ),
    # ---- NUL and 0xFF bytes (C string and `char` artefacts)
    "nul_ends_command_regression": Case(
        "* * * * * echo\0", "ok", "regression: get_string stops at NUL; the rest is empty"
    ),
    "nul_then_junk_regression": Case(
        "* * * * * echo\0junk",
        "bad minute",
        "what follows a NUL is read as a new line: 'junk' is a bad minute",
    ),
    "nul_then_comment": Case("* * * * * echo\0# c", "ok", "what follows a NUL may be a comment"),
    "byte_ff_as_eof_regression": Case(
        "* * * * * \udcffcmd",
        "bad day-of-week",
        "regression: get_list returns char, so a 0xFF byte after the fields reads as EOF",
    ),
    # ---- system crontabs (/etc/crontab, /etc/cron.d)
    "system_line": Case("* * * * * root echo", "ok", "the sixth field is the user", S),
    "system_star_command": Case("@daily root *x", "ok", "no '*' rule in system files", S),
    "system_unknown_user": Case("* * * * * nobody_here x", "bad username", "getpwnam fails", S),
    "system_no_command": Case("* * * * * root", "bad command", "EOF while reading the user", S),
    "system_no_user": Case("* * * * *", "bad command", "EOF while reading the user", S),
    "system_user_runs_on_regression": Case(
        "* * * * *\n* * * * * root x",
        "bad username",
        "regression: get_string(' \\t') reads the user across the newline ('\\n*')",
        S,
    ),
    # ---- whole files
    "too_many_lines": Case(
        "#\n" * 10001, "crontab must not be longer than 10000 lines", "MAX_TAB_LINES", line=10001
    ),
    "just_enough_lines": Case("#\n" * 9999 + "#", "ok", "10000 lines are allowed"),
    "daemon_line_limit_regression": Case(
        "0 * * * * x\n" * 10003,
        "ok",
        "regression: cron's load_user allows MAX_TAB_LINES + NHEADER_LINES lines",
        install=False,
    ),
    "daemon_too_many_lines": Case(
        "0 * * * * x\n" * 10004,
        "crontab must not be longer than 10000 lines",
        "a job starting at line 10004 ends the loop with LineNumber 10005",
        install=False,
        line=10004,
    ),
    "daemon_ignores_a_comment_tail_regression": Case(
        "0 * * * * root x\n" + "#\n" * 20000,
        "ok",
        "regression: load_user leaves at EOF (goto done) before its line check",
        S,
        install=False,
    ),
    "second_line_bad": Case("0 * * * * x\n60 * * * * y", "bad minute", "line numbers", line=2),
}
