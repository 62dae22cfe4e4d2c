"""Running the real daemon: logging, signals, @reboot, systemd notify, a clean stop.

`serve()` wires the real implementations (system clock, process runner, sendmail,
SQLite, the fleet's history_url, the control socket, HistoryCare) into a `Daemon` and
loops until SIGTERM/SIGINT. It is the one wiring of every mode: container mode
(container.py) passes its own runner, mailer and stop in `ServeParts`. The lock and pid
file are in daemonlock.py, the status file in statusfile.py, the history's care thread
in historycare.py (their names stay importable from here).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import pwd
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from smartcron.clock import Clock, SystemClock
from smartcron.config import Config
from smartcron.cron.schedule import local_zone
from smartcron.daemon.daemonlock import (
    AlreadyRunning,
    acquire_lock,
    lock_holder,
    remove_pid_file,
    write_pid_file,
)
from smartcron.daemon.historycare import HistoryCare
from smartcron.daemon.loop import Daemon, SmartParts
from smartcron.daemon.statusfile import publish_status, read_status, status_document
from smartcron.daemon.wakeup import Waker
from smartcron.errors import SmartcronError
from smartcron.run.executor import ProcessRunner, Runner
from smartcron.run.jobenv import parse_pam_env_file
from smartcron.run.lifecycle import hostname
from smartcron.run.mail import Mailer, SendmailMailer, default_mail_charset
from smartcron.run.runcontext import RunContext, RunSettings
from smartcron.smart import schemacheck
from smartcron.smart.firings import FiringStore
from smartcron.smart.gate import Firing
from smartcron.smart.monitor import SystemMonitor
from smartcron.store.atomicfile import write_atomic
from smartcron.store.history import (
    HistoryError,
    HistoryStore,
    HistoryUnavailable,
    RunEnd,
    RunStatus,
)

if TYPE_CHECKING:
    from smartcron.ai.modelwatch import ModelWatch
    from smartcron.ai.retrain import Retrainer

# Importers of the old home (status.py: lock_holder, read_status; tests: status_document).
__all__ = [
    "AlreadyRunning",
    "ServeParts",
    "lock_holder",
    "read_status",
    "serve",
    "setup_logging",
    "status_document",
]

log = logging.getLogger("smartcron")

STOP_GRACE = 10.0  # seconds to let running jobs finish on SIGTERM before recording them
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# What Debian's /etc/pam.d/cron gives every job through pam_env (envfile defaults).
PAM_ENV_FILES = (Path("/etc/environment"), Path("/etc/default/locale"))
SANDBOX_PREFIX = {
    "none": (),
    "systemd-run": ("systemd-run", "--scope", "--quiet", "--collect", "--"),
    "firejail": ("firejail", "--quiet", "--"),
}


def setup_logging(foreground: bool, debug: bool = False) -> None:
    """stderr in the foreground; syslog (facility cron, as cron logs) otherwise."""
    root = logging.getLogger("smartcron")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.handlers.clear()
    handler: logging.Handler
    if foreground or not Path("/dev/log").exists():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s smartcron[%(process)d]: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(
            "/dev/log", facility=logging.handlers.SysLogHandler.LOG_CRON
        )
        handler.setFormatter(logging.Formatter("smartcron[%(process)d]: %(message)s"))
    root.addHandler(handler)


def sd_notify(message: str) -> None:
    """systemd's notify protocol (Type=notify), without a dependency."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
    ):
        sock.sendto(message.encode(), address)


