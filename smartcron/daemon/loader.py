"""Finding and loading crontab files: the daemon's view of /etc/crontab, cron.d, the
spool, and SmartCron's standalone job files (SPEC 4.2: /etc/smartcron/jobs, user mode
the config dir's jobs/; one job each, checked like a cron.d file or the user's crontab).

Everything here reports instead of raising: a refused or broken file becomes a
`Loaded` with a reason, so one bad file never stops the others (database.c does the
same, file by file). Files are re-read only when their (mtime, size, inode) changes.
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smartcron.config import Config
from smartcron.cron.crontab import Kind, cron_d_name_ok, parse
from smartcron.cron.permissions import FileData, RefusedFile, open_checked
from smartcron.daemon.loadedfile import CompanionFile, Loaded, Source, Stamp
from smartcron.daemon.reloadlog import report_reload
from smartcron.errors import AnnotationError, CrontabSyntaxError, LineProblem, SmartcronError
from smartcron.smart.dependgraph import with_after_warnings
from smartcron.smart.fleetcheck import with_fleet_warnings
from smartcron.smart.jobfiles import JOB_FILE_SUFFIXES, load_job_file
from smartcron.smart.jobids import derived_id, named_id
from smartcron.smart.jobs import Job, assign_ids
from smartcron.smart.smartspec import Companion, companion_path, load_companion, smart_spec_for

log = logging.getLogger("smartcron")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def discover(config: Config) -> list[Source]:
    """The crontab files this daemon should read, in cron's order."""
    sources: list[Source] = []
    if config.user_mode:
        if config.user_crontab is not None:
            me = pwd.getpwuid(os.geteuid()).pw_name
            sources.append(Source(config.user_crontab, Kind.USER, "own", me))
        me = pwd.getpwuid(os.geteuid()).pw_name
        return sources + _job_files(config.jobs_dir, "own", me)
    if config.crontab is not None:
        sources.append(Source(config.crontab, Kind.SYSTEM, "system"))
    if config.cron_d is not None:
        for name in _listdir(config.cron_d):
            # Debian reads only run-parts style names: foo.dpkg-old, foo.smart.yaml skipped.
            if cron_d_name_ok(name):
                sources.append(Source(config.cron_d / name, Kind.SYSTEM, "system"))
    if config.spool_dir is not None:
        for name in _listdir(config.spool_dir):
            if name.startswith((".", "tmp.")):  # crontab(1)'s temporary files
                continue
            if name.endswith(".smart.yaml"):  # a companion, not a user's crontab
                continue
            sources.append(Source(config.spool_dir / name, Kind.USER, "user", name))
    return sources + _job_files(config.jobs_dir, "system", None)


def _job_files(directory: Path | None, rule: str, owner: str | None) -> list[Source]:
    if directory is None:
        return []
    return [
        Source(directory / name, Kind.USER, rule, owner, job_file=True)
        for name in _listdir(directory)
        if name.lower().endswith(JOB_FILE_SUFFIXES) and not name.startswith(".")
    ]


