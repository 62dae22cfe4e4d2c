"""Mailing a job's output, as Debian's cron 3.0pl1-162 does it (do_command.c, popen.c).

The decision and the message are pure functions; `Mailer` is the I/O interface, with a
real `SendmailMailer` (the capturing fake is `testing.RecordingMailer`).
"""

from __future__ import annotations

import contextlib
import locale
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

DEFAULT_MAIL_COMMAND = "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem"
DEFAULT_SENDER = "root (Cron Daemon)"
NO_MTA_LOG = "No MTA installed, discarding output"

# do_command.c, safe_p(): "conservative!" -- allowed after the first character.
_SAFE_DELIM = frozenset("@!:%-.,_+=/")
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def safe_p(value: str) -> bool:
    """Port of do_command.c safe_p(): ASCII letters and digits anywhere, and the
    delimiters ``@!:%-.,_+=/`` anywhere but first. So a leading ``-`` (an option to
    sendmail), whitespace, ``<>``, quotes, ``;`` or any non-ASCII byte make it unsafe.
    (isascii() is checked first, so the C locale's isalnum() is all that matters.)"""
    for index, ch in enumerate(value):
        if ch in _ASCII_ALNUM or (index > 0 and ch in _SAFE_DELIM):
            continue
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class MailDecision:
    """Whether a job's output is mailed, to whom and from whom.

    `reason` is set when nothing is sent: "no output", "MAILTO empty", "bad mailto" or
    "no MTA". `unsafe` holds each MAILTO/MAILFROM value refused by safe_p(); cron logs
    each as ``(user) UNSAFE MAIL (value)``.
    """

    send: bool
    recipient: str | None = None
    sender: str = DEFAULT_SENDER
    reason: str | None = None
    unsafe: tuple[str, ...] = ()


def decide_mail(
    env: Mapping[str, str], owner: str, output_size: int, *, mta_available: bool = True
) -> MailDecision:
    """do_command.c, in its order: no output, then MAILTO, then MAILFROM, then the MTA.

    `owner` is cron's ``usernm``: LOGNAME from the job's environment, which load_entry()
    always overwrites with the crontab owner's (or the system line user's) name.
    """
    if output_size <= 0:
        return MailDecision(send=False, reason="no output")
    mailto = env.get("MAILTO")
    if mailto is None:
        # MAILTO unset: the owner, without a safe_p() check.
        recipient = owner
    elif not mailto:
        return MailDecision(send=False, reason="MAILTO empty")
    elif not safe_p(mailto):
        # SPEC 3 says the owner then gets the mail, but Debian 3.0pl1-162 does
        # `goto mail_finished`: it logs UNSAFE MAIL and sends nothing at all. We follow
        # Debian (the real daemon decides, SPEC 3), so a bad MAILTO never
        # redirects a job's output somewhere its author did not ask for.
        return MailDecision(send=False, reason="bad mailto", unsafe=(mailto,))
    else:
        recipient = mailto
    unsafe: tuple[str, ...] = ()
    sender = env.get("MAILFROM")
    if not sender or not safe_p(sender):
        # Unset, empty or unsafe MAILFROM: "root (Cron Daemon)", whatever cron(8) says
        # about "the owner of the crontab". Only a non-empty unsafe one is logged.
        if sender:
            unsafe = (sender,)
        sender = DEFAULT_SENDER
    if not mta_available:
        return MailDecision(
            send=False, recipient=recipient, sender=sender, reason="no MTA", unsafe=unsafe
        )
    return MailDecision(send=True, recipient=recipient, sender=sender, unsafe=unsafe)


def _b(text: str) -> bytes:
    # cron writes C strings as they are: keep undecodable bytes (surrogateescape) intact.
    return text.encode("utf-8", "surrogateescape")


def subject_host(hostname: str, *, fqdn: bool = False) -> str:
    """cron -n puts the full hostname in the Subject; else misc.c first_word(host, ".")."""
    return hostname if fqdn else hostname.lstrip(".").split(".", 1)[0]


