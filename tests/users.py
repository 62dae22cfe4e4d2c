"""Throwaway system users for tests that switch uid (root only).

`throwaway_user()` creates ``scxt_<random>`` with a home directory (useradd -m) and a
supplementary group ``scxg_<random>``, and removes both (userdel -r) on exit.
"""

from __future__ import annotations

import contextlib
import grp
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from smartcron.run.jobenv import PasswdEntry, resolve_user

NOT_ROOT = "needs root: creates users and switches uid"


@dataclass(frozen=True)
class ThrowawayUser:
    pw: PasswdEntry
    group: str
    group_gid: int


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def is_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def throwaway_user(shell: str = "/bin/bash") -> Iterator[ThrowawayUser]:
    tag = secrets.token_hex(4)
    name, group = f"scxt_{tag}", f"scxg_{tag}"
    _run("groupadd", group)
    try:
        _run("useradd", "-m", "-s", shell, name)
        try:
            _run("usermod", "-aG", group, name)
            pw = resolve_user(name)
            assert pw is not None
            yield ThrowawayUser(pw=pw, group=group, group_gid=grp.getgrnam(group).gr_gid)
        finally:
            # -r removes the home directory; -f even if a stray job process is left.
            _run("userdel", "-r", "-f", name)
    finally:
        _run("groupdel", group)
