"""Container mode: `smartcron --container CRONTAB` (smartcron(8), CONTAINER MODE).

What supercronic does for containers, on the same daemon: one user-format crontab, run
as the current user in the foreground, with no spool, no root and no mail. Everything
goes to stdout: the daemon's log lines (every decision: START, DEFER, WAIT, SKIP, ...)
and each job's output, line by line once the run ended, as text or JSON lines. SIGTERM
(a container's stop) is forwarded to the running jobs, which get `grace` seconds before
SIGKILL; then the daemon exits 0. A bad crontab is refused before anything starts.

The wiring is serve()'s (service.py), the one of every mode: container mode is a
configuration (container_config) and the parts it passes in, a runner that logs each
run's output, a mailer that sends nothing (the output is already in the log), and its
stop (stop_jobs). So the control socket, HistoryCare and a history_url work here too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pwd
import shutil
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from smartcron.config import Config
from smartcron.cron.crontab import Kind
from smartcron.cron.permissions import RefusedFile, open_checked
from smartcron.daemon import service
from smartcron.daemon.loop import Daemon
from smartcron.errors import SmartcronError
from smartcron.run.executor import ProcessRunner
from smartcron.run.mail import MailResult, RunAs
from smartcron.run.runapi import OnDone, RunHandle, Runner, RunRequest, RunResult

log = logging.getLogger("smartcron")
_EXTRAS = ("job", "user", "command", "stream")
_TEXT = "%(asctime)s smartcron[%(process)d]: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, msg, and a job's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        doc.update({key: getattr(record, key) for key in _EXTRAS if hasattr(record, key)})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_container_logging(log_format: str, debug: bool = False) -> None:
    """Every log line to stdout (a container's log), flushed line by line."""
    root = logging.getLogger("smartcron")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines(_TEXT))
    root.addHandler(handler)


class TextLines(logging.Formatter):
    """The daemon's text lines; a job's output line is `JOB| line`, as supercronic's."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job = getattr(record, "job", None)
        if job is None:
            return text
        head, _, line = text.partition(": ")
        return f"{head}: {job}| {line}"


class NoMail:
    """The Mailer of container mode: nothing is sent; the run's record says why."""

    shown_as = "none: container mode, the output is in the log"  # status's mail line

    def available(self) -> bool:
        return True  # so that cron's rules decide, and the record names the reason

    def send(self, recipient: str, message: bytes, *, run_as: RunAs | None = None) -> MailResult:
        return MailResult(sent=False, error="container mode: the output is in the log")


class LoggingRunner:
    """A Runner that logs each run's output, one record a line, then reports the run."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner

    @property
    def containment(self) -> str:
        return self.inner.containment

    @property
    def starter(self) -> str | None:
        return getattr(self.inner, "starter", None)

    def start(self, request: RunRequest, on_done: OnDone) -> RunHandle:
        def done(result: RunResult) -> None:
            try:
                log_output(request, result)
            finally:
                on_done(result)

        return self.inner.start(request, done)


def log_output(request: RunRequest, result: RunResult) -> None:
    """The run's output (as capped by output_cap), each line a record naming the job."""
    text = result.output.decode("utf-8", "backslashreplace")
    about = {
        "job": request.job_id,
        "user": request.user,
        "command": request.command,
        "stream": "output",
    }
    for line in text.splitlines():
        log.info("%s", line, extra=about)


def check_crontab(path: Path) -> list[str]:
    """Why the daemon could not run `path`, each `path:line: reason` (as smartcrontab -T
    says), or an empty list. Read as the daemon reads a user-mode crontab."""
    from smartcron.daemon.installcheck import check

    try:
        data = open_checked(path, "own", os.geteuid())
    except RefusedFile as err:
        return [f"{path}: refused: {err.reason}"]
    problems, warnings = check(data.text.encode("utf-8", "surrogateescape"), str(path), Kind.USER)
    for warning in warnings:
        log.warning("%s", warning)
    return problems


def container_config(base: Config, crontab: Path, state_dir: Path) -> Config:
    """`base` narrowed to one crontab: no system files, no spool, no job files, state
    (history, model, lock, status) in `state_dir`, and the pid file and control socket
    there too unless the configuration file sets its own run_dir (so that `smartcronctl
    --config` with the same file finds them). A job's timeout keeps kill_grace."""
    run_dir = base.run_dir if "run_dir" in file_settings(base) else state_dir
    return dataclasses.replace(
        base,
        user_mode=True,
        user_crontab=crontab,
        crontab=None,
        cron_d=None,
        spool_dir=None,
        jobs_dir=state_dir / "jobs",
        state_dir=state_dir,
        run_dir=run_dir,
    )


def file_settings(base: Config) -> set[str]:
    """The keys the configuration file itself sets (read_config has checked it)."""
    if base.config_file is None:
        return set()
    try:
        return set(tomllib.loads(base.config_file.read_text("utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()  # changed since read_config read it: its defaults, then


def run_container(
    base: Config, crontab: str, *, state_dir: str | None, grace: float, log_format: str
) -> int:
    """Check the crontab, then serve it until SIGTERM. Raises SmartcronError (exit 1)."""
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        raise SmartcronError(f"uid {os.geteuid()} has no passwd entry: add the user") from None
    # A Kubernetes ConfigMap mounts its files as symlinks: the daemon reads a user's own
    # crontab without following one (database.c), so resolve it once here.
    path = Path(os.path.realpath(crontab))
    problems = check_crontab(path)
    if problems:
        raise SmartcronError("\n".join(problems))
    # --state-dir, else the configuration file's state_dir, else a fresh temporary one.
    if state_dir is None and "state_dir" in file_settings(base):
        state_dir = str(base.state_dir)
    own = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="smartcron-")) if own else Path(str(state_dir))
    config = container_config(base, path, state)
    if os.geteuid() == 0:
        log.warning("container mode as root: jobs run as root (USER in the image avoids it)")
    log.info("container mode: %s as %s, state in %s, log %s", path, me, state, log_format)
    runner = ProcessRunner(grace_s=config.kill_grace)
    parts = service.ServeParts(
        runner=LoggingRunner(runner),
        mailer=NoMail(),
        stop=lambda daemon: stop_jobs(daemon, runner, grace),
        mode="container",
    )
    try:
        return service.serve(config, foreground=True, parts=parts)
    finally:
        if own:
            shutil.rmtree(state, ignore_errors=True)


def stop_jobs(daemon: Daemon, runner: ProcessRunner, grace: float) -> None:
    """SIGTERM to every running job (its process group), SIGKILL after `grace` (as
    supercronic's -graceful-shutdown: a stop's grace; a timeout keeps kill_grace), and
    wait for their records; what is still out then is recorded interrupted."""
    going = list(daemon.running.values())
    runner.grace_s = grace  # read when a job is signalled: from now on, the stop's
    if going:
        log.info("stopping: SIGTERM to %d running job(s), SIGKILL after %gs", len(going), grace)
    for running in going:
        handle = running.extra.get("handle")
        if handle is not None:
            handle.terminate()  # type: ignore[attr-defined]
    deadline = time.monotonic() + grace + 2.0  # the kill, then the output's last read
    while daemon.running and time.monotonic() < deadline:
        daemon.collect()
        time.sleep(0.05)
    if daemon.running:
        log.warning("%d job(s) did not end within the grace", len(daemon.running))
    service.shutdown(daemon, grace=0.0)