def build_message(
    *,
    sender: str,
    recipient: str,
    user: str,
    hostname: str,
    command: str,
    env: Mapping[str, str],
    output: bytes,
    charset: str,
    failed: bool = False,
    fqdn: bool = False,
    job_env: Mapping[str, str] | None = None,
) -> bytes:
    """The message Debian's cron pipes to sendmail, byte for byte (LF line ends).

    `command` is the command as the shell got it (`Entry.shell_command`: cron cuts
    e->cmd at the first unescaped `%` and unescapes `\\%` before mailing). `env` is
    the job's environment in crontab order (e->envp), one X-Cron-Env header each;
    CONTENT_TYPE and CONTENT_TRANSFER_ENCODING are looked up in `job_env` (build_env():
    PAM's variables with the crontab's over them), by default in `env`.
    `failed` appends " (failed)" to the Subject. Debian does so only when cron runs
    with `-L` including 4 (CRON_LOG_JOBFAILED) and a child (the job, or the one feeding
    it the `%` input) exited non-zero or died of a signal; at the default `-L 1`, never.
    config.h leaves MAIL_DATE undefined: no Date header (sendmail adds one). `charset`
    comes from `default_mail_charset()`.
    """
    lines = [
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: Cron <{user}@{subject_host(hostname, fqdn=fqdn)}> {command}"
        + (" (failed)" if failed else ""),
        "MIME-Version: 1.0",
    ]
    # A user-set CONTENT_TYPE / CONTENT_TRANSFER_ENCODING (even empty) replaces the
    # default; its newlines become spaces "else users could specify arbitrary mail
    # headers!". Only "\n" is replaced, as in cron.
    lookup = env if job_env is None else job_env
    content_type = lookup.get("CONTENT_TYPE")
    if content_type is None:
        lines.append(f"Content-Type: text/plain; charset={charset}")
    else:
        lines.append("Content-Type: " + content_type.replace("\n", " "))
    encoding = lookup.get("CONTENT_TRANSFER_ENCODING")
    lines.append(
        "Content-Transfer-Encoding: "
        + ("8bit" if encoding is None else encoding.replace("\n", " "))
    )
    lines.extend(f"X-Cron-Env: <{name}={value}>" for name, value in env.items())
    return b"".join(_b(line) + b"\n" for line in lines) + b"\n" + output


_locale_lock = threading.Lock()
# glibc's categories: setlocale(LC_ALL, "") loads one locale for each, or fails as a whole.
_CATEGORIES = (
    "LC_CTYPE",
    "LC_NUMERIC",
    "LC_TIME",
    "LC_COLLATE",
    "LC_MONETARY",
    "LC_MESSAGES",
    "LC_PAPER",
    "LC_NAME",
    "LC_ADDRESS",
    "LC_TELEPHONE",
    "LC_MEASUREMENT",
    "LC_IDENTIFICATION",
)


def default_mail_charset(environ: Mapping[str, str] | None = None) -> str:
    """cron.c: setlocale(LC_ALL, "") then nl_langinfo(CODESET), but "US-ASCII" for
    ANSI_X3.4-1968 (the C locale; also what remains when setlocale() fails because some
    category names a missing locale): "US-ASCII" is preferred to it in MIME. A category
    is LC_ALL, else its own LC_* variable, else LANG (empty means unset), in `environ`.

    Pass the environment the daemon was started with: Python's C-locale coercion (PEP
    538) may have put LC_CTYPE=C.UTF-8 into os.environ where cron would see "C".
    """
    env = os.environ if environ is None else environ
    names = [env.get("LC_ALL") or env.get(c) or env.get("LANG") or "C" for c in _CATEGORIES]
    with _locale_lock:
        saved = locale.setlocale(locale.LC_CTYPE)
        try:
            for name in reversed(names):  # LC_CTYPE's last: its codeset is the answer
                locale.setlocale(locale.LC_CTYPE, name)
            codeset = locale.nl_langinfo(locale.CODESET)
        except locale.Error:
            codeset = ""  # setlocale() failed: cron stays in the C locale
        finally:
            locale.setlocale(locale.LC_CTYPE, saved)
    if not codeset or codeset.casefold() == "ansi_x3.4-1968":
        return "US-ASCII"
    return codeset


