"""Debian's own cron, as an oracle: fetch the package, run `crontab -n` safely.

`crontab -n FILE` (Debian's dry run, crontab.c's replace_cmd) checks a file's syntax
but still writes a temporary copy into the compiled-in spool, /var/spool/cron/crontabs.
So every check runs in a private mount namespace (`unshare -m`) with a tmpfs over
/var/spool/cron: the real spool is never touched. One namespace checks a whole batch of
files (a shell loop), because starting one per line would dominate the runtime.

Debian's crontab stops at the first bad line and prints `"FILE":LINE: reason` with
LINE = cron's LineNumber - 1, which is one less than the real line unless the error
was found after the line's newline had been read (`5` alone: "bad hour" on the right
line). `DebianVerdict.line` is that number as printed; tests allow for the offset.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "cron"
CRONTAB_IN_PACKAGE = Path("usr/bin/crontab")
SPOOL = Path("/var/spool/cron")

_ERROR_LINE = re.compile(r'^"(?P<file>.*)":(?P<line>-?\d+): (?P<reason>.*)$')


class DebianUnavailable(Exception):
    """Debian's cron cannot be run here; the message says why (used as a skip reason)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DebianVerdict:
    """What `crontab -n` said about one file."""

    accepted: bool
    line: int | None  # as printed (see the module docstring), None when no line was named
    reason: str | None  # "bad minute", ..., or the whole-file message
    returncode: int
    stderr: str


def cache_dir() -> Path:
    """$SMARTCRON_DEBIAN_CACHE, else ~/.cache/smartcron-debian."""
    configured = os.environ.get("SMARTCRON_DEBIAN_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "smartcron-debian"


def find_crontab(cache: Path | None = None) -> Path | None:
    """An already extracted Debian crontab binary, or None.

    Looks in $SMARTCRON_DEBIAN_ROOT (a `dpkg -x` tree) and then in the cache.
    """
    roots = []
    if os.environ.get("SMARTCRON_DEBIAN_ROOT"):
        roots.append(Path(os.environ["SMARTCRON_DEBIAN_ROOT"]))
    roots.append((cache or cache_dir()) / "root")
    for root in roots:
        binary = root / CRONTAB_IN_PACKAGE
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def fetch_crontab(cache: Path | None = None) -> Path:
    """Find, or download (`apt-get download cron`) and extract (`dpkg -x`), Debian's crontab.

    Raises DebianUnavailable when apt-get or dpkg is missing or the download fails.
    """
    found = find_crontab(cache)
    if found:
        return found
    cache = cache or cache_dir()
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise DebianUnavailable(f"{tool} not found: cannot fetch Debian's {PACKAGE} package")
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        result = subprocess.run(
            ["apt-get", "download", PACKAGE],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=300,
        )
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
        if result.returncode != 0 or not debs:
            raise DebianUnavailable(
                f"apt-get download {PACKAGE} failed: {result.stderr.strip()[-300:]}"
            )
    root = cache / "root"
    result = subprocess.run(
        ["dpkg", "-x", str(debs[-1]), str(root)], capture_output=True, text=True, timeout=120
    )
    binary = root / CRONTAB_IN_PACKAGE
    if result.returncode != 0 or not binary.is_file():
        raise DebianUnavailable(f"dpkg -x {debs[-1].name} failed: {result.stderr.strip()}")
    return binary


def namespace_problem() -> str | None:
    """Why `crontab -n` cannot be run in a private mount namespace here, or None."""
    if os.geteuid() != 0:
        return "needs root (unshare -m and a tmpfs over /var/spool/cron)"
    if shutil.which("unshare") is None:
        return "unshare(1) not found"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"unshare -m does not work here: {probe.stderr.strip()}"
    return None


def _mount_point() -> Path:
    """The spool, or its deepest existing ancestor: tmpfs needs an existing directory."""
    for candidate in (SPOOL, *SPOOL.parents):
        if candidate.is_dir():
            return candidate
    raise DebianUnavailable("no directory to mount a tmpfs on")  # pragma: no cover


# Runs inside the namespace: $1 = crontab binary, $2 = mount point, $3.. = files.
# CRONDIR is 0755 and the spool 01730 as Debian's cron package creates them.
_SCRIPT = r"""
set -e
binary=$1; mnt=$2; shift 2
mount -t tmpfs -o mode=0755 smartcron-spool "$mnt"
# Never go on unless the tmpfs really is over the spool in this namespace.
awk -v m="$mnt" '$1 == "smartcron-spool" && $2 == m { found = 1 } END { exit !found }' \
    /proc/self/mounts
mkdir -p -m 0755 /var/spool/cron
mkdir -p -m 1730 /var/spool/cron/crontabs
set +e
for f in "$@"; do
    LC_ALL=C "$binary" -n "$f" >/dev/null 2>"$f.err"
    echo $? >"$f.rc"
done
"""


def check_crontabs(texts: Sequence[bytes | str], binary: Path) -> list[DebianVerdict]:
    """Run Debian's `crontab -n` on each text (as the current user, root), in one namespace."""
    with tempfile.TemporaryDirectory(prefix="smartcron-debian-") as tmp:
        paths = []
        for index, text in enumerate(texts):
            path = Path(tmp) / f"case{index:05d}"
            data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
            path.write_bytes(data)
            paths.append(str(path))
        result = subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                _SCRIPT,
                "sh",
                str(binary),
                str(_mount_point()),
                *paths,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise DebianUnavailable(f"namespace set-up failed: {result.stderr.strip()}")
        return [_verdict(Path(p)) for p in paths]


def _verdict(path: Path) -> DebianVerdict:
    stderr = Path(f"{path}.err").read_bytes().decode("utf-8", "surrogateescape")
    returncode = int(Path(f"{path}.rc").read_text().strip())
    line = reason = None
    for text in stderr.splitlines():
        match = _ERROR_LINE.match(text)
        if match and match["file"] == str(path):
            line, reason = int(match["line"]), match["reason"]
            break
    if reason is None and returncode != 0:
        reason = stderr.strip().splitlines()[0] if stderr.strip() else f"exit {returncode}"
    return DebianVerdict(
        accepted=returncode == 0, line=line, reason=reason, returncode=returncode, stderr=stderr
    )