def first_start_this_boot(state_dir: Path) -> bool:
    """@reboot runs once per boot, not on a daemon restart: remember the boot id."""
    try:
        boot = BOOT_ID.read_text().strip()
    except OSError:
        boot = str(int(time.time() - time.monotonic()) // 60)  # boot time, to the minute
    marker = state_dir / "boot_id"
    try:
        if marker.read_text().strip() == boot:
            return False
    except OSError:
        pass
    try:
        write_atomic(marker, boot + "\n")
    except OSError as err:  # read-only or full: as cron without its reboot file, run them
        log.error("cannot write %s: %s (@reboot may run again next start)", marker, err.strerror)
    return True


def pam_environment() -> tuple[tuple[str, str], ...]:
    env: dict[str, str] = {}
    for path in PAM_ENV_FILES:
        with contextlib.suppress(OSError):
            env.update(parse_pam_env_file(path.read_text(errors="surrogateescape")))
    return tuple(env.items())


def sandbox_prefix(config: Config) -> tuple[str, ...]:
    prefix = SANDBOX_PREFIX[config.sandbox]
    if prefix and shutil.which(prefix[0]) is None:
        raise SmartcronError(f"sandbox = {config.sandbox!r}, but {prefix[0]} is not installed")
    return prefix


@dataclass(frozen=True)
class ServeParts:
    """What a mode brings to serve()'s one wiring; None: the system and user daemon's."""

    runner: Runner | None = None  # None: ProcessRunner(grace_s=config.kill_grace)
    mailer: Mailer | None = None  # None: SendmailMailer(config.mail_command)
    # What becomes of the running jobs at a stop; None: shutdown() (cron's: no kill).
    stop: Callable[[Daemon], None] | None = None
    mode: str | None = None  # the "started" line's name; None: "user" or "system"


def serve(config: Config, *, foreground: bool, parts: ServeParts | None = None) -> int:
    """Run the daemon until stopped. Returns the exit status."""
    parts = parts or ServeParts()
    schemacheck.out_of_process(True)  # jsonschema's 3.5-4 MiB stay out of the daemon
    make_dirs(config)
    lock_fds = acquire_lock(config.lock_file)
    started = datetime.now(UTC)
    # cron.c computes the charset from the locale it was started in (before Python's
    # own C-locale coercion, which only ever adds C.UTF-8).
    charset = default_mail_charset()
    # Resilient: a damaged file is set aside, a read-only or full directory leaves the
    # daemon without history (retried each minute): plain cron lines always run.
    history = HistoryStore.open(config.history_db, resilient=True)
    clock = SystemClock()
    waker = Waker(clock)
    zone = local_zone()
    models, retrainer = model_parts(config, history, zone, waker)
    daemon = system_daemon(config, parts, clock, history, waker, zone, charset, models, retrainer)
    mark_interrupted_runs(history)

    def publish() -> None:
        publish_status(config, status_document(daemon, started))

    daemon.on_reload = daemon.on_status = publish
    care = HistoryCare(history, on_change=lambda: republish(daemon, waker))
    signal.signal(signal.SIGHUP, daemon.request_reload)
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    waker.install_signal_wakeup()
    mode = parts.mode or ("user" if config.user_mode else "system")
    log.info("started (pid %d, %s mode, zone %s)", os.getpid(), mode, daemon.zone)
    # Watch before the first read: a crontab written between the read and the watch
    # would otherwise wait for the periodic rescan (an hour by default).
    waker.watch(watch_dirs(config) + ([] if models is None else models.watch_dirs()))
    daemon.reload(force=True)
    publish()
    run_reboot_jobs(config, daemon)
    from smartcron.daemon.control import start_control  # smartcrontab's socket; stops at exit

    control = start_control(config, daemon)
    write_pid_file(config.pid_file)
    sd_notify("READY=1")
    care.start()
    try:
        daemon.run()
    finally:
        sd_notify("STOPPING=1")
        care.stop()
        if retrainer is not None:
            retrainer.stop()
        (parts.stop or shutdown)(daemon)
        publish()
        try:
            history.close()
        except HistoryError as err:
            log.error("history: %s", err)
        if control is not None:  # now, while its directory is still there (a container's)
            control.stop()
        remove_pid_file(config.pid_file)
        for fd in lock_fds:
            os.close(fd)
    log.info("stopped")
    return 0


def make_dirs(config: Config) -> None:
    """The state and run directories; one that exists on a read-only file system is fine."""
    for directory in (config.state_dir, config.run_dir):
        try:
            directory.mkdir(
                parents=True, exist_ok=True, mode=0o755 if directory == config.run_dir else 0o700
            )
        except OSError:  # a read-only file system answers EROFS even when it exists
            if not directory.is_dir():
                raise


def system_daemon(
    config: Config,
    parts: ServeParts,
    clock: Clock,
    history: HistoryStore,
    waker: Waker,
    zone: tzinfo,
    charset: str,
    models: ModelWatch | None,
    retrainer: Retrainer | None,
) -> Daemon:
    """The Daemon on the real clock, processes, sendmail and system monitor (or the
    runner and mailer `parts` gives)."""
    run = RunContext(
        runner=parts.runner or ProcessRunner(grace_s=config.kill_grace),
        mailer=parts.mailer or SendmailMailer(config.mail_command),
        history=history,
        clock=clock,
        settings=RunSettings.of(
            config,
            hostname=hostname(),
            mail_charset=charset,
            pam_env=pam_environment(),
            sandbox=sandbox_prefix(config),
        ),
    )
    user = pwd.getpwuid(os.geteuid()).pw_name if config.user_mode else None
    smart = SmartParts(monitor=SystemMonitor(user=user), models=models, retrainer=retrainer)
    return Daemon(config, run, zone=zone, smart=smart, waker=waker)


def republish(daemon: Daemon, waker: Waker) -> None:
    """Whether history is recorded changed (the care thread): the main loop, woken with
    a forced reload, republishes the status file."""
    daemon.request_reload()
    waker.notify()


def mark_interrupted_runs(history: HistoryStore) -> None:
    """Runs a previous daemon left 'running' ended with it: say so in their rows."""
    try:
        marked = history.mark_interrupted_runs("the daemon stopped while the job ran")
    except HistoryError as err:
        marked = 0
        if not isinstance(err, HistoryUnavailable):
            log.error("history: %s", err)
    if marked:
        log.warning("%d run(s) of a previous daemon marked interrupted", marked)


def run_reboot_jobs(config: Config, daemon: Daemon) -> None:
    """@reboot jobs, on the first start since the machine booted (as Debian's cron)."""
    if first_start_this_boot(config.state_dir):
        log.info("Running @reboot jobs")
        for job in daemon.db.jobs:
            if job.entry.spec.reboot:
                daemon.start(job, None, "reboot")
    else:
        log.info("Skipping @reboot jobs -- not system startup")


def model_parts(
    config: Config, history: HistoryStore, zone: tzinfo, waker: Waker
) -> tuple[ModelWatch | None, Retrainer | None]:
    """Smart mode's model watch and, when `retrain` is set, its retrainer."""
    if config.mode != "smart":
        return None, None  # legacy never loads a model; cron ignores annotations
    from smartcron.ai.modelwatch import ModelWatch
    from smartcron.ai.retrain import Retrainer

    with contextlib.suppress(OSError):  # so that inotify can watch it from the start
        config.models_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    models = ModelWatch.from_config(config, history=history)
    retrainer = Retrainer.from_config(
        config, zone=zone, current=models.own_card, on_exit=waker.notify
    )
    return models, retrainer


def watch_dirs(config: Config) -> list[Path]:
    """The directories whose changes mean a rescan: the crontabs' (so also their
    companions', F.smart.yaml beside F), cron.d, the spool and the jobs directory. One
    that does not exist yet comes with its missing parents and the first existing one,
    so that the Waker starts watching it when it is made (mkdir after the start)."""
    files = [path.parent for path in (config.crontab, config.user_crontab) if path is not None]
    dirs = [path for path in (config.cron_d, config.spool_dir, config.jobs_dir) if path is not None]
    out: list[Path] = []
    for path in files + dirs:
        out.append(path)
        while not path.is_dir() and path.parent != path:
            path = path.parent
            out.append(path)
    return list(dict.fromkeys(out))


STOPPED = "the daemon stopped while it ran: outcome unknown (not run again)"


def shutdown(daemon: Daemon, grace: float | None = None) -> None:
    """Let running jobs finish for `grace` seconds (None: STOP_GRACE); record the rest as
    interrupted (not killed)."""
    deadline = time.monotonic() + (STOP_GRACE if grace is None else grace)
    while daemon.running and time.monotonic() < deadline:
        daemon.collect()
        time.sleep(0.05)
    daemon.collect()
    if not daemon.running:
        return
    log.warning("%d job(s) still running at stop: recorded as interrupted", len(daemon.running))
    now, history = daemon.clock.now(), daemon.history
    for running in list(daemon.running.values()):
        if running.run_id is None or history is None:
            continue
        end = RunEnd(status=RunStatus.INTERRUPTED, ended=now, note="the daemon stopped first")
        with contextlib.suppress(Exception):  # parked, or lost: the process is ending
            history.record_end(running.run_id, end)
        firing = running.extra.get("firing")
        if isinstance(firing, Firing):  # its outcome is unknown, never a failure
            with contextlib.suppress(Exception):
                FiringStore(history).record(
                    firing, now, verdict="interrupted", reason=STOPPED, state="interrupted"
                )
