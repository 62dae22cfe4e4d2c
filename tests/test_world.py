import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.cron.crontab import parse
from smartcron.errors import SmartcronError
from smartcron.sim.world import (
    MAX_BYTES,
    JobLaw,
    World,
    WorldError,
    _condition,
    draw,
    duration_seconds,
    load_world,
    read_world,
)
from smartcron.testing import sample_snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MON_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # Monday 10:00
SPEC_WORLD = """\
seed: 7
active_idle_below: 60
jobs:
  nightly_backup:
    runtime: 20m
    cpu: 1.0
    slowdown_per_load: 0.3
    base_fail: 0.02
    fail:
      - when: {battery_percent: "<25", on_ac: 0}
        p: 0.8
      - when: {load5: ">3"}
        p: 0.5
      - when: {hour: "9-17"}
        p: 0.3
"""


@pytest.fixture
def world() -> World:
    return load_world(SPEC_WORLD, "w.yaml")


@pytest.mark.parametrize(
    ("column", "spec", "true", "false"),
    [
        ("load5", 2, [2.0], [1.99, 2.01]),
        ("on_ac", False, [0.0], [1.0]),
        ("on_ac", True, [1.0], [0.0]),
        ("load5", "=2", [2.0], [2.5]),
        ("load5", "<2", [1.99], [2.0, 3.0]),
        ("load5", "<=2", [2.0, 0.0], [2.01]),
        ("load5", ">2", [2.01], [2.0]),
        ("load5", ">= 2.5", [2.5, 9.0], [2.49]),
        ("hour", "9-17", [9.0, 12.0, 17.0], [8.0, 18.0]),
        ("hour", "22-5", [22.0, 23.0, 0.0, 5.0], [6.0, 21.0]),
        ("weekday", "5-6", [5.0, 6.0], [0.0, 4.0]),
        ("weekday", "6-0", [6.0, 0.0], [1.0, 5.0]),
        ("battery_percent", "<25", [10.0], [None, 30.0]),
    ],
)
def test_every_condition_form(column, spec, true, false):
    cond = _condition(column, spec)
    assert all(cond.holds(v) for v in true)
    assert not any(cond.holds(v) for v in false)


@pytest.mark.parametrize(
    ("column", "spec", "reason"),
    [("load5", "5-2", "range '5-2' is empty"), ("hour", "20-24", "hour goes from 0 to 23")],
)
def test_impossible_ranges_are_refused(column, spec, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        _condition(column, spec)


def test_p_fail_follows_the_formula_by_hand(world):
    # all three rules hold: 1 - 0.98 * 0.2 * 0.5 * 0.7
    snap = sample_snapshot(MON_10, battery_percent=20.0, on_ac=False, load5=4.0)
    assert world.p_fail("nightly_backup", snap) == pytest.approx(1 - 0.98 * 0.2 * 0.5 * 0.7)
    # nothing holds at 03:00 on AC, quiet: the base rate alone
    night = sample_snapshot(MON_10.replace(hour=3), load5=0.5)
    assert world.p_fail("nightly_backup", night) == pytest.approx(0.02)
    # battery low but on AC: only the load rule
    plugged = sample_snapshot(MON_10.replace(hour=3), battery_percent=20.0, load5=3.5)
    assert world.p_fail("nightly_backup", plugged) == pytest.approx(1 - 0.98 * 0.5)
    # no battery at all: a battery condition never holds
    desktop = sample_snapshot(MON_10, battery_percent=None, charging=None, on_ac=False)
    assert world.p_fail("nightly_backup", desktop) == pytest.approx(1 - 0.98 * 0.7)


def test_hour_and_weekday_are_read_in_the_world_time_zone():
    text = SPEC_WORLD.replace("seed: 7", "seed: 7\ntimezone: America/New_York")
    world = load_world(text, "w.yaml")
    values = world.values(sample_snapshot(MON_10))  # 05:00 in New York
    assert (values["hour"], values["weekday"]) == (5.0, 0.0)
    assert world.p_fail("nightly_backup", sample_snapshot(MON_10)) == pytest.approx(0.02)


def test_runtime_grows_with_load(world):
    assert world.runtime_s("nightly_backup", sample_snapshot(MON_10, load5=2.0)) == 1920.0
    assert world.runtime_s("nightly_backup", sample_snapshot(MON_10, load5=0.0)) == 1200.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("20m", 1200), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (90, 90)],
)
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


