"""Containing each job in its own cgroup v2, so that a timeout or a stop reaches every
process the job made, even one that left the job's process group with setsid().

Layout: `<the daemon's cgroup>/smartcron-jobs/job-<id>-<daemon pid>-<n>`. The daemon's
own cgroup is the `0::` line of /proc/self/cgroup under the cgroup2 mount found in
/proc/self/mountinfo. The jobs' parent holds no process itself (cgroup v2's "no internal
processes" rule), and the daemon stays where its service manager put it. Under systemd
the unit should say `Delegate=yes` (systemd.resource-control(5)): systemd then leaves
the subtree to the daemon; root can create it without, but systemd does not expect it.

A job is born in its cgroup (the spawner's clone3 with CLONE_INTO_CGROUP), or, forked by
the daemon itself, enters it between fork and exec (the child writes its own pid to the
cgroup's cgroup.procs, before it drops root): either way no descendant starts outside it.

Where cgroup v2 is missing or not writable (no cgroup2 mount, a non-root daemon without
delegation, a mount given in a test that does not exist) `JobCgroups.detect()` returns
an unavailable instance with the reason, and jobs keep cron's process-group handling.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

JOBS_DIR = "smartcron-jobs"
_SEQ = itertools.count(1)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_OWN_NAME = re.compile(r"^job-.*-(\d+)-\d+$")


class JobCgroup:
    """One job's cgroup: enter (from the forked child), signal, kill, account, remove."""

    def __init__(self, path: Path, *, kill_file: bool) -> None:
        self.path = path
        self.kill_file = kill_file  # cgroup.kill: Linux >= 5.14
        # Opened here, as root, so the child only needs write(2) between fork and exec.
        self._procs_fd: int | None = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def enter(self) -> None:
        """Move the calling process in. Runs in the child between fork and exec: only
        async-signal-safe work (getpid, write)."""
        assert self._procs_fd is not None
        os.write(self._procs_fd, str(os.getpid()).encode())

    def close(self) -> None:
        if self._procs_fd is not None:
            os.close(self._procs_fd)
            self._procs_fd = None

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:  # removed: nobody left
            return []
        return [int(word) for word in text.split()]

    def populated(self) -> bool:
        """Any live process in it (zombies do not count: they left at exit)."""
        try:
            return "populated 1" in (self.path / "cgroup.events").read_text()
        except OSError:
            return False

    def signal_all(self, sig: int, *, but_group: int | None = None) -> None:
        """`sig` to every process in the cgroup but those of process group `but_group`:
        the caller's killpg has reached them, and a second SIGTERM arriving while a job's
        `trap ... TERM` runs would run it again (seen in CI: "got TERM" twice)."""
        for pid in self.pids():
            with contextlib.suppress(OSError):  # gone meanwhile
                if but_group is None or os.getpgid(pid) != but_group:
                    os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, and those it forks meanwhile."""
        if self.kill_file:
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
                return
        # Before 5.14: freeze (a frozen task cannot fork, but dies of SIGKILL), kill
        # what is listed until the list is empty, thaw.
        freeze = self.path / "cgroup.freeze"
        frozen = False
        with contextlib.suppress(OSError):
            freeze.write_text("1")
            frozen = True
        try:
            for _ in range(20):
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            if frozen:
                with contextlib.suppress(OSError):
                    freeze.write_text("0")

    def cpu_s(self) -> float | None:
        """CPU seconds of every process that ran in it (cpu.stat's usage_usec)."""
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, ValueError):
            pass
        return None

    def memory_peak_kb(self) -> int | None:
        """memory.peak, where the memory controller is enabled (Linux >= 5.19)."""
        try:
            return int((self.path / "memory.peak").read_text()) // 1024
        except (OSError, ValueError):
            return None

    def remove(self) -> bool:
        """rmdir the cgroup; False while a process (a daemonised child) is still in it."""
        self.close()
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY: populated
            return False
        return True


