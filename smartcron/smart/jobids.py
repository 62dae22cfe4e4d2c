"""A job's id: stable across edits that do not change the job itself.

Below both jobs (the Job value) and smartspec (which names a job by its `name=` or this
id), so that neither imports the other at run time.
"""

from __future__ import annotations

import os
import re
import zlib

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_part(source: str) -> str:
    return _NAME_CHARS.sub("_", source.rsplit("/", 1)[-1]).strip("_") or "crontab"


def _canonical(source: str) -> str:
    """The path absolute and normalised, so that `tab`, `./tab` and `/abs/tab` are one job.

    The daemon's paths are absolute and normalised already (Path values, config paths
    resolved), so abspath leaves them, and the ids it recorded, unchanged; symlinks are
    kept (realpath would change them). A pseudo-name ('-', '<stdin>') is not a path.
    """
    if source == "-" or source.startswith("<"):
        return source
    return os.path.abspath(source)


def derived_id(source: str, owner: str, schedule: str, command: str) -> str:
    """An id from what makes a job itself: file, user, schedule and command.

    Moving a line, or editing others, keeps it; changing the line makes a new job
    (a `name=` job has a `named_id` instead).
    """
    source = _canonical(source)
    key = "\0".join((source, owner, schedule, command))
    # Two independent 32-bit checksums: an id, not a secret, and zlib is already in
    # memory where hashlib would map OpenSSL's libcrypto (about 4 MB) into the daemon.
    data = key.encode("utf-8", "surrogateescape")
    digest = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return f"{_file_part(source)}-{owner}-{digest[:10]}"


def named_id(source: str, owner: str, name: str) -> str:
    """A `name=` job's id: file, user and name, so that editing its schedule or command
    keeps its open firings and its history (SPEC 4.1: "stable job name")."""
    return f"{_file_part(source)}-{owner}-{name}"
