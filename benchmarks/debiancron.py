"""Debian's own cron on the same stamping jobs, in the same run (start-latency, burst-200).

Debian's daemon (the `cron` package, fetched with `apt-get download` and extracted,
never installed) runs in a private mount and pid namespace set up as a Debian host
would be (compat.debian, the harness of the differential tests): a tmpfs spool with
root's crontab, a private /run, the package's /etc/pam.d/cron. The jobs are those of
firing.crontab(); their stamps go to a host file the namespace sees. Needs root, unshare
and the package; `problem()` says why not, and the benchmarks then report SmartCron
alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import firing
from benchmarks.firing import Starts
from compat.debian import (
    DAEMON_IN_PACKAGE,
    DebianUnavailable,
    daemon_namespace_problem,
    fetch_package_root,
    prepare_etc,
    start_in_cron_namespace,
    stop_namespace,
)

READY_TIMEOUT_S = 30.0
LIFETIME_S = 900.0  # the namespace's own bound, should this process die without stopping it
# As cron.service runs it (systemd's default LimitNOFILE); see the differential tests.
SERVICE_LIMITS = ("prlimit", "--nofile=1024:")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def problem() -> str | None:
    """Why Debian's cron cannot be measured here, or None."""
    why = daemon_namespace_problem()
    if why:
        return why
    try:
        fetch_package_root()
    except DebianUnavailable as err:
        return str(err)
    return None


@contextlib.contextmanager
def running(directory: Path, crontab: str) -> Iterator[None]:
    """Debian's cron on `crontab` as root's spool crontab, ready (its pid file written)."""
    package = fetch_package_root()
    setup = directory / "setup"
    (setup / "crontabs").mkdir(parents=True)
    (setup / "crontabs" / "root").write_text(crontab)
    (setup / "sendmail").write_text("#!/bin/sh\ncat >/dev/null\n")  # MAILTO='' anyway
    prepare_etc(setup / "etc", package=package)
    marker, log = directory / "debian.ready", directory / "debian.log"
    proc = start_in_cron_namespace(
        [*SERVICE_LIMITS, str(package / DAEMON_IN_PACKAGE), "-f"],
        setup=setup,
        ready=Path("/run/crond.pid"),
        marker=marker,
        env=ENV,
        log=log,
        lifetime=LIFETIME_S,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"Debian's cron did not start:\n{text}")
            time.sleep(0.05)
        yield
    finally:
        stop_namespace(proc)


def measured(jobs: int, boundaries: int) -> Starts | str:
    """Debian's cron's stamps (firing.measure), or why it could not be measured."""
    why = problem()
    if why:
        return why
    return firing.measure(jobs, boundaries, daemon=running)
