"""The scenario family (smartcron.sim.family): valid, deterministic and wide (issue 13)."""

from __future__ import annotations

import random
import re
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli.ctl import main
from smartcron.sim import family
from smartcron.sim.familylaws import Cause, Columns, Cond, draw_causes, varies
from smartcron.sim.scenario import load_scenario
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world

SEEDS = range(1, 21)  # development seeds only: 101-120 are the report seeds


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[family.Member]:
    root = tmp_path_factory.mktemp("family")
    return [family.generate(seed, root / f"seed-{seed}", days=2) for seed in SEEDS]


def _smart_lines(crontab: Path) -> list[str]:
    return [line for line in crontab.read_text().splitlines() if line.startswith("#@smart")]


def test_every_member_loads_through_the_real_loaders(members):
    for member in members:
        world = read_world(member.world)
        scenario = load_scenario(member.crontab, zone=UTC, owner="u")
        trace = read_trace(member.trace)
        assert scenario.warnings == ()
        smart = [job.id for job in scenario.jobs if job.smart is not None]
        plain = [job for job in scenario.jobs if job.smart is None]
        assert 4 <= len(smart) <= 8 and 1 <= len(plain) <= 3, member.description
        assert world.check_jobs(job.id for job in scenario.jobs) == sorted(j.id for j in plain)
        assert sorted(world.jobs) == sorted(smart)
        assert len(trace) == 2 * 1440
        assert member.description.startswith(f"seed {member.seed}: {member.kind} (")


def test_laws_and_jobs_stay_in_their_ranges(members):
    for member in members:
        world = read_world(member.world)
        for law in world.jobs.values():
            assert 60 <= law.runtime_s <= 3600 and 0.2 <= law.cpu <= 4.0
            assert 0 <= law.base_fail <= 0.04 and len(law.fail) <= 3
            assert all(0.15 <= rule.p <= 0.95 for rule in law.fail)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(tmp_path, members):
    again = family.generate(7, tmp_path / "again", days=2)
    first = members[6]
    for name in ("crontab", "world", "trace"):
        assert getattr(again, name).read_bytes() == getattr(first, name).read_bytes()
    assert again.description == first.description
    assert first.world.read_bytes() != members[7].world.read_bytes()
    assert first.trace.read_bytes() != members[7].trace.read_bytes()


def test_generating_leaves_the_global_random_state_alone(tmp_path):
    random.seed(5)
    state = random.getstate()
    family.generate(3, tmp_path / "m", days=1)
    assert random.getstate() == state


def test_the_family_is_wide(members):
    kinds = {m.kind for m in members}
    worlds = [m.world.read_text() for m in members]
    causes = {col for text in worlds for col in re.findall(r"when: \{(\w+):", text)}
    shifts = {re.search(r"user ([+-]\d\.\d) h", m.description)[1] for m in members}
    assert kinds == {"laptop", "desktop", "server"}
    assert {"hour", "idle_seconds", "weekday", "on_ac"} <= causes
    assert len(causes & {"load5", "load1", "ram_percent", "disk_free_percent"}) >= 3
    assert sum("job_load: true" in text for text in worlds) in range(4, 17)
    assert len(shifts) >= 8 and "pure noise" in "".join(worlds)
    hard = "".join(line for m in members for line in _smart_lines(m.crontab))
    for key in ("max_load=", "timeout=", "retry=", "window=", "idle=", "max_ram="):
        assert key in hard


def test_a_constraint_names_only_part_of_its_job_s_causes(members):
    for member in members:
        world = read_world(member.world)
        for line in _smart_lines(member.crontab):
            name = re.search(r"name=(\w+)", line)[1]
            named = len(re.findall(r"\b(max_ram|min_disk|ac|min_battery|idle)=", line))
            assert named == 0 or named < len(world.jobs[name].fail), line


def test_drawn_causes_include_one_that_varies_inside_the_window(tmp_path):
    member = family.generate(4, tmp_path / "m", days=7)
    cols = Columns(read_trace(member.trace))
    for hour, length in [(3, 30), (9, 240), (13, 15), (20, 600)]:
        opens = [d * 1440 + hour * 60 for d in range(6)]
        windows = [range(start, start + length) for start in opens]
        for seed in range(10):
            causes = draw_causes(random.Random(seed), cols, windows, battery=True)
            assert 1 <= len(causes) <= 3
            assert any(varies(cols, cause, windows) for cause in causes), (hour, seed)


def test_a_cause_that_holds_all_window_long_does_not_vary(tmp_path):
    member = family.generate(4, tmp_path / "m", days=2)
    cols = Columns(read_trace(member.trace))
    windows = [range(0, 60), range(1440, 1500)]  # 00:00-01:00
    night = Cause((Cond("hour", "range", 23, 2),), 0.5, "night")
    edge = Cause((Cond("hour", "==", 0),), 0.5, "00h")
    assert not varies(cols, night, windows)
    assert not varies(cols, edge, windows)
    assert varies(cols, edge, [range(30, 90), range(1470, 1530)])


def test_trace_gen_family_writes_members_and_prints_one_line_each(tmp_path):
    result = CliRunner().invoke(
        main, ["trace-gen", "--family", "2", "--seed", "3", "--days", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["seed 3", "seed 4"]
    for seed in (3, 4):
        assert sorted(p.name for p in (tmp_path / f"seed-{seed}").iterdir()) == [
            "crontab",
            "trace.csv.gz",
            "world.yaml",
        ]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--out", "x"], "give a KIND (laptop, server or workstation) or --family N"),
        (["laptop", "--family", "2", "--out", "x"], "no KIND and no --start"),
    ],
)
def test_trace_gen_without_a_kind_or_with_both_is_a_usage_error(args, reason):
    result = CliRunner().invoke(main, ["trace-gen", *args])
    assert result.exit_code == 2 and reason in result.output
