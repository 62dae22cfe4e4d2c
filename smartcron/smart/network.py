"""Is the machine online, and is its connection metered? For `network=online|unmetered`.

Online means configured, not proven: a default route (IPv4 in /proc/net/route, IPv6 in
/proc/net/ipv6_route) and a resolver (a ``nameserver`` line in /etc/resolv.conf). The
check reads those files only and sends no packet: it costs tens of microseconds, never
waits on a network, and leaves no trace on one; a route to a network that does not
answer still counts as online.

Metered is NetworkManager's ``Metered`` property (NMMetered: 0 unknown, 1 yes, 2 no,
3 guess-yes, 4 guess-no) read over D-Bus. The standard library speaks no D-Bus, so it
is read with ``busctl`` (systemd) or ``gdbus`` (GLib) when one is installed, with a
short timeout. Without NetworkManager or either tool the state is unknown (None).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROUTE = Path("/proc/net/route")
IPV6_ROUTE = Path("/proc/net/ipv6_route")
RESOLV_CONF = Path("/etc/resolv.conf")
TIMEOUT_S = 2.0
_RTF_UP, _RTF_REJECT = 0x0001, 0x0200  # linux/route.h, ipv6_route.h
_MAX_BYTES = 1 << 20
_NM = ("org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager")
_METERED = {0: None, 1: True, 2: False, 3: True, 4: False}  # NMMetered


@dataclass(frozen=True, slots=True)
class Online:
    """`online` True/False, or None (unknown) with `problem` saying why."""

    online: bool | None
    why: str
    problem: str | None = None


def _read(path: Path) -> str:
    with open(path, "rb") as handle:
        return handle.read(_MAX_BYTES).decode("ascii", "replace")


def ipv4_default(text: str) -> bool:
    """A default route that is up in /proc/net/route's text. Raises ValueError."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Iface"):
        raise ValueError("no 'Iface' header line")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
        except ValueError:
            continue
        if fields[1] == fields[7] == "00000000" and flags & _RTF_UP and not flags & _RTF_REJECT:
            return True
    return False


def ipv6_default(text: str) -> bool:
    """A default route (::/0) that is up, off loopback, in /proc/net/ipv6_route's text.

    The kernel keeps an unreachable ::/0 on `lo` (flags RTF_REJECT): not a route out.
    """
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 10:
            continue
        try:
            flags = int(fields[8], 16)
        except ValueError:
            continue
        if (
            fields[0] == "0" * 32
            and fields[1] == "00"
            and flags & _RTF_UP
            and not flags & _RTF_REJECT
            and fields[9] != "lo"
        ):
            return True
    return False


def has_nameserver(text: str) -> bool:
    """resolv.conf(5): a ``nameserver ADDRESS`` line (comments start with # or ;)."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            return True
    return False


def _default_route(route: Path, ipv6_route: Path) -> tuple[bool | None, str | None]:
    """(a default route?, problem). None: neither table could be read."""
    problems: list[str] = []
    readable = False
    for path, parse in ((route, ipv4_default), (ipv6_route, ipv6_default)):
        try:
            if parse(_read(path)):
                return True, None
            readable = True
        except FileNotFoundError:
            continue  # no IPv6 (or no IPv4) in this kernel: the other table answers
        except OSError as err:
            problems.append(f"cannot read {path}: {err.strerror or err}")
        except ValueError as err:
            problems.append(f"{path} is malformed: {err}")
    if readable:
        return False, None
    return None, "; ".join(problems) or f"neither {route} nor {ipv6_route} exists"


def check_online(
    route: Path = ROUTE, ipv6_route: Path = IPV6_ROUTE, resolv_conf: Path = RESOLV_CONF
) -> Online:
    """A default route and a configured resolver; no network traffic."""
    default, problem = _default_route(route, ipv6_route)
    if default is None:
        return Online(None, "routes unknown", problem)
    if not default:
        return Online(False, "no default route")
    try:
        resolver = has_nameserver(_read(resolv_conf))
    except FileNotFoundError:
        return Online(False, f"no {resolv_conf}")
    except OSError as err:
        return Online(None, "resolver unknown", f"cannot read {resolv_conf}: {err.strerror}")
    if not resolver:
        return Online(False, f"no nameserver in {resolv_conf}")
    return Online(True, "default route and resolver")


# ------------------------------------------------------------------ metered


def metered_command(which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The command that prints NetworkManager's Metered property, or None (no tool)."""
    name, path = _NM
    seconds = f"{TIMEOUT_S:g}"
    if which("busctl"):
        return ["busctl", "--system", f"--timeout={seconds}", "get-property", name, path,
                name, "Metered"]  # fmt: skip
    if which("gdbus"):
        return ["gdbus", "call", "--system", "--timeout", seconds, "--dest", name,
                "--object-path", path, "--method", "org.freedesktop.DBus.Properties.Get",
                name, "Metered"]  # fmt: skip
    return None


def parse_metered(text: str) -> bool | None:
    """busctl's ``u 4`` or gdbus's ``(<uint32 4>,)`` as metered True/False, or None."""
    found = re.fullmatch(r"\s*(?:u\s+(\d+)|\(<uint32\s+(\d+)>,\))\s*", text)
    if found is None:
        raise ValueError(f"unexpected output {text.strip()[:60]!r}")
    return _METERED.get(int(found.group(1) or found.group(2)))


def read_metered(command: list[str] | None) -> tuple[bool | None, str | None]:
    """(metered, problem): None with the reason when the state is unknown."""
    if command is None:
        return None, "neither busctl nor gdbus is installed: metered state unknown"
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S + 0.5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"{command[0]} failed ({err}): metered state unknown"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:120]
        return None, f"NetworkManager not reachable over D-Bus ({command[0]}: {why})"
    try:
        value = parse_metered(done.stdout)
    except ValueError as err:
        return None, f"{command[0]}: {err}: metered state unknown"
    if value is None:
        return None, "NetworkManager says the metered state is unknown"
    return value, None
