"""The lines to export: crontabs parsed by the project's parser, each smart line's
SmartSpec resolved as the daemon and `smartcrontab -T` resolve it (inline keys, then
F.smart.yaml), with a unique DNS-1123 name and the shell script it runs."""

from __future__ import annotations

import os
import pwd
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from smartcron.cron.crontab import Entry, Kind, parse
from smartcron.cron.schedule import entry_zone, local_zone
from smartcron.errors import SmartcronError
from smartcron.smart.smartspec import SmartSpec, companion_path, load_companion, smart_spec_for

MAX_NAME = 52  # Kubernetes: a CronJob's name leaves 11 characters for its Jobs' suffix
# Keys every target handles itself (or that are identity, not behaviour).
_IDENTITY = ("name",)


@dataclass(frozen=True)
class ExportJob:
    """One line to export. `zone` is CRON_TZ's name (None: the system zone)."""

    path: str
    entry: Entry
    owner: str
    smart: SmartSpec | None
    name: str
    zone: str | None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.entry.line}"

    def changed(self) -> dict[str, object]:
        """The smart keys whose values differ from the built-in defaults (the window is
        always there: resolved, or derived from the schedule)."""
        if self.smart is None:
            return {}
        mine, base = self.smart.as_dict(), SmartSpec().as_dict()
        if mine.get("window_clock"):  # one key in smartcrontab(5): window=01:00-05:00
            mine["window"] = mine.pop("window_clock")
        return {
            key: value
            for key, value in mine.items()
            if key not in _IDENTITY and (value != base.get(key) or key == "window")
            and value is not None
        }  # fmt: skip

    def script(self) -> str:
        """What `sh -c` runs: the command, fed the `%` part on stdin as cron feeds it."""
        stdin = self.entry.stdin
        command = self.entry.shell_command
        if stdin is None:
            return command
        return f"printf %s {shlex.quote(stdin)} | {{\n{command}\n}}"

    def shell(self) -> str:
        return dict(self.entry.env).get("SHELL") or "/bin/sh"


def dns_label(text: str) -> str:
    """A DNS-1123 label: lower case letters, digits and '-', at most MAX_NAME long."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:MAX_NAME].strip("-")
    return label or "job"


def _derived_name(entry: Entry, path: str, kind: Kind) -> str:
    """A package's cron.d file names its lines (`e2scrub-all-2`); elsewhere the
    command's program does (`backup-12`)."""
    words = entry.shell_command.split()
    program = os.path.basename(words[0]) if words else "job"
    if kind is Kind.SYSTEM and os.path.basename(path) != "crontab":
        program = os.path.basename(path)
    return f"{dns_label(program)[: MAX_NAME - 8]}-{entry.line}"


def _file_owner(path: str) -> str:
    """A user-format crontab belongs to its owner (the spool names it; user mode owns it)."""
    uid = os.geteuid() if path == "-" else os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def load(text: str, path: str, kind: Kind, owner: str | None = None) -> list[ExportJob]:
    """Every line of one crontab. Raises SmartcronError (path:line) on a bad line or a
    bad #@smart key: an export must not silently drop what the daemon would run."""
    tab = parse(text, kind, path)
    companion = None
    side = companion_path(Path(path)) if path != "-" else None
    if side is not None and side.is_file():
        companion = load_companion(side.read_bytes().decode("utf-8", "surrogateescape"), str(side))
    if kind is Kind.USER and owner is None:
        owner = _file_owner(path)
    out = []
    for entry in tab.entries:
        smart = smart_spec_for(entry, path, companion, None)
        zone = None
        try:
            found = entry_zone(entry.env, local_zone())
        except SmartcronError as err:
            raise SmartcronError(f"{path}:{entry.line}: {err}") from None
        if dict(entry.env).get("CRON_TZ"):
            zone = str(found)
        name = smart.name if smart is not None and smart.name else None
        out.append(
            ExportJob(
                path=path,
                entry=entry,
                owner=entry.user or owner or "root",
                smart=smart,
                name=dns_label(name) if name else _derived_name(entry, path, kind),
                zone=zone,
            )
        )
    return out


def unique(jobs: list[ExportJob]) -> list[ExportJob]:
    """Names made unique in order: a second `backup` becomes `backup-2`."""
    seen: set[str] = set()
    out = []
    for job in jobs:
        name, count = job.name, 1
        while name in seen:
            count += 1
            suffix = f"-{count}"
            name = job.name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        seen.add(name)
        out.append(job if name == job.name else replace(job, name=name))
    return out


def system_zone_name() -> str | None:
    """The system zone's IANA name, or None when it has none (a bare /etc/localtime)."""
    zone = local_zone()
    key = getattr(zone, "key", None)
    if key and key != "localtime":
        return str(key)
    return "Etc/UTC" if str(zone) == "UTC" else None


def has_dst(zone: str | None) -> bool:
    """Whether the zone (None: the system's) changes its offset in the year (DST)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        tz = ZoneInfo(zone) if zone else local_zone()
    except (ValueError, OSError):
        return False
    year = datetime.now().year
    offsets = {datetime(year, month, 1, 12, tzinfo=tz).utcoffset() for month in (1, 4, 7, 10)}
    return len(offsets) > 1


def shown(value: object) -> str:
    """A key's value as smartcrontab(5) writes it: yes/no, 1.5, 7200 (seconds)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def seconds(value: object) -> int:
    """A SmartSpec.as_dict() duration (seconds) as whole seconds, rounded up."""
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else int(number) + 1
