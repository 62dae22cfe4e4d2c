"""Schema checks in a child interpreter (the daemon's) and in process give the same issues;
a failing child falls back to in-process; the daemon never imports jsonschema."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.daemon import running
from smartcron.errors import AnnotationError
from smartcron.sim.world import SCHEMA as WORLD_SCHEMA
from smartcron.smart import schemacheck
from smartcron.smart.smartspec import COMPANION_SCHEMA, load_companion

ROOT = Path(__file__).resolve().parent.parent

# One document per kind of error our callers read differently: an unknown key
# (additionalProperties), a bad job name (propertyNames: the issue is about a key), an
# int key, a described anyOf, a type, a date and a NaN the child must see as they are.
BAD = [
    "defaults:\n  widow: 2h\n  ac: maybe\n",
    "jobs:\n  ok: {}\n  bad name: {}\n  123: {}\n",
    "defaults: 2h\njobs:\n  x: [1]\n",
    "defaults:\n  max_cpu: 150\n  window: 2024-01-01\n  max_load: .nan\n  retry: [1, {a: 2}]\n",
    "- a\n- b\n",
]


@pytest.fixture
def child(monkeypatch):
    """Checks in a child from now on; yields the list of the children's answers."""
    answers = []
    real = schemacheck._from_child

    def spy(blob):
        answers.append(real(blob))
        return answers[-1]

    monkeypatch.setattr(schemacheck, "_from_child", spy)
    schemacheck.out_of_process(True)
    yield answers
    schemacheck.out_of_process(False)


def _issues(data, schema):
    return [repr(issue) for issue in schemacheck.schema_errors(data, schema)]


def _problems(text):
    try:
        load_companion(text, "c.yaml")
    except AnnotationError as err:
        return [str(p) for p in err.problems]
    return []


@pytest.mark.parametrize("text", BAD)
def test_a_child_finds_the_same_issues_as_the_process(text, child):
    data = yaml.safe_load(text)
    schemacheck.out_of_process(False)
    here, problems_here = _issues(data, COMPANION_SCHEMA), _problems(text)
    schemacheck.out_of_process(True)
    assert here  # every document of BAD is refused
    assert _issues(data, COMPANION_SCHEMA) == here
    assert _problems(text) == problems_here
    assert child and all(answer is not None for answer in child)  # children answered


def test_the_issue_names_the_key_a_property_name_check_refused(child):
    (issue,) = schemacheck.schema_errors({"jobs": {"bad name": {}}}, COMPANION_SCHEMA)
    assert issue.instance == "bad name" and "propertyNames" in issue.schema_path
    assert issue.absolute_path == ("jobs",)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.text(max_size=6) | st.dates(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "rate", "hour", "fail", "when"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(["jobs", "defaults", "machine", "user", "x"]), _VALUES))
def test_any_document_gets_the_same_issues_either_way(child, data):
    for schema in (COMPANION_SCHEMA, WORLD_SCHEMA):
        schemacheck.out_of_process(False)
        here = _issues(data, schema)
        schemacheck.out_of_process(True)
        assert _issues(data, schema) == here


@pytest.mark.parametrize(
    "args",
    [
        ("-c", "import sys; sys.exit(3)"),  # dies
        ("-c", "print('not json')"),  # talks nonsense
        ("-c", "print('{}')"),  # JSON, but not a list of issues
        ("-c", 'print(\'[{"path": ["nope"]}]\')'),  # issues about another document
        ("-c", "print('[1]')"),
    ],
)
def test_a_failing_child_is_logged_and_the_check_runs_in_process(args, child, monkeypatch, caplog):
    monkeypatch.setattr(schemacheck, "_CHILD_ARGS", args)
    data = {"defaults": {"widow": 1}, "jobs": {"bad name": {}}}
    with caplog.at_level(logging.WARNING, logger=schemacheck.__name__):
        got = _issues(data, COMPANION_SCHEMA)
    assert "in a child" in caplog.text and "checking in process" in caplog.text
    schemacheck.out_of_process(False)
    assert got == _issues(data, COMPANION_SCHEMA) and len(got) == 2


def test_a_process_that_checks_in_a_child_never_imports_jsonschema():
    code = textwrap.dedent(
        """
        import sys
        from smartcron.smart import schemacheck
        from smartcron.smart.smartspec import load_companion
        schemacheck.out_of_process(True)
        try:
            load_companion("defaults:\\n  widow: 2h\\n", "c.yaml")
        except Exception as err:
            print(err)
        print("jsonschema" in sys.modules, "referencing" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "c.yaml:2: defaults.widow: unknown key" in out.stdout
    assert out.stdout.splitlines()[-1] == "False False"


def test_the_daemon_reports_a_bad_companion_without_loading_jsonschema(tmp_path):
    tab = (ROOT / "fixtures" / "crontabs" / "laptop.crontab").read_text()
    with running(tmp_path, tab, companion="defaults:\n  widow: 2h\n") as daemon:
        deadline = time.monotonic() + 20
        while "widow" not in daemon.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        maps = Path(f"/proc/{daemon.pid}/maps").read_text()
    assert "defaults.widow: unknown key" in daemon.log.read_text()
    assert "/rpds" not in maps and "jsonschema" not in maps
