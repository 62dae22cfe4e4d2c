"""What the loader keeps of a file (loader.py): where it comes from (`Source`), its
stamp, what was loaded from it (`Loaded`) and its companion F.smart.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartcron.cron.crontab import Crontab, Kind
from smartcron.daemon.statusdoc import CompanionView, FileView
from smartcron.smart.jobs import Job

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
