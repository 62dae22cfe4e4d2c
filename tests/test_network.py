"""network=online|unmetered (issue 16, point 4): route and resolver files, NetworkManager's
Metered property through a real (fake) busctl or gdbus, the gate, the monitor, the trace,
the simulator and explain."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartcron.cli import crontab as crontab_cli
from smartcron.cli.ctl import main as ctl_main
from smartcron.sim.simulator import Timeline, load_scenario, simulate
from smartcron.sim.trace import TraceError, load_trace, write_rows
from smartcron.sim.world import WorldError, load_world
from smartcron.smart import gate, network
from smartcron.smart.gate import Firing
from smartcron.smart.monitor import SystemMonitor
from smartcron.smart.smartspec import SmartSpec
from smartcron.store.history import HistoryStore
from smartcron.testing import sample_snapshot
from tests.harness import cli_config, make, utc

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
DEFAULT4 = "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
LOCAL4 = "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
ZERO = "0" * 32
# the kernel's own unreachable ::/0 on lo (RTF_REJECT), and a real default via eth0
LO6 = f"{ZERO} 00 {ZERO} 00 {ZERO} ffffffff 00000001 00000000 00200200       lo\n"
DEFAULT6 = f"{ZERO} 00 {ZERO} 00 fd{'0' * 29}1 00000400 00000003 00000000 00000003     eth0\n"


RESOLV = "# by hand\nsearch example.org\nnameserver 10.0.0.53\n"
ROUTES = HEADER + LOCAL4 + DEFAULT4
ONLINE = (True, "default route and resolver", None)
OFFLINE = (False, "no default route", None)


def tree(root: Path, route: str | None = ROUTES, ipv6: str | None = LO6,
         resolv: str | None = RESOLV) -> Path:  # fmt: skip
    """A fake /proc (net/route, net/ipv6_route) and resolv.conf beside it; None: absent."""
    (root / "proc" / "net").mkdir(parents=True)
    for path, text in ((root / "proc/net/route", route), (root / "proc/net/ipv6_route", ipv6),
                       (root / "resolv.conf", resolv)):  # fmt: skip
        if text is not None:
            path.write_text(text)
    return root


def online(root: Path) -> network.Online:
    return network.check_online(
        root / "proc/net/route", root / "proc/net/ipv6_route", root / "resolv.conf"
    )


# ------------------------------------------------------------------ online


def test_a_default_route_and_a_nameserver_are_online(tmp_path):
    assert online(tree(tmp_path)) == network.Online(True, "default route and resolver")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"route": HEADER + LOCAL4}, OFFLINE),
        ({"route": HEADER + LOCAL4, "ipv6": LO6 + DEFAULT6}, ONLINE),
        ({"route": None, "ipv6": DEFAULT6}, ONLINE),  # IPv6 only
        ({"ipv6": None}, ONLINE),  # no IPv6 in the kernel
        # a default route that is down (no RTF_UP) or a blackhole (RTF_REJECT) is none
        ({"route": HEADER + DEFAULT4.replace("0003", "0002")}, OFFLINE),
        ({"route": HEADER + DEFAULT4.replace("0003", "0203")}, OFFLINE),
        ({"resolv": "# nameserver 1.1.1.1\n"}, (False, "no nameserver in {resolv}", None)),
        ({"resolv": None}, (False, "no {resolv}", None)),
    ],
)  # fmt: skip
def test_offline_without_a_default_route_or_a_resolver(tmp_path, files, expected):
    root = tree(tmp_path, **files)
    state = online(root)
    resolv = root / "resolv.conf"
    assert (state.online, state.why, state.problem) == (
        expected[0], expected[1].format(resolv=resolv), expected[2]
    )  # fmt: skip


def test_unreadable_or_malformed_route_tables_leave_the_network_unknown(tmp_path):
    root = tree(tmp_path, route="garbage\x00\xff\n", ipv6=None)
    state = online(root)
    assert (state.online, state.why) == (None, "routes unknown")
    assert state.problem == f"{root}/proc/net/route is malformed: no 'Iface' header line"
    root = tree(tmp_path / "b", route=None, ipv6=None)
    (root / "proc/net/route").mkdir()  # read fails (as EACCES would; root reads anything)
    state = online(root)
    assert state.online is None and state.problem == (
        f"cannot read {root}/proc/net/route: Is a directory"
    )
    gone = online(tree(tmp_path / "c", route=None, ipv6=None))
    assert gone.online is None and "neither" in (gone.problem or "")


def test_this_machine_reads_as_online_offline_or_unknown_without_raising():
    state = network.check_online()
    assert state.online in (True, False, None)
    assert (state.online is None) == (state.problem is not None)


# ------------------------------------------------------------------ metered


@pytest.mark.parametrize(
    ("text", "metered"),
    [("u 1\n", True), ("u 3\n", True), ("u 2\n", False), ("u 4\n", False), ("u 0\n", None),
     ("(<uint32 1>,)\n", True), ("(<uint32 4>,)\n", False), ("u 9\n", None)],
)  # fmt: skip
def test_busctl_and_gdbus_answers_read_as_metered_or_not(text, metered):
    assert network.parse_metered(text) is metered


def fake_tool(tmp_path: Path, name: str, script: str) -> Path:
    """A `name` executable first on PATH, running `script` (sh)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    tool = bindir / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def test_busctl_is_asked_for_networkmanagers_metered_property(tmp_path, monkeypatch):
    log = tmp_path / "args"
    bindir = fake_tool(tmp_path, "busctl", f'echo "$@" > {log}\necho "u 1"')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    command = network.metered_command()
    assert network.read_metered(command) == (True, None)
    assert log.read_text().split() == [
        "--system", "--timeout=2", "get-property", "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager", "Metered",
    ]  # fmt: skip


