"""Accept/reject table: one crontab (usually one line), the verdict Debian's cron
3.0pl1-162 gives it, and why (entry.c, env.c, misc.c, crontab.c). "ok" means accepted;
anything else is the reason of the first problem, reported on `line`. Cases marked
"regression" are disagreements with Debian's `crontab -n` found and fixed.
"""

from __future__ import annotations

import pytest

from smartcron.cron.crontab import parse
from smartcron.errors import CrontabSyntaxError
from tests.crontab_cases import CASES, Case

USERS = frozenset({"root", "www-data"})


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verdict_matches_debian(case: Case):
    text = case.text + "\n"
    if case.verdict == "ok":
        parse(text, case.kind, "t", USERS.__contains__, install=case.install)
        return
    with pytest.raises(CrontabSyntaxError) as err:
        parse(text, case.kind, "t", USERS.__contains__, install=case.install)
    first = err.value.problems[0]
    assert (first.line, first.reason.split(" (")[0]) == (case.line, case.verdict), case.why


def test_table_has_at_least_forty_cases_of_each_kind_overall():
    verdicts = [c.verdict == "ok" for c in CASES.values()]
    assert len(CASES) >= 40
    assert sum(verdicts) >= 15 and len(verdicts) - sum(verdicts) >= 15


def test_reversed_range_is_accepted_but_matches_nothing():
    (entry,) = parse("10-5 * * * * x\n").entries
    assert entry.spec.minutes == frozenset()


def test_sunday_seven_is_folded_into_zero():
    (entry,) = parse("* * * * 5-7 x\n").entries
    assert entry.spec.dows == frozenset({0, 5, 6})


def test_star_flags_follow_the_first_character_of_the_field():
    (entry,) = parse("*/5 1 */2 * 1 x\n").entries
    spec = entry.spec
    assert (spec.min_star, spec.hour_star, spec.dom_star, spec.dow_star) == (
        True,
        False,
        True,
        False,
    )


def test_leftover_assignment_has_an_empty_name_and_value():
    tab = parse('ab"=x\n"\n')
    assert [(a.name, a.value) for a in tab.env] == [('ab"', "x"), ("", "x")]
