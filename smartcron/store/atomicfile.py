"""Replace a file whole, so that a reader sees the old contents or the new, never a mix,
and a crash or power cut leaves one of the two on disk."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(
    path: Path,
    data: bytes | str,
    *,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
    temp_prefix: str | None = None,
) -> None:
    """Temp file beside `path`, fsync, chown/chmod, rename, fsync the directory.

    `data` as text is written as UTF-8. `owner` (uid, gid) is applied when running as
    root (no one else can give a file away). The temporary file is named
    `temp_prefix` + random, by default a dot-file named after `path`: the crontab spool
    passes crontab.c's "tmp.", which the loader skips. rename() replaces a symlink
    planted at `path` instead of following it. Without the directory's fsync the
    rename itself may be lost in a crash, leaving the old file.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    prefix = f".{path.name}." if temp_prefix is None else temp_prefix
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
