"""The dashboard's data: `collect(query)` gathers what every view shows, aggregated
server-side; `data_json(data)` is the JSON the live page re-renders from.

It reuses what `smartcronctl status`, `list`, `explain` and `history` compute
(smartcron.daemon.status and explain); it only reads (the status file or the crontabs,
the history database read-only), so it works with or without a running daemon."""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smartcron.daemon.explain import UnknownJob
from smartcron.daemon.status import StatusView, job_zone, loaded_status, next_fire
from smartcron.daemon.statusdoc import JobView
from smartcron.dash.historyread import (
    HistoryPart,
    open_readonly,
    read_calibration,
    read_runs,
    window,
)
from smartcron.dash.records import (
    FIRINGS_PER_JOB,
    MIN_RUNS_FOR_FLAG,
    RUNS_PER_JOB,
    SLOW_FACTOR,
    DashData,
    DashQuery,
    Row,
)
from smartcron.dash.timeline import timeline

__all__ = ["DashData", "DashQuery", "collect", "data_json"]

_KEYWORDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def plain_english(schedule: str) -> str:
    """The schedule in words (cron-descriptor), 24-hour clock; @reboot at boot."""
    from cron_descriptor import ExpressionDescriptor, Options

    text = schedule.strip()
    if text.lower() == "@reboot":
        return "At boot"
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(_KEYWORDS.get(text.lower(), text), options))
    except Exception:  # cron-descriptor raises its own types; the raw text is still true
        return text


def viewer_name(uid: int) -> str | None:
    """The owner name whose rows a viewer sees; None: root, who sees all."""
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _visible_files(status: StatusView, uid: int) -> list[Row]:
    out = []
    for item in status.files:
        try:
            owner = Path(item.path).stat().st_uid
        except OSError:
            owner = None
        if uid == 0 or owner == uid:
            out.append(item.to_json())
    return out


_DURATIONS = {"window", "idle", "retry_delay", "timeout", "catchup_window", "jitter"}


def smart_keys(settings: Mapping[str, Any] | None) -> list[str]:
    """A job's #@smart settings as key=value, those that differ from the defaults only
    (what its line, its companion file or its profile set), durations as 6h, 10m."""
    if not settings:
        return []
    from smartcron.smart.smartspec import SmartSpec

    defaults = SmartSpec().as_dict()
    out = []
    for key, value in settings.items():
        if key == "name" or value == defaults.get(key):
            continue
        if key in _DURATIONS and isinstance(value, int | float):
            value = _duration(value)
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        out.append(f"{key}={value}")
    return out


