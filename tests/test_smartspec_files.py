"""Companion YAML and standalone job files: schema, error messages, hostile input."""

from __future__ import annotations

import contextlib
import json
from datetime import time, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcron.errors import AnnotationError
from smartcron.smart.jobfiles import JobFileEntry, load_job_file
from smartcron.smart.smartspec import MAX_FILE_BYTES, Companion, SmartSpec, load_companion

FIXTURES = Path(__file__).parent.parent / "fixtures"
H, M = timedelta(hours=1), timedelta(minutes=1)

PAPER = """\
job_name: "daily_backup"
command: "/home/user/scripts/backup.sh"
preferred_time: ["01:00", "03:00"]
max_cpu: 50       # %
min_battery: 30   # %
ai_aware: true
retry_on_fail: true
"""


def problems(loader, text: str, path: str, **kw) -> list[str]:
    with pytest.raises(AnnotationError) as info:
        loader(text, path, **kw)
    return [str(p) for p in info.value.problems]


# ----------------------------------------------------------------------- companion


def test_a_companion_gives_typed_defaults_and_jobs():
    text = "defaults:\n  window: 2h\n  ac: yes\njobs:\n  backup:\n    min_battery: 30%\n"
    assert load_companion(text, "c.yaml") == Companion(
        path="c.yaml",
        defaults={"window": 2 * H, "ac": True},
        jobs={"backup": {"min_battery": 30.0}},
    )


@pytest.mark.parametrize("text", ["", "# nothing\n", "defaults:\njobs:\n", "jobs:\n  x:\n"])
def test_an_empty_companion_or_empty_sections_are_fine(text):
    companion = load_companion(text, "c.yaml")
    assert companion.defaults == {} and set(companion.jobs) <= {"x"}


def test_clock_times_in_yaml_stay_strings_not_base_60_numbers():
    companion = load_companion("defaults:\n  window: 22:00-06:00\n", "c.yaml")
    assert companion.defaults["window"] == (time(22), time(6))
    job = load_job_file("job_name: x\ncommand: y\npreferred_time: [22:00, 23:30]\n", "x.yaml")
    assert job.settings["window"] == (time(22), time(23, 30)) and job.schedule == "0 22 * * *"


COMPANION_ERRORS = [
    (
        "defaults:\n  widow: 2h\n",
        ["c.yaml:2: defaults.widow: unknown key (did you mean 'window'?)"],
    ),
    (
        "defaults:\n  name: x\n",
        ["c.yaml:2: defaults.name: unknown key (a companion job's name is its key under jobs:)"],
    ),
    ("jobs:\n  ok: {}\n  bad name: {}\n", ["c.yaml:3: jobs.bad name: expected a job name"]),
    ("jobs:\n  123: {}\n", ["c.yaml:2: jobs[123]: expected a job name of letters"]),
    ("- a\n- b\n", ["c.yaml:1: (top level): expected a mapping with defaults: and jobs:"]),
    ("defaults: 2h\n", ["c.yaml:1: defaults: expected a mapping of #@smart keys, got '2h'"]),
    ("jobs:\n  x: [1]\n", ["c.yaml:2: jobs.x: expected a mapping of #@smart keys, got [1]"]),
    ("default:\n  ac: yes\n", ["c.yaml:2: default: unknown key (did you mean 'defaults'?)"]),
    (
        "defaults:\n  max_cpu: 150\n",
        ["c.yaml:2: defaults.max_cpu: expected a percentage from 0 to 100 (50 or 50%), got 150"],
    ),
    ("defaults:\n  max_cpu: 150%\n", ["c.yaml:2: defaults.max_cpu: 150% is over 100%"]),
    ("defaults:\n  ac: maybe\n", ["c.yaml:2: defaults.ac: expected yes/no, on/off or true/false"]),
    ("defaults:\n  window: 2 hours\n", ["c.yaml:2: defaults.window: expected a duration (2h)"]),
    ("defaults:\n  window: -5\n", ["c.yaml:2: defaults.window: expected a duration"]),
    ("defaults:\n  window: 01:00-01:00\n", ["c.yaml:2: defaults.window: clock window"]),
    ("defaults:\n  retry: 2.5\n", ["c.yaml:2: defaults.retry: expected a whole number"]),
    ("defaults:\n  retry: yes\n", ["c.yaml:2: defaults.retry: expected a whole number"]),
    ("defaults:\n  mail: no\n", ["c.yaml:2: defaults.mail: expected one of output, error, never"]),
    ("defaults:\n  max_load: .nan\n", ["c.yaml:2: defaults.max_load: expected a load average"]),
    ("defaults:\n  timeout: 0\n", ["c.yaml:2: defaults.timeout: must be longer than 0s"]),
    ("defaults:\n  disk_path: tmp\n", ["c.yaml:2: defaults.disk_path: expected an absolute path"]),
    ("defaults: [\n", ["c.yaml:2: YAML error:"]),
    ("defaults:\n  retry: " + "9" * 5000 + "\n", ["c.yaml: YAML error: bad value"]),
]


