"""The #@smart line grammar and the value grammar of every SPEC 4.1 key."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.cron.crontab import Annotation
from smartcron.errors import AnnotationError, SmartcronError
from smartcron.smart.annotations import (
    KEYS,
    FileProblem,
    check_settings,
    convert,
)
from smartcron.smart.smartline import parse_annotations, split_words


def notes(*lines: str, first: int = 7) -> tuple[Annotation, ...]:
    return tuple(Annotation(first + i, text) for i, text in enumerate(lines))


def parse_one(text: str) -> dict[str, object]:
    return parse_annotations(notes(text), "tab")


def problems_of(*lines: str) -> list[str]:
    with pytest.raises(AnnotationError) as info:
        parse_annotations(notes(*lines), "crontabs/alice")
    assert isinstance(info.value, SmartcronError)
    return [str(p) for p in info.value.problems]


H, M = timedelta(hours=1), timedelta(minutes=1)

VALID = [
    ("name", "nightly_backup", "nightly_backup"),
    ("name", "a.b-c_9", "a.b-c_9"),
    ("profile", "quiet-hours", "quiet-hours"),
    ("after", "backup", ("backup",)),
    ("after", "backup,db.dump,backup", ("backup", "db.dump")),
    ("window", "2h", 2 * H),
    ("window", "45m", 45 * M),
    ("window", "0", timedelta(0)),
    ("window", "01:00-03:00", (time(1), time(3))),
    ("window", "22:30-06:00", (time(22, 30), time(6))),
    ("window", "1:00-3:05", (time(1), time(3, 5))),
    ("max_load", "1.5", 1.5),
    ("max_load", "0", 0.0),
    ("max_cpu", "50", 50.0),
    ("max_cpu", "50%", 50.0),
    ("max_ram", "100%", 100.0),
    ("min_battery", "12.5%", 12.5),
    ("ac", "yes", True),
    ("ac", "off", False),
    ("ac", "TRUE", True),
    ("idle", "10m", 10 * M),
    ("min_disk", "0%", 0.0),
    ("disk_path", "/home", "/home"),
    ("ai", "no", False),
    ("ai", "On", True),
    ("explore", "off", False),
    ("fail_cost", "2.5", 2.5),
    ("interference_cost", "0", 0.0),
    ("delay_cost", "0.05", 0.05),
    ("retry", "2", 2),
    ("retry", "0", 0),
    ("retry_delay", "30s", timedelta(seconds=30)),
    ("retry_delay", "0", timedelta(0)),
    ("timeout", "1h30m", 90 * M),
    ("timeout", "90", timedelta(seconds=90)),
    ("timeout", "1.5h", 90 * M),
    ("timeout", "1d", 24 * H),
    ("priority", "-5", -5),
    ("priority", "+3", 3),
    ("on_deadline", "skip", "skip"),
    ("on_deadline", "RUN", "run"),
    ("overlap", "queue", "queue"),
    ("mail", "never", "never"),
    ("mail", "error", "error"),
    ("max_cpu_pressure", "20", 20.0),
    ("max_io_pressure", "12.5%", 12.5),
    ("max_mem_pressure", "0", 0.0),
    ("network", "online", "online"),
    ("network", "Unmetered", "unmetered"),
    ("fleet", "once", "once"),
    ("fleet", "Each", "each"),
    ("catchup", "all", "all"),
    ("catchup", "No", "no"),
    ("catchup_window", "3h", 3 * H),
    ("jitter", "15m", 15 * M),
    ("jitter", "90", timedelta(seconds=90)),
]


@pytest.mark.parametrize(("key", "raw", "expected"), VALID, ids=[f"{k}={r}" for k, r, _ in VALID])
def test_every_key_accepts_its_valid_values(key, raw, expected):
    assert parse_one(f"#@smart {key}={raw}") == {key: expected}


INVALID = [
    ("name", "'bad name'", "expected a name of letters"),
    ("name", "a/b", "expected a name of letters"),
    ("name", "x" * 129, "(at most 128)"),
    ("profile", "lap/top", "expected a name of letters"),
    ("after", "backup,,upload", "expected a name of letters"),
    ("after", ",".join(f"j{i}" for i in range(33)), "(1 to 32)"),
    ("window", "2x", "expected a duration (2h) or a clock window"),
    ("window", "24:00-01:00", "expected a clock window HH:MM-HH:MM, got '24:00-01:00'"),
    ("window", "01:60-02:00", "expected a clock window HH:MM-HH:MM"),
    ("window", "03:00-03:00", "clock window '03:00-03:00' is empty"),
    ("window", "-2h", "-2h is negative"),
    ("window", "400d", "400d is longer than 365d"),
    ("max_load", "-1", "-1 is negative"),
    ("max_load", "high", "expected a load average"),
    ("max_load", "1e3", "expected a load average"),
    ("max_cpu", "150", "150% is over 100%"),
    ("max_cpu", "-5%", "-5 is negative"),
    ("max_ram", "lots", "expected a percentage from 0 to 100 (50 or 50%)"),
    ("min_battery", "100.5%", "100.5% is over 100%"),
    ("ac", "maybe", "expected yes/no, on/off or true/false, got 'maybe'"),
    ("ac", "1", "expected yes/no, on/off or true/false"),
    ("idle", "10 minutes", "expected key=value, got 'minutes'"),
    ("idle", "5w", "expected a duration"),
    ("min_disk", "101", "101% is over 100%"),
    ("disk_path", "var/lib", "expected an absolute path, got 'var/lib'"),
    ("ai", "sometimes", "expected yes/no"),
    ("explore", "2", "expected yes/no"),
    ("fail_cost", "-1", "-1 is negative"),
    ("interference_cost", "lots", "expected a cost (a number >= 0, like 0.5)"),
    ("delay_cost", "1h", "expected a cost"),
    ("retry", "-1", "-1 is negative"),
    ("retry", "1.5", "expected a whole number from 0 to 100"),
    ("retry", "101", "101 is outside 0..100"),
    ("retry_delay", "soon", "expected a duration (30s, 5m, 2h, 1d, 1h30m"),
    ("timeout", "0", "must be longer than 0s"),
    ("timeout", "0s", "must be longer than 0s"),
    ("priority", "high", "expected a whole number from -1000 to 1000"),
    ("priority", "1001", "1001 is outside -1000..1000"),
    ("on_deadline", "later", "expected one of run, skip, got 'later'"),
    ("overlap", "never", "expected one of allow, skip, queue"),
    ("mail", "always", "expected one of output, error, never"),
    ("max_cpu_pressure", "101", "101% is over 100%"),
    ("max_io_pressure", "-1", "-1 is negative"),
    ("max_mem_pressure", "high", "expected a percentage from 0 to 100"),
    ("network", "foo", "expected one of online, unmetered, got 'foo'"),
    ("network", "onlin", "got 'onlin' (did you mean 'online'?)"),
    ("fleet", "twice", "expected one of each, once, got 'twice'"),
    ("catchup", "twice", "expected one of once, all, no, got 'twice'"),
    ("catchup_window", "-1h", "-1h is negative"),
    ("jitter", "soon", "expected a duration (30s, 5m, 2h, 1d, 1h30m"),
]


@pytest.mark.parametrize(("key", "raw", "reason"), INVALID, ids=[f"{k}={r}" for k, r, _ in INVALID])
def test_every_key_rejects_a_bad_value_naming_file_line_and_key(key, raw, reason):
    problems = problems_of(f"#@smart {key}={raw}")
    assert problems[0].startswith("crontabs/alice:7: ")
    assert reason in " ".join(problems)
    if "key=value" not in reason:
        assert problems == [f"crontabs/alice:7: {key}: {problems[0].split(': ', 2)[2]}"]


def test_every_key_of_spec_4_1_is_covered_by_the_valid_and_invalid_tables():
    assert {k for k, _, _ in VALID} == set(KEYS) == {k for k, _, _ in INVALID}


def test_an_empty_smart_line_marks_the_job_smart_with_defaults():
    assert parse_one("#@smart") == {}
    assert parse_one("#@smart   ") == {}
    assert parse_one("#@smart\t# only a comment") == {}


def test_several_lines_merge_and_later_keys_win_within_and_across_lines():
    values = parse_annotations(
        notes("#@smart window=1h retry=1 window=2h", "#@smart retry=3 ac=yes"), "tab"
    )
    assert values == {"window": 2 * H, "retry": 3, "ac": True}


def test_values_may_be_quoted_and_a_word_starting_with_hash_is_a_comment():
    got = parse_one("#@smart name=\"a.b\" disk_path='/mnt/my disk' window=2h # not=parsed")
    assert got == {"name": "a.b", "disk_path": "/mnt/my disk", "window": 2 * H}


def test_a_hash_inside_a_word_is_a_plain_character():
    assert parse_one("#@smart disk_path=/srv/a#b") == {"disk_path": "/srv/a#b"}
    assert "expected a duration" in problems_of("#@smart window=2h#x")[0]


def test_split_words_follows_posix_shell_quoting():
    assert split_words(r""" a="b c" 'd\e' f\ g "h\"i" """) == ["a=b c", "d\\e", "f g", 'h"i']
    assert split_words("x='' y") == ["x=", "y"]
    with pytest.raises(ValueError, match="no closing"):
        split_words('a="b')
    with pytest.raises(ValueError, match="backslash ends the line"):
        split_words("a\\")


def test_unknown_keys_suggest_the_closest_known_key():
    assert problems_of("#@smart widow=2h Window=1h max_cpus=5 colour=red") == [
        "crontabs/alice:7: unknown key 'widow' (did you mean 'window'?)",
        "crontabs/alice:7: unknown key 'Window' (did you mean 'window'?)",
        "crontabs/alice:7: unknown key 'max_cpus' (did you mean 'max_cpu'?)",
        "crontabs/alice:7: unknown key 'colour'",
    ]


def test_a_word_without_a_value_is_an_error():
    assert problems_of("#@smart ac retry= nightly") == [
        "crontabs/alice:7: expected key=value, got 'ac' (ac=...)",
        "crontabs/alice:7: retry: empty value (expected a whole number from 0 to 100)",
        "crontabs/alice:7: expected key=value, got 'nightly'",
    ]


def test_the_prefix_must_be_followed_by_a_blank():
    assert problems_of("#@smartly name=x") == [
        "crontabs/alice:7: '#@smartly name=x' is not a #@smart line (put a blank after #@smart)"
    ]


def test_every_problem_of_every_line_is_listed_with_its_own_line():
    problems = problems_of("#@smart max_cpu=150 ac=maybe", "#@smart acc=1", "#@smart name='x")
    assert problems == [
        "crontabs/alice:7: max_cpu: 150% is over 100%",
        "crontabs/alice:7: ac: expected yes/no, on/off or true/false, got 'maybe'",
        "crontabs/alice:8: unknown key 'acc' (did you mean 'ac'?)",
        "crontabs/alice:9: cannot split the line: no closing '",
    ]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1d2h3m4s", 93784),
     ("2H", 7200), ("0.5m", 30), ("45", 45), ("365d", 365 * 86400)],
)  # fmt: skip
def test_duration_grammar(raw, seconds):
    assert convert("idle", raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["", "h", "1h-", "1 h", "1e3s", "٣m", "1.h", ".5h", "inf", "nan"])
def test_duration_grammar_rejects(raw):
    with pytest.raises(ValueError):
        convert("idle", raw)


def test_converted_values_convert_again_to_themselves():
    for key, raw, expected in VALID:
        assert convert(key, convert(key, raw)) == expected


def test_native_yaml_values_follow_the_same_rules():
    assert convert("max_cpu", 50) == 50.0
    assert convert("ac", True) is True
    assert convert("window", 90) == timedelta(seconds=90)
    assert convert("retry", 2.0) == 2
    bad = [("max_cpu", True), ("retry", False), ("ac", 1), ("max_load", float("nan"))]
    bad += [("max_load", float("inf")), ("window", [1]), ("name", 5), ("idle", -1)]
    for key, value in bad:
        with pytest.raises(ValueError):
            convert(key, value)


def test_check_settings_types_raw_values_and_refuses_names_and_unknown_keys():
    assert check_settings({"window": "2h", "ac": "yes"}, "cfg") == {"window": 2 * H, "ac": True}
    with pytest.raises(AnnotationError) as info:
        check_settings({"name": "x", "widow": "1h", "retry": -1}, "smartcron.toml")
    assert [str(p) for p in info.value.problems] == [
        "smartcron.toml: unknown key 'name' (a name belongs to one job)",
        "smartcron.toml: unknown key 'widow' (did you mean 'window'?)",
        "smartcron.toml: retry: -1 is negative",
    ]
    assert all(isinstance(p, FileProblem) and p.line == 0 for p in info.value.problems)


_GARBAGE = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from([*"=\"'\\# %:-", "\udcff", "\x00"])
)
_WORD = st.tuples(st.sampled_from([*KEYS, "x", ""]), st.sampled_from(["=", ""]), _GARBAGE).map(
    "".join
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_GARBAGE.map(lambda s: "#@smart" + s), st.lists(_WORD).map(
    lambda words: "#@smart " + " ".join(words))), min_size=1, max_size=3))  # fmt: skip
def test_garbage_annotations_never_raise_anything_but_annotation_error(lines):
    try:
        values = parse_annotations(notes(*lines), "tab")
    except AnnotationError as err:
        assert err.problems and all(p.path == "tab" and p.line >= 7 for p in err.problems)
    else:
        assert set(values) <= set(KEYS)
