"""``smartcrontab -T``'s after= check across files (smartcron.smart.depends.check): each
name must be the name= of a job the crontab's jobs can see, and no job may wait for
itself through a cycle. Besides the file checked, the system files count (/etc/crontab,
/etc/cron.d, the system job files of the configuration in force, $SMARTCRON_CONFIG
included): a user's installed crontab does not, as the file checked replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from smartcron.cron.crontab import Entry
from smartcron.errors import LineProblem, SmartcronError
from smartcron.smart.dependgraph import Declared, after_line, check
from smartcron.smart.smartspec import SmartSpec

log = logging.getLogger("smartcron")
_THIS_USER = "<the crontab's user>"


def system_jobs(skip: str) -> list[Declared]:
    """The smart jobs of the system files (but `skip`), as after= sees them."""
    from smartcron.config import read_config
    from smartcron.daemon.loader import discover, load_source

    try:
        config = read_config(user_mode=False)
    except (SmartcronError, OSError) as err:  # no readable configuration: no system files
        log.debug("after= check without the system files: %s", err)
        return []
    out = []
    for source in discover(config):
        if source.rule != "system" or str(source.path) == skip:
            continue
        for job in load_source(source).jobs:
            if job.smart is not None and (job.smart.name or job.smart.after):
                out.append(Declared(job.source, job.line, job.owner, True, job.smart.name,
                                    job.smart.after))  # fmt: skip
    return out


def after_problems(specs: Sequence[tuple[Entry, SmartSpec]], path: str) -> list[LineProblem]:
    """Unknown after= names and cycles of the file `path` (its entries' specs)."""
    if not any(spec.after for _, spec in specs):
        return []
    mine = []
    for entry, spec in specs:
        owner = entry.user or _THIS_USER  # a system line names its user
        mine.append(Declared(path, after_line(entry), owner, entry.user is not None, spec.name,
                             spec.after))  # fmt: skip
    return check([*mine, *system_jobs(path)], [path])