@pytest.mark.parametrize(("text", "expected"), COMPANION_ERRORS)
def test_companion_errors_name_file_line_and_key_path(text, expected):
    got = problems(load_companion, text, "c.yaml")
    assert len(got) == len(expected)
    for line, start in zip(got, expected, strict=True):
        assert line.startswith(start)


def test_every_companion_problem_is_listed():
    text = "defaults:\n  max_cpu: 150%\n  ac: maybe\njobs:\n  a:\n    retry: -1\n    widow: 1\n"
    got = problems(load_companion, text, "c.yaml")
    assert [g.split(": ")[0] for g in got] == ["c.yaml:3", "c.yaml:6", "c.yaml:7"]
    got = problems(load_companion, "defaults:\n  max_cpu: 150%\njobs:\n  a: {retry: 300%}\n", "c")
    assert got == [
        "c:2: defaults.max_cpu: 150% is over 100%",
        "c:4: jobs.a.retry: expected a whole number from 0 to 100, got '300%'",
    ]


# ----------------------------------------------------------------------- hostile YAML

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (BOMB, "c.yaml: YAML aliases expand to more than 100000 nodes"),
        ("a: &a [*a]\n", "c.yaml: YAML aliases expand to more than"),
        ("a: &a x\nb: [" + ", ".join(["*a"] * 201) + "]\n", "c.yaml: more than 200 YAML aliases"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "c.yaml:1: nested more than 64 levels deep"),
        ("defaults: {}\n" + "#" * MAX_FILE_BYTES, "c.yaml: companion file larger than 256 KB"),
        ("defaults: !!python/object:os.system {}\n", "c.yaml:1: YAML error: could not determine"),
        ("a: \x00\n", "c.yaml: YAML error"),
        ("\ufeffdefaults: {ac: 1}\n", "c.yaml:1: defaults.ac: expected yes/no"),
    ],
)
def test_hostile_yaml_is_refused_before_it_costs_anything(text, reason):
    got = problems(load_companion, text, "c.yaml")
    assert got[0].startswith(reason)


_KEYS = st.sampled_from(["defaults", "jobs", "ac", "window", "job_name", "command", "schedule"])
_KEYS = st.sampled_from(["defaults", "jobs", "ac", "window", "job_name", "command", "schedule"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_wrong_types_anywhere_never_raise_anything_but_annotation_error(data):
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    for loader, path in [(load_companion, "c.yaml"), (load_job_file, "j.yaml")]:
        try:
            loader(text, path)
        except AnnotationError as err:
            assert err.problems
    try:
        load_job_file(json.dumps(data), "j.json")
    except AnnotationError as err:
        assert err.problems


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters() | st.sampled_from(list("{}[]:,-&*!|>'\"#\n "))))
def test_random_text_never_raises_anything_but_annotation_error(text):
    for loader, path in [(load_companion, "c.yaml"), (load_job_file, "j.yaml")]:
        with contextlib.suppress(AnnotationError):
            loader(text, path)
    with contextlib.suppress(AnnotationError):
        load_job_file(text, "j.json")


