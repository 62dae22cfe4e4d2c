"""Running the real daemon: lock, logging, signals, @reboot, status file, systemd notify.

`serve()` wires the real implementations (system clock, process runner, sendmail,
SQLite) into a `Daemon` and loops until SIGTERM/SIGINT.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import logging.handlers
import os
import pwd
import shutil
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartcron.atomicfile import write_atomic
from smartcron.clock import SystemClock
from smartcron.config import Config
from smartcron.daemon import Daemon
from smartcron.errors import SmartcronError
from smartcron.executor import ProcessRunner
from smartcron.firings import FiringStore
from smartcron.gate import Firing
from smartcron.history import HistoryError, HistoryStore, HistoryUnavailable, RunEnd, RunStatus
from smartcron.jobenv import parse_pam_env_file
from smartcron.lifecycle import hostname, start_job
from smartcron.mail import SendmailMailer, default_mail_charset
from smartcron.monitor import SystemMonitor
from smartcron.schedule import local_zone
from smartcron.statusdoc import DaemonStatus, JobView, MailView
from smartcron.wakeup import Waker

if TYPE_CHECKING:
    from smartcron.modelwatch import ModelWatch
    from smartcron.retrain import Retrainer

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


class AlreadyRunning(SmartcronError):
    pass


# What a read-only or full state directory answers to creating or writing the lock file.
_NO_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def acquire_lock(path: Path) -> tuple[int, ...]:
    """One daemon per state directory: flocks held for the daemon's life (their fds), on
    the directory itself and on the lock file with our pid inside. flock needs no write
    access, so a read-only (or full) state directory still has exactly one daemon: the
    file is then locked through a read-only fd, pid not written, or only the directory
    is locked if the file cannot even be created."""
    with contextlib.suppress(OSError):  # a read-only parent: the open below says why
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fds = [os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    writable = True
    try:
        fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError as err:
        if err.errno not in _NO_WRITE:
            os.close(fds[0])
            raise
        writable = False
        with contextlib.suppress(FileNotFoundError):
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        log.warning("%s: cannot write the lock file (%s); locked read-only", path, err.strerror)
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = "?"
            if len(fds) > 1:
                holder = os.pread(fds[-1], 32, 0).decode(errors="replace").strip() or "?"
            for each in fds:
                os.close(each)
            msg = f"smartcron is already running (pid {holder}, lock {path})"
            raise AlreadyRunning(msg) from None
    if writable:
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same
            os.ftruncate(fds[-1], 0)
            os.pwrite(fds[-1], f"{os.getpid()}\n".encode(), 0)
    return tuple(fds)


def lock_holder(path: Path) -> int | None:
    """The pid of the running daemon for this lock file, or None if none holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        try:  # no lock file (a read-only state directory): the directory's lock says
            fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:  # the directory's lock: held, by a pid it cannot tell
            return -1
        return int(text) if text.isdigit() else -1
    else:
        return None
    finally:
        os.close(fd)


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


def daemon_status(daemon: Daemon, started: datetime) -> DaemonStatus:
    """What `smartcronctl status` shows, as the daemon sees it."""
    history = history_document(daemon.history)
    return DaemonStatus(
        pid=os.getpid(),
        started=started.isoformat(),
        updated=daemon.clock.now().isoformat(),
        user_mode=daemon.config.user_mode,
        mode=daemon.mode,
        mode_reason=daemon.mode_reason,
        zone=str(daemon.zone),
        mail=MailView(command=daemon.config.mail_command, available=daemon.mailer.available()),
        files=tuple(loaded.view() for loaded in daemon.db.files.values()),
        jobs=tuple(JobView.of(job) for job in daemon.db.jobs),
        running=len(daemon.running),
        containment=getattr(daemon.runner, "containment", None),  # cgroup v2 or pgid
        pending_firings=len(daemon.engine.slots),
        model=None if daemon.models is None else daemon.models.document(),
        retrain=None if daemon.retrainer is None else daemon.retrainer.document(),
        history=history,
    )


def status_document(daemon: Daemon, started: datetime) -> dict[str, object]:
    """daemon_status() as status.json has it."""
    return daemon_status(daemon, started).to_json()


def history_document(history: object) -> dict[str, object] | None:
    """Whether runs are recorded (a damaged, read-only or full state directory: not)."""
    document = getattr(history, "document", None)
    return None if document is None else document()


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


