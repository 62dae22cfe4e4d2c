"""`jitter=DURATION`: a deterministic per-host, per-job start offset (smartcrontab(5)).

Like Jenkins' `H` in a schedule, the offset is a hash, not a random draw: the same host
and job always get the same offset (across restarts, reloads and simulations), and a
fleet of machines with identical crontabs spreads its starts over `[0, jitter)`. The
host is named by systemd's machine id (machine-id(5): /etc/machine-id, else D-Bus's
copy /var/lib/dbus/machine-id), else the hostname; a cloned image that kept its
machine id shares its offsets with its source, as systemd's own RandomizedDelaySec=
with FixedRandomDelay=yes does.
"""

from __future__ import annotations

import functools
import random
import socket
from datetime import time, timedelta
from pathlib import Path

__all__ = [
    "MACHINE_ID_FILES", "host_key", "jitter_offset", "jitter_problem", "read_host_key",
    "window_span",
]  # fmt: skip

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def read_host_key(files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    """The first non-empty machine id of `files`, else the hostname."""
    for path in files:
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            continue
        if text:
            return text
    return socket.gethostname()


@functools.cache
def host_key() -> str:
    """This machine's key, read once (it does not change while a daemon runs)."""
    return read_host_key()


def jitter_offset(jitter: timedelta | None, job_id: str, host: str | None = None) -> timedelta:
    """The job's offset in whole seconds, uniform over [0, jitter) across hosts; zero
    without jitter. `host`: a machine id (default: this machine's)."""
    if jitter is None:
        return timedelta(0)
    span = int(jitter.total_seconds())
    if span <= 0:
        return timedelta(0)
    # random.Random seeded with a str hashes it with SHA-512 (CPython's own _sha512, as
    # `random` imports it): a uniform, stable draw without hashlib, which would map
    # OpenSSL's libcrypto (about 3.5 MB) into the daemon (smartcron.smart.jobids too).
    key = f"{host if host is not None else host_key()}\0{job_id}"
    return timedelta(seconds=random.Random(key).randrange(span))


def window_span(window: timedelta | None, clock: tuple[time, time] | None) -> timedelta:
    """How long a window stays open: a duration, or a clock window's span (may wrap)."""
    if clock is None:
        return window or timedelta(0)
    start, end = (t.hour * 60 + t.minute for t in clock)
    return timedelta(minutes=(end - start) % 1440)


def jitter_problem(
    jitter: timedelta | None, window: timedelta | None, clock: tuple[time, time] | None
) -> str | None:
    """Why `jitter` does not fit the window (it is longer), or None."""
    span = window_span(window, clock)
    if jitter is None or jitter <= span:
        return None
    return f"jitter={_text(jitter)} is longer than the job's window ({_text(span)})"


def _text(delta: timedelta) -> str:
    seconds, parts = int(delta.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        parts += [f"{count}{unit}"] if count else []
    return "".join(parts) or "0s"