# ----------------------------------------------------------------------- job files


def test_the_concept_papers_example_loads_as_a_daily_job_in_its_window():
    job = load_job_file(PAPER, "/etc/smartcron/jobs/backup.yaml", system=True)
    assert (job.name, job.command, job.schedule, job.user) == (
        "daily_backup",
        "/home/user/scripts/backup.sh",
        "0 1 * * *",
        None,
    )
    assert job.smart_spec() == SmartSpec(
        name="daily_backup",
        window_clock=(time(1), time(3)),
        max_cpu=50.0,
        min_battery=30.0,
        ai=True,
        retry=1,
    )
    assert job.timespec.hours == {1} and job.timespec.minutes == {0}


def test_the_same_job_in_json_loads_the_same():
    data = yaml.safe_load(PAPER)
    yaml_job = load_job_file(PAPER, "backup.yaml")
    json_job = load_job_file(json.dumps(data, indent=2), "backup.json")
    assert json_job == JobFileEntry(**{**vars(yaml_job), "path": "backup.json"})


def test_job_files_take_any_key_of_4_1_and_a_schedule():
    text = "name: sync\ncommand: s\nschedule: '*/30 * * * *'\nwindow: 10m\nac: yes\nretry: 3\n"
    job = load_job_file(text, "sync.yml")
    assert job.smart_spec({"mail": "error"}) == SmartSpec(
        name="sync", window=10 * M, ac=True, retry=3, mail="error"
    )


def test_retry_on_fail_false_means_no_retry_and_a_string_window_is_accepted():
    text = "job_name: a\ncommand: b\npreferred_time: '23:00-01:00'\nretry_on_fail: false\n"
    job = load_job_file(text, "a.yaml")
    assert job.settings["retry"] == 0 and job.schedule == "0 23 * * *"
    assert job.smart_spec().window_clock == (time(23), time(1))


def test_a_system_file_may_name_a_user_and_a_user_file_may_not():
    text = "job_name: a\ncommand: b\nschedule: '@daily'\nuser: www-data\n"
    assert load_job_file(text, "a.yaml", system=True).user == "www-data"
    assert problems(load_job_file, text, "a.yaml") == [
        "a.yaml:4: user: only system job files (/etc/smartcron/jobs) may name a user"
    ]


def test_the_entry_runs_the_command_verbatim():
    text = 'job_name: a\ncommand: "date +%F > /tmp/x\\\\%"\nschedule: "@hourly"\n'
    job = load_job_file(text, "a.yaml")
    assert job.command == "date +%F > /tmp/x\\%"
    assert job.entry.shell_command == job.command and job.entry.stdin is None


