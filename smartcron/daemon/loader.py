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
from smartcron.cron.crontab import Crontab, Kind, cron_d_name_ok, parse
from smartcron.cron.permissions import FileData, RefusedFile, open_checked
from smartcron.daemon.statusdoc import CompanionView, FileView
from smartcron.errors import AnnotationError, CrontabSyntaxError, LineProblem, SmartcronError
from smartcron.smart.jobfiles import JOB_FILE_SUFFIXES, load_job_file
from smartcron.smart.jobids import derived_id, named_id
from smartcron.smart.jobs import Job, assign_ids
from smartcron.smart.smartspec import Companion, companion_path, load_companion, smart_spec_for

log = logging.getLogger("smartcron")

Stamp = tuple[int, int, int, int]  # mtime, ctime, size, inode


@dataclass(frozen=True, slots=True)
class Source:
    path: Path
    kind: Kind
    rule: str  # "system", "user" (spool) or "own" (user mode)
    owner: str | None = None  # the user a user-format crontab belongs to
    job_file: bool = False  # a standalone job file (jobfiles.py), not a crontab


@dataclass(frozen=True, slots=True)
class CompanionFile:
    """F.smart.yaml as last read. `state`: ok, broken (its YAML or a key) or refused
    (cron's permission rules, as for F); `problems` say why, as ``path:line: reason``."""

    path: str
    stamp: Stamp
    state: str = "ok"
    problems: tuple[str, ...] = ()

    def view(self) -> CompanionView:
        return CompanionView(path=self.path, state=self.state, problems=self.problems)


@dataclass(frozen=True)
class Loaded:
    source: Source
    jobs: tuple[Job, ...] = ()
    crontab: Crontab | None = None
    refused: str | None = None  # why the whole file is not used
    warnings: tuple[str, ...] = ()
    stamp: Stamp | None = None
    companion_file: CompanionFile | None = None  # F.smart.yaml, when there is one

    @property
    def path(self) -> str:
        return str(self.source.path)

    @property
    def companion(self) -> Stamp | None:
        """The stamp of F.smart.yaml, when there is one."""
        return None if self.companion_file is None else self.companion_file.stamp

    def view(self) -> FileView:
        """How `status` (the daemon's file and the CLI's live view) shows this file."""
        companion = None if self.companion_file is None else self.companion_file.view()
        return FileView(
            path=self.path,
            refused=self.refused,
            warnings=self.warnings,
            jobs=len(self.jobs),
            companion=companion,
        )

    def document(self) -> dict[str, object]:
        """view() as JSON."""
        return self.view().to_json()


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
            if _report(old, loaded):
                changes.append(key)
        for key in self.files.keys() - current.keys():
            changes.append(key)
            log.info("%s: removed, its jobs stop", key)
        self.files = current
        return changes

    @property
    def jobs(self) -> list[Job]:
        return [job for loaded in self.files.values() for job in loaded.jobs]


def _side_stamp(source: Source) -> Stamp | None:
    return None if source.job_file else _stamp_of(companion_path(source.path))


def _report(old: Loaded | None, new: Loaded) -> bool:
    """Log what a reload changed; False when nothing did (a refused file re-read for the
    same reason, a forced reload of an unchanged file: said once, not every minute)."""
    if old is None:
        _log_loaded(new, reloaded=False)
        return True
    if (old.refused, old.stamp, old.companion) == (
        new.refused,
        new.stamp,
        new.companion,
    ):
        return False
    whole = old.refused != new.refused or old.stamp != new.stamp
    if whole:
        _log_loaded(new, reloaded=True)
    if new.refused is not None or old.refused is not None:
        return True
    if old.companion != new.companion:
        _log_companion(old, new)
    for change in _job_changes(old.jobs, new.jobs):
        log.info("%s", change)
    if not whole:  # F itself did not move: only what the companion newly says
        for warning in new.warnings:
            if warning not in old.warnings:
                log.warning("%s", warning)
    return True


def _log_companion(old: Loaded, new: Loaded) -> None:
    side, was = new.companion_file, old.companion_file
    if side is None:
        assert was is not None
        log.info(
            "%s: removed; the annotated lines of %s use their inline keys only", was.path, new.path
        )
        return
    verb = "created" if was is None else "changed"
    if side.state != "ok":
        log.error(
            "%s: %s, %s (%d problem(s)); the annotated lines of %s use their inline keys only",
            side.path,
            verb,
            side.state,
            len(side.problems),
            new.path,
        )
        return
    smart = sum(1 for job in new.jobs if job.smart is not None)
    log.info("%s: %s, applied to %d annotated job(s) of %s", side.path, verb, smart, new.path)


def _settings(job: Job) -> dict[str, object]:
    out: dict[str, object] = {"schedule": job.entry.spec.text, "command": job.command}
    out["user"] = job.owner
    if job.smart is not None:
        out.update(job.smart.as_dict())
    return out


def _job_changes(old: tuple[Job, ...], new: tuple[Job, ...]) -> list[str]:
    """``file:line (name): key old -> new, ...`` for each job kept across a reload (same
    id) whose schedule, command, user or smart settings changed (durations in seconds)."""
    before = {job.id: job for job in old}
    out = []
    for job in new:
        prev = before.get(job.id)
        if prev is None:
            continue
        if (prev.smart is None) != (job.smart is None):
            diffs = ["now plain cron" if job.smart is None else "now smart"]
        else:
            a, b = _settings(prev), _settings(job)
            diffs = [f"{k} {a[k]} -> {b[k]}" for k in a if k in b and a[k] != b[k]]
        if diffs:
            name = f" ({job.name})" if job.name else ""
            out.append(f"{job.label}{name}: {', '.join(diffs)}")
    return out


def _log_loaded(loaded: Loaded, reloaded: bool) -> None:
    verb = "reloaded" if reloaded else "loaded"
    if loaded.refused is not None:
        first, *rest = loaded.refused.splitlines() or [""]
        log.error("%s: refused: %s%s", loaded.path, first, f" (+{len(rest)} more)" if rest else "")
        for line in rest:
            log.error("%s", line)
        return
    side = loaded.companion_file
    extra = "" if side is None else f", with {side.path} ({side.state})"
    log.info("%s: %s, %d job(s)%s", loaded.path, verb, len(loaded.jobs), extra)
    for warning in loaded.warnings:
        log.warning("%s", warning)
