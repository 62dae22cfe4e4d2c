"""System state: one `Snapshot` per evaluation, from a `Monitor`.

`SystemMonitor` reads the real machine, cheaply: psutil for load, RAM and disk, CPU
time deltas for utilisation, sysfs for power, the user's idle time from the best
source present (logind, then xprintidle, then tty access times), PSI files and the
network's route and resolver files. The subprocess sources (loginctl, xprintidle,
busctl or gdbus for the metered state) are cached for `refresh_s` seconds so a snapshot
stays well under 5 ms (0.15 ms median measured on the 2-core development container, tty
source; 0.05 ms before PSI and the network files; test_monitor checks the budget; one
`loginctl` call costs 5-20 ms, hence the cache).
`testing.ScriptedMonitor` is the fake for tests; `trace.TraceMonitor` replays a trace.

Absent things are explicit: no battery is `battery_percent=None`, never 0. So is no
PSI (smart.pressure) and an unknown network or metered state (smart.network): each is
said once in the log (per file or source, per process), then the value is None.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from smartcron.smart import network, pressure

# psutil is imported inside the functions that use it: a daemon whose crontabs hold no
# smart job never loads it (it costs about 2.5 MB of memory).
IDLE_SOURCES = ("logind", "xprintidle", "tty", "none", "trace")
POWER_SUPPLY = Path("/sys/class/power_supply")
PROC = Path("/proc")
log = logging.getLogger("smartcron")
_T = TypeVar("_T")
_REPORTED: set[str] = set()  # what report_once said already, by key


def disk_free_percent(path: str) -> float | None:
    """Free space of the file system holding `path`, in % (None: cannot be read)."""
    import psutil

    try:
        usage = psutil.disk_usage(path)
    except OSError:
        return None
    # psutil's percent is used/(used+available), like df's Use%: the rest is ours.
    return round(100.0 - float(usage.percent), 1)


def report_once(key: str, message: str, level: int = logging.WARNING) -> None:
    """Log a missing or unreadable source once per process and key (several monitors
    may read the same source)."""
    if key not in _REPORTED:
        _REPORTED.add(key)
        log.log(level, "%s", message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The system state at one instant, as the gate and the model see it."""

    at: datetime  # aware, UTC
    load1: float
    load5: float
    load15: float
    cpu_percent: float  # utilisation since the previous snapshot, all cores, 0..100
    ram_percent: float
    battery_percent: float | None  # None: the machine has no battery
    charging: bool | None  # None: no battery
    on_ac: bool | None  # None: unknown
    idle_seconds: float | None  # None: no source could tell
    idle_source: str  # one of IDLE_SOURCES
    disk_free_percent: float | None
    disk_path: str = "/"
    # Linux PSI `some avg10` in percent (smart.pressure); None: no PSI, or unreadable.
    cpu_pressure: float | None = None
    io_pressure: float | None = None
    mem_pressure: float | None = None
    network_online: bool | None = None  # smart.network; None: unknown
    network_metered: bool | None = None  # None: unknown (no NetworkManager)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Snapshot.at must be timezone-aware")
        if self.idle_source not in IDLE_SOURCES:
            raise ValueError(f"unknown idle_source {self.idle_source!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `at` becomes an ISO 8601 string in UTC."""
        data = asdict(self)
        data["at"] = self.at.astimezone(UTC).isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """The inverse of `to_dict`; raises ValueError naming the bad or missing key."""
        names = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown snapshot keys: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name in names:
            if name not in data:
                if name in _DEFAULTED:  # absent from older history rows
                    continue
                raise ValueError(f"snapshot key {name!r} is missing")
            values[name] = _coerce(name, data[name])
        return cls(**values)


_FLOATS = ("load1", "load5", "load15", "cpu_percent", "ram_percent")
_PRESSURES = ("cpu_pressure", "io_pressure", "mem_pressure")
_NETWORK = ("network_online", "network_metered")
_OPT_FLOATS = ("battery_percent", "idle_seconds", "disk_free_percent", *_PRESSURES)
_OPT_BOOLS = ("charging", "on_ac", *_NETWORK)
_DEFAULTED = ("disk_path", *_PRESSURES, *_NETWORK)


def _coerce(name: str, value: Any) -> Any:
    if name == "at":
        at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if at.tzinfo is None:
            raise ValueError("snapshot key 'at' has no UTC offset")
        return at.astimezone(UTC)
    if name in _OPT_FLOATS and value is None:
        return None
    if name in _FLOATS or name in _OPT_FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"snapshot key {name!r} must be a number, not {value!r}")
        return float(value)
    if name in _OPT_BOOLS:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"snapshot key {name!r} must be true, false or null")
        return value
    if not isinstance(value, str):
        raise ValueError(f"snapshot key {name!r} must be a string")
    return value