def test_gdbus_answers_when_busctl_is_missing(tmp_path, monkeypatch):
    bindir = fake_tool(tmp_path, "gdbus", 'echo "(<uint32 4>,)"')
    monkeypatch.setenv("PATH", str(bindir))
    command = network.metered_command()
    assert command is not None and command[:2] == ["gdbus", "call"]
    assert network.read_metered(command) == (False, None)


def test_without_networkmanager_or_a_tool_the_metered_state_is_unknown(tmp_path, monkeypatch):
    bindir = fake_tool(
        tmp_path, "busctl", "echo 'Failed to connect to bus: No such file' >&2; exit 1"
    )
    monkeypatch.setenv("PATH", str(bindir))
    why = "NetworkManager not reachable over D-Bus (busctl: Failed to connect to bus: No such file)"
    assert network.read_metered(network.metered_command()) == (None, why)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    value, problem = network.read_metered(network.metered_command())
    assert value is None and problem and "neither busctl nor gdbus" in problem
    bindir = fake_tool(tmp_path / "x", "busctl", "echo 'b true'")
    monkeypatch.setenv("PATH", str(bindir))
    value, problem = network.read_metered(network.metered_command())
    assert value is None and problem == "busctl: unexpected output 'b true': metered state unknown"


def test_a_hanging_busctl_is_cut_short(tmp_path, monkeypatch):
    bindir = fake_tool(tmp_path, "busctl", "exec /bin/sleep 30")
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setattr(network, "TIMEOUT_S", 0.1)
    value, problem = network.read_metered(network.metered_command())
    assert value is None and problem and "timed out" in problem


# ------------------------------------------------------------------ the monitor


def test_the_monitor_reads_the_network_from_a_fake_tree(tmp_path):
    root = tree(tmp_path)
    asked = []

    def metered() -> tuple[bool | None, str | None]:
        asked.append(1)
        return True, None

    monitor = SystemMonitor(proc=root / "proc", resolv_conf=root / "resolv.conf", metered=metered)
    snap = monitor.snapshot(T0)
    assert (snap.network_online, snap.network_metered) == (True, True)
    monitor.snapshot(T0)
    assert len(asked) == 1  # a subprocess: cached for refresh_s
    (root / "resolv.conf").write_text("")
    snap = monitor.snapshot(T0)
    assert (snap.network_online, snap.network_metered) == (False, None)  # offline: not asked


def test_an_unknown_metered_state_and_unknown_routes_are_said_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="smartcron")
    root = tree(tmp_path)
    bad = tree(tmp_path / "bad", route=None, ipv6=None)
    for _ in range(2):
        monitor = SystemMonitor(proc=root / "proc", resolv_conf=root / "resolv.conf",
                                metered=lambda: (None, "no NM here"), refresh_s=0)  # fmt: skip
        assert monitor.snapshot(T0).network_metered is None
        other = SystemMonitor(proc=bad / "proc", resolv_conf=bad / "resolv.conf")
        assert other.snapshot(T0).network_online is None
    said = [r.getMessage() for r in caplog.records if "network" in r.getMessage()]
    assert said.count("network=unmetered cannot tell metered: no NM here") == 1
    assert said.count(
        f"network state unknown: neither {bad}/proc/net/route nor {bad}/proc/net/ipv6_route exists"
    ) == 1  # fmt: skip


# ------------------------------------------------------------------ grammar and the gate