def _listdir(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as err:
        log.error("cannot list %s: %s", directory, err.strerror)
        return []


def load_source(
    source: Source,
    zone_of: Callable[[tuple[tuple[str, str], ...]], object] | None = None,
    user_exists: Callable[[str], bool] = _user_exists,
) -> Loaded:
    """Read, check and parse one file. Never raises."""
    if source.job_file:
        return _load_job_file(source, zone_of, user_exists)
    path = str(source.path)
    read = _read(source)
    if isinstance(read, Loaded):
        return read
    data, stamp, owner_uid = read
    try:
        tab = parse(data.text, source.kind, path)
    except CrontabSyntaxError as err:
        return Loaded(source, refused=str(err), stamp=stamp)
    warnings = [str(w) for w in tab.warnings]
    companion, companion_file = _companion(source, owner_uid, warnings)
    candidates = []
    named: dict[str, int] = {}  # a name= job's id -> its line
    for entry in tab.entries:
        owner = entry.user if source.kind is Kind.SYSTEM else source.owner
        assert owner is not None
        if source.kind is Kind.SYSTEM and not user_exists(owner):
            # Debian refuses the whole file here; we skip the line only, so that a
            # package's cron.d file for a user not yet created cannot stop its others.
            warnings.append(str(LineProblem(path, entry.line, f"bad username {owner!r}: skipped")))
            continue
        zone = None
        if zone_of is not None:
            try:
                zone = zone_of(entry.env)
            except SmartcronError as err:
                warnings.append(str(LineProblem(path, entry.line, f"{err}; using the system zone")))
        smart = None
        try:
            smart = smart_spec_for(entry, path, companion, None)
        except AnnotationError as err:  # never disables the job: it runs as plain cron
            warnings.extend(f"{p}; the line runs as plain cron" for p in err.problems)
        job = Job(
            id="",
            source=path,
            line=entry.line,
            owner=owner,
            entry=entry,
            zone=zone,  # type: ignore[arg-type]
            name=smart.name if smart is not None else None,
            smart=smart,
        )
        if job.name:
            key = named_id(path, owner, job.name)
            if key in named:
                twice = f"name={job.name} also names line {named[key]}"
                warnings.append(str(LineProblem(path, entry.line, twice)))
            named.setdefault(key, entry.line)
        else:
            key = derived_id(path, owner, entry.spec.text, entry.command)
        candidates.append((key, job))
    jobs = assign_ids(candidates)
    if companion is not None:
        names = [job.name for job in jobs if job.name]
        for name in companion.unknown_jobs(names):
            warnings.append(f"{companion.path}: jobs: {name!r} is no annotated line's name=")
    return Loaded(source, tuple(jobs), tab, None, tuple(warnings), stamp, companion_file)


def _read(source: Source) -> Loaded | tuple[FileData, Stamp, int]:
    """The file's text, stamp and owner's uid, if cron's rule for it allows reading it;
    else a refused Loaded."""
    owner_uid = 0
    if source.owner is not None:
        try:
            owner_uid = pwd.getpwnam(source.owner).pw_uid
        except KeyError:
            return Loaded(source, refused="ORPHAN (no passwd entry)")
    try:
        data = open_checked(source.path, source.rule, owner_uid)
    except RefusedFile as err:
        return Loaded(source, refused=err.reason)
    return data, (data.mtime_ns, data.ctime_ns, data.size, data.inode), owner_uid


def _load_job_file(
    source: Source,
    zone_of: Callable[[tuple[tuple[str, str], ...]], object] | None,
    user_exists: Callable[[str], bool],
) -> Loaded:
    """One standalone job. It runs as its `user` (system files only, else root) or, in
    user mode, as the file's owner; a file with any problem is refused whole."""
    path = str(source.path)
    read = _read(source)
    if isinstance(read, Loaded):
        return read
    data, stamp, _ = read
    try:
        job = load_job_file(data.text, path, system=source.rule == "system")
        smart = job.smart_spec(None)
    except AnnotationError as err:
        return Loaded(source, refused="\n".join(map(str, err.problems)), stamp=stamp)
    owner = job.user or source.owner or "root"
    if not user_exists(owner):
        return Loaded(source, refused=f"{path}: user: no such user {owner!r}", stamp=stamp)
    warnings = []
    zone = None
    if zone_of is not None:
        try:
            zone = zone_of(())
        except SmartcronError as err:
            warnings.append(f"{path}: {err}; using the system zone")
    found = Job(
        id=named_id(path, owner, job.name),
        source=path,
        line=1,
        owner=owner,
        entry=job.entry,
        zone=zone,  # type: ignore[arg-type]
        name=job.name,
        smart=smart,
        job_file=True,
    )
    return Loaded(source, (found,), None, None, tuple(warnings), stamp)


def _companion(
    source: Source, owner_uid: int, warnings: list[str]
) -> tuple[Companion | None, CompanionFile | None]:
    """F.smart.yaml, checked like F itself; a bad one is a warning (annotated lines then
    use their inline keys only: SPEC 4.1, a bad annotation never disables a job), never
    a reason to refuse F. It is checked even when F has no #@smart line yet, so that its
    errors show when it is written, not when F is next edited."""
    path = companion_path(source.path)
    stamp = _stamp_of(path)  # before reading: a write in between only rereads it later
    if stamp is None:
        return None, None
    problems: tuple[str, ...]
    try:
        data = open_checked(path, source.rule, owner_uid)
        return load_companion(data.text, str(path)), CompanionFile(str(path), stamp)
    except RefusedFile as err:
        state, problems = "refused", (f"{path}: refused: {err.reason}",)
    except AnnotationError as err:
        state, problems = "broken", tuple(map(str, err.problems))
    warnings.extend(f"{p}; annotations use their inline keys only" for p in problems)
    return None, CompanionFile(str(path), stamp, state, problems)


def _stamp_of(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


@dataclass
class Database:
    """All loaded files, refreshed in place; `changed` says whether anything moved."""

    config: Config
    zone_of: Callable[[tuple[tuple[str, str], ...]], object] | None = None
    files: dict[str, Loaded] = field(default_factory=dict)

    def refresh(self, force: bool = False) -> list[str]:
        """Rescan; reload new and changed files; drop removed ones. Returns what changed.

        A crontab's companion counts as part of it (cron(8) rereads a crontab whose
        mtime moved; F.smart.yaml changes F's jobs as much as F does), so a change of
        either reloads F, and each change is logged with what it changed.
        """
        changes: list[str] = []
        current: dict[str, Loaded] = {}
        for source in discover(self.config):
            key = str(source.path)
            old = self.files.get(key)
            stamp = _stamp_of(source.path)
            if stamp is None and not os.path.lexists(source.path):
                continue  # no /etc/crontab, or no user crontab yet: nothing to run
            # A refused file is re-read every time (database.c's force_rescan_user), so
            # fixing its mode or owner is noticed even though the mtime did not move.
            same = old is not None and old.stamp == stamp
            if same and old is not None:
                same = old.companion == _side_stamp(source)
            if not force and old is not None and old.refused is None and same:
                current[key] = old
                continue
            try:
                loaded = load_source(source, self.zone_of)
            except Exception as err:  # a bug must not stop the other files
                log.exception("%s: cannot be loaded", key)
                loaded = Loaded(source, refused=f"internal error: {err!r}")
            current[key] = loaded
            if report_reload(old, loaded):
                changes.append(key)
        for key in self.files.keys() - current.keys():
            changes.append(key)
            log.info("%s: removed, its jobs stop", key)
        # after= across files (smartcron.smart.dependgraph), fleet=once with no fleet
        # history (smartcron.smart.fleetcheck): status shows what is wrong.
        current = with_after_warnings(current)
        self.files = with_fleet_warnings(current, self.config.history_url)
        return changes

    @property
    def jobs(self) -> list[Job]:
        return [job for loaded in self.files.values() for job in loaded.jobs]

    def ctimes(self, key: str) -> list[int]:
        """The status-change times (ns) of a loaded file and of its companion."""
        loaded = self.files.get(key)
        if loaded is None:
            return []
        stamps = [loaded.stamp, getattr(loaded.companion, "stamp", loaded.companion)]
        return [stamp[1] for stamp in stamps if stamp is not None]


def _side_stamp(source: Source) -> Stamp | None:
    return None if source.job_file else _stamp_of(companion_path(source.path))