@dataclass(frozen=True, slots=True, kw_only=True)
class MailResult:
    """What became of one message. `error` is set when it was not accepted."""

    sent: bool
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAs:
    """Who the mail command runs as: popen.c cron_popen() does setgid(e->gid),
    initgroups(LOGNAME, e->gid), setuid(e->uid), chdir(HOME) before execvp()."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    cwd: str | None = None

    @classmethod
    def for_user(cls, name: str, home: str | None = None) -> RunAs:
        """The passwd entry of `name` and its initgroups() list; `home` is the job's HOME."""
        pw = pwd.getpwnam(name)
        groups = tuple(os.getgrouplist(name, pw.pw_gid))
        return cls(uid=pw.pw_uid, gid=pw.pw_gid, groups=groups, cwd=home or pw.pw_dir)


class Mailer(Protocol):
    """Hands one message to a mail transport."""

    def available(self) -> bool:
        """False when there is no MTA: cron then logs NO_MTA_LOG and sends nothing."""
        ...

    def send(self, recipient: str, message: bytes, *, run_as: RunAs | None = None) -> MailResult:
        """Deliver `message` (headers included) to `recipient`."""
        ...


def wait_status(returncode: int) -> int:
    """A subprocess return code as the raw wait() status cron logs (0x0100 = exit 1)."""
    return -returncode if returncode < 0 else (returncode & 0xFF) << 8


class SendmailMailer:
    """Pipes the message to a sendmail-compatible command, recipient as the last argument.

    Like cron_popen() the command is split into words and exec'd without a shell (we
    use shlex, so a path with spaces may be quoted); as root, pass `run_as` to run it
    as the job's owner, as Debian does. `env` None inherits the daemon's environment,
    as cron's does (not the job's). Unlike cron, the run is bounded by `timeout`: then
    the command's process group is killed.
    """

    def __init__(
        self,
        command: str = DEFAULT_MAIL_COMMAND,
        *,
        timeout: float = 300.0,
        env: Mapping[str, str] | None = None,
        max_error: int = 2000,
    ) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("empty mail command")
        self.timeout = timeout
        self.env = dict(env) if env is not None else None
        self.max_error = max_error

    def available(self) -> bool:
        # do_command.c: stat(MAILCMD) -- existence only, not the execute bit.
        program = self.argv[0]
        if os.sep in program:
            return os.path.exists(program)
        path = (self.env or os.environ).get("PATH", os.defpath)
        return shutil.which(program, mode=os.F_OK, path=path) is not None

    def send(self, recipient: str, message: bytes, *, run_as: RunAs | None = None) -> MailResult:
        argv = [*self.argv, recipient]
        # cron_popen() ignores a failing chdir(HOME): so do we, by not asking for it.
        cwd = run_as.cwd if run_as and run_as.cwd and os.path.isdir(run_as.cwd) else None
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=errors,
                    stderr=errors,
                    env=self.env,
                    cwd=cwd,
                    start_new_session=True,
                    user=run_as.uid if run_as else None,
                    group=run_as.gid if run_as else None,
                    extra_groups=list(run_as.groups) if run_as else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return MailResult(sent=False, error=f"cannot run {argv[0]}: {exc}")
            try:
                proc.communicate(message, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return MailResult(sent=False, error=f"{argv[0]} timed out after {self.timeout:g}s")
            if proc.returncode == 0:
                return MailResult(sent=True)
            errors.seek(0)
            said = errors.read(self.max_error).decode("utf-8", "replace").strip()
        # do_command.c logs "... got status 0x%04x from MTA" with the raw wait() status.
        error = f"got status 0x{wait_status(proc.returncode):04x} from MTA"
        return MailResult(sent=False, error=f"{error}: {said}" if said else error)
