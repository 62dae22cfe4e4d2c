"""A job's life in the daemon: start it, mail its output, record it, log it.

Starting happens on the main thread. The runner calls back on a worker thread when
the job is done; that thread sends the mail (sendmail may be slow) and hands the
result to the main thread, which alone writes the history database. Both ends take a
RunContext (runcontext.py), never the Daemon: the daemon's own bookkeeping (what runs,
the engine's count) stays in the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from smartcron.run.executor import RunResult, request_for_entry
from smartcron.run.jobenv import job_environment, resolve_user
from smartcron.run.mail import RunAs, build_message, decide_mail
from smartcron.run.runcontext import JobDone, RunContext, RunningJob
from smartcron.smart.jobs import Job
from smartcron.store.history import HistoryUnavailable, RunEnd, RunStart, RunStatus

if TYPE_CHECKING:
    from smartcron.smart.gate import Firing

__all__ = ["RunningJob", "finish_job", "hostname", "mail_policy", "shown", "start_job"]

log = logging.getLogger("smartcron")


def start_job(
    run: RunContext,
    job: Job,
    scheduled: datetime | None,
    trigger: str,
    *,
    done: JobDone,
    firing: Firing | None = None,
) -> RunningJob | None:
    """Start one job now, as cron's do_command would; a smart `firing` adds its timeout,
    mail policy and firing id. None if it could not start. When the run ends, its mail
    is sent and `done(running, result)` called, both on the runner's worker thread."""
    pw = resolve_user(job.owner)
    if pw is None:
        log.error("(%s) ORPHAN (no passwd entry): %s skipped", job.owner, job.label)
        return None
    smart = job.smart if firing is not None else None
    timeout = smart.timeout if smart is not None else None
    request = request_for_entry(
        job.entry,
        pw,
        job_id=job.id,
        pam_env=run.settings.pam_env,
        timeout=None if timeout is None else timeout.total_seconds(),
        output_cap=run.settings.output_cap,
        sandbox=run.settings.sandbox,
    )
    # Mail shows cron's own list (e->envp), not PAM's additions; the run gets both.
    running = RunningJob(job, scheduled, trigger, job_environment(job.entry.env, pw))
    running.extra["job_env"] = request.env
    if firing is not None:
        running.extra["firing"] = firing
    running.run_id = _record_start(run, running, firing)
    log.info("(%s) CMD (%s)", job.owner, shown(job.command))

    def on_done(result: RunResult) -> None:  # worker thread
        try:
            _mail(run, running, result)
        except Exception:  # the mail must never lose the run's record
            log.exception("%s: mailing the output failed", job.label)
        done(running, result)

    try:
        handle = run.runner.start(request, on_done)
    except Exception as err:  # its row must not stay 'running', nor stop the next job
        log.exception("%s: could not start job", job.label)
        _record_end(
            run,
            running,
            RunEnd(
                status=RunStatus.SPAWN_ERROR,
                ended=run.clock.now(),
                note=f"could not start: {err}",
            ),
        )
        return None
    running.extra["handle"] = handle
    return running


def _record_start(run: RunContext, running: RunningJob, firing: Firing | None) -> int | None:
    """The run's history row (its id), or None if history could not take it."""
    if run.history is None:
        return None
    job = running.job
    try:
        return run.history.record_start(
            RunStart(
                job_id=job.id,
                job_name=job.name,
                source=job.source,
                line=job.line,
                user=job.owner,
                command=job.command,
                started=run.clock.now(),
                scheduled=running.scheduled,
                trigger=running.trigger,
                firing_id=None if firing is None else firing.id,
            )
        )
    except Exception as err:  # history never stops a job (issue 11), whatever failed
        # A full disk or a locked file: the store queues the write and retries it;
        # a HistoryWriteError still carries the run's id, so its end is recorded too.
        if not isinstance(err, HistoryUnavailable):  # that one the store logged once
            log.error("history: %s (the job still runs)", err)
        return getattr(err, "run_id", None)


def mail_policy(running: RunningJob, result: RunResult) -> str | None:
    """Why a smart job's `mail=` key withholds this run's mail (None: cron's rule decides)."""
    smart = running.job.smart if "firing" in running.extra else None
    if smart is None or smart.mail == "output":
        return None
    if smart.mail == "never":
        return "mail=never"
    return "mail=error: the run succeeded" if status_of(result) is RunStatus.OK else None


