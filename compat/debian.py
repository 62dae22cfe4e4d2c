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

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
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


# --------------------------------------------------------------------------- the daemon
#
# Running Debian's cron *daemon* (not only `crontab -n`) needs more of the machine than a
# spool: it reads /etc/crontab and /etc/cron.d, writes /run/crond.pid and
# /run/crond.reboot, pipes mail to a compiled-in sendmail and runs each job through PAM
# (/etc/pam.d/cron). `start_in_cron_namespace` gives a command a private mount *and* pid
# namespace in which all of those are private copies, so the host is never touched and
# every process started in it dies with it.

DAEMON_IN_PACKAGE = Path("usr/sbin/cron")
PAM_CONFIG_IN_PACKAGE = Path("etc/pam.d/cron")
# config.h: MAILCMD is _PATH_SENDMAIL, which glibc's <paths.h> defines as
# /usr/sbin/sendmail (config.h's own /usr/lib/sendmail is only a fallback); the
# binary's strings say the same. cron stat()s it before mailing and execvp()s it.
MAILCMD = Path("/usr/sbin/sendmail")
CRONTABS = SPOOL / "crontabs"  # CRONDIR/SPOOL_DIR in pathnames.h


def fetch_package_root(cache: Path | None = None) -> Path:
    """The extracted package tree (fetching it if need be) with the daemon and its PAM file.

    Raises DebianUnavailable as fetch_crontab() does, or when the tree lacks them.
    """
    root = fetch_crontab(cache).parents[2]  # <root>/usr/bin/crontab
    for part in (DAEMON_IN_PACKAGE, PAM_CONFIG_IN_PACKAGE):
        if not (root / part).is_file():
            raise DebianUnavailable(f"{root / part} is missing from the extracted package")
    return root


