"""after=NAME[,NAME] as a graph of declared jobs, without the state machine: which job a
name means for a job (`resolve_name`), unknown names and cycles (`check`, for
``smartcrontab -T``), and those problems as warnings on the daemon's loaded files
(`with_after_warnings`, for ``smartcronctl status`` and the log). The waiting itself
is smartcron.smart.depends.

A name resolves, as the daemon sees jobs, to a job of the same user or a system job,
preferring one of the same file; names are per file (smartcron.smart.jobids.named_id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smartcron.errors import LineProblem
from smartcron.smart.annotations import suggest
from smartcron.smart.crossfile import key_line, rewarned


def is_system(job: Any) -> bool:
    """A line of a system crontab (it names its user) or a system job file."""
    flag = getattr(job, "system", None)
    if isinstance(flag, bool):
        return flag
    entry = getattr(job, "entry", None)
    return getattr(entry, "user", None) is not None or str(getattr(job, "source", "")).startswith(
        "/etc/"
    )


def resolve_name(name: str, job: Any, named: Mapping[str, Sequence[Any]]) -> Any | None:
    """The job `name` means for `job`: same file first, then same user, then a system job."""
    source = getattr(job, "source", None)
    found = [d for d in named.get(name, ()) if d.owner == job.owner or is_system(d)]
    if not found:
        return None
    found.sort(key=lambda d: (getattr(d, "source", None) != source, d.owner != job.owner, d.id))
    return found[0]


# ---------------------------------------------------------------- smartcrontab -T


@dataclass(frozen=True, slots=True)
class Declared:
    """A named or after= job as a file declares it (for `check`)."""

    path: str
    line: int
    owner: str
    system: bool
    name: str | None
    after: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def source(self) -> str:
        return self.path


def check(jobs: Sequence[Declared], paths: Iterable[str] | None = None) -> list[LineProblem]:
    """Unknown after= names and cycles, as problems at the lines of the jobs in `paths`
    (default: all). A job sees the jobs of its user and the system ones."""
    wanted = None if paths is None else set(paths)
    named: dict[str, list[Declared]] = {}
    for job in jobs:
        if job.name:
            named.setdefault(job.name, []).append(job)
    graph: dict[Declared, list[Declared]] = {}
    out: list[LineProblem] = []
    for job in jobs:
        edges = []
        for name in job.after:
            dep = resolve_name(name, _Viewer(job), named)
            if dep is None:
                if wanted is None or job.path in wanted:
                    known = sorted(n for n, js in named.items() if any(_sees(job, d) for d in js))
                    why = f"after: no job named {name!r}{suggest(name, known)}"
                    out.append(LineProblem(job.path, job.line, why))
            else:
                edges.append(dep)
        graph[job] = edges
    out += _cycles(graph, wanted)
    return sorted(set(out), key=lambda p: (p.path, p.line, p.reason))


@dataclass(frozen=True, slots=True)
class _Viewer:
    """A Declared as resolve_name reads a job (owner, source)."""

    job: Declared

    @property
    def owner(self) -> str:
        return self.job.owner

    @property
    def source(self) -> str:
        return self.job.path


def _sees(job: Declared, other: Declared) -> bool:
    return other.owner == job.owner or other.system


def _cycles(graph: Mapping[Declared, list[Declared]], wanted: set[str] | None) -> list[LineProblem]:
    out = []
    for start in graph:
        path = _cycle_from(start, graph)
        if path is None or (wanted is not None and start.path not in wanted):
            continue
        names = " -> ".join(str(j.name) for j in [*path, path[0]])
        out.append(LineProblem(start.path, start.line, f"after: a cycle: {names}"))
    return out


def _cycle_from(start: Declared, graph: Mapping[Declared, list[Declared]]) -> list[Declared] | None:
    """The jobs of a cycle through `start` (start first), or None."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt is start:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


# ---------------------------------------------------------------- the daemon's files

_OURS = re.compile(r"^.*:[0-9]+: after: (no job named|a cycle)")


def after_line(entry: Any) -> int:
    """The #@smart line naming after= (else the job's line: the key came from elsewhere)."""
    return key_line(entry, "after")


def with_after_warnings(files: Mapping[str, Any]) -> dict[str, Any]:
    """The loader's files (daemon.loadedfile.Loaded), each with the `check` problems of
    its jobs as warnings (`smartcronctl status` shows them): across every file loaded, a
    system file's jobs being system jobs. A new one is logged once."""
    declared = []
    for loaded in files.values():
        system = loaded.source.rule == "system"
        for job in loaded.jobs:
            spec = job.smart
            if spec is not None and (spec.name or spec.after):
                line = after_line(job.entry)
                declared.append(
                    Declared(job.source, line, job.owner, system, spec.name, spec.after)
                )
    found: dict[str, list[str]] = {}
    if any(item.after for item in declared):
        for item in check(declared):
            found.setdefault(item.path, []).append(str(item))
    return {
        key: rewarned(loaded, _OURS, found.get(loaded.path, ())) for key, loaded in files.items()
    }