def _mail(run: RunContext, running: RunningJob, result: RunResult) -> None:
    withheld = mail_policy(running, result)
    if withheld is not None:
        running.mail_sent, running.mail_reason = False, withheld
        return
    env = running.env
    decision = decide_mail(
        env, running.job.owner, result.output_size, mta_available=run.mailer.available()
    )
    for value in decision.unsafe:
        log.warning("(%s) UNSAFE MAIL (%s)", running.job.owner, value)
    if not decision.send:
        running.mail_sent, running.mail_reason = False, decision.reason
        if decision.reason == "no MTA":
            log.info("No MTA installed, discarding output (kept in the history)")
        return
    assert decision.recipient is not None
    message = build_message(
        sender=decision.sender,
        recipient=decision.recipient,
        user=running.job.owner,
        hostname=run.settings.hostname,
        command=running.job.entry.shell_command,
        env=running.env,
        output=result.output,
        charset=run.settings.mail_charset,
        fqdn=run.settings.fqdn_in_subject,
        job_env=running.extra["job_env"],  # type: ignore[arg-type]
    )
    run_as = None
    if os.geteuid() == 0:
        run_as = RunAs.for_user(running.job.owner, env.get("HOME"))
    sent = run.mailer.send(decision.recipient, message, run_as=run_as)
    running.mail_sent = sent.sent
    running.mail_reason = None if sent.sent else (sent.error or "mail command failed")


def status_of(result: RunResult) -> RunStatus:
    if result.spawn_error:
        return RunStatus.SPAWN_ERROR
    if result.timed_out:
        return RunStatus.TIMEOUT
    if result.interrupted:
        return RunStatus.INTERRUPTED
    return RunStatus.OK if result.exit_code == 0 else RunStatus.FAILED


def finish_job(run: RunContext, running: RunningJob, result: RunResult) -> RunStatus:
    """Record a finished run (main thread) and return its status. Each step is walled
    off from the others: the caller's bookkeeping after it (the engine's running count)
    must happen whatever recording did."""
    job = running.job
    status = status_of(result)
    how = f"exit {result.exit_code}" if result.signal is None else f"signal {result.signal}"
    log.info("(%s) END (%s) %s, %.1f s", job.owner, shown(job.command), how, result.wall_s)
    try:
        end = RunEnd(
            status=status,
            ended=result.ended,
            exit_code=result.exit_code,
            signal=result.signal,
            timed_out=result.timed_out,
            runtime_s=result.wall_s,
            cpu_s=result.cpu_s,
            max_rss_kb=result.max_rss_kb,
            output_size=result.output_size,
            output=result.output,
            mail_sent=running.mail_sent,
            mail_reason=running.mail_reason,
            note=result.spawn_error,
        )
    except Exception:
        log.exception("%s: the run's record could not be made", job.label)
    else:
        _record_end(run, running, end)
    if run.settings.job_log_dir is not None:
        try:
            _append_job_log(run.settings.job_log_dir, job, running, result)
        except Exception:
            log.exception("%s: writing the job log failed", job.label)
    return status


def _record_end(run: RunContext, running: RunningJob, end: RunEnd) -> None:
    if running.run_id is None or run.history is None:
        return
    try:
        run.history.record_end(running.run_id, end)
    except HistoryUnavailable:
        pass  # parked in memory; the store said once why
    except Exception as err:
        log.error("history: %s (the run's end is not recorded)", err)


def shown(command: str) -> str:
    """A command for a log line: bytes that are not UTF-8 as \\xNN (syslog wants UTF-8)."""
    try:
        return command.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeError:  # a surrogate that no byte gave
        return command.encode("utf-8", "backslashreplace").decode("utf-8")


def _append_job_log(directory: Path, job: Job, running: RunningJob, result: RunResult) -> None:
    """Per-job log file: a header line per run, then its output (SPEC 7)."""
    name = (job.name or job.id).replace("/", "_")
    when = result.started.astimezone(UTC).isoformat(timespec="seconds")
    header = f"=== {when} {job.owner} {job.label} exit={result.exit_code} signal={result.signal}\n"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(directory / f"{name}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "ab") as out:
            out.write(header.encode("utf-8", "surrogateescape") + result.output)
    except OSError as err:
        log.error("%s: cannot write the job log: %s", directory, err.strerror)


def hostname() -> str:
    return socket.gethostname()
