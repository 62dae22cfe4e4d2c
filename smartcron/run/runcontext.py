"""What starting and finishing a job needs, and nothing more (issue 12, point 3).

lifecycle.start_job and finish_job take a RunContext instead of the Daemon: the four
I/O parts (runner, mailer, history, clock) and the settings a run reads. A job that
finished is handed back through a callback the caller gives (the daemon's queue and
its wake-up), so lifecycle never imports the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from smartcron.clock import Clock
from smartcron.config import Config
from smartcron.run.executor import Runner, RunResult
from smartcron.run.mail import Mailer
from smartcron.smart.jobs import Job
from smartcron.store.history import HistoryStore

__all__ = ["JobDone", "RunContext", "RunSettings", "RunningJob"]


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How a run is made and mailed: the host's facts (found once at the start) and the
    configuration's run settings. The defaults are a test machine's."""

    hostname: str = "localhost"
    mail_charset: str = "US-ASCII"
    pam_env: tuple[tuple[str, str], ...] = ()  # pam_env's files, as Debian's cron has them
    sandbox: tuple[str, ...] = ()  # a command prefix (config sandbox)
    output_cap: int = 1024 * 1024
    job_log_dir: Path | None = None
    fqdn_in_subject: bool = False

    @classmethod
    def of(
        cls,
        config: Config,
        *,
        hostname: str = "localhost",
        mail_charset: str = "US-ASCII",
        pam_env: tuple[tuple[str, str], ...] = (),
        sandbox: tuple[str, ...] = (),
    ) -> RunSettings:
        """The configuration's run settings, with the host's facts given."""
        return cls(
            hostname=hostname,
            mail_charset=mail_charset,
            pam_env=pam_env,
            sandbox=sandbox,
            output_cap=config.output_cap,
            job_log_dir=config.job_log_dir,
            fqdn_in_subject=config.fqdn_in_subject,
        )


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """The parts a run goes through. `history` None: runs are not recorded (tests)."""

    runner: Runner
    mailer: Mailer
    history: HistoryStore | None
    clock: Clock
    settings: RunSettings = RunSettings()


@dataclass
class RunningJob:
    """A run going: its job, cron's environment (for its mail) and what lifecycle and
    the engine keep about it in `extra` (the run's environment, its firing, its handle)."""

    job: Job
    scheduled: datetime | None
    trigger: str
    env: dict[str, str]
    run_id: int | None = None
    mail_sent: bool | None = None
    mail_reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


# Called on the runner's worker thread once a run ended and its mail went: hand the
# result to the main thread (which alone writes history) and wake it.
JobDone = Callable[[RunningJob, RunResult], None]
