"""Resolving a job's SmartSpec: defaults, default window, precedence, identity."""

from __future__ import annotations

import dataclasses
import json
from datetime import time, timedelta
from pathlib import Path

import pytest

from smartcron.cron.crontab import Annotation, Entry, parse, parse_timespec
from smartcron.errors import AnnotationError
from smartcron.smart.annotations import KEYS
from smartcron.smart.jobs import derived_id
from smartcron.smart.smartspec import (
    Companion,
    SmartSpec,
    companion_path,
    default_window,
    job_name,
    load_companion,
    resolve,
    smart_spec_for,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
H, M = timedelta(hours=1), timedelta(minutes=1)
DAILY = parse_timespec("0 1 * * *")


def entry(*annotations: str, when: str = "0 1 * * *") -> Entry:
    notes = tuple(Annotation(i + 1, text) for i, text in enumerate(annotations))
    return Entry(len(notes) + 1, parse_timespec(when), "/bin/job", annotations=notes)


@pytest.mark.parametrize(
    ("expr", "window"),
    [
        ("*/10 * * * *", 5 * M),
        ("0 * * * *", 30 * M),
        ("@hourly", 30 * M),
        ("0 3 * * *", 6 * H),
        ("@daily", 6 * H),
        ("@weekly", 6 * H),
        ("0 0 * * 0", 6 * H),
        ("@monthly", 6 * H),
        ("@yearly", 6 * H),
        ("* * * * *", timedelta(seconds=30)),
        ("5,50 * * * *", 7 * M + timedelta(seconds=30)),  # smallest gap: 15m (50 -> 5)
        ("0 */2 * * *", H),
        ("0 9,17 * * 1-5", 4 * H),  # gaps of 8h (9 -> 17) and 16h (17 -> 9)
        ("0 0,1 29 2 *", 30 * M),  # only on Feb 29: the reference year is a leap year
        ("0 0 30 2 *", 6 * H),  # never fires
        ("@reboot", timedelta(0)),
    ],
)
def test_default_window_is_half_the_smallest_interval_at_most_6h(expr, window):
    assert default_window(parse_timespec(expr)) == window


def test_spec_defaults_are_those_of_spec_4_1():
    spec = SmartSpec()
    assert (spec.ac, spec.ai, spec.retry, spec.retry_delay, spec.priority) == (
        False,
        True,
        0,
        5 * M,
        0,
    )
    assert (spec.on_deadline, spec.overlap, spec.mail, spec.disk_path) == (
        "run",
        "allow",
        "output",
        "/",
    )
    assert spec.constraints == {}
    assert {f.name for f in dataclasses.fields(SmartSpec)} == {*KEYS, "window_clock"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.retry = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        SmartSpec(None)  # type: ignore[misc]  # keyword-only


def test_constraints_lists_the_hard_constraints_that_are_set():
    spec = resolve({"max_load": 1.5, "ac": True, "idle": "10m", "retry": 2}, None, None, spec=DAILY)
    assert spec.constraints == {"max_load": 1.5, "ac": True, "idle": 10 * M}


def test_as_dict_is_json_ready():
    spec = resolve({"window": "01:00-03:00", "timeout": "1.5s"}, None, None, spec=DAILY)
    data = json.loads(json.dumps(spec.as_dict()))
    assert data["window"] is None and data["window_clock"] == "01:00-03:00"
    assert data["timeout"] == 1.5 and data["retry_delay"] == 300


def test_a_plain_line_has_no_smart_spec_even_with_a_companion():
    companion = Companion(path="c", defaults={"ac": True})
    assert smart_spec_for(entry(), "tab", companion, {"ac": True}) is None


def test_an_empty_annotation_gives_defaults_and_the_default_window():
    assert smart_spec_for(entry("#@smart"), "tab", None, None) == SmartSpec(window=6 * H)
    hourly = smart_spec_for(entry("#@smart", when="@hourly"), "tab", None, None)
    assert hourly == SmartSpec(window=30 * M)


def test_a_clock_window_replaces_the_duration_window():
    spec = smart_spec_for(entry("#@smart window=22:00-06:00"), "tab", None, None)
    assert spec is not None
    assert (spec.window, spec.window_clock) == (None, (time(22), time(6)))


LEVELS = ("global", "defaults", "job", "inline")


@pytest.mark.parametrize("top", LEVELS)
def test_each_level_overrides_the_next(top):
    """inline > companion job > companion defaults > global config, for every key kind."""
    values = {"global": "4", "defaults": "3", "job": "2", "inline": "1"}
    present = LEVELS[: LEVELS.index(top) + 1]

    def layer(level: str) -> dict[str, object]:
        if level not in present:
            return {}
        return {"max_load": values[level], "window": f"{values[level]}h", "mail": "error"}

    companion = load_companion(
        json.dumps({"defaults": layer("defaults"), "jobs": {"nightly": layer("job")}}), "c.yaml"
    )
    inline = {"name": "nightly", **layer("inline")}
    spec = resolve(inline, companion, layer("global"), spec=DAILY)
    assert spec.max_load == float(values[top])
    assert spec.window == int(values[top]) * H
    assert spec.mail == "error"


def test_levels_merge_key_by_key():
    companion = load_companion(
        "defaults: {ac: yes, retry: 1, mail: never}\njobs:\n  nightly: {retry: 2, idle: 5m}\n",
        "c.yaml",
    )
    glob = {"timeout": "3h", "mail": "error", "priority": 9}
    spec = smart_spec_for(entry("#@smart name=nightly priority=1"), "tab", companion, glob)
    assert spec == SmartSpec(
        name="nightly",
        window=6 * H,
        ac=True,
        retry=2,
        idle=5 * M,
        timeout=3 * H,
        mail="never",
        priority=1,
    )


def test_companion_jobs_apply_only_to_the_line_with_that_name():
    companion = load_companion("jobs:\n  nightly: {retry: 2}\n", "c.yaml")
    assert smart_spec_for(entry("#@smart"), "t", companion, None).retry == 0  # type: ignore[union-attr]
    other = smart_spec_for(entry("#@smart name=other"), "t", companion, None)
    assert other is not None and other.retry == 0
    assert companion.unknown_jobs(["other"]) == ["nightly"]
    assert companion.unknown_jobs(["nightly"]) == []


def test_an_inline_clock_window_beats_a_companion_duration_and_back():
    companion = load_companion("defaults: {window: 02:00-04:00}\n", "c.yaml")
    spec = smart_spec_for(entry("#@smart window=1h"), "t", companion, None)
    assert spec is not None and (spec.window, spec.window_clock) == (H, None)
    spec = smart_spec_for(entry("#@smart"), "t", companion, None)
    assert spec is not None and (spec.window, spec.window_clock) == (None, (time(2), time(4)))


def test_bad_global_defaults_are_reported_with_their_origin():
    with pytest.raises(AnnotationError, match=r"<global config>: max_cpu: 200% is over 100%"):
        resolve({}, None, {"max_cpu": 200}, spec=DAILY)
    with pytest.raises(AnnotationError, match=r"<global config>: unknown key 'name'"):
        resolve({}, None, {"name": "x"}, spec=DAILY)
    with pytest.raises(AnnotationError, match=r"<inline>: name: expected a name"):
        resolve({"name": "a b"}, None, None, spec=DAILY)


def test_a_bad_annotation_raises_annotation_error_for_the_daemon_to_log():
    with pytest.raises(AnnotationError, match=r"^tab:1: max_cpu: 150% is over 100%$"):
        smart_spec_for(entry("#@smart max_cpu=150"), "tab", None, None)


def test_job_name_is_the_name_else_the_loaders_derived_id():
    named = entry("#@smart name=nightly")
    spec = smart_spec_for(named, "tab", None, None)
    assert job_name(named, spec, source="/etc/cron.d/x", owner="root") == "nightly"
    plain = entry()
    expected = derived_id("/etc/cron.d/x", "root", "0 1 * * *", "/bin/job")
    assert job_name(plain, None, source="/etc/cron.d/x", owner="root") == expected
    assert job_name(plain, SmartSpec(), source="/etc/cron.d/x", owner="root") == expected


def test_companion_path_is_beside_the_crontab():
    assert companion_path(Path("/etc/cron.d/backup")) == Path("/etc/cron.d/backup.smart.yaml")
    assert companion_path(Path("tab.crontab")) == Path("tab.crontab.smart.yaml")


def test_the_laptop_fixture_resolves_with_its_companion():
    path = FIXTURES / "crontabs" / "laptop.crontab"
    tab = parse(path.read_text(), path=str(path))
    side = companion_path(path)
    companion = load_companion(side.read_text(), str(side))
    specs = {}
    for item in tab.entries:
        spec = smart_spec_for(item, str(path), companion, None)
        if spec is not None:
            specs[spec.name] = spec
    notes = [n.text for e in tab.entries for n in e.annotations]
    names = {text.split("name=")[1].split()[0] for text in notes if "name=" in text}
    assert set(specs) == names
    assert companion.unknown_jobs(names) == []
    backup, photo = specs["nightly_backup"], specs["photo_sync"]
    assert backup.timeout == 2 * H and backup.retry_delay == 10 * M  # inline beats defaults
    assert photo.timeout == 50 * M and photo.retry_delay == 10 * M  # job beats defaults
    assert specs["mail_index"].overlap == "skip" and specs["updatedb_user"].disk_path == "/home"
    assert specs["build_cache"].timeout == 4 * H  # from the defaults
