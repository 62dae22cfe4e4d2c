"""Policy profiles (issue 16.6): profile=NAME on a job or as a companion default, the
precedence around it, user > system > shipped files, smartcronctl profiles, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path

import pytest

from smartcron.cron.crontab import Kind, parse
from smartcron.errors import AnnotationError
from smartcron.smart import profiles
from smartcron.smart.smartspec import load_companion, smart_spec_for

CTL = Path(sys.executable).parent / "smartcronctl"
TAB = Path(sys.executable).parent / "smartcrontab"


@pytest.fixture(autouse=True)
def user_profiles(tmp_path, monkeypatch) -> Path:
    """A private user config directory (platformdirs reads XDG_CONFIG_HOME)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    directory = tmp_path / "conf" / "smartcron" / "profiles"
    directory.mkdir(parents=True)
    return directory


def spec_of(text: str, companion: str | None = None, path: str = "/tmp/tab"):
    tab = parse(text, Kind.USER, path)
    comp = None if companion is None else load_companion(companion, path + ".smart.yaml")
    return smart_spec_for(tab.entries[-1], path, comp, None)


def test_the_three_shipped_profiles_load_with_their_keys():
    found = profiles.catalog().profiles
    assert set(found) >= {"laptop", "server", "quiet-hours"}
    laptop, server, quiet = found["laptop"], found["server"], found["quiet-hours"]
    assert laptop.origin == "shipped" and laptop.keys["ac"] is True
    assert laptop.keys["idle"] == timedelta(minutes=10) and laptop.keys["min_battery"] == 40
    assert server.keys["max_load"] == 4 and "idle" not in server.keys and "ac" not in server.keys
    assert server.keys["max_cpu_pressure"] == 40 and server.keys["max_io_pressure"] == 30
    assert quiet.keys["window"] == (time(22), time(6))
    assert quiet.keys["interference_cost"] == 1.0 > server.keys["interference_cost"]


def test_a_job_takes_its_profile_keys_under_its_own():
    spec = spec_of("#@smart profile=laptop idle=30m\n0 1 * * * backup\n")
    assert spec.profile == "laptop"
    assert spec.ac is True and spec.min_battery == 40  # from the profile
    assert spec.idle == timedelta(minutes=30)  # the job's own key wins
    assert spec.window == timedelta(hours=4) and spec.interference_cost == 0.2


def test_a_companion_default_profile_sits_under_the_job_entry_and_over_nothing_else():
    companion = "defaults:\n  profile: server\njobs:\n  b:\n    max_load: 9\n"
    spec = spec_of("#@smart name=b\n0 1 * * * backup\n", companion)
    assert spec.profile == "server"
    assert spec.max_load == 9  # the companion's jobs: entry beats the defaults' profile
    assert spec.window == timedelta(hours=2)  # the profile beats the default window
    other = spec_of("#@smart name=c window=10m\n0 1 * * * backup\n", companion)
    assert other.max_load == 4 and other.window == timedelta(minutes=10)


def test_the_highest_level_naming_a_profile_wins_and_profiles_never_mix():
    companion = "defaults:\n  profile: laptop\n  window: 1h\n"
    spec = spec_of("#@smart profile=server\n0 1 * * * backup\n", companion)
    assert spec.profile == "server" and spec.max_load == 4
    assert spec.ac is False and spec.idle is None  # nothing of laptop's
    # the server profile sits under the inline level, over the companion's defaults
    assert spec.window == timedelta(hours=2)


def test_a_user_profile_overrides_the_system_and_shipped_one_of_its_name(tmp_path, user_profiles):
    system = tmp_path / "etc"
    system.mkdir()
    (system / "laptop.yaml").write_text("keys:\n  idle: 20m\n")
    (user_profiles / "laptop.yaml").write_text("description: mine\nkeys:\n  idle: 1h\n")
    dirs = [("shipped", profiles.shipped_dir()), ("system", system), ("user", user_profiles)]
    found = profiles.catalog(dirs).profiles["laptop"]
    assert (found.origin, found.description, dict(found.keys)) == (
        "user",
        "mine",
        {"idle": timedelta(hours=1)},
    )
    shipped = str(profiles.shipped_dir() / "laptop.yaml")
    assert found.overrides == (shipped, str(system / "laptop.yaml"))
    # and a job naming it sees the user's (the default search path reads XDG_CONFIG_HOME)
    spec = spec_of("#@smart profile=laptop\n0 1 * * * backup\n")
    assert spec.idle == timedelta(hours=1) and spec.ac is False


def test_an_unknown_profile_is_an_error_at_its_line_with_the_nearest_name():
    with pytest.raises(AnnotationError) as caught:
        spec_of('MAILTO=""\n#@smart window=1h\n#@smart profile=laptp\n0 1 * * * backup\n')
    assert [str(p) for p in caught.value.problems] == [
        "/tmp/tab:3: profile: unknown profile 'laptp' (did you mean 'laptop'?)"
        " (known: laptop, quiet-hours, server)"
    ]


