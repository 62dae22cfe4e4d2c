"""One daemon per state directory: its lock, and cron's pid file beside it.

The lock file in the state directory is the truth on who runs (`smartcronctl status`
asks it); the pid file in the run directory is for scripts, as cron's /run/crond.pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path

from smartcron.errors import SmartcronError
from smartcron.store.atomicfile import write_atomic

__all__ = ["AlreadyRunning", "acquire_lock", "lock_holder", "remove_pid_file", "write_pid_file"]

log = logging.getLogger("smartcron")


class AlreadyRunning(SmartcronError):
    pass


# What a read-only or full state directory answers to creating or writing the lock file.
_NO_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def acquire_lock(path: Path) -> tuple[int, ...]:
    """One daemon per state directory: flocks held for the daemon's life (their fds), on
    the directory itself and on the lock file with our pid inside. flock needs no write
    access, so a read-only (or full) state directory still has exactly one daemon: the
    file is then locked through a read-only fd, pid not written, or only the directory
    is locked if the file cannot even be created."""
    with contextlib.suppress(OSError):  # a read-only parent: the open below says why
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fds = [os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    writable = True
    try:
        fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError as err:
        if err.errno not in _NO_WRITE:
            os.close(fds[0])
            raise
        writable = False
        with contextlib.suppress(FileNotFoundError):
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        log.warning("%s: cannot write the lock file (%s); locked read-only", path, err.strerror)
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = "?"
            if len(fds) > 1:
                holder = os.pread(fds[-1], 32, 0).decode(errors="replace").strip() or "?"
            for each in fds:
                os.close(each)
            msg = f"smartcron is already running (pid {holder}, lock {path})"
            raise AlreadyRunning(msg) from None
    if writable:
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same
            os.ftruncate(fds[-1], 0)
            os.pwrite(fds[-1], f"{os.getpid()}\n".encode(), 0)
    return tuple(fds)


def lock_holder(path: Path) -> int | None:
    """The pid of the running daemon for this lock file, or None if none holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        try:  # no lock file (a read-only state directory): the directory's lock says
            fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:  # the directory's lock: held, by a pid it cannot tell
            return -1
        return int(text) if text.isdigit() else -1
    else:
        return None
    finally:
        os.close(fd)


def write_pid_file(path: Path) -> None:
    """As cron's acquire_daemonlock() (misc.c) writes /run/crond.pid, for scripts; the
    lock file in the state directory stays the truth on who runs."""
    try:
        write_atomic(path, f"{os.getpid()}\n")
    except OSError as err:
        log.error("cannot write %s: %s", path, err.strerror)


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it is still ours."""
    with contextlib.suppress(OSError):
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
