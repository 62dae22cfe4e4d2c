"""Warnings a file gets from a look across the loaded files (after= names and cycles,
fleet=once without a fleet history): recomputed on every refresh of the loader's files
(smartcron.daemon.loadedfile.Loaded), each new one logged once."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

log = logging.getLogger("smartcron")


def key_line(entry: Any, key: str) -> int:
    """The last #@smart line naming `key=` (else the job's line: the key came from its
    companion file, a job file or a profile)."""
    lines = [note.line for note in getattr(entry, "annotations", ()) if f"{key}=" in note.text]
    return lines[-1] if lines else int(entry.line)


def rewarned(loaded: Any, ours: re.Pattern[str], found: Sequence[str]) -> Any:
    """`loaded` with its warnings matching `ours` replaced by `found` (the same object
    when nothing changed); a warning it did not have before is logged."""
    warnings = tuple(w for w in loaded.warnings if not ours.match(w)) + tuple(found)
    if warnings == loaded.warnings:
        return loaded
    for warning in warnings:
        if warning not in loaded.warnings:
            log.warning("%s", warning)
    return replace(loaded, warnings=warnings)