def check(tmp_path: Path, crontab: str) -> tuple[int, list[str]]:
    path = tmp_path / "tab"
    path.write_text(crontab)
    result = CliRunner().invoke(crontab_cli.main, ["-T", str(path)])
    lines = result.stderr.splitlines()
    return result.exit_code, [line.replace(str(tmp_path), "D") for line in lines]


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("online", 0, None),
        ("UNMETERED", 0, None),
        ("foo", 1, "D/tab:3: network: expected one of online, unmetered, got 'foo'"),
        ("unmeterd", 1, "D/tab:3: network: expected one of online, unmetered, got 'unmeterd'"
                        " (did you mean 'unmetered'?)"),
    ],
)  # fmt: skip
def test_network_values_are_checked_with_file_line_and_the_nearest_value(
    tmp_path, value, code, message
):
    crontab = f"SHELL=/bin/sh\n# sync\n#@smart window=1h network={value}\n*/30 * * * * sync\n"
    got_code, lines = check(tmp_path, crontab)
    assert got_code == code
    assert lines[:1] == ([] if message is None else [message])


def firing() -> Firing:
    return Firing(id=1, job_id="j", nominal=T0, deadline=T0 + timedelta(hours=1))


@pytest.mark.parametrize(
    ("want", "online_", "metered", "reason"),
    [
        ("online", False, None, "network offline (network=online)"),
        ("online", True, True, None),  # metered does not matter to online
        ("online", None, None, None),  # unknown: like no battery
        ("unmetered", True, True, "network metered (network=unmetered)"),
        ("unmetered", False, False, "network offline (network=unmetered)"),
        ("unmetered", True, False, None),
        ("unmetered", True, None, None),  # unknown metered state: like no battery
    ],
)
def test_the_gate_waits_for_the_network_it_needs(want, online_, metered, reason):
    spec = SmartSpec(window=timedelta(hours=1), network=want)
    snap = sample_snapshot(T0, network_online=online_, network_metered=metered)
    verdict = gate.evaluate(firing(), spec, snap, T0)
    assert (verdict.action, verdict.reason) == (
        ("defer", reason) if reason else ("run", "constraints hold")
    )


# ------------------------------------------------------------------ trace, simulator, explain


def trace_csv(offline: range, minutes: int = 20, metered: bool | None = None) -> str:
    rows = [{"timestamp": T0 + timedelta(minutes=i), "load1": 0.1, "load5": 0.1,
             "cpu_percent": 5, "ram_percent": 40, "on_ac": True, "idle_seconds": 3600,
             "disk_free_percent": 50, "network_online": i not in offline,
             "network_metered": metered} for i in range(minutes)]  # fmt: skip
    out = io.StringIO()
    write_rows(rows, out)
    return out.getvalue()


def test_trace_network_columns_load_and_bad_flags_name_the_row():
    text = trace_csv(range(2, 4), metered=True)
    assert text.splitlines()[0].endswith(",disk_free_percent,network_online,network_metered")
    trace = load_trace(text, "t.csv")
    at = [trace.at(T0 + timedelta(minutes=i)) for i in (1, 2)]
    assert [(s.network_online, s.network_metered) for s in at] == [(True, True), (False, True)]
    assert load_trace(trace_csv(range(0)), "u.csv").at(T0).network_metered is None  # empty
    with pytest.raises(TraceError, match=r"^t.csv:3: network_online must be 0 or 1, not 'yes'$"):
        load_trace(text.replace(",1,1\n", ",yes,1\n", 2).replace(",yes,1\n", ",1,1\n", 1), "t.csv")


CRONTAB = "#@smart name=sync window=30m network=online\n0 0 * * * sync.sh\n"
WORLD = """\
seed: 1
jobs:
  sync:
    runtime: 1m
    fail:
      - when: {network_online: 0}
        p: 1.0
"""


def test_the_simulator_waits_for_the_network_and_the_world_fails_offline_runs(tmp_path):
    tab = tmp_path / "tab"
    tab.write_text(CRONTAB)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    world = load_world(WORLD, "world.yaml")

    def run(text: str, policy: str) -> tuple[int, int, float]:
        timeline = Timeline(load_trace(text, "t.csv"), world, sc.specs())
        out = simulate(sc, timeline, world, policy).metrics()
        return out["runs"], out["failures"], out["delay_mean_s"]

    assert run(trace_csv(range(0, 5)), "rules") == (1, 0, 300.0)  # offline until 00:05
    assert run(trace_csv(range(0, 5)), "cron") == (1, 1, 0.0)
    assert run(trace_csv(range(0)), "rules") == (1, 0, 0.0)