def test_a_companion_naming_an_unknown_profile_points_at_its_key():
    with pytest.raises(AnnotationError) as caught:
        load_companion("jobs:\n  b:\n    idle: 5m\n    profile: servr\n", "/tmp/t.smart.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith("/tmp/t.smart.yaml:4: jobs.b.profile: unknown profile 'servr'")
    assert "(did you mean 'server'?)" in str(problem)


def test_a_profile_file_with_a_bad_key_or_value_is_refused_at_file_line(user_profiles):
    (user_profiles / "mine.yaml").write_text("description: x\nkeys:\n  ac: yes\n  idel: 5m\n")
    (user_profiles / "bad.yaml").write_text("keys:\n  retry: 500\n")
    found = profiles.catalog()
    assert [str(p) for p in found.broken["mine"].problems] == [
        f"{user_profiles}/mine.yaml:4: keys.idel: unknown key (did you mean 'idle'?)"
    ]
    bad = str(found.broken["bad"].problems[0])
    assert bad.startswith(f"{user_profiles}/bad.yaml:2: keys.retry")
    with pytest.raises(AnnotationError) as caught:
        spec_of("#@smart profile=mine\n0 1 * * * backup\n")
    assert "/tmp/tab:1: profile: profile 'mine' is broken: " in str(caught.value.problems[0])


def test_a_profile_naming_a_profile_or_a_name_is_refused(user_profiles):
    (user_profiles / "nest.yaml").write_text("keys:\n  ac: yes\n  profile: laptop\n")
    (user_profiles / "named.yaml").write_text("keys:\n  name: x\n")
    broken = profiles.catalog().broken
    assert [str(p) for p in broken["nest"].problems] == [
        f"{user_profiles}/nest.yaml:3: keys.profile: a profile cannot name a profile"
        " (profiles do not nest)"
    ]
    assert "keys.name: unknown key (a name belongs to one job)" in str(broken["named"].problems[0])


def test_smartcrontab_T_reports_an_unknown_profile_and_exits_1(tmp_path):
    tab = tmp_path / "tab"
    tab.write_text("#@smart profile=quiet-hour\n0 1 * * * backup\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    done = subprocess.run([TAB, "-T", str(tab)], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"{tab}:1: profile: unknown profile 'quiet-hour' (did you mean 'quiet-hours'?)"
    )


def test_smartcronctl_profiles_lists_keys_and_where_each_came_from(tmp_path, user_profiles):
    (user_profiles / "server.yaml").write_text("description: my box\nkeys:\n  max_load: 8\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    done = subprocess.run([CTL, "profiles", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    by_name = {item["name"]: item for item in doc["profiles"]}
    assert by_name["server"]["origin"] == "user" and by_name["server"]["keys"] == {"max_load": "8"}
    assert by_name["server"]["overrides"] == [str(profiles.shipped_dir() / "server.yaml")]
    assert by_name["laptop"]["keys"]["idle"] == "10m" and by_name["laptop"]["keys"]["ac"] == "yes"
    assert by_name["quiet-hours"]["keys"]["window"] == "22:00-06:00"
    assert doc["broken"] == []
    text = subprocess.run([CTL, "profiles"], capture_output=True, text=True, env=env).stdout
    assert f"server  (user: {user_profiles}/server.yaml)" in text
    assert "  #@smart max_load=8" in text


def test_smartcronctl_profiles_exits_1_and_shows_a_broken_file(tmp_path, user_profiles):
    (user_profiles / "oops.yaml").write_text("keys:\n  window: soon\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    done = subprocess.run([CTL, "profiles"], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "oops  (broken: not used)" in done.stdout
    assert f"{user_profiles}/oops.yaml:2: keys.window: " in done.stdout


def test_the_daemon_takes_an_edited_profile_on_a_forced_reload(tmp_path, user_profiles):
    from tests.harness import make

    h = make(tmp_path / "d", "#@smart profile=laptop\n0 2 * * * backup\n")
    (job,) = h.daemon.db.jobs
    assert job.smart is not None and job.smart.idle == timedelta(minutes=10)
    (user_profiles / "laptop.yaml").write_text("keys:\n  idle: 1h\n")
    h.daemon.reload()  # the crontab did not change: its jobs are kept as they were
    assert h.daemon.db.jobs[0].smart.idle == timedelta(minutes=10)
    h.daemon.reload(force=True)  # SIGHUP, smartcronctl reload
    spec = h.daemon.db.jobs[0].smart
    assert spec.idle == timedelta(hours=1) and spec.ac is False and spec.profile == "laptop"


def test_a_job_file_naming_an_unknown_profile_is_refused_naming_the_file(tmp_path):
    from smartcron.smart.jobfiles import load_job_file

    path = str(tmp_path / "backup.yaml")
    job = load_job_file("job_name: b\ncommand: x\nschedule: '0 1 * * *'\nprofile: servr\n", path)
    with pytest.raises(AnnotationError) as caught:
        job.smart_spec(None)
    assert str(caught.value.problems[0]).startswith(
        f"{path}: profile: unknown profile 'servr' (did you mean 'server'?)"
    )