class Monitor(Protocol):
    """Where the gate gets system state. `now` comes from the injected clock."""

    def snapshot(self, now: datetime) -> Snapshot: ...


class SystemMonitor:
    """The real machine.

    CPU % follows psutil.cpu_percent(interval=None): utilisation since the previous
    call, never blocking. The constructor primes it, so the first snapshot covers the
    time since construction (0.0 if called at once). The deltas are kept here rather
    than in psutil's module-global state, so other psutil users do not disturb them.
    """

    def __init__(
        self,
        disk_path: str = "/",
        user: str | None = None,
        refresh_s: float = 30.0,
        environ: Mapping[str, str] | None = None,
        power_supply: Path = POWER_SUPPLY,
        proc: Path = PROC,
        resolv_conf: Path = network.RESOLV_CONF,
        metered: Callable[[], tuple[bool | None, str | None]] | None = None,
    ) -> None:
        self.disk_path = disk_path
        self.user = user
        self.refresh_s = refresh_s
        self._environ = dict(os.environ if environ is None else environ)
        self._power_supply = power_supply
        self._proc, self._resolv_conf = proc, resolv_conf
        self._metered = metered or (lambda: network.read_metered(network.metered_command()))
        # The daemon's engine turns it off while no job says network=unmetered: asking
        # NetworkManager is a subprocess (busctl) every refresh_s, for nothing.
        self.ask_metered = True
        self._cpu_last = _cpu_busy_total()
        self._has_logind = Path("/run/systemd/system").is_dir() and bool(shutil.which("loginctl"))
        self._has_xprintidle = bool(self._environ.get("DISPLAY")) and bool(
            shutil.which("xprintidle")
        )
        # source name -> (monotonic time of the reading, the value then)
        self._cache: dict[str, tuple[float, Any]] = {}

    def snapshot(self, now: datetime) -> Snapshot:
        import psutil

        load1, load5, load15 = os.getloadavg()
        battery, charging, on_ac = self._power()
        idle, source = self._idle(now)
        online, metered = self._network()
        return Snapshot(
            at=now.astimezone(UTC),
            load1=load1,
            load5=load5,
            load15=load15,
            cpu_percent=self._cpu_percent(),
            ram_percent=float(psutil.virtual_memory().percent),
            battery_percent=battery,
            charging=charging,
            on_ac=on_ac,
            idle_seconds=idle,
            idle_source=source,
            disk_free_percent=self._disk_free(),
            disk_path=self.disk_path,
            network_online=online,
            network_metered=metered,
            **self._pressures(),
        )

    def _pressures(self) -> dict[str, float | None]:
        out = {}
        for field, reading in pressure.read_all(self._proc / "pressure").items():
            if reading.problem is not None:
                why = f"PSI: {reading.problem}; max_{field}= is ignored (like no battery)"
                report_once(f"psi:{self._proc}:{field}", why)
            out[field] = reading.value
        return out

    def _network(self) -> tuple[bool | None, bool | None]:
        """(online, metered); metered is asked only online (a subprocess, cached)."""
        net = self._proc / "net"
        state = network.check_online(net / "route", net / "ipv6_route", self._resolv_conf)
        if state.problem is not None:
            report_once(f"net:{net}", f"network state unknown: {state.problem}")
        if not state.online or not self.ask_metered:
            return state.online, None
        metered, problem = self._cached("metered", self._metered)
        if problem is not None:
            # info: most machines have no NetworkManager, and most jobs no network=unmetered
            why = f"network=unmetered cannot tell metered: {problem}"
            report_once(f"metered:{problem}", why, logging.INFO)
        return True, metered

    def _cpu_percent(self) -> float:
        busy, total = _cpu_busy_total()
        last_busy, last_total = self._cpu_last
        self._cpu_last = (busy, total)
        if total <= last_total:
            return 0.0
        return round(min(100.0, max(0.0, 100.0 * (busy - last_busy) / (total - last_total))), 1)

    def _disk_free(self) -> float | None:
        return disk_free_percent(self.disk_path)

    def _power(self) -> tuple[float | None, bool | None, bool | None]:
        """(battery %, charging, on AC). A machine with no battery at all is on mains."""
        import psutil

        supplies = _read_supplies(self._power_supply)
        mains = [s.get("online") == "1" for s in supplies if s.get("type") in ("Mains", "USB")]
        bats = [s for s in supplies if s.get("type") == "Battery" and s.get("present") != "0"]
        try:
            info = psutil.sensors_battery()
        except (OSError, RuntimeError):
            info = None
        if info is None and not bats:
            return None, None, any(mains) if mains else True
        percent = float(info.percent) if info is not None else _sysfs_percent(bats)
        on_ac = info.power_plugged if info is not None else None
        if on_ac is None:
            on_ac = any(mains) if mains else None
        statuses = {s.get("status") for s in bats}
        if statuses:
            charging: bool | None = "Charging" in statuses
        else:
            charging = bool(on_ac) and percent is not None and percent < 100
        return percent, charging, on_ac

    def _idle(self, now: datetime) -> tuple[float | None, str]:
        if self._has_logind:
            idle = self._cached("logind", self._logind_idle)
            if idle is not None:
                return idle, "logind"
        if self._has_xprintidle:
            idle = self._cached("xprintidle", _xprintidle_idle)
            if idle is not None:
                return idle, "xprintidle"
        idle = _tty_idle(now, self.user)
        if idle is not None:
            return idle, "tty"
        return None, "none"

    def _cached(self, name: str, read: Callable[[], _T]) -> _T:
        # Not extrapolated between readings: idle time is under- rather than
        # over-estimated (by at most refresh_s), so an idle= constraint stays safe.
        tick = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and tick - hit[0] < self.refresh_s:
            return hit[1]
        value = read()
        self._cache[name] = (tick, value)
        return value

    def _logind_idle(self) -> float | None:
        # Per user, logind aggregates its sessions; without a user, the manager does.
        cmd = ["loginctl", "show-user", self.user] if self.user else ["loginctl", "show"]
        out = _run([*cmd, "-p", "IdleHint", "-p", "IdleSinceHint"])
        if out is None:
            return None
        props = dict(line.partition("=")[::2] for line in out.splitlines())
        if props.get("IdleHint") == "no":
            return 0.0
        since = props.get("IdleSinceHint", "")
        if props.get("IdleHint") != "yes" or not since.isdigit() or since == "0":
            return None  # logind does not know: let the next source answer
        return max(0.0, time.time() - int(since) / 1e6)


