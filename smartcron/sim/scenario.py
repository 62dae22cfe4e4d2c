"""What a simulation runs: the jobs of a crontab (and job files), resolved as the daemon
resolves them, checked against the world.

Jobs are named as the world names them: the ``name=`` of a smart line, else the
loader's derived id (plain lines, which a world rarely names). Resolution follows the
daemon: inline ``#@smart`` > companion ``F.smart.yaml`` > its defaults; a bad
annotation does not drop the job, it runs as a plain cron line (with a warning).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import tzinfo
from pathlib import Path

from smartcron.cron.crontab import Kind, TimeSpec, parse
from smartcron.cron.schedule import entry_zone
from smartcron.errors import AnnotationError, SmartcronError
from smartcron.sim.world import World
from smartcron.smart.jobfiles import JOB_FILE_SUFFIXES, load_job_file
from smartcron.smart.smartspec import (
    SmartSpec,
    companion_path,
    job_name,
    load_companion,
    smart_spec_for,
)


class SimulationError(SmartcronError):
    """Bad simulator input (a world naming unknown jobs, an empty period, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimJob:
    """One job as the simulator sees it."""

    id: str  # the world's name for it
    source: str
    line: int | None
    owner: str
    command: str
    timespec: TimeSpec
    zone: tzinfo
    smart: SmartSpec | None  # None: a plain cron line, never gated


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    jobs: tuple[SimJob, ...]
    warnings: tuple[str, ...] = ()

    def by_id(self) -> dict[str, SimJob]:
        return {job.id: job for job in self.jobs}

    def specs(self) -> list[SmartSpec]:
        """The smart jobs' specs (for Timeline's constraint masks)."""
        return [job.smart for job in self.jobs if job.smart is not None]


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def load_scenario(
    crontab: str | Path,
    *,
    zone: tzinfo,
    jobs_dir: str | Path | None = None,
    system: bool = False,
    owner: str | None = None,
) -> Scenario:
    """Parse the crontab, its companion and the job files in `jobs_dir`."""
    path = str(crontab)
    owner = owner or current_user()
    try:
        text = Path(path).read_bytes().decode("utf-8", "surrogateescape")
    except OSError as err:
        raise SimulationError(f"{path}: cannot read crontab: {err.strerror or err}") from None
    tab = parse(text, Kind.SYSTEM if system else Kind.USER, path)
    warnings = [str(w) for w in tab.warnings]
    companion = None
    side = companion_path(Path(path))
    if side.is_file():
        companion = load_companion(side.read_text(encoding="utf-8"), str(side))
    jobs: list[SimJob] = []
    for entry in tab.entries:
        if entry.spec.reboot:
            warnings.append(f"{path}:{entry.line}: @reboot never fires in a simulation")
            continue
        try:
            smart = smart_spec_for(entry, path, companion, None)
        except AnnotationError as err:
            # the daemon's rule: a bad annotation never disables a job, it runs as cron
            warnings.extend(f"{p} (runs as a plain cron line)" for p in err.problems)
            smart = None
        user = entry.user if system and entry.user else owner
        jobs.append(
            SimJob(
                id=job_name(entry, smart, source=path, owner=user),
                source=path,
                line=entry.line,
                owner=user,
                command=entry.command,
                timespec=entry.spec,
                zone=entry_zone(entry.env, zone),
                smart=smart,
            )
        )
    if jobs_dir is not None:
        jobs.extend(_job_files(Path(jobs_dir), zone, owner))
    return Scenario(jobs=tuple(_unique(jobs)), warnings=tuple(warnings))


def _job_files(directory: Path, zone: tzinfo, owner: str) -> Iterable[SimJob]:
    if not directory.is_dir():
        raise SimulationError(f"{directory}: --jobs is not a directory")
    for file in sorted(directory.iterdir()):
        if file.suffix.lower() not in JOB_FILE_SUFFIXES or file.name.startswith("."):
            continue
        job = load_job_file(file.read_text(encoding="utf-8"), str(file), system=True)
        yield SimJob(
            id=job.name,
            source=str(file),
            line=None,
            owner=job.user or owner,
            command=job.command,
            timespec=job.timespec,
            zone=zone,
            smart=job.smart_spec(None),
        )


def _unique(jobs: list[SimJob]) -> list[SimJob]:
    """Identical plain lines get ``#2``, ``#3`` as the loader numbers them; two jobs
    sharing a ``name=`` are an error."""
    seen: dict[str, SimJob] = {}
    out = []
    for job in jobs:
        if job.smart is None and job.id in seen:
            count = 2
            while f"{job.id}#{count}" in seen:
                count += 1
            job = replace(job, id=f"{job.id}#{count}")
        elif job.id in seen:
            first = seen[job.id]
            raise SimulationError(
                f"{job.source}:{job.line or 1}: job name {job.id!r} is also used at"
                f" {first.source}:{first.line or 1}; the world could not tell them apart"
            )
        seen[job.id] = job
        out.append(job)
    return out


def check_world(world: World, scenario: Scenario) -> list[str]:
    """Raise if the world names a job the scenario lacks; return the unnamed jobs."""
    try:
        return world.check_jobs(job.id for job in scenario.jobs)
    except SmartcronError as err:
        raise SimulationError(f"{err} (a world may only describe jobs of the crontab)") from None