def test_unknown_jobs_get_the_default_law(world):
    assert world.law_for("plain_line_7") == JobLaw(name="plain_line_7")
    snap = sample_snapshot(MON_10, load5=9.0, battery_percent=1.0, on_ac=False)
    assert world.p_fail("plain_line_7", snap) == 0.0
    assert world.runtime_s("plain_line_7", snap) == 60.0
    assert world.law_for("plain_line_7").cpu == 0.0


def test_draw_is_deterministic_uniform_and_independent_of_call_order(world):
    keys = [(job, MON_10 + timedelta(minutes=m)) for job in ("a", "b") for m in range(500)]
    forward = {k: draw(7, *k) for k in keys}
    backward = {k: draw(7, *k) for k in reversed(keys)}
    assert forward == backward
    values = list(forward.values())
    assert all(0 <= u < 1 for u in values)
    assert len(set(values)) == len(values)
    assert abs(sum(values) / len(values) - 0.5) < 0.03
    assert draw(7, "a", MON_10) != draw(8, "a", MON_10)
    assert world.draw("a", MON_10) == draw(7, "a", MON_10)
    assert world.draw("a", MON_10, seed=8) == draw(8, "a", MON_10)
    # the same instant written in another zone is the same firing
    assert (
        draw(7, "a", MON_10.astimezone(datetime.now().astimezone().tzinfo))
        == forward[("a", MON_10)]
    )
    with pytest.raises(ValueError):
        draw(7, "a", MON_10.replace(tzinfo=None))


def test_a_firing_fails_when_its_draw_is_below_p_fail(world):
    snap = sample_snapshot(MON_10, battery_percent=20.0, on_ac=False, load5=4.0)
    p = world.p_fail("nightly_backup", snap)
    nominal = MON_10.replace(hour=1)
    assert world.fails("nightly_backup", nominal, snap) == (
        world.draw("nightly_backup", nominal) < p
    )
    assert not World().fails("x", nominal, snap)


def test_active_minutes(world):
    assert world.is_active(sample_snapshot(MON_10, idle_seconds=59.0))
    assert not world.is_active(sample_snapshot(MON_10, idle_seconds=60.0))
    assert not world.is_active(sample_snapshot(MON_10, idle_seconds=None))


def test_check_jobs_refuses_extra_world_jobs_and_lists_unnamed_ones(world):
    assert world.check_jobs(["nightly_backup", "plain"]) == ["plain"]
    with pytest.raises(WorldError, match=r"w\.yaml: jobs not in the crontab: nightly_backup"):
        world.check_jobs(["plain"])


