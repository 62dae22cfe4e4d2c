"""`#@smart fleet=once` where the daemon shares no fleet history (config `history_url`
unset): there is nothing to claim a firing in, so every host runs it, as `fleet=each`
(smartcron.smart.fleet). The same warning, at the same line, for ``smartcrontab -T``
(`once_problems`, through smartcron.daemon.installcheck) and ``smartcronctl status``
(`with_fleet_warnings`, on the loader's files), as dependgraph does for after=.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from smartcron.errors import LineProblem
from smartcron.smart.crossfile import key_line, rewarned

REASON = "fleet=once without a history_url: every host runs it, as fleet=each"
_OURS = re.compile(r"^.*:[0-9]+: fleet=once without a history_url")


def fleet_line(entry: Any) -> int:
    """The #@smart line naming fleet= (else the job's line: the key came from its
    companion file or a job file)."""
    return key_line(entry, "fleet")


def once_problems(specs: Iterable[tuple[Any, Any]], path: str) -> list[LineProblem]:
    """The (entry, SmartSpec) pairs with fleet=once, as warnings at their lines."""
    return [
        LineProblem(path, fleet_line(entry), REASON)
        for entry, spec in specs
        if getattr(spec, "fleet", "each") == "once"
    ]


def with_fleet_warnings(files: Mapping[str, Any], history_url: str | None) -> dict[str, Any]:
    """The loader's files (daemon.loadedfile.Loaded), each with a warning per fleet=once
    job when `history_url` is None (`smartcronctl status` shows them); a new one is logged
    once. Recomputed on every refresh: a file kept unchanged keeps the same warnings."""
    out = {}
    for key, loaded in files.items():
        found: list[str] = []
        if history_url is None:
            pairs = [(job.entry, job.smart) for job in loaded.jobs if job.smart is not None]
            found = [str(p) for p in once_problems(pairs, loaded.path)]
        out[key] = rewarned(loaded, _OURS, found)
    return out
