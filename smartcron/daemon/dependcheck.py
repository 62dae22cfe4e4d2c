"""``smartcrontab -T``'s after= check across files (smartcron.smart.dependgraph.check):
each name must be the name= of a job the crontab's jobs can see, and no job may wait for
itself through a cycle.

Besides the file checked, the jobs it may name count: the system files of the system
configuration ($SMARTCRON_CONFIG, else /etc/smartcron/smartcron.toml: /etc/crontab,
/etc/cron.d, /etc/smartcron/jobs) and the user's own files of the user-mode one (its
job files, and its crontab unless that is the file checked). Counting too many files can
only miss an error, never invent one, so an install is never refused for a name that a
daemon would find.
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Sequence

from smartcron.cron.crontab import Entry
from smartcron.errors import LineProblem, SmartcronError
from smartcron.smart.dependgraph import Declared, after_line, check
from smartcron.smart.smartspec import SmartSpec

log = logging.getLogger("smartcron")


def context_jobs(skip: str) -> list[Declared]:
    """The smart jobs of the system files and of the user's own files (but `skip`)."""
    from smartcron.config import read_config
    from smartcron.daemon.loader import discover, load_source

    out = []
    for user_mode, rule in ((False, "system"), (True, "own")):
        try:
            config = read_config(user_mode=user_mode)
        except (SmartcronError, OSError) as err:  # no readable configuration: no files
            log.debug("after= check without the %s files: %s", rule, err)
            continue
        for source in discover(config):
            if source.rule != rule or os.path.abspath(source.path) == os.path.abspath(skip):
                continue
            for job in load_source(source).jobs:
                spec = job.smart
                if spec is not None and (spec.name or spec.after):
                    line = after_line(job.entry)
                    system = rule == "system"
                    out.append(Declared(job.source, line, job.owner, system, spec.name, spec.after))
    return out


def after_problems(specs: Sequence[tuple[Entry, SmartSpec]], path: str) -> list[LineProblem]:
    """Unknown after= names and cycles of the file `path` (its entries' specs)."""
    if not any(spec.after for _, spec in specs):
        return []
    me = pwd.getpwuid(os.geteuid()).pw_name  # a user crontab's jobs run as its user
    mine = []
    for entry, spec in specs:  # a system line names its user
        owner, system = entry.user or me, entry.user is not None
        mine.append(Declared(path, after_line(entry), owner, system, spec.name, spec.after))
    return check([*mine, *context_jobs(path)], [path])