def serve(config: Config, *, foreground: bool) -> int:
    """Run the daemon until stopped. Returns the exit status."""
    make_dirs(config)
    lock_fds = acquire_lock(config.lock_file)
    started = datetime.now(UTC)
    # cron.c computes the charset from the locale it was started in (before Python's
    # own C-locale coercion, which only ever adds C.UTF-8).
    charset = default_mail_charset()
    # Resilient: a damaged file is set aside, a read-only or full directory leaves the
    # daemon without history (retried each minute): plain cron lines always run.
    history = HistoryStore.open(config.history_db, resilient=True)
    waker = Waker()
    zone = local_zone()
    models, retrainer = model_parts(config, history, zone, waker)
    daemon = system_daemon(config, history, waker, zone, charset, models, retrainer)
    mark_interrupted_runs(history)

    def publish() -> None:
        publish_status(config, status_document(daemon, started))

    daemon.on_reload = daemon.on_status = publish
    care = HistoryCare(daemon)
    signal.signal(signal.SIGHUP, daemon.request_reload)
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    waker.install_signal_wakeup()
    log.info(
        "started (pid %d, %s mode, zone %s)",
        os.getpid(),
        "user" if config.user_mode else "system",
        daemon.zone,
    )
    daemon.reload(force=True)
    waker.watch(watch_dirs(config) + ([] if models is None else models.watch_dirs()))
    publish()
    run_reboot_jobs(config, daemon)
    from smartcron.control import start_control  # smartcrontab's socket; stops at exit

    start_control(config, daemon)
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
        shutdown(daemon)
        publish()
        try:
            history.close()
        except HistoryError as err:
            log.error("history: %s", err)
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
    history: HistoryStore,
    waker: Waker,
    zone: tzinfo,
    charset: str,
    models: ModelWatch | None,
    retrainer: Retrainer | None,
) -> Daemon:
    """The Daemon on the real clock, processes, sendmail and system monitor."""
    return Daemon(
        config,
        clock=SystemClock(),
        runner=ProcessRunner(grace_s=config.kill_grace),
        mailer=SendmailMailer(config.mail_command),
        history=history,
        zone=zone,
        waker=waker,
        hostname=hostname(),
        mail_charset=charset,
        pam_env=pam_environment(),
        sandbox=sandbox_prefix(config),
        monitor=SystemMonitor(
            user=pwd.getpwuid(os.geteuid()).pw_name if config.user_mode else None
        ),
        models=models,
        retrainer=retrainer,
    )


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
                start_job(daemon, job, None, "reboot")
    else:
        log.info("Skipping @reboot jobs -- not system startup")


class HistoryCare:
    """A timer thread for the history store: each minute, `maintain()` (an unavailable
    database tried again, a quick_check hourly), and the status file republished (by the
    main loop, woken with a forced reload) when whether history is recorded changed."""

    every = 60.0

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="history-care", daemon=True)
        self._shown = self._state()

    def _state(self) -> tuple[object, ...]:
        doc = history_document(self.daemon.history) or {}
        return doc.get("available"), doc.get("reason"), len(doc.get("moved_aside") or ())  # type: ignore[arg-type]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.daemon.history.maintain()
            except Exception:  # never let the care thread die on a bug
                log.exception("history: maintenance failed")
            state = self._state()
            if state != self._shown and self.daemon.waker is not None:
                self._shown = state
                self.daemon.reload_requested = True  # the main loop republishes status
                self.daemon.waker.notify()


def publish_status(config: Config, document: dict[str, object]) -> None:
    """Write status.json to the state directory, else (read-only, full) to the run
    directory, so that `smartcronctl status` can still say why history is down."""
    text = json.dumps(document, indent=1)
    primary, fallback = config.status_files
    try:
        write_atomic(primary, text)
    except OSError as err:
        try:
            write_atomic(fallback, text)
        except OSError as err2:
            log.error(
                "cannot write %s (%s) nor %s (%s)", primary, err.strerror, fallback, err2.strerror
            )
        return
    with contextlib.suppress(OSError):
        fallback.unlink()  # a stale fallback must not win over the fresh primary


def read_status(config: Config) -> dict[str, Any] | None:
    """The running daemon's published status (the newer of its two places), or None."""
    found = []
    for path in config.status_files:
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(found, reverse=True):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            return doc
    return None


def write_pid_file(path: Path) -> None:
    """As cron's acquire_daemonlock() (misc.c) writes /run/crond.pid, for scripts; the
    lock file in the state directory stays the truth on who runs."""
    try:
        write_atomic(path, f"{os.getpid()}\n")
    except OSError as err:
        log.error("cannot write %s: %s", path, err.strerror)


def remove_pid_file(path: Path) -> None:
    """Remove the pid file if it is still ours."""
    with contextlib.suppress(OSError):
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()


def model_parts(
    config: Config, history: HistoryStore, zone: tzinfo, waker: Waker
) -> tuple[ModelWatch | None, Retrainer | None]:
    """Smart mode's model watch and, when `retrain` is set, its retrainer."""
    if config.mode != "smart":
        return None, None  # legacy never loads a model; cron ignores annotations
    from smartcron.modelwatch import ModelWatch
    from smartcron.retrain import Retrainer

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


def shutdown(daemon: Daemon) -> None:
    """Let running jobs finish for a while; record the rest as interrupted (not killed)."""
    deadline = time.monotonic() + STOP_GRACE
    while daemon.running and time.monotonic() < deadline:
        daemon.collect()
        time.sleep(0.05)
    daemon.collect()
    if not daemon.running:
        return
    log.warning("%d job(s) still running at stop: recorded as interrupted", len(daemon.running))
    now = daemon.clock.now()
    for running in list(daemon.running.values()):
        if running.run_id is None:
            continue
        end = RunEnd(status=RunStatus.INTERRUPTED, ended=now, note="the daemon stopped first")
        with contextlib.suppress(Exception):  # parked, or lost: the process is ending
            daemon.history.record_end(running.run_id, end)
        firing = running.extra.get("firing")
        if isinstance(firing, Firing):  # its outcome is unknown, never a failure
            with contextlib.suppress(Exception):
                FiringStore(daemon.history).record(
                    firing, now, verdict="interrupted", reason=STOPPED, state="interrupted"
                )