def daemon_namespace_problem() -> str | None:
    """Why `start_in_cron_namespace` cannot work here, or None."""
    problem = namespace_problem()
    if problem:
        return problem
    probe = subprocess.run(
        ["unshare", *_UNSHARE_DAEMON, "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        return f"unshare {' '.join(_UNSHARE_DAEMON)} does not work here: {probe.stderr.strip()}"
    return None


def prepare_pam_dir(root: Path, dest: Path) -> Path:
    """A copy of the host's /etc/pam.d plus the package's /etc/pam.d/cron, in `dest`.

    Without its own PAM file Debian's cron would run its jobs through `other` (no
    pam_env, so no /etc/environment) and behave unlike an installed Debian cron.
    """
    shutil.copytree("/etc/pam.d", dest, symlinks=True)
    shutil.copy2(root / PAM_CONFIG_IN_PACKAGE, dest / "cron")
    return dest


# --mount and --pid with a fork: the script is pid 1 of a new pid namespace, so when it
# dies the kernel kills every process left in the namespace (daemon, jobs, sendmail),
# and --kill-child has it SIGKILLed as soon as the `unshare` process itself dies, even
# when that is by SIGKILL. --mount-proc gives the namespace a /proc of its own pids.
# Every mount is private: none propagates back to the host.
_UNSHARE_DAEMON = (
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--propagation",
    "private",
)

# Runs as pid 1 of the namespace. $1 = setup directory, $2 = spool mount point,
# $3 = ready marker (a host path), $4 = a path to wait for inside the namespace before
# the marker is written, $5 = the most seconds the namespace may live, $6 = number of
# bind pairs, then the pairs (source target), then the command. The setup directory
# holds `etc/` (entries that replace /etc's), `sendmail` (installed as MAILCMD),
# `crontabs/USER` (installed in the spool, owned by USER, mode 0600) and the mount
# points `ns-etc` and `ns-usr-sbin`.
_DAEMON_SCRIPT = r"""
set -eu
setup=$1; spool_mnt=$2; marker=$3; ready=$4; lifetime=$5; pairs=$6; shift 6
# A private copy of directory $1 at $1 itself, with $2's entries in place of its own:
# the original is reached through a recursive bind at $3 (so submounts such as a
# container's /etc/hosts come along), then $1 becomes a tmpfs holding a symlink to
# each original entry (a symlink itself is copied: a relative target must still
# resolve from $1), and real copies of $2's entries. Whole files are never bind-mounted
# over: a file bind mount is silently dropped when the host replaces that file (as
# useradd does /etc/passwd), while a directory bind stays.
overlay() {
    mount --rbind "$1" "$3"
    mount -t tmpfs -o mode=0755 smartcron-overlay "$1"
    for entry in "$3"/* "$3"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name=${entry##*/}
        if [ -e "$2/$name" ] || [ "$name" = crontab ]; then continue; fi
        if [ -L "$entry" ]; then cp -P "$entry" "$1/$name"; else ln -s "$entry" "$1/$name"; fi
    done
    cp -a "$2"/. "$1"/
}
# 1. /etc: private copies of passwd, group, shadow, pam.d, environment, default/... from
#    $setup/etc, and no system crontab: cron.d is the empty directory $setup/etc holds
#    and /etc/crontab is left out (a missing one is an empty one). Done first: the
#    spool's chown needs the private passwd.
overlay /etc "$setup/etc" "$setup/ns-etc"
# 2. Further binds (directories): e.g. the per-daemon view.
while [ "$pairs" -gt 0 ]; do
    mount --bind "$1" "$2"
    shift 2; pairs=$((pairs - 1))
done
# 3. /run (and /var/run, a symlink to it): cron's pid file, its lock, crond.reboot.
mount -t tmpfs -o mode=0755 smartcron-run /run
# 4. The spool: a tmpfs with the directories as Debian's postinst makes them
#    (/var/spool/cron 0755, crontabs 1730 root:crontab) and one 0600 file per user.
mount -t tmpfs -o mode=0755 smartcron-spool "$spool_mnt"
awk -v m="$spool_mnt" '$1 == "smartcron-spool" && $2 == m { found = 1 } END { exit !found }' \
    /proc/self/mounts
mkdir -p -m 0755 /var/spool/cron
mkdir -m 1730 /var/spool/cron/crontabs
chgrp crontab /var/spool/cron/crontabs 2>/dev/null || true
for tab in "$setup"/crontabs/*; do
    [ -f "$tab" ] || continue
    user=${tab##*/}
    cp "$tab" "/var/spool/cron/crontabs/$user"
    chown "$user" "/var/spool/cron/crontabs/$user"
    chmod 0600 "/var/spool/cron/crontabs/$user"
done
# 5. MAILCMD: /usr/sbin with the recording sendmail added (or put in place of a real one).
#    Staged in this namespace's private /run: two daemons' namespaces start side by
#    side from one setup directory, and a shared staging copy raced (cp: File exists).
mkdir -p /run/smartcron-sbin
cp "$setup/sendmail" /run/smartcron-sbin/sendmail
chmod 0755 /run/smartcron-sbin/sendmail
overlay /usr/sbin /run/smartcron-sbin "$setup/ns-usr-sbin"
# 6. The command, from /, in the foreground and not as pid 1 (pid 1 has odd signal
#    rules): an asynchronous command (`&`) of a shell starts with SIGINT and SIGQUIT
#    ignored, and a daemon passes that on to its jobs. The ready marker and the
#    watchdog are background subshells instead, for which that does not matter. After
#    $lifetime seconds the watchdog kills every process of the namespace but pid 1
#    (kill -1 spares it), pid 1 then finds its command gone and exits: a namespace
#    whose owner died without stopping it does not outlive this bound.
cd /
(
    tries=0
    while [ ! -e "$ready" ] && [ "$tries" -lt 200 ]; do sleep 0.05; tries=$((tries + 1)); done
    if [ -e "$ready" ]; then : >"$marker"; fi
) </dev/null >/dev/null 2>&1 &
(sleep "$lifetime"; kill -KILL -1) </dev/null >/dev/null 2>&1 &
"$@"
"""


def prepare_etc(
    dest: Path,
    *,
    package: Path,
    extra_users: str = "",
    extra_groups: str = "",
    extra_shadow: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """The `etc/` of a setup directory: what replaces the host's /etc entries.

    passwd, group and shadow are the host's with the given lines appended; pam.d is the
    host's plus the package's cron file (prepare_pam_dir); default/ is the host's;
    cron.d is empty; `files` maps a path under /etc (e.g. "default/locale") to its
    new contents. Nothing is written to the host's /etc.
    """
    dest.mkdir(parents=True)
    for name, lines in (("passwd", extra_users), ("group", extra_groups), ("shadow", extra_shadow)):
        shutil.copy2(f"/etc/{name}", dest / name)  # keeps shadow's mode (and cp -a its group)
        source = os.stat(f"/etc/{name}")
        os.chown(dest / name, source.st_uid, source.st_gid)
        with open(dest / name, "a") as out:
            out.write(lines)
    prepare_pam_dir(package, dest / "pam.d")
    if Path("/etc/default").is_dir():
        shutil.copytree("/etc/default", dest / "default", symlinks=True)
    (dest / "cron.d").mkdir(mode=0o755)
    for relative, text in (files or {}).items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    return dest


def start_in_cron_namespace(
    command: Sequence[str],
    *,
    setup: Path,
    ready: Path,
    marker: Path,
    binds: Sequence[tuple[Path, Path]] = (),
    env: dict[str, str] | None = None,
    log: Path,
    lifetime: float = 300.0,
) -> subprocess.Popen[bytes]:
    """Start `command` in a private namespace set up as a Debian host running cron would be.

    See _DAEMON_SCRIPT for what `setup` must hold (`etc/` from prepare_etc()). `binds`
    are (source, target) directory bind mounts made after /etc is in place. `marker` is
    created once `ready` (a path as the namespace sees it, e.g. /run/crond.pid) exists.
    stdout and stderr go to `log`. Stop it with `stop_namespace()`: every process in it
    dies with it. Should the caller die first, it dies too (the parent-death signal of
    `unshare`), and in any case after `lifetime` seconds.
    """
    for mount_point in ("ns-etc", "ns-usr-sbin"):
        (setup / mount_point).mkdir(exist_ok=True)
    args = [str(setup), str(_mount_point()), str(marker), str(ready)]
    args += [str(int(lifetime)), str(len(binds))]
    for source, target in binds:
        args += [str(source), str(target)]
    with open(log, "wb") as out:
        return subprocess.Popen(
            ["unshare", *_UNSHARE_DAEMON, "sh", "-c", _DAEMON_SCRIPT, "sh", *args, *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def stop_namespace(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Kill a namespace started by start_in_cron_namespace() and wait until it is gone.

    SIGKILL to `unshare` makes the kernel SIGKILL its child, pid 1 of the namespace
    (--kill-child); pid 1 does not finish dying before every other process in its
    namespace has been killed, and the mounts go with the last of them. So waiting for
    pid 1 to be gone (or a zombie) is waiting for the whole namespace.
    """
    init = _children(proc.pid)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in init):
        if time.monotonic() > deadline:
            raise RuntimeError(f"namespace processes {init} still alive after {timeout:g}s")
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