@pytest.mark.parametrize(
    ("edit", "where", "reason"),
    [
        (("base_fail: 0.02", "base_fail: 1.5"), "w.yaml:8", "jobs.nightly_backup.base_fail: 1.5"),
        (("cpu: 1.0", "cpu: 1.0\n    colour: red"), "w.yaml:5", "'colour' was unexpected"),
        (('"<25"', '"~25"'), "w.yaml:10", "fail[0].when.battery_percent"),
        (("{load5:", "{load6:"), "w.yaml:12", "fail[1].when"),
        (("runtime: 20m", "runtime: soon"), "w.yaml:5", "jobs.nightly_backup.runtime"),
        (("runtime: 20m", "runtime: 0m"), "w.yaml:5", "runtime: must be > 0"),
        (('"9-17"', '"17-9"'), None, None),  # hour ranges may wrap
        (('{load5: ">3"}', '{load5: "5-1"}'), "w.yaml:12", "range '5-1' is empty"),
        (("p: 0.5", "p: -1"), "w.yaml:13", "fail[1].p"),
        (("seed: 7", "seed: 7\ntimezone: Mars/Olympus"), "w.yaml:2", "unknown time zone"),
        (("nightly_backup:", "bad name!:"), "w.yaml:4", "jobs: 'bad name!' does not match"),
        (("nightly_backup:", "123:"), "w.yaml:4", "jobs: 123 is not of type 'string'"),
        (("jobs:", "jobz:"), "w.yaml:1", "'jobs' is a required property"),
        (("fail:", "fail: [\n"), "w.yaml:", "YAML error"),
    ],
)
def test_schema_errors_name_file_line_and_key(edit, where, reason):
    text = SPEC_WORLD.replace(*edit)
    if where is None:
        load_world(text, "w.yaml")
        return
    with pytest.raises(WorldError) as info:
        load_world(text, "w.yaml")
    message = str(info.value)
    assert message.startswith(where) and reason in message
    assert isinstance(info.value, SmartcronError)


def test_every_schema_error_is_reported_at_once():
    text = SPEC_WORLD.replace("base_fail: 0.02", "base_fail: 2").replace("p: 0.3", "p: 3")
    with pytest.raises(WorldError) as info:
        load_world(text, "w.yaml")
    assert len(str(info.value).splitlines()) == 2


@pytest.mark.parametrize("text", ["", "# nothing\n", "---\n...\n"])
def test_an_empty_world_is_an_error(text):
    with pytest.raises(WorldError, match=r"w\.yaml: empty world file"):
        load_world(text, "w.yaml")


def test_a_yaml_bomb_is_refused_without_expanding_it():
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "\n".join(lines) + "\njobs: {}\n"
    with pytest.raises(WorldError, match=r"w.yaml: YAML aliases expand to more than"):
        load_world(text, "w.yaml")


def test_too_many_aliases_and_recursive_aliases_are_refused():
    many = "x: &x 1\nl: [" + ", ".join(["*x"] * 500) + "]\njobs: {}\n"
    with pytest.raises(WorldError, match=r"w\.yaml: more than 200 YAML aliases"):
        load_world(many, "w.yaml")
    with pytest.raises(WorldError, match=r"w\.yaml: YAML aliases expand"):
        load_world("a: &a [*a]\njobs: {}\n", "w.yaml")


def test_a_few_aliases_are_fine():
    text = SPEC_WORLD + "  other:\n    runtime: 1m\n    fail:\n      - when: &w {hour: 3}\n"
    text += "        p: 0.1\n      - when: *w\n        p: 0.2\n"
    law = load_world(text, "w.yaml").law_for("other")
    assert [r.p for r in law.fail] == [0.1, 0.2]


def test_huge_files_are_refused_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("jobs: {}\n" + "#" * MAX_BYTES)
    with pytest.raises(WorldError, match=r"big\.yaml: world file larger than 2 MB"):
        read_world(big)
    with pytest.raises(WorldError, match="larger than"):
        load_world("jobs: {}\n" + "#" * MAX_BYTES, "w.yaml")
    with pytest.raises(WorldError, match="cannot read world"):
        read_world(tmp_path / "missing.yaml")


def _crontab_names(path: Path) -> list[str]:
    tab = parse(path.read_text(), path=str(path))
    names = []
    for entry in tab.entries:
        for note in entry.annotations:
            names += re.findall(r"\bname=(\S+)", note.text)
    return names


@pytest.mark.parametrize("kind", ["laptop", "server", "workstation"])
def test_shipped_worlds_match_their_crontabs(kind):
    world = read_world(FIXTURES / "worlds" / f"{kind}.yaml")
    names = _crontab_names(FIXTURES / "crontabs" / f"{kind}.crontab")
    assert sorted(names) == sorted(world.jobs)
    assert world.check_jobs(names) == []
    for law in world.jobs.values():
        assert 0 < law.base_fail < 0.1 and law.fail  # a base rate no feature explains