def test_explain_says_the_firing_waited_for_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    (tmp_path / "state").mkdir()
    history = HistoryStore.open(tmp_path / "state" / "history.db")

    def script(now):  # offline until 01:20Z, then online but metered until 01:45Z
        return sample_snapshot(now, network_online=now >= utc("01:20"),
                               network_metered=now < utc("01:45"))  # fmt: skip

    crontab = "#@smart name=upload window=2h network=unmetered\n0 2 * * * upload\n"
    h = make(tmp_path, crontab, script, history=history)
    h.run_until(utc("02:30"))
    history.close()
    conf = cli_config(tmp_path)
    result = CliRunner().invoke(ctl_main, ["explain", "upload", "--user", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    assert "01:00 deferred until 01:20: network offline (network=unmetered)" in result.output
    assert "01:20 deferred until 01:45: network metered (network=unmetered)" in result.output
    assert "01:45 ran (constraints hold)" in result.output
    args = ["explain", "upload", "--json", "--user", "--config", str(conf)]
    snap = json.loads(CliRunner().invoke(ctl_main, args).output)["firings"][0]["decisions"][0]
    assert (snap["snapshot"]["network_online"], snap["snapshot"]["network_metered"]) == (
        False,
        True,
    )


def test_a_world_sets_the_network_a_trace_lacks_and_a_traces_own_column_wins(tmp_path):
    tab = tmp_path / "tab"
    tab.write_text(CRONTAB)
    sc = load_scenario(tab, zone=UTC, owner="alice")
    offline = load_world(WORLD + "machine: {network_online: 0, cpu_pressure: 12.5}\n", "w.yaml")
    rows = trace_csv(range(0)).splitlines()
    bare = "\n".join(line.rsplit(",", 2)[0] for line in rows) + "\n"  # no network columns
    timeline = Timeline(load_trace(bare, "t.csv"), offline, sc.specs())
    snap = timeline.snapshot(3)
    assert (snap.network_online, snap.network_metered, snap.cpu_pressure) == (False, None, 12.5)
    out = simulate(sc, timeline, offline, "rules").metrics()
    # offline all along: waits its whole 30-minute window, then on_deadline=run runs it (and
    # the world fails it)
    assert (out["runs"], out["failures"], out["delay_mean_s"]) == (1, 1, 1800.0)
    own = Timeline(load_trace(trace_csv(range(0)), "t.csv"), offline, sc.specs())
    assert own.snapshot(3).network_online is True
    assert simulate(sc, own, offline, "rules").metrics()["delay_mean_s"] == 0.0


def test_a_world_value_out_of_range_names_its_line():
    with pytest.raises(WorldError, match=r"^w.yaml:3: machine.cpu_pressure: 150 is greater"):
        load_world("jobs: {}\nmachine:\n  cpu_pressure: 150\n", "w.yaml")
    with pytest.raises(WorldError, match=r"^w.yaml:2: machine.network_online: 2 is not one of"):
        load_world("jobs: {}\nmachine: {network_online: 2}\n", "w.yaml")


@pytest.mark.parametrize(
    ("line", "asks"),
    [("#@smart window=1h\n", False), ("#@smart window=1h network=unmetered\n", True)],
)
def test_the_daemon_asks_networkmanager_only_for_a_job_that_says_unmetered(tmp_path, line, asks):
    """busctl is a subprocess every refresh_s: not worth it for jobs that do not care."""
    from tests.harness import make, utc

    asked = []

    def metered() -> tuple[bool | None, str | None]:
        asked.append(1)
        return False, None

    h = make(tmp_path, line + "0 2 * * * backup\n")
    root = tree(tmp_path / "net")
    monitor = SystemMonitor(proc=root / "proc", resolv_conf=root / "resolv.conf", metered=metered)
    h.daemon.engine._monitor = monitor
    h.run_until(utc("01:05"))
    assert h.starts == [("backup", "01:00Z")]
    assert bool(asked) is asks
    assert h.trail("backup")[0][:2] == ("01:00Z", "run")


def test_min_disk_on_another_path_measures_that_disk_and_no_other_source_again(
    tmp_path, monkeypatch
):
    """The other path's snapshot is the wake-up's, with that file system's free space."""
    from smartcron.smart import engine
    from tests.harness import make, utc

    measured = []

    def free(path: str) -> float:
        measured.append(path)
        return 3.0  # below min_disk: deferred, and the decision says so

    monkeypatch.setattr(engine, "disk_free_percent", free)
    h = make(tmp_path, "#@smart window=1h min_disk=10 disk_path=/srv\n0 2 * * * backup\n")
    root = tree(tmp_path / "net")
    made = []
    monkeypatch.setattr(SystemMonitor, "_idle", lambda self, now: (made.append(1) or 7.0, "tty"))
    h.daemon.engine._monitor = SystemMonitor(proc=root / "proc", resolv_conf=root / "resolv.conf")
    h.run_until(utc("01:02"))
    assert h.starts == [] and measured == ["/srv"] * 3
    assert len(made) == 3  # the idle time read once a wake-up, by the daemon's monitor only
    assert h.trail("backup")[0][2] == "disk free 3% on /srv < min_disk 10%"
