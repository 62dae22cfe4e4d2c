"""One crontab line as a Kubernetes `batch/v1` CronJob (smartcronctl(1), EXPORT).

The schedule is written from the expanded fields, not copied: Kubernetes parses it with
robfig/cron, which ANDs the day fields only when one is `*` (a `*/2` loses its star
there, but not in Debian's cron). So a day field that is full is written `*` when
Debian ANDs, and as a list (`1-31`) when Debian ORs; a line that ANDs two restricted
day fields (`0 0 */2 * mon`) has no robfig equivalent and is not exported.
"""

from __future__ import annotations

from typing import Any

from smartcron.cron.crontab import TimeSpec
from smartcron.export.jobs import ExportJob, seconds, shown, system_zone_name
from smartcron.export.oncalendar import runs

# Documented in smartcronctl(1): replace it with an image that has what the job needs.
DEFAULT_IMAGE = "registry.example/replace-me:latest"
ANNOTATION = "smartcron.io/"
# overlap -> concurrencyPolicy. Kubernetes has no queue: Forbid plus the deadline makes
# a firing wait for the previous run at most startingDeadlineSeconds (then it is missed).
POLICY = {"allow": "Allow", "skip": "Forbid", "queue": "Forbid"}
# Keys the manifest expresses (overlap=queue only approximately: also an annotation).
MAPPED = ("window", "retry", "timeout", "overlap")
MIN_DEADLINE = 10  # the CronJob controller checks every 10 s: a shorter deadline may miss
_ENV_SKIPPED = ("CRON_TZ", "MAILTO", "MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING")


class NotExportable(ValueError):
    """A line with no faithful equivalent (the reason is the message)."""


def _field(values: frozenset[int], low: int, high: int, star: bool = True) -> str:
    if star and values == frozenset(range(low, high + 1)):
        return "*"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs(values))


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def schedule(spec: TimeSpec) -> str:
    """Five robfig/cron fields that fire exactly when Debian's cron fires `spec`."""
    if spec.reboot:
        raise NotExportable("@reboot has no schedule in Kubernetes")
    if not (spec.minutes and spec.hours and spec.months):
        raise NotExportable("the line never fires")
    longest = max(_MONTH_DAYS[m - 1] for m in spec.months)
    doms = frozenset(d for d in spec.doms if d <= longest)
    all_dows = frozenset(range(7))
    if spec.dom_star or spec.dow_star:  # Debian ANDs: robfig does when one side is '*'
        if not doms or not spec.dows:
            raise NotExportable("the line never fires")
        every_day = doms >= frozenset(range(1, longest + 1))  # `*` in `* 2`: 1-29
        if not every_day and spec.dows != all_dows:
            raise NotExportable(
                "Debian ANDs its two restricted day fields here; Kubernetes would OR them"
            )
        dom, dow = "*" if every_day else _field(doms, 1, 31), _field(spec.dows, 0, 6)
    elif not doms and not spec.dows:
        raise NotExportable("the line never fires")
    elif not doms:  # one side never matches: the other decides alone (an AND with '*')
        dom, dow = "*", _field(spec.dows, 0, 6)
    elif not spec.dows:
        dom, dow = _field(doms, 1, 31), "*"
    else:  # Debian ORs: lists without a '*', which robfig ORs too
        dom, dow = _field(doms, 1, 31, star=False), _field(spec.dows, 0, 6, star=False)
    minute, hour = _field(spec.minutes, 0, 59), _field(spec.hours, 0, 23)
    return f"{minute} {hour} {dom} {_field(spec.months, 1, 12)} {dow}"


def cron_job(job: ExportJob, image: str = DEFAULT_IMAGE) -> tuple[dict[str, Any], list[str]]:
    """The manifest and the keys it kept only as annotations. Raises NotExportable."""
    spec: dict[str, Any] = {"schedule": schedule(job.entry.spec)}
    zone = job.zone or system_zone_name()
    if zone:
        spec["timeZone"] = zone
    changed = job.changed()
    smart = job.smart
    spec["concurrencyPolicy"] = POLICY[smart.overlap if smart is not None else "allow"]
    window = changed.get("window")
    if isinstance(window, int | float) and window > 0:
        spec["startingDeadlineSeconds"] = max(MIN_DEADLINE, seconds(window))
    run: dict[str, Any] = {"backoffLimit": smart.retry if smart is not None else 0}
    if "timeout" in changed:
        run["activeDeadlineSeconds"] = max(1, seconds(changed["timeout"]))
    env = [
        {"name": key, "value": value}
        for key, value in dict(job.entry.env).items()
        if key not in _ENV_SKIPPED
    ]
    container: dict[str, Any] = {
        "name": "job",
        "image": image,
        "command": [job.shell(), "-c", job.script()],
    }
    if env:
        container["env"] = env
    run["template"] = {"spec": {"restartPolicy": "Never", "containers": [container]}}
    spec["jobTemplate"] = {"spec": run}
    # The pod runs as its image's user: the line's owner is only said.
    annotations = {f"{ANNOTATION}source": job.where, f"{ANNOTATION}user": job.owner}
    kept = [
        key for key in changed if key not in MAPPED or (key, changed[key]) == ("overlap", "queue")
    ]
    if smart is not None:
        annotations[f"{ANNOTATION}smart"] = "true"
    if isinstance(window, str):  # a clock window (HH:MM-HH:MM) has no deadline form
        kept.append("window")
    for key in dict.fromkeys(kept):
        annotations[f"{ANNOTATION}{key}"] = shown(changed[key])
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": job.name,
            "labels": {"app.kubernetes.io/managed-by": "smartcronctl-export"},
            "annotations": annotations,
        },
        "spec": spec,
    }
    return manifest, list(dict.fromkeys(kept))
