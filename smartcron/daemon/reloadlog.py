"""What a reload of a crontab file (loader.Database.refresh) says in the log: a file
loaded, refused or removed, its companion changed, and each kept job's changed settings."""

from __future__ import annotations

import logging

from smartcron.daemon.loadedfile import Loaded
from smartcron.smart.jobs import Job

log = logging.getLogger("smartcron")


def report_reload(old: Loaded | None, new: Loaded) -> bool:
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
