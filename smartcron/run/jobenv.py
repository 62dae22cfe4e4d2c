"""The environment a job runs with, built exactly as Debian's cron builds it.

Two steps, as in Debian's cron 3.0pl1 with its patches:

1. `job_environment` is entry.c's load_entry(): the crontab's assignments in effect for
   the line, then the defaults `SHELL=/bin/sh`, `HOME=<pw_dir>`, `PATH=/usr/bin:/bin`
   only where unset, then `LOGNAME=<pw_name>` always (a crontab cannot override it).
   `USER` is set only `#if defined(BSD)`, which Debian's Linux build is not, so there is
   none. This is also the list, in order, that mail shows as ``X-Cron-Env`` headers.
2. `build_env` is do_command.c's build_env(): Debian's cron is built with PAM, and its
   /etc/pam.d/cron runs pam_env (``/etc/environment``, ``/etc/default/locale``). The job
   is exec'd with the PAM list first and the crontab list set over it (replacing in
   place, appending the rest). With no PAM variables it is the crontab list unchanged.

Checked against Debian's cron 3.0pl1-162 itself (private mount namespace, its
/etc/pam.d/cron): a job's execve environment was exactly LANG (from
/etc/default/locale), SHELL, HOME, PATH, LOGNAME, in that order.
Nothing comes from the daemon's own environment. Pure apart from `resolve_user`.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# pathnames.h: _PATH_BSHELL and _PATH_DEFPATH.
DEFAULT_SHELL = "/bin/sh"
DEFAULT_PATH = "/usr/bin:/bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswdEntry:
    """The fields of a passwd entry that cron uses."""

    name: str
    uid: int
    gid: int
    dir: str
    shell: str


class PasswdLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dir(self) -> str: ...


def resolve_user(name: str) -> PasswdEntry | None:
    """getpwnam(3), or None when there is no such user."""
    try:
        pw = pwd.getpwnam(name)
    except (KeyError, ValueError):  # ValueError: an embedded NUL
        return None
    return PasswdEntry(
        name=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid, dir=pw.pw_dir, shell=pw.pw_shell
    )


def env_set(env: dict[str, str], name: str, value: str) -> None:
    """env.c's env_set(): replace in place when present, else append.

    A Python dict keeps insertion order and keeps a key's position on reassignment,
    which is exactly env_set()'s behaviour.
    """
    env[name] = value


def job_environment(crontab_env: Iterable[tuple[str, str]], pw: PasswdLike) -> dict[str, str]:
    """entry.c's load_entry(): the crontab's variables plus cron's defaults, in order."""
    env: dict[str, str] = {}
    for name, value in crontab_env:
        env_set(env, name, value)
    if "SHELL" not in env:
        env_set(env, "SHELL", DEFAULT_SHELL)
    if "HOME" not in env:
        env_set(env, "HOME", pw.dir)
    if "PATH" not in env:
        env_set(env, "PATH", DEFAULT_PATH)
    env_set(env, "LOGNAME", pw.name)  # an override, not a default
    return env


def build_env(
    cron_env: Iterable[tuple[str, str]], pam_env: Iterable[tuple[str, str]] = ()
) -> dict[str, str]:
    """do_command.c's build_env(): PAM's list first, cron's set over it (cron wins)."""
    env: dict[str, str] = {}
    for name, value in pam_env:
        env_set(env, name, value)
    for name, value in cron_env:
        env_set(env, name, value)
    return env


def parse_pam_env_file(text: str) -> list[tuple[str, str]]:
    """What pam_env reads from an ``envfile`` such as /etc/environment or /etc/default/locale.

    pam_env's _parse_env_file(): blank lines and ``#`` comments are skipped, an
    ``export `` prefix is dropped, a ``#`` ends the value, the name must be letters,
    digits and ``_``, and a quoted value loses its opening quote and a quote at its very
    end ("smart about quotes, but not too smart"). A line without ``=`` unsets the
    name. Backslash-newline continuations are not handled.
    """
    out: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:]
        line = line.split("#", 1)[0]
        name, eq, value = line.partition("=")
        if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
            continue
        if not eq:
            out.pop(name, None)
            continue
        if value[:1] in ("'", '"'):
            # The opening quote goes; after it a quote is dropped only when it is the
            # last character, so `"it's"` is `it's` and `"a"b"` is `a"b`.
            body = value[1:]
            value = body[:-1] if body[-1:] in ("'", '"') else body
        out[name] = value
    return list(out.items())


def can_enter(path: str, uid: int, gids: Iterable[int]) -> bool:
    """Whether `uid` could chdir(path) (mode bits; ACLs are not consulted)."""
    try:
        real = os.path.realpath(path, strict=True)
    except OSError:
        return False
    if not os.path.isdir(real):
        return False
    if uid == os.geteuid():
        return os.access(real, os.X_OK)
    if uid == 0:
        return True
    groups, parts = set(gids), real.split("/")
    for depth in range(1, len(parts) + 1):
        st = os.stat("/".join(parts[:depth]) or "/")
        owner, group = st.st_uid == uid, st.st_gid in groups  # the kernel's order
        bit = stat.S_IXUSR if owner else stat.S_IXGRP if group else stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True
