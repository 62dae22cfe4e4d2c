"""after=NAME (issue 16.5): the decision on fake snapshots (the state machine the daemon
and the simulator share), the simulator on a trace for a backup -> upload chain, and
the texts explain shows."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcron.daemon.explain import trail_lines
from smartcron.errors import AnnotationError
from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import load_trace
from smartcron.sim.world import load_world
from smartcron.smart.annotations import convert
from smartcron.smart.depends import DependentMachine, Outcome
from smartcron.smart.machine import Wakeup
from smartcron.smart.smartspec import SmartSpec, load_companion
from smartcron.testing import sample_snapshot
from tests.simkit import T0 as TRACE_T0
from tests.simkit import trace_text

T0 = datetime(2026, 2, 10, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)


@dataclass(frozen=True)
class Job:
    id: str
    smart: SmartSpec
    owner: str = "alice"
    zone: tzinfo | None = None
    source: str = "/var/spool/cron/crontabs/alice"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def wake(machine: DependentMachine, now: datetime, *jobs: Job, load: float = 0.1) -> list:
    return machine.process(
        Wakeup(
            now=now,
            jobs={job.id: job for job in jobs},
            snapshot=lambda spec: sample_snapshot(now, load5=load),
            owners=lambda: {job.id: job.owner for job in jobs},
            max_concurrent=4,
        )
    )


def chain(on_deadline: Literal["run", "skip"] = "run") -> tuple[Job, Job]:
    backup = Job("b-id", SmartSpec(name="backup", window=2 * H, max_load=1.0))
    spec = SmartSpec(name="upload", window=H, after=("backup",), on_deadline=on_deadline)
    upload = Job("u-id", spec)
    return backup, upload


def opened(machine: DependentMachine, *jobs: Job, when: datetime = T0) -> None:
    for job in jobs:
        machine.open(machine.firing_for(job, when), when)


def test_a_firing_waits_while_its_dependency_is_pending_then_running_and_starts_on_success():
    backup, upload = chain()
    machine = DependentMachine(UTC)
    opened(machine, backup, upload)
    # load 3 > max_load 1: backup defers; upload waits for it, until its deadline
    effects = wake(machine, T0, backup, upload, load=3.0)
    assert [(e.kind, e.firing.job_id, e.reason) for e in effects] == [
        ("defer", "b-id", "load5 3 > max_load 1"),
        ("defer", "u-id", "waiting for backup (due 01:00, not started yet)"),
    ]
    assert effects[1].until == at(60) and machine.slots["u-id", T0].next_eval == at(60)
    # backup starts at 01:03: upload is looked at again at once, and waits for the run
    (start,) = wake(machine, at(3), backup, upload)
    assert (start.kind, start.firing.job_id) == ("start", "b-id")
    assert machine.slots["u-id", T0].next_eval == at(3)
    (waiting,) = wake(machine, at(3), backup, upload)
    assert waiting.reason == "waiting for backup (running since 01:03)"
    # backup succeeds at 01:40: upload starts in the same wake-up, saying why
    done = machine.finished(backup, start.firing, "ok", "exit 0 in 37m", at(40))
    assert done.kind == "done" and machine.slots["u-id", T0].next_eval == at(40)
    (go,) = wake(machine, at(40), backup, upload)
    assert (go.kind, go.firing.job_id) == ("start", "u-id")
    assert go.reason == "backup succeeded at 01:40; constraints hold"


def test_a_chain_is_decided_dependency_first_whatever_the_windows_and_lines():
    """A wake-up decides the earliest deadline first, but never a dependent before the job
    it waits for, however the windows and the crontab order them: the records read in
    chain order. A cycle (which smartcrontab -T reports) still gets an order."""
    one = SmartSpec(name="one", window=3 * H, max_load=1.0)
    two = SmartSpec(name="two", window=2 * H, after=("one",))
    three = SmartSpec(name="three", window=H, after=("two",))
    jobs = (Job("3", three), Job("2", two), Job("1", one))  # the crontab's order
    machine = DependentMachine(UTC)
    opened(machine, *jobs)
    first = wake(machine, T0, *jobs, load=3.0)  # one defers: the others wait for it
    assert [(e.firing.job_id, e.reason) for e in first] == [
        ("1", "load5 3 > max_load 1"),
        ("2", "waiting for one (due 01:00, not started yet)"),
        ("3", "waiting for two (due 01:00, not started yet)"),
    ]
    assert [machine.depth(job.id) for job in jobs] == [2, 1, 0]
    ping = Job("p", SmartSpec(name="ping", after=("pong",)))
    pong = Job("q", SmartSpec(name="pong", after=("ping",)))
    machine = DependentMachine(UTC)
    opened(machine, ping, pong)
    assert len(wake(machine, T0, ping, pong)) == 2
    assert sorted(machine.depth(job.id) for job in (ping, pong)) == [1, 2]


@pytest.mark.parametrize(
    ("on_deadline", "kind", "reason"),
    [
        ("run", "start", "deadline 02:00 reached: running despite after backup: failed at 01:12"),
        ("skip", "skip", "deadline 02:00 reached: skipped: after backup: failed at 01:12"),
    ],
)
def test_a_failed_dependency_makes_the_firing_follow_on_deadline(on_deadline, kind, reason):
    backup, upload = chain(on_deadline)
    machine = DependentMachine(UTC)
    opened(machine, backup, upload)
    first = wake(machine, T0, backup, upload)
    start = next(e for e in first if e.kind == "start")
    failed = machine.finished(backup, start.firing, "failed", "exit 1 in 12m", at(12))
    assert failed.kind == "failed"
    (wait,) = wake(machine, at(12), backup, upload)
    assert (wait.kind, wait.reason, wait.until) == (
        "defer",
        "after backup: failed at 01:12",
        at(60),
    )
    assert wake(machine, at(30), backup, upload) == []  # nothing to do before the deadline
    (end,) = wake(machine, at(60), backup, upload)
    assert (end.kind, end.reason) == (kind, reason)


def test_a_dependency_still_running_at_the_deadline_and_one_never_loaded():
    backup, upload = chain()
    machine = DependentMachine(UTC)
    opened(machine, backup, upload)
    wake(machine, T0, backup, upload)  # backup starts, upload waits
    (end,) = wake(machine, at(60), backup, upload)
    assert (
        end.reason
        == "deadline 02:00 reached: running despite after backup: still running (since 01:00)"
    )
    alone = DependentMachine(UTC)
    opened(alone, upload, when=at(5))
    (defer,) = wake(alone, at(5), upload)
    assert defer.reason == "after backup: no smart job named backup loaded"


def test_the_latest_firing_due_by_the_nominal_counts_and_the_history_fills_in():
    backup, upload = chain()
    seen: list[tuple[str, datetime]] = []

    def lookup(job_id: str, nominal: datetime) -> Outcome | None:
        seen.append((job_id, nominal))
        return Outcome(T0 - 23 * H, "done", T0 - 22 * H)  # yesterday's, before a restart

    machine = DependentMachine(UTC, lookup=lookup)
    opened(machine, upload)
    (go,) = wake(machine, T0, backup, upload)
    assert go.kind == "start" and go.reason.startswith("backup succeeded at 03:00; ")
    assert seen == [("b-id", T0)]


def test_jobs_of_another_user_are_not_seen_but_system_ones_are():
    backup, upload = chain()
    bob = Job("b-id", backup.smart, owner="bob")
    machine = DependentMachine(UTC)
    opened(machine, upload)
    (defer,) = wake(machine, T0, bob, upload)
    assert defer.reason == "after backup: no smart job named backup loaded"
    system = Job("b-id", backup.smart, owner="root", source="/etc/cron.d/backup")
    machine = DependentMachine(UTC)
    opened(machine, system, upload)
    effects = wake(machine, T0, system, upload)
    assert [e.reason for e in effects if e.firing.job_id == "u-id"] == [
        "waiting for backup (due 01:00, not started yet)"
    ]


def test_a_job_naming_itself_in_after_is_an_error_with_its_line():
    from smartcron.cron.crontab import Kind, parse
    from smartcron.smart.smartspec import smart_spec_for

    tab = parse("#@smart name=a window=1h\n#@smart after=b,a\n0 1 * * * x\n", Kind.USER, "/t")
    with pytest.raises(AnnotationError) as caught:
        smart_spec_for(tab.entries[0], "/t", None, None)
    assert [str(p) for p in caught.value.problems] == ["/t:2: after: a names the job itself"]


# ------------------------------------------------------------------ the simulator

CHAIN = """\
#@smart name=backup window=30m idle=5m
0 0 * * * backup.sh
#@smart name=upload window=40m after=backup on_deadline={on_deadline}
0 0 * * * upload.sh
"""


def simulate_chain(tmp_path: Path, world: str, on_deadline: str = "run"):
    from smartcron.smart.firings import FiringStore
    from smartcron.store.history import HistoryStore

    tab = tmp_path / "tab"
    tab.write_text(CHAIN.format(on_deadline=on_deadline))
    sc = load_scenario(tab, zone=UTC, owner="alice")
    w = load_world(world, "world.yaml")
    tl = Timeline(load_trace(trace_text(60), "t.csv"), w, sc.specs())
    db = tmp_path / "h.db"
    out = simulate(sc, tl, w, "rules", history=str(db)).metrics()
    store = HistoryStore(db, readonly=True)
    try:
        firings = FiringStore(store)
        upload = firings.firings(["upload"], limit=1)[0]
        decisions = firings.decisions(upload.firing.id)
    finally:
        store.close()
    trail = [(d.at, d.verdict, d.reason) for d in decisions]
    return out["jobs"], trail, trail_lines(decisions, UTC)


def test_the_simulator_runs_upload_right_after_backup_succeeds(tmp_path):
    world = "jobs:\n  backup: {runtime: 3m}\n  upload: {runtime: 1m}\n"
    jobs, trail, explained = simulate_chain(tmp_path, world)
    # backup waits for idle (minute 9), runs 3 minutes; upload starts as it ends
    assert jobs["backup"]["delay_mean_s"] == 9 * 60 and jobs["upload"]["runs"] == 1
    assert jobs["upload"]["delay_mean_s"] == 12 * 60 and jobs["upload"]["failures"] == 0
    minute = lambda n: TRACE_T0 + timedelta(minutes=n)  # noqa: E731
    assert (minute(0), "defer", "waiting for backup (due 00:00, not started yet)") in trail
    assert (minute(9), "defer", "waiting for backup (running since 00:09)") in trail
    assert trail[-2:] == [
        (minute(12), "run", "backup succeeded at 00:12; constraints hold"),
        (minute(13), "done", "exit 0 in 60 s"),
    ]
    # what smartcronctl explain upload shows of that firing
    assert explained == [
        "00:00 deferred until 00:40: waiting for backup (due 00:00, not started yet)",
        "00:09 deferred until 00:40: waiting for backup (running since 00:09)",
        "00:12 ran (backup succeeded at 00:12; constraints hold); exit 0 in 60 s",
    ]


@pytest.mark.parametrize(("on_deadline", "runs", "skipped"), [("run", 1, 0), ("skip", 0, 1)])
def test_the_simulator_follows_on_deadline_when_backup_fails(tmp_path, on_deadline, runs, skipped):
    world = "jobs:\n  backup: {runtime: 3m, base_fail: 1.0}\n  upload: {runtime: 1m}\n"
    jobs, trail, explained = simulate_chain(tmp_path, world, on_deadline)
    assert jobs["backup"]["failures"] == 1
    assert (jobs["upload"]["runs"], jobs["upload"]["skipped"]) == (runs, skipped)
    last = [reason for _, verdict, reason in trail if verdict in ("run", "skip")]
    word = "running despite" if on_deadline == "run" else "skipped:"
    assert last == [f"deadline 00:40 reached: {word} after backup: failed at 00:12"]
    assert explained[-2] == "00:12 deferred until 00:40: after backup: failed at 00:12"


# ------------------------------------------------------------------ smartcrontab -T

TAB = Path(sys.executable).parent / "smartcrontab"


def check_T(tmp_path: Path, text: str, *args: str, **files: str) -> tuple[int, list[str]]:
    """smartcrontab -T on `text`, with a configuration whose system files are `files`
    (crontab, and cron.d/NAME for the others)."""
    etc = tmp_path / "etc"
    (etc / "cron.d").mkdir(parents=True, exist_ok=True)
    for old in (etc / "cron.d").iterdir():  # only this call's system files
        old.unlink()
    for name, body in files.items():
        target = etc / "crontab" if name == "crontab" else etc / "cron.d" / name
        target.write_text(body)
        target.chmod(0o644)
    config = tmp_path / "smartcron.toml"
    config.write_text(
        f'crontab = "{etc}/crontab"\ncron_d = "{etc}/cron.d"\nspool_dir = "{tmp_path}/spool"\n'
        f'jobs_dir = "{tmp_path}/jobs"\nstate_dir = "{tmp_path}/state"\n'
        f'run_dir = "{tmp_path}/run"\n'
    )
    tab = tmp_path / "tab"
    tab.write_text(text)
    env = {**os.environ, "SMARTCRON_CONFIG": str(config)}
    argv = [TAB, "-T", str(tab), *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    return done.returncode, done.stderr.replace(str(tab), "tab").splitlines()


def test_T_reports_cycles_and_unknown_names_at_the_after_line(tmp_path):
    text = (
        "#@smart name=a after=b\n0 1 * * * x\n"
        "#@smart name=b window=1h\n#@smart after=a\n0 2 * * * y\n"
        "#@smart name=c after=backpu\n0 3 * * * z\n"
        "#@smart name=backup\n0 0 * * * w\n"
    )
    assert check_T(tmp_path, text) == (
        1,
        [
            "tab:1: after: a cycle: a -> b -> a",
            "tab:4: after: a cycle: b -> a -> b",
            "tab:6: after: no job named 'backpu' (did you mean 'backup'?)",
        ],
    )
    ok = "#@smart name=backup\n0 1 * * * x\n#@smart name=upload after=backup\n0 2 * * * y\n"
    assert check_T(tmp_path, ok) == (0, [])


@pytest.mark.skipif(os.geteuid() != 0, reason="system crontabs must be root's")
def test_T_sees_the_jobs_of_the_system_files_and_cycles_through_them(tmp_path):
    # a user's job may wait for a system job: known
    text = "#@smart name=upload after=dump\n0 1 * * * up\n"
    calm = "#@smart name=dump\n0 0 * * * root dump\n"
    assert check_T(tmp_path, text, db=calm) == (0, [])
    assert check_T(tmp_path, text) == (1, ["tab:1: after: no job named 'dump'"])
    # a system file checked with --system: a cycle through another system file
    looping = "#@smart name=dump after=upload\n0 0 * * * root dump\n"
    system = "#@smart name=upload after=dump\n0 1 * * * root up\n"
    assert check_T(tmp_path, system, "--system", db=looping) == (
        1,
        ["tab:1: after: a cycle: upload -> dump -> upload"],
    )


# ------------------------------------------------------------------ grammar

NAME = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)


@given(st.lists(NAME, min_size=1, max_size=32))
def test_after_takes_names_in_order_once_each_written_inline_or_as_a_yaml_list(names):
    expected = tuple(dict.fromkeys(names))
    assert convert("after", ",".join(names)) == expected
    assert convert("after", names) == expected


def test_a_companion_gives_after_as_a_list_and_a_bad_name_at_its_line():
    companion = load_companion("jobs:\n  upload:\n    after: [backup, db]\n", "/t.smart.yaml")
    assert companion.jobs["upload"]["after"] == ("backup", "db")
    with pytest.raises(AnnotationError) as caught:
        load_companion(
            "jobs:\n  upload:\n    after:\n      - backup\n      - a/b\n", "/t.smart.yaml"
        )
    assert [str(p) for p in caught.value.problems] == [
        "/t.smart.yaml:4: jobs.upload.after: expected job names separated by commas"
        " (backup,upload), got ['backup', 'a/b']"
    ]


def test_T_sees_the_users_own_job_files_so_no_install_is_refused_for_them(tmp_path):
    jobs = tmp_path / "conf" / "smartcron" / "jobs"
    jobs.mkdir(parents=True)
    text = "#@smart name=upload after=backup\n0 1 * * * up\n"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    env.pop("SMARTCRON_CONFIG", None)
    tab = tmp_path / "tab"
    tab.write_text(text)

    def check() -> tuple[int, str]:
        done = subprocess.run([TAB, "-T", str(tab)], capture_output=True, text=True, env=env)
        return done.returncode, done.stderr

    assert check() == (1, f"{tab}:1: after: no job named 'backup'\n")
    (jobs / "backup.yaml").write_text("job_name: backup\ncommand: b\nschedule: '0 0 * * *'\n")
    (jobs / "backup.yaml").chmod(0o600)
    assert check() == (0, "")