def _duration(seconds: float) -> str:
    parts = [
        (int(seconds) // 86400, "d"),
        (int(seconds) % 86400 // 3600, "h"),
        (int(seconds) % 3600 // 60, "m"),
        (int(seconds) % 60, "s"),
    ]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _job_rows(jobs: list[JobView], mode: str, names: dict[str, str]) -> list[Row]:
    rows = []
    for job in jobs:
        smart = job.smart and mode == "smart"
        why = (
            "a plain cron line: never gated"
            if not job.smart
            else "gated: hard constraints and the model"
            if smart
            else f"mode {mode}: its annotations read, gated by the rules only"
            if mode == "legacy"
            else f"mode {mode}: runs at its cron time"
        )
        key = job.name or job.id
        rows.append(
            {
                **job.to_json(),
                "key": key,
                "history_ids": sorted({job.id, *([job.name] if job.name else [])}),
                "english": plain_english(job.schedule),
                "smart_keys": smart_keys(job.settings),
                "mode": ("plain" if not job.smart else mode),
                "mode_why": why,
                "next": None,
                "last": None,
                "loaded": True,
            }
        )
        names[job.id] = key
        if job.name:
            names[job.name] = key
    return rows


def _orphans(part: HistoryPart, names: dict[str, str], rows: list[Row], job: str | None) -> None:
    """Jobs the history knows and no crontab holds any more: shown, marked so."""
    for job_id in sorted({*part.stats, *part.last} - set(names)):
        last = part.last.get(job_id) or {}
        key = last.get("job_name") or job_id
        if job is not None and job not in (job_id, key):
            continue
        names[job_id] = key
        rows.append(
            {
                "id": job_id,
                "name": last.get("job_name"),
                "key": key,
                "history_ids": [job_id],
                "owner": last.get("user"),
                "schedule": "",
                "english": "no longer in any crontab",
                "command": last.get("command") or "",
                "smart": False,
                "settings": None,
                "mode": "",
                "smart_keys": [],
                "mode_why": "no longer in any crontab",
                "next": None,
                "last": None,
                "loaded": False,
                "source": "",
                "line": None,
                "zone": None,
            }
        )


def _select(status: StatusView, query: DashQuery, user: str | None) -> list[JobView]:
    jobs = [j for j in status.jobs if user is None or j.owner == user]
    if query.job is not None:
        jobs = [j for j in jobs if query.job in (j.id, j.name)]
    return jobs


def collect(query: DashQuery) -> DashData:
    """Everything the page shows. Raises SmartcronError (a bad config, an unknown --job,
    a damaged history database) with a one-line message."""
    from smartcron.config import read_config

    config = read_config(query.config, user_mode=True if query.user_mode else None)
    now = datetime.now(UTC)
    status = loaded_status(config)
    user = viewer_name(query.viewer_uid)
    names: dict[str, str] = {}
    rows = _job_rows(_select(status, query, user), status.mode, names)
    path = Path(query.history) if query.history is not None else config.history_db
    store, note = open_readonly(path)
    try:
        start, end = window(store, query.days, now)
        part = HistoryPart(start=start, end=end, note=note)
        firings: list[Row] = []
        if store is not None:
            firings = _read_history(store, part, rows, names, query, user)
    finally:
        if store is not None:
            store.close()
    if query.job is not None and not rows:
        raise UnknownJob(query.job)
    _finish_jobs(rows, part, now)
    return DashData(
        generated=now.isoformat(),
        start=start.isoformat(),
        end=end.isoformat(),
        days=query.days,
        viewer=user or "root (all users)",
        mode=status.mode,
        mode_reason=status.mode_reason,
        history=str(path),
        history_note=part.note or _empty_note(part),
        jobs=rows,
        files=_visible_files(status, query.viewer_uid),
        firings=firings,
        runs=part.runs,
        stats=_stats(part, names),
        model=_model(status, config, part, names),
        whatif=_whatif(query, config),
        limits=_limits(),
    )


def _read_history(
    store: Any,
    part: HistoryPart,
    rows: list[Row],
    names: dict[str, str],
    query: DashQuery,
    user: str | None,
) -> list[Row]:
    wanted = query.job

    def keep(job_id: str) -> bool:
        return wanted is None or job_id in names or job_id == wanted

    read_runs(store, part, user, keep)
    _orphans(part, names, rows, query.job)
    read_calibration(store, part, lambda job_id: job_id in names)
    for run in part.runs:
        run["job"] = names.get(run["job_id"], run["job_id"])
    zones = {row["key"]: job_zone(_zone_holder(row)) for row in rows}
    return timeline(store, part, rows, zones)


def _zone_holder(row: Row) -> JobView | None:
    if not row.get("loaded"):
        return None
    return JobView.from_json(row)


def _finish_jobs(rows: list[Row], part: HistoryPart, now: datetime) -> None:
    for row in rows:
        if row["loaded"]:
            row["next"] = next_fire(JobView.from_json(row), now)
        lasts = [part.last[i] for i in row["history_ids"] if i in part.last]
        if lasts:
            last = max(lasts, key=lambda r: r["id"])
            row["last"] = {
                "status": last["status"],
                "outcome": last["outcome"],
                "started": last["started"],
                "exit_code": last["exit_code"],
            }


def _empty_note(part: HistoryPart) -> str | None:
    if part.runs or part.stats:
        return None
    return f"no runs recorded from {part.start:%Y-%m-%d %H:%M} to {part.end:%Y-%m-%d %H:%M} UTC"


def _stats(part: HistoryPart, names: dict[str, str]) -> list[Row]:
    out = []
    for job_id, stats in sorted(part.stats.items()):
        out.append({"job": names.get(job_id, job_id), "job_id": job_id, **stats})
    return out


def _model(status: StatusView, config: Any, part: HistoryPart, names: dict[str, str]) -> Row:
    from smartcron.dash.modelview import model_view

    return model_view(status.to_json(), config, part, names)


def _whatif(query: DashQuery, config: Any) -> Row | None:
    if query.trace is None:
        return None
    from smartcron.dash.whatif import what_if

    return what_if(query, config)


def _limits() -> Row:
    return {
        "runs_per_job": RUNS_PER_JOB,
        "firings_per_job": FIRINGS_PER_JOB,
        "slow_factor": SLOW_FACTOR,
        "min_runs_for_flag": MIN_RUNS_FOR_FLAG,
    }


def data_json(data: DashData) -> str:
    """The JSON the live page re-renders from: the data, each view's HTML (rendered by
    the page's own templates, escaped) and each chart's plotly figure; no raw <, > or &
    anywhere, so it is as safe in an HTML page as in an event stream."""
    from smartcron.dash.page import live_payload, script_json

    return str(script_json(live_payload(data)))  # <, >, & as \u escapes: still JSON
