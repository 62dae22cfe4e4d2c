"""Properties of crontab.parse: any bytes in, a Crontab or CrontabSyntaxError out, and
every bad line reported by its number (Debian stops at the first; `parse` goes on)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.cron.crontab import Crontab, Kind, parse
from smartcron.errors import CrontabSyntaxError

# Tokens cron's grammar cares about, so that random files get past the first field.
TOKENS = [
    *[
        "0",
        "1",
        "5",
        "7",
        "12",
        "23",
        "31",
        "59",
        "60",
        "*",
        "-",
        ",",
        "/",
        "@",
        "%",
        "=",
        "#",
        "\\",
        "'",
        '"',
        "\t",
        "\r",
        "\n",
        "\x00",
        "ÿ",
        "x",
    ],
    " ",
    "\n",
    "\t",
    "@reboot",
    "@daily",
    "@yearly",
    "mon",
    "jan",
    "sun-sat",
    "*/0",
    "*/5",
    "1-5",
    "root",
    "#@smart",
    "#@smart window=2h",
    "FOO=",
    "A='b",
    'MAILTO=""',
]

cronish = st.lists(st.sampled_from(TOKENS), max_size=80).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogateescape")
)
anything = st.one_of(st.binary(max_size=600), cronish)


@settings(max_examples=500, deadline=None)
@given(data=anything, kind=st.sampled_from(Kind), install=st.booleans())
def test_parse_of_any_bytes_returns_a_crontab_or_raises_only_its_syntax_error(
    data: bytes, kind: Kind, install: bool
) -> None:
    lines = data.count(b"\n") + 1
    try:
        tab = parse(data, kind, path="f", install=install)
    except CrontabSyntaxError as err:
        assert err.problems
        assert all(p.path == "f" and 1 <= p.line <= lines for p in err.problems)
        assert isinstance(err.partial, Crontab)
    else:
        assert isinstance(tab, Crontab)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), kind=st.sampled_from(Kind))
def test_parse_of_any_text_returns_a_crontab_or_raises_only_its_syntax_error(
    text: str, kind: Kind
) -> None:
    try:
        parse(text, kind)
    except CrontabSyntaxError as err:
        assert err.problems


# Lines that are good, or bad with exactly one problem on their own line, whatever
# surrounds them (no quotes: env.c's unterminated quote reads the previous line's bytes).
GOOD = {
    Kind.USER: [
        "* * * * * true",
        "0 3 * * mon /bin/backup --all",
        "*/5 1-4 1,15 jan-jun * echo 50%% done",
        "@daily echo hi",
        "@reboot run",
        "FOO=bar",
        "PATH = /usr/bin:/bin",
        "# a comment",
        "#@smart window=2h",
        "",
        "   \t",
    ],
    Kind.SYSTEM: [
        "* * * * * root true",
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
        "@weekly nobody echo hi",
        "SHELL=/bin/sh",
        "# m h dom mon dow user command",
        "",
    ],
}
BAD = [
    "61 * * * * cmd",  # bad minute
    "* 24 * * * cmd",  # bad hour
    "* * 0 * * cmd",  # bad day-of-month
    "* * * 13 * cmd",  # bad month
    "* * * * 8 cmd",  # bad day-of-week
    "* * * *",  # bad day-of-week (the line ends)
    "foo bar",  # bad minute
    "*/0 * * * * cmd",  # a zero step
    "5/10 * * * * cmd",  # a step needs a range
    "@nonsense cmd",  # bad time specifier
    "monday * * * * cmd",  # only three-letter names
    "*",  # bad hour
]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(Kind),
    picks=st.lists(st.tuples(st.booleans(), st.integers(0, 100)), max_size=40),
)
def test_parse_reports_every_bad_line_by_its_number_and_no_other(
    kind: Kind, picks: list[tuple[bool, int]]
) -> None:
    lines, bad = [], []
    for number, (is_bad, index) in enumerate(picks, start=1):
        pool = BAD if is_bad else GOOD[kind]
        lines.append(pool[index % len(pool)])
        if is_bad:
            bad.append(number)
    text = "".join(f"{line}\n" for line in lines)
    if not bad:
        parse(text, kind)
        return
    with pytest.raises(CrontabSyntaxError) as err:
        parse(text, kind)
    assert [p.line for p in err.value.problems] == bad