@pytest.mark.parametrize(
    ("column", "spec", "true", "false"),
    [
        ("hour", "9", [9.0], [8.0, 10.0]),
        ("load5", "0.5", [0.5], [0.4, 0.6]),
        ("weekday", " 3 ", [3.0], [2.0, 4.0]),
        ("on_ac", "0", [0.0], [1.0, None]),
    ],
)
def test_a_quoted_number_is_that_number(column, spec, true, false):
    cond = _condition(column, spec)
    assert (cond.op, cond.low) == ("==", float(spec))
    assert all(cond.holds(v) for v in true)
    assert not any(cond.holds(v) for v in false)


def test_the_schema_accepts_quoted_numbers_in_conditions(world):
    text = SPEC_WORLD.replace('{hour: "9-17"}', '{hour: "9", load5: " 0.5 "}')
    law = load_world(text, "w.yaml").law_for("nightly_backup")
    assert [(c.column, c.op, c.low) for c in law.fail[2].when] == [
        ("hour", "==", 9.0),
        ("load5", "==", 0.5),
    ]
    at_9 = sample_snapshot(at=MON_10.replace(hour=9), load5=0.5, on_ac=True)
    at_10 = sample_snapshot(at=MON_10, load5=0.5, on_ac=True)
    world9 = load_world(text, "w.yaml")
    assert world9.p_fail("nightly_backup", at_9) == pytest.approx(1 - 0.98 * 0.7)
    assert world9.p_fail("nightly_backup", at_10) == pytest.approx(0.02)


@pytest.mark.parametrize("garbage", ['"9h"', '"nine"', '"1-2-3"', '"- 4"'])
def test_a_garbage_condition_still_names_file_line_and_key(garbage):
    text = SPEC_WORLD.replace('"9-17"', garbage)
    with pytest.raises(WorldError) as info:
        load_world(text, "w.yaml")
    assert str(info.value).startswith("w.yaml:14: jobs.nightly_backup.fail[2].when.hour")


def test_job_load_is_opt_in_and_names_the_cores(world):
    assert (world.job_load, world.cores) == (False, 8)
    loaded = load_world(SPEC_WORLD + "machine: {cores: 4, job_load: true}\n", "w.yaml")
    assert (loaded.job_load, loaded.cores) == (True, 4)
    for bad, reason in [("{cores: 0}", "machine.cores"), ("{gpus: 2}", "'gpus' was unexpected")]:
        with pytest.raises(WorldError) as info:
            load_world(SPEC_WORLD + f"machine: {bad}\n", "w.yaml")
        assert str(info.value).startswith("w.yaml:16") and reason in str(info.value)


def test_the_contention_scenario_s_heavy_jobs_fail_each_other_through_the_job_load():
    from smartcron.sim.timeline import Timeline
    from smartcron.sim.trace import read_trace

    world = read_world(FIXTURES / "worlds" / "contention.yaml")
    names = _crontab_names(FIXTURES / "crontabs" / "contention.crontab")
    assert sorted(names) == sorted(world.jobs) and world.check_jobs(names) == []
    assert (world.job_load, world.cores) == (True, 12)
    heavy = ["nas_backup", "transcode", "photo_index", "test_suite"]
    assert all(world.law_for(job).cpu >= 2 for job in heavy)
    timeline = Timeline(read_trace(FIXTURES / "traces" / "workstation-8w.csv.gz"), world)
    two_am = 2 * 1440 + 120  # Wednesday 02:00, cron's start of nas_backup and transcode
    alone = [world.p_fail(job, timeline.snapshot(two_am + 20)) for job in heavy]
    for job in heavy[:2]:
        runtime = world.runtime_s(job, timeline.snapshot(two_am))
        timeline.occupy(two_am, runtime, world.law_for(job).cpu)
    crowded = [world.p_fail(job, timeline.snapshot(two_am + 20)) for job in heavy]
    assert max(alone) < 0.1 and min(crowded) > 0.5