D = "job_name: a\ncommand: b\nschedule: '@daily'\n"  # a valid job, to add a bad key to
AB = "job_name: a\ncommand: b\n"
JOB_ERRORS = [
    (D + "widow: 2h\n", "a.yaml:4: widow: unknown key (did you mean 'window'?)"),
    ("job_name: a\nschedule: '@daily'\n", "a.yaml:1: (top level): 'command' is a required"),
    ("command: b\nschedule: '@daily'\n", "a.yaml: job_name is required"),
    ("name: a\n" + D, "a.yaml:2: job_name: give job_name or name, not both"),
    (D + "retry_on_fail: 1\nretry: 2\n", "a.yaml:4: retry_on_fail: expected yes/no"),
    (D + "retry_on_fail: yes\nretry: 2\n", "a.yaml:4: retry_on_fail: give retry_on_fail or"),
    (AB + "schedule: '61 * * * *'\n", "a.yaml:3: schedule: bad minute"),
    (AB + "schedule: '@sometimes'\n", "a.yaml:3: schedule: bad time specifier"),
    (AB, "a.yaml: schedule is required (or preferred_time, for a daily job)"),
    (AB + "window: 2h\n", "a.yaml: schedule is required"),
    ("job_name: a\ncommand: '  '\n", "a.yaml:2: command: expected a command of 1 to 999"),
    ("job_name: a\ncommand: [ls]\n", "a.yaml:2: command: expected a command"),
    ("job_name: a b\ncommand: b\n", "a.yaml:1: job_name: expected a job name"),
    (AB + "preferred_time: [01:00]\n", "a.yaml:3: preferred_time: expected a daily window"),
    (AB + "preferred_time: ['25:00', '3:00']\n", "a.yaml:3: preferred_time: expected a daily"),
    (AB + "preferred_time: ['01:00', '1:00']\n", "a.yaml:3: preferred_time: clock window '01"),
    (D + "max_cpu: 150\n", "a.yaml:4: max_cpu: expected a percentage"),
    (D + "user: 'root; rm'\n", "a.yaml:4: user: expected a user name"),
    ("[1, 2]\n", "a.yaml:1: (top level): expected a mapping of job keys"),
    ("", "a.yaml: empty job file"),
]


@pytest.mark.parametrize(("text", "expected"), JOB_ERRORS)
def test_job_file_errors_name_file_line_and_key(text, expected):
    got = problems(load_job_file, text, "a.yaml", system=True)
    assert got[0].startswith(expected), got


def test_json_job_files_report_lines_and_refuse_what_json_should_not_allow():
    text = (
        '{\n  "job_name": "a",\n  "command": "b",\n  "schedule": "@daily",\n  "max_cpu": 150\n}\n'
    )
    assert problems(load_job_file, text, "a.json")[0].startswith("a.json:5: max_cpu: expected")
    assert problems(load_job_file, '{"job_name": "a",\n"command": }', "a.json") == [
        "a.json:2: JSON error: Expecting value"
    ]
    nan = '{"job_name": "a", "command": "b", "schedule": "@daily", "max_load": NaN}'
    assert problems(load_job_file, nan, "a.json") == [
        "a.json: JSON error: NaN is not a number JSON allows"
    ]
    deep = '{"job_name": ' + "[" * 5000 + "]" * 5000 + "}"
    assert "a.json: " in problems(load_job_file, deep, "a.json")[0]
    huge = '{"job_name": "a", "command": "' + "x" * MAX_FILE_BYTES + '"}'
    assert problems(load_job_file, huge, "a.json") == ["a.json: job file larger than 256 KB"]
    assert problems(load_job_file, "[1]", "a.JSON")[0].startswith("a.JSON:1: (top level)")


def test_yaml_job_files_are_loaded_safely():
    bomb = BOMB.replace("a: &a", "job_name: x\ncommand: y\na: &a")
    assert problems(load_job_file, bomb, "a.yaml")[0].startswith("a.yaml: YAML aliases expand")
    evil = "job_name: a\ncommand: !!python/object/apply:os.system ['true']\n"
    assert "YAML error" in problems(load_job_file, evil, "a.yaml")[0]


@pytest.mark.parametrize("path", sorted((FIXTURES / "jobs").iterdir()), ids=lambda p: p.name)
def test_the_shipped_example_job_files_load(path: Path):
    job = load_job_file(path.read_text(), str(path), system=True)
    spec = job.smart_spec()
    assert spec.name == job.name and job.command
    if path.name == "disk-report.json":
        assert (job.user, job.schedule, spec.window_clock, spec.ai) == (
            "root",
            "@weekly",
            (time(22), time(6)),
            False,
        )
        assert (spec.min_disk, spec.disk_path, spec.retry_delay) == (5.0, "/var", 15 * M)
