"""The real daemon on a temporary user-mode configuration, and what /proc says about it."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BIN


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    directory: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def write_config(directory: Path, crontab: str, extra: str = "", companion: str = "") -> Path:
    """A user-mode config in `directory`/etc (`extra`: more TOML lines; `companion`: the
    crontab's .smart.yaml). The daemon watches that directory (inotify), so logs, stamps
    and traces must live elsewhere or every write would wake it."""
    etc = directory / "etc"
    etc.mkdir(exist_ok=True)
    tab = etc / "crontab"
    tab.write_text(crontab)
    tab.chmod(0o600)  # Debian's rule for a user crontab
    if companion:
        (etc / "crontab.smart.yaml").write_text(companion)
    config = etc / "smartcron.toml"
    config.write_text(
        'user_crontab = "crontab"\n'
        'state_dir = "../state"\n'
        'run_dir = "../run"\n'
        'jobs_dir = "jobs"\n'
        f'mail_command = "{directory}/no-such-sendmail"\n'  # no MTA: output stays in history
        + extra
    )
    return config


@contextlib.contextmanager
def running(
    directory: Path,
    crontab: str,
    ready_timeout: float = 30.0,
    *,
    args: Sequence[str] = (),
    extra: str = "",
    companion: str = "",
) -> Iterator[Daemon]:
    """Start `smartcron --user -f [args]` on `crontab`; always stopped (SIGTERM, then SIGKILL)."""
    config = write_config(directory, crontab, extra, companion)
    log = directory / "daemon.log"
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the daemon
        proc = subprocess.Popen(
            [str(BIN / "smartcron"), "--user", "-f", "--config", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    daemon = Daemon(proc, directory, log)
    try:
        status = directory / "state" / "status.json"
        deadline = time.monotonic() + ready_timeout
        while not status.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.02)
        yield daemon
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def proc_status(pid: int, tid: int | None = None) -> dict[str, str]:
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    fields: dict[str, str] = {}
    with open(path) as file:
        for line in file:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    return int(proc_status(pid)[key].split()[0])


def spawner_pid(daemon: int) -> int | None:
    """The daemon's spawner process (smartcron/run/spawnserver.py), if it has one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(proc_status(int(entry.name))["PPid"])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, KeyError, ValueError):
            continue
        if ppid == daemon and b"spawnserver.py" in cmdline:
            return int(entry.name)
    return None


def thread_switches(pid: int) -> dict[int, tuple[int, int]]:
    """(voluntary, nonvoluntary) context switches of every live thread of `pid`."""
    counts: dict[int, tuple[int, int]] = {}
    for name in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            status = proc_status(pid, int(name))
            counts[int(name)] = (
                int(status["voluntary_ctxt_switches"]),
                int(status["nonvoluntary_ctxt_switches"]),
            )
    return counts


def wait_until(instant: float) -> None:
    """Sleep until the epoch time `instant`."""
    while (left := instant - time.time()) > 0:
        time.sleep(min(left, 1.0))


def next_boundary(after: float, margin: float) -> float:
    """The first whole minute (epoch seconds) at least `margin` seconds after `after`."""
    return math.ceil((after + margin) / 60) * 60
