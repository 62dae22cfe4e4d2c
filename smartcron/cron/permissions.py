"""cron's file permission rules and cron.allow/cron.deny, as Debian's database.c has them.

The checks take stat results, so they are pure and testable; `open_checked` is the one
place that opens a crontab, without following a user's symlink and without blocking
on a FIFO.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from smartcron.errors import SmartcronError

MAX_FILE_BYTES = 16 * 1024 * 1024  # far above cron's 10,000 lines of sane length


class RefusedFile(SmartcronError):
    """A crontab cron would not read; `reason` uses cron's words (INSECURE MODE, ...)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def user_crontab_problem(st: os.stat_result, owner_uid: int) -> str | None:
    """Debian's rules for a spool crontab: owner or root, regular, mode 0600, one link."""
    if st.st_uid not in (owner_uid, 0):
        return "WRONG FILE OWNER"
    if not stat.S_ISREG(st.st_mode):
        return "NOT A REGULAR FILE"
    if stat.S_IMODE(st.st_mode) != 0o600:
        return "INSECURE MODE (mode 0600 expected)"
    if st.st_nlink != 1:
        return "NUMBER OF HARD LINKS > 1"
    return None


def system_crontab_problem(lst: os.stat_result, st: os.stat_result) -> str | None:
    """/etc/crontab and cron.d: a symlink is fine if it and its target are root's."""
    if stat.S_ISLNK(lst.st_mode) and lst.st_uid != 0:
        return "WRONG SYMLINK OWNER"
    if st.st_uid != 0:
        return "WRONG FILE OWNER"
    if not stat.S_ISREG(st.st_mode):
        return "NOT A REGULAR FILE"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "INSECURE MODE (group/other writable)"
    if st.st_nlink != 1:
        return "NUMBER OF HARD LINKS > 1"
    return None


def own_crontab_problem(st: os.stat_result, uid: int) -> str | None:
    """User mode (a daemon running as the user on <config>/crontab).

    The file is the user's own, edited with any editor, so mode 0600 is not demanded;
    what matters is that nobody else can change what runs as the user.
    """
    if st.st_uid not in (uid, 0):
        return "WRONG FILE OWNER"
    if not stat.S_ISREG(st.st_mode):
        return "NOT A REGULAR FILE"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "INSECURE MODE (group/other writable)"
    return None


@dataclass(frozen=True, slots=True)
class FileData:
    text: str
    mtime_ns: int
    ctime_ns: int
    size: int
    inode: int


def open_checked(path: Path, rule: str, owner_uid: int) -> FileData:
    """Read a crontab if cron's rule for it (`user`, `system` or `own`) allows it.

    Raises RefusedFile with cron's reason. Bytes that are not UTF-8 are kept
    (surrogateescape), as cron works on bytes.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if rule != "system":
        flags |= os.O_NOFOLLOW  # a user's symlink is never followed (database.c)
    try:
        lst = os.lstat(path)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise RefusedFile(path, "NO SUCH FILE") from None
    except OSError as err:
        raise RefusedFile(path, f"CAN'T OPEN ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if rule == "system":
            problem = system_crontab_problem(lst, st)
        elif rule == "user":
            problem = user_crontab_problem(st, owner_uid)
        else:
            problem = own_crontab_problem(st, owner_uid)
        if problem:
            raise RefusedFile(path, problem)
        if st.st_size > MAX_FILE_BYTES:
            raise RefusedFile(path, f"FILE TOO LARGE ({st.st_size} bytes)")
        chunks = []
        remaining = MAX_FILE_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise RefusedFile(path, "FILE TOO LARGE")
        data = b"".join(chunks)
    finally:
        os.close(fd)
    return FileData(
        data.decode("utf-8", "surrogateescape"),
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_size,
        st.st_ino,
    )


def _names(path: Path) -> set[str] | None:
    """The user names listed in an allow/deny file; None when it does not exist.

    An unreadable file raises: the caller must fail closed.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    return {line.strip() for line in text.splitlines()}


def may_use_cron(user: str, allow_file: Path, deny_file: Path) -> bool:
    """cron.allow / cron.deny (SPEC section 3): root always; allow wins; else deny.

    An allow or deny file that exists but cannot be read denies (fail closed).
    """
    if user == "root":
        return True
    try:
        allowed = _names(allow_file)
        if allowed is not None:
            return user in allowed
        denied = _names(deny_file)
    except OSError:
        return False
    return denied is None or user not in denied