def _cpu_busy_total() -> tuple[float, float]:
    """(busy, total) CPU ticks since boot, from /proc/stat's aggregate line.

    psutil's own rule (guest time is already counted in user/nice; iowait is idle),
    read directly: the daemon primes this at start and should not load psutil for it.
    """
    try:
        with open("/proc/stat", "rb") as stat_file:
            fields = [float(v) for v in stat_file.readline().split()[1:]]
    except (OSError, ValueError):
        import psutil  # not Linux: ask psutil

        t = psutil.cpu_times()
        total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return total - t.idle - getattr(t, "iowait", 0.0), total
    fields += [0.0] * (10 - len(fields))
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - fields[3] - fields[4], total


def _read_supplies(root: Path) -> list[dict[str, str]]:
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    out = []
    for entry in entries:
        info = {}
        for key in ("type", "online", "present", "status", "capacity"):
            try:
                info[key] = (entry / key).read_text().strip()
            except OSError:
                continue
        out.append(info)
    return out


def _sysfs_percent(bats: Sequence[Mapping[str, str]]) -> float | None:
    values = [float(b["capacity"]) for b in bats if b.get("capacity", "").isdigit()]
    return sum(values) / len(values) if values else None


def _run(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _xprintidle_idle() -> float | None:
    out = _run(["xprintidle"])
    if out is None or not out.strip().isdigit():
        return None
    return int(out.strip()) / 1000.0


def _tty_idle(now: datetime, user: str | None) -> float | None:
    """Seconds since the newest access to the user's terminals (what `w` shows).

    With nobody logged in, nothing interactive has happened since boot: the idle time
    is the uptime. None only when the utmp listing itself fails.
    """
    import psutil

    try:
        sessions = psutil.users()
    except OSError:
        return None
    stamp = now.timestamp()
    newest: float | None = None
    for session in sessions:
        if user is not None and session.name != user:
            continue
        term = session.terminal or ""
        if not term or term.startswith(":"):
            continue  # an X display has no device to stat
        try:
            atime = os.stat(f"/dev/{term}").st_atime
        except OSError:
            continue
        newest = atime if newest is None else max(newest, atime)
    if newest is None:
        newest = psutil.boot_time()
    return max(0.0, round(stamp - newest, 1))
