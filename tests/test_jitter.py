"""jitter=DURATION (issue 16, point 2): a per-host, per-job offset into the window, like
Jenkins' H: the same host and job always get the same one, a fleet spreads evenly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from smartcron.cli.crontab import main as smartcrontab
from smartcron.cli.ctl import main as smartcronctl
from smartcron.smart.constraints import duration_text
from smartcron.smart.jitter import jitter_offset, read_host_key
from smartcron.smart.machine import Machine
from smartcron.smart.smartspec import SmartSpec
from tests.harness import BERLIN, cli_config, make, utc
from tests.userconfig import user_config

HOURLY = "#@smart name=sync window=1h jitter=40m\n0 * * * * sync\n"


def test_the_same_host_and_job_always_get_the_same_offset_and_another_host_another():
    jitter = timedelta(minutes=40)
    first = jitter_offset(jitter, "sync", "host-a")
    assert first == jitter_offset(jitter, "sync", "host-a")
    assert timedelta(0) <= first < jitter and first.microseconds == 0
    others = {jitter_offset(jitter, "sync", f"host-{n}") for n in range(20)}
    assert len(others) >= 18  # 2400 possible seconds: distinct hosts, distinct offsets
    assert jitter_offset(jitter, "backup", "host-a") != first  # per job too
    assert jitter_offset(None, "sync", "host-a") == timedelta(0)


def test_a_hundred_hosts_cover_the_window_about_uniformly():
    """Chi-square over 10 equal bins: 9 degrees of freedom, 27.9 is its 99.9% quantile."""
    jitter = timedelta(hours=1)
    bins = [0] * 10
    for n in range(100):
        offset = jitter_offset(jitter, "nightly_backup", f"{n:032x}")
        bins[int(offset / jitter * 10)] += 1
    chi2 = sum((count - 10) ** 2 / 10 for count in bins)
    assert chi2 < 27.9, bins
    assert min(bins) >= 2, bins  # no tenth of the window left empty


def test_the_host_key_is_the_machine_id_else_dbus_copy_else_the_hostname(tmp_path):
    etc, dbus = tmp_path / "machine-id", tmp_path / "dbus-machine-id"
    dbus.write_text("d" * 32 + "\n")
    assert read_host_key((etc, dbus)) == "d" * 32  # /etc/machine-id missing
    etc.write_text("\n")
    assert read_host_key((etc, dbus)) == "d" * 32  # empty (an image before first boot)
    etc.write_text("e" * 32 + "\n")
    assert read_host_key((etc, dbus)) == "e" * 32
    import socket

    assert read_host_key((tmp_path / "none", tmp_path / "nada")) == socket.gethostname()


@given(
    window_s=st.integers(min_value=60, max_value=6 * 3600),
    share=st.floats(min_value=0.0, max_value=1.0),
    job=st.text(min_size=1, max_size=20),
    host=st.text(max_size=40),
    minute=st.integers(min_value=0, max_value=60 * 24 * 30),
)
def test_a_jittered_start_is_never_before_the_nominal_time_nor_past_the_deadline(
    window_s, share, job, host, minute
):
    window = timedelta(seconds=window_s)
    spec = SmartSpec(window=window, jitter=timedelta(seconds=int(window_s * share)))

    class Job:
        id, owner, zone, smart = job, "alice", None, spec

    machine = Machine(UTC)
    machine.host = host
    nominal = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    firing = machine.firing_for(Job(), nominal)
    start = firing.not_before or firing.nominal
    assert nominal <= start <= firing.deadline == nominal + window
    assert start - nominal == jitter_offset(spec.jitter, job, host)


def test_a_clock_window_is_jittered_from_its_opening():
    spec = SmartSpec(window_clock=(datetime(2026, 1, 1, 1).time(), datetime(2026, 1, 1, 3).time()),
                     jitter=timedelta(hours=2))  # fmt: skip

    class Job:
        id, owner, zone, smart = "backup", "alice", None, spec

    machine = Machine(UTC)
    machine.host = "h1"
    firing = machine.firing_for(Job(), datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    offset = jitter_offset(spec.jitter, "backup", "h1")
    assert firing.not_before == datetime(2026, 3, 1, 1, 0, tzinfo=UTC) + offset
    assert firing.deadline == datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def test_the_daemon_starts_each_firing_at_its_offset_and_keeps_it_across_a_restart(tmp_path):
    h = make(tmp_path, HOURLY)
    offset = jitter_offset(timedelta(minutes=40), h.job("sync").id)
    h.run_until(utc("03:01"))
    assert h.runner.started_at == [utc("01:00") + offset, utc("02:00") + offset]
    trail = h.trail("sync")
    hhmm = (utc("01:00") + offset).astimezone(BERLIN).strftime("%H:%M")
    assert ("01:00Z", "defer", f"jitter: this host starts it at {hhmm}") in trail
    # A restarted daemon (same history, same host): the same offset.
    later = make(tmp_path, HOURLY, start=utc("03:01"), history=h.history)
    later.run_until(utc("05:01"))
    assert later.runner.started_at == [utc("03:00") + offset, utc("04:00") + offset]


def test_jitter_longer_than_the_window_is_a_check_error_with_file_and_line(tmp_path):
    path = tmp_path / "crontab"
    path.write_text("MAILTO=\n#@smart window=30m\n#@smart jitter=45m\n0 1 * * * backup\n")
    result = CliRunner().invoke(smartcrontab, ["-T", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: jitter=45m is longer than the job's window (30m)" in result.output
    path.write_text("#@smart window=01:00-01:20 jitter=20m\n0 1 * * * backup\n")
    assert CliRunner().invoke(smartcrontab, ["-T", str(path)]).exit_code == 0
    path.write_text("#@smart window=01:00-01:20 jitter=21m\n0 1 * * * backup\n")
    result = CliRunner().invoke(smartcrontab, ["-T", str(path)])
    assert f"{path}:1: jitter=21m is longer than the job's window (20m)" in result.output


def test_status_and_explain_show_the_offset_this_host_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    user_config(tmp_path, HOURLY)
    conf = cli_config(tmp_path)
    args = ["--user", "--config", str(conf)]
    runner = CliRunner()
    result = runner.invoke(smartcronctl, ["status", "--json", *args])
    doc = json.loads(result.output)
    (job,) = [item for item in doc["next"] if item["name"] == "sync"]
    seconds = job["settings"]["jitter_offset"]
    assert seconds == jitter_offset(timedelta(minutes=40), job["id"]).total_seconds()
    shown = duration_text(timedelta(seconds=seconds))
    assert f"sync +{shown}" in runner.invoke(smartcronctl, ["status", *args]).output
    text = runner.invoke(smartcronctl, ["explain", "sync", *args]).output
    assert f"jitter: on this host each firing starts {seconds} s into its window" in text


def test_the_daemon_does_not_load_openssl_for_its_hashes_with_or_without_a_model(tmp_path):
    # hashlib maps OpenSSL's libcrypto, about 3.5 MB of the daemon's 30 MB idle budget
    # (benchmarks daemon-idle) and 3.4 MB of its 80 MiB with a model (daemon-model):
    # jitter, exploration's draws, job ids and the model's checksum hash without it.
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    models = tmp_path / "models"  # the shipped model, with the modes load_model accepts
    shutil.copytree(Path(__file__).parents[1] / "models", models)
    for path in (models, *models.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    code = (
        "import sys, smartcron.cli.daemon, smartcron.daemon.service, smartcron.smart.jitter\n"
        "import smartcron.smart.explore, smartcron.ai.advisor\n"
        "from datetime import timedelta\n"
        "from smartcron.ai.model import LoadedModel, load_model\n"
        "smartcron.smart.jitter.jitter_offset(timedelta(hours=1), 'job', 'host')\n"
        "smartcron.smart.explore.uniform(7, 'job', 'nominal')\n"
        f"model = load_model({str(models)!r}, owner_uid={os.getuid()}, max_age=None)\n"
        "assert isinstance(model, LoadedModel), model\n"
        "print(sorted(m for m in ('hashlib', '_hashlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_simulation_jitters_as_a_fixed_host_whatever_machine_runs_it(tmp_path, monkeypatch):
    """The simulator hashes the host "simulator", not this machine's id: bench figures
    with jitter= jobs are the same on every machine."""
    from smartcron.sim import engine
    from smartcron.sim.simulator import Timeline, load_scenario, simulate
    from smartcron.sim.trace import load_trace
    from smartcron.sim.world import load_world
    from smartcron.smart import jitter
    from tests.simkit import trace_text

    tab = tmp_path / "tab"
    tab.write_text("#@smart name=sync window=25m jitter=20m\n0 0 * * * sync\n")
    sc = load_scenario(tab, zone=UTC, owner="alice")
    world = load_world("seed: 1\njobs:\n  sync: {runtime: 1m, cpu: 0.1}\n", "w.yaml")
    job_id = sc.jobs[0].id
    hosts = ("a" * 32, "b" * 32)
    assert len({jitter_offset(timedelta(minutes=20), job_id, h) // timedelta(minutes=1)
                for h in hosts}) == 2  # fmt: skip
    delays = []
    for host in hosts:
        monkeypatch.setattr(jitter, "host_key", lambda host=host: host)
        timeline = Timeline(load_trace(trace_text(40), "t.csv"), world, sc.specs())
        delays.append(simulate(sc, timeline, world, "rules").metrics()["delay_mean_s"])
    assert delays[0] == delays[1]
    offset = jitter_offset(timedelta(minutes=20), job_id, engine.SIMULATED_HOST)
    assert offset.total_seconds() <= delays[0] < offset.total_seconds() + 60