class JobCgroups:
    """Where a runner puts its jobs: a parent cgroup, or None and the reason why not."""

    def __init__(self, parent: Path | None, reason: str = "", *, kill_file: bool = True) -> None:
        self.parent = parent
        self.reason = reason
        self.kill_file = kill_file  # tests turn it off to exercise the freezer path
        self._lingering: set[Path] = set()  # job cgroups a daemonised child still holds
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.parent is not None

    def describe(self) -> str:
        """`status`'s "containment": which mechanism stops a job's processes."""
        if self.parent is None:
            return f"process group: {self.reason}"
        return f"cgroup v2 ({self.parent})"

    @classmethod
    def unavailable(cls, reason: str) -> JobCgroups:
        return cls(None, reason)

    @classmethod
    def detect(
        cls,
        *,
        mount: Path | None = None,  # None: the cgroup2 mount in /proc/self/mountinfo
        proc: Path = Path("/proc/self"),
    ) -> JobCgroups:
        """The jobs' parent cgroup under this process's own cgroup, created if need be."""
        try:
            found = _cgroup2_mount(proc / "mountinfo")
            own = _own_path(proc / "cgroup")
        except OSError as err:
            return cls.unavailable(f"cannot read {err.filename}: {err.strerror}")
        if mount is None:
            if found is None:
                return cls.unavailable("no cgroup2 file system is mounted")
            mount, root = found
        else:
            root = "/"
        if own is None:
            return cls.unavailable("this process has no cgroup v2 path (no 0:: line)")
        if not (mount / "cgroup.procs").is_file():
            return cls.unavailable(f"{mount} is not a cgroup v2 mount")
        relative = os.path.relpath(own, root)
        if relative.startswith(".."):
            return cls.unavailable(f"own cgroup {own} lies outside the mount's root {root}")
        daemon_cg = (mount / relative).resolve()
        # Moving a process needs write access to the common ancestor's cgroup.procs.
        if not os.access(daemon_cg / "cgroup.procs", os.W_OK):
            return cls.unavailable(f"{daemon_cg}/cgroup.procs is not writable (no delegation)")
        parent = daemon_cg / JOBS_DIR
        try:
            parent.mkdir(exist_ok=True)
        except OSError as err:
            return cls.unavailable(f"cannot create {parent}: {err.strerror}")
        if not (parent / "cgroup.procs").is_file():
            return cls.unavailable(f"{parent} is not a cgroup")
        _enable_memory(daemon_cg, parent)
        found_cgroups = cls(parent, kill_file=(parent / "cgroup.kill").exists())
        found_cgroups.sweep_stale()
        return found_cgroups

    def create(self, job_id: str) -> JobCgroup:
        """A new, empty cgroup for one run of `job_id`; OSError if it cannot be made."""
        assert self.parent is not None
        self.sweep()
        safe = _UNSAFE.sub("_", job_id)[:150]
        while True:
            path = self.parent / f"job-{safe}-{os.getpid()}-{next(_SEQ)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            try:
                return JobCgroup(path, kill_file=self.kill_file)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                raise

    def release(self, cg: JobCgroup) -> None:
        """The run is over: remove its cgroup now, or once its last process has gone."""
        if not cg.remove():
            with self._lock:
                self._lingering.add(cg.path)

    def sweep(self) -> int:
        """Remove the cgroups of earlier runs whose daemonised children have all gone."""
        with self._lock:
            paths = list(self._lingering)
        removed = 0
        for path in paths:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                continue
            removed += 1
            with self._lock:
                self._lingering.discard(path)
        return removed

    def sweep_stale(self) -> int:
        """At start: remove empty job cgroups left by daemons that are no longer running
        (a restart leaves a job's cgroup behind while the job still runs, as cron does)."""
        assert self.parent is not None
        removed = 0
        with contextlib.suppress(OSError):
            for child in self.parent.iterdir():
                match = _OWN_NAME.match(child.name)
                if match is None or _alive(int(match.group(1))):
                    continue
                try:
                    child.rmdir()
                    removed += 1
                except OSError:  # a job of that daemon still runs: sweep() tries again
                    with self._lock:
                        self._lingering.add(child)
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _cgroup2_mount(mountinfo: Path) -> tuple[Path, str] | None:
    """(mount point, root within the hierarchy) of the first cgroup2 mount."""
    for line in mountinfo.read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        if tail.split(" ", 1)[0] != "cgroup2":
            continue
        parts = fields.split()
        return Path(_unescape(parts[4])), _unescape(parts[3])
    return None


def _own_path(proc_cgroup: Path) -> str | None:
    for line in proc_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            path = line[3:]
            return path.removesuffix(" (deleted)") or "/"
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _enable_memory(daemon_cg: Path, parent: Path) -> None:
    """memory.peak in each job's cgroup needs the memory controller enabled for the jobs'
    parent; possible only where the daemon's cgroup already hands it down."""
    try:
        if "memory" not in (daemon_cg / "cgroup.subtree_control").read_text().split():
            return
        if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
            (parent / "cgroup.subtree_control").write_text("+memory")
    except OSError as err:
        log.debug("memory controller not enabled for %s: %s", parent, err.strerror)


def child_setup(
    cg: JobCgroup,
    *,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
) -> Callable[[], None]:
    """Popen's preexec_fn: enter the job's cgroup while still root, then drop to the
    owner as Popen's user=/group=/extra_groups= would (they run before preexec_fn, and a
    non-root writer may not move itself). Only syscalls: the daemon has threads."""

    def setup() -> None:
        cg.enter()
        if extra_groups is not None:
            os.setgroups(extra_groups)
        if group is not None:
            os.setregid(group, group)
        if user is not None:
            os.setreuid(user, user)

    return setup
