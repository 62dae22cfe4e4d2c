"""SmartCron's daemon against Debian's real cron daemon (3.0pl1-162), side by side.

One crontab (environment lines with quotes and blanks, `%` stdin, MAILTO unset, set and
empty, MAILFROM safe and unsafe, CONTENT_TYPE, jobs with output and without) is run by
both daemons for the same minute. For every job the environment it was exec'd with
(/proc/PID/environ, order included: Debian's is deterministic, PAM's list then the
crontab's), its argv, its stdin bytes and a few process attributes must be identical,
and so must every mail: sendmail's argv, the user it ran as, and the whole message byte
for byte, with only the host name in the Subject normalised. Mails are matched by
Subject, because the order in which jobs finish is nobody's to promise.

The harness (compat.debian.start_in_cron_namespace) gives each daemon its own mount and
pid namespace set up like a Debian host: a tmpfs spool holding the crontab (crontabs
1730, the file 0600 and owned by its user), an empty /etc/cron.d and no /etc/crontab, a
private /run (cron's pid file and crond.reboot), the recording sendmail at MAILCMD
(/usr/sbin/sendmail), and a private /etc (a tmpfs of links to the real entries) with the
package's /etc/pam.d/cron and copies of /etc/passwd, /etc/group and /etc/shadow holding
a throwaway user who owns the crontab: nothing is added to the host's user database,
and a useradd on the host meanwhile changes nothing here. /etc/environment and
/etc/default/locale get known contents, which pam_env gives Debian's jobs and SmartCron
reads itself. Both namespaces are identical but for one bind mount: the view directory
(named in the crontab) is each daemon's own, so the same command writes to different
places and the same SMARTCRON_MAILDIR holds different mail. Both daemons start with
the same environment, limits and signal dispositions. SmartCron runs in system mode
with its spool at the namespace's /var/spool/cron/crontabs, /etc/crontab and cron.d
disabled, and its default mail command, which is Debian's MAILCMD and MAILARGS.

The one difference tolerated is documented in `_attributes`: a job's stdout is a pipe
in SmartCron and an unlinked tmpfile in Debian's cron.

It waits for a real minute boundary: 20 to 80 seconds in all. Nothing outlives it:
killing `unshare` kills pid 1 of each namespace and so everything in it
(--kill-child), `unshare` dies with the test process, each namespace kills itself after
LIFETIME seconds anyway, and the temporary directory is removed.
"""

from __future__ import annotations

import difflib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # compat/ is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from compat.debian import (  # noqa: E402
    CRONTABS,
    DAEMON_IN_PACKAGE,
    DebianUnavailable,
    daemon_namespace_problem,
    fetch_package_root,
    prepare_etc,
    start_in_cron_namespace,
    stop_namespace,
)

pytestmark = [pytest.mark.debian, pytest.mark.slow]

BIN = Path(sys.executable).parent
RECORDER = ROOT / "fixtures" / "bin" / "sendmail-recorder"
USER = "scdiff"  # exists only inside the namespaces' private /etc/passwd
LEAD = 10.0  # seconds before the minute boundary at which both daemons are started
SETTLE = 3.0  # seconds to wait, once everything expected is there, for anything more
LIFETIME = 150  # seconds after which a namespace kills itself, stopped or not
DAEMON_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# Both daemons start with the soft open-files limit systemd gives a service (its
# default LimitNOFILE=1024:524288), as cron.service runs. That matters: Debian's
# pam_limits (libpam-modules 1.5.2-6, `session required pam_limits.so` in
# /etc/pam.d/cron) set a job's soft RLIMIT_NOFILE to 1024 in this namespace even when
# the daemon had 20000, so a daemon started with more would differ for that reason only.
SERVICE_LIMITS = ("prlimit", "--nofile=1024:")

# {dump_NAME}: DUMP for job NAME;
# {two_blanks}: trailing blanks (cron strips them from an unquoted value).
# `A` is also set by /etc/environment: the crontab's value must win, in PAM's position.
CRONTAB = r"""# SmartCron's differential test: the same crontab for Debian's cron and SmartCron.
A = "x y  "
B='q'
C=plain{two_blanks}
 D =  ' lead'
F=""
H=a=b
* * * * * {dump_input}%in 1%  in 2  %pct \%x%back\\slash%end\
* * * * * {dump_plain}
* * * * * env; echo out
* * * * * true
* * * * * cat %line1%line2\%x
* * * * * echo 'exit 3'; exit 3
MAILTO = "ops@example.com"
MAILFROM=cron@example.com
* * * * * echo to ops, from cron
MAILFROM=-evil
CONTENT_TYPE=text/html
* * * * * echo unsafe MAILFROM
MAILTO=""
* * * * * echo not mailed
"""
JOB_DUMPS = ("input", "plain")  # the two jobs that describe themselves, with and without `%`
# A job's shell describing itself in {view}/job/NAME.*: its environment and argv as
# exec'd (/proc/$$: the shell, which cannot have exec'd away with commands left to run),
# its process attributes, its stdin; `.done` last, when everything has been written.
# The signal masks first, with builtins only: dash blocks every signal around each
# vfork and clears its mask after, so once it has forked /proc/$$ shows either that
# window (a probe that caught it saw "SigBlk: fffffffe7ffbfeff") or an empty mask,
# never what the job inherited.
DUMP = (
    'while IFS= read -r l; do case $l in Sig[BI]*) echo "$l";; esac; done '
    "</proc/$$/status >{job}.signals; "
    "cat /proc/$$/environ >{job}.environ; cat /proc/$$/cmdline >{job}.cmdline; "
    "{probe} $$ {job}.signals >{job}.probe; cat >{job}.stdin; : >{job}.done"
)
MAILED = 5  # env; echo out / cat / exit 3 / to ops / unsafe MAILFROM

# What pam_env reads for Debian's jobs (/etc/pam.d/cron) and SmartCron reads itself.
ETC_ENVIRONMENT = """# written by SmartCron's differential test
PAM_PLAIN=plain value
PAM_QUOTED="quoted value"
export PAM_EXPORTED='exported'
A=overridden by the crontab
"""
DEFAULT_LOCALE = "LANG=C.UTF-8\n"

# Describes process $1 (a job's shell) in a form that does not change between runs:
# ids, umask, signal masks (file $2: as the shell inherited them), capabilities,
# session and process group, what fds 0-2 are, limits, nice value. Not compared, on
# purpose: the audit login uid (/proc/PID/loginuid). Debian's /etc/pam.d/cron runs
# pam_loginuid, so its jobs carry the owner's uid there; SmartCron opens no PAM session
# (a documented difference, see smartcron(8)).
PROBE = r"""#!/bin/sh
p=$1
s=/proc/$p
echo "cwd=$(readlink "$s/cwd")"
grep -E '^(Umask|Uid|Gid|Groups|NoNewPrivs|Cap(Inh|Prm|Eff|Bnd|Amb)):' "$s/status"
cat "$2"
set -- $(sed 's/^.*) //' "$s/stat")
[ "$3" = "$p" ] && echo "process group leader" || echo "not process group leader"
[ "$4" = "$p" ] && echo "session leader" || echo "not session leader"
echo "tty_nr=$5 nice=${17}"
echo "oom_score_adj=$(cat "$s/oom_score_adj")"
for fd in "$s"/fd/*; do
    t=$(readlink "$fd")
    case $t in
        pipe:*) t=pipe ;;
        socket:*) t=socket ;;
        *" (deleted)") t="deleted file" ;;
    esac
    echo "fd ${fd##*/}: $t"
done
cat "$s/limits"
"""


@dataclass
class Mail:
    argv: list[str]
    who: str
    message: bytes


@dataclass
class Outcome:
    """What one daemon did: its mails by Subject, and each job dump's files."""

    name: str
    mails: dict[str, list[Mail]] = field(default_factory=dict)
    jobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    log: str = ""


# --------------------------------------------------------------------------- set-up


def _free_ids(count: int) -> int:
    """The first of `count` consecutive numbers free as both uid and gid."""
    used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    first = 4000
    while any(first + i in used for i in range(count)):
        first += 1
    return first


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for sub in path.rglob("*"):
        os.chown(sub, uid, gid)


def _prepare(work: Path, package: Path) -> Path:
    """Fill `work`; return the setup directory both namespaces are made from."""
    uid = _free_ids(2)
    gid, extra_gid = uid, uid + 1
    home = work / "home"
    view = work / "v"
    setup = work / "setup"
    for directory in (home, view, setup / "crontabs", work / "sc" / "jobs"):
        directory.mkdir(parents=True)
    for name in ("debian", "smartcron"):
        for sub in ("mail", "job"):
            (work / name / sub).mkdir(parents=True)
        _chown_tree(work / name, uid, gid)  # the jobs and sendmail run as USER
    os.chown(home, uid, gid)

    probe = work / "probe"
    probe.write_text(PROBE)
    probe.chmod(0o755)
    shutil.copy(RECORDER, setup / "sendmail")
    dumps = {f"dump_{d}": DUMP.format(job=view / "job" / d, probe=probe) for d in JOB_DUMPS}
    (setup / "crontabs" / USER).write_text(CRONTAB.format(two_blanks="  ", **dumps))

    # The namespaces' /etc: the user database with USER (and a second group of USER's,
    # so that initgroups() shows) appended, shadow's "*" being a password nobody can log
    # in with; the package's /etc/pam.d/cron; known pam_env files. (Only where the host
    # has them: where it does not, neither daemon sees one.)
    files = {
        name: text
        for name, text in (("environment", ETC_ENVIRONMENT), ("default/locale", DEFAULT_LOCALE))
        if (Path("/etc") / name).is_file()
    }
    prepare_etc(
        setup / "etc",
        package=package,
        extra_users=f"{USER}:x:{uid}:{gid}:SmartCron differential test:{home}:/bin/sh\n",
        extra_groups=f"{USER}:x:{gid}:\n{USER}-extra:x:{extra_gid}:{USER}\n",
        extra_shadow=f"{USER}:*:19000:0:99999:7:::\n",
        files=files,
    )
    (work / "sc" / "smartcron.toml").write_text(
        "\n".join(
            [
                'crontab = ""',
                'cron_d = ""',
                f'spool_dir = "{CRONTABS}"',  # the namespace's private spool
                'jobs_dir = "jobs"',
                'state_dir = "state"',
                'run_dir = "run"',
                # Debian's daemon never reads cron.allow/cron.deny (crontab(1) does).
                'allow_file = "no-cron.allow"',
                'deny_file = "no-cron.deny"',
                # mail_command stays the default: Debian's MAILCMD and MAILARGS.
            ]
        )
        + "\n"
    )
    return setup


def _next_boundary() -> float:
    """The first minute boundary at least LEAD (+2 s to spare) seconds away."""
    now = time.time()
    boundary = (int(now) // 60 + 1) * 60
    if boundary - now < LEAD + 2:
        boundary += 60
    return float(boundary)


# --------------------------------------------------------------------------- results


def _subject(message: bytes) -> str:
    host = socket.gethostname().split(".")[0]
    for line in message.split(b"\n"):
        if line.startswith(b"Subject: "):
            return line.decode("utf-8", "surrogateescape").replace(f"@{host}>", "@HOST>")
        if not line:
            break
    return "<no Subject>"


def _normalised(message: bytes) -> bytes:
    """The message with the host name in the Subject replaced; nothing else is touched.

    (Debian's cron adds no header that varies from one run to the next: config.h leaves
    MAIL_DATE undefined, so there is no Date; the hostname is the only thing to hide.)
    """
    head, sep, body = message.partition(b"\n\n")
    lines = [
        _subject(message).encode("utf-8", "surrogateescape")
        if line.startswith(b"Subject: ")
        else line
        for line in head.split(b"\n")
    ]
    return b"\n".join(lines) + sep + body


def _collect(name: str, directory: Path, log: Path) -> Outcome:
    outcome = Outcome(name, log=log.read_text(errors="replace") if log.exists() else "")
    for eml in sorted((directory / "mail").glob("*.eml")):
        stem = str(eml)[: -len(".eml")]  # the recorder's id has a dot of its own
        message = eml.read_bytes()
        mail = Mail(
            argv=Path(stem + ".argv").read_text().splitlines(),
            who=Path(stem + ".who").read_text(),
            message=message,
        )
        outcome.mails.setdefault(_subject(message), []).append(mail)
    for dump in JOB_DUMPS:
        files = {}
        for part in ("environ", "cmdline", "probe", "stdin", "done"):
            path = directory / "job" / f"{dump}.{part}"
            if path.exists():
                files[part] = path.read_bytes()
        outcome.jobs[dump] = files
    return outcome


def _complete(directory: Path) -> bool:
    mails = len(list((directory / "mail").glob("*.eml")))
    dumps = all((directory / "job" / f"{dump}.done").exists() for dump in JOB_DUMPS)
    return mails >= MAILED and dumps


def _run_both(work: Path, package: Path) -> tuple[Outcome, Outcome]:
    setup = _prepare(work, package)
    view = work / "v"
    commands = {
        "debian": (
            [*SERVICE_LIMITS, str(package / DAEMON_IN_PACKAGE), "-f"],
            Path("/run/crond.pid"),
        ),
        "smartcron": (
            [
                *SERVICE_LIMITS,
                str(BIN / "smartcron"),
                "--system",
                "-f",
                "--config",
                str(work / "sc/smartcron.toml"),
            ],
            work / "sc" / "state" / "status.json",
        ),
    }
    boundary = _next_boundary()
    time.sleep(max(0.0, boundary - LEAD - time.time()))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (command, ready) in commands.items():
            procs[name] = start_in_cron_namespace(
                command,
                setup=setup,
                ready=ready,
                marker=work / f"{name}.ready",
                binds=[(work / name, view)],
                env={**DAEMON_ENV, "SMARTCRON_MAILDIR": f"{view}/mail"},
                log=work / f"{name}.log",
                lifetime=LIFETIME,
            )
        while not all((work / f"{name}.ready").exists() for name in commands):
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            assert not dead, f"{dead} exited at once: " + _logs(work)
            assert time.time() < boundary - 0.5, "not ready before the minute: " + _logs(work)
            time.sleep(0.05)
        # The minute runs; wait for every expected mail and job dump, then a little
        # longer for anything unexpected, and stop well before the next minute.
        deadline = boundary + 40
        while time.time() < deadline and not all(_complete(work / name) for name in commands):
            time.sleep(0.2)
        time.sleep(min(SETTLE, max(0.0, boundary + 55 - time.time())))
    finally:
        for proc in procs.values():
            stop_namespace(proc)
    debian = _collect("debian", work / "debian", work / "debian.log")
    smartcron = _collect("smartcron", work / "smartcron", work / "smartcron.log")
    return debian, smartcron


def _logs(work: Path) -> str:
    parts = []
    for name in ("debian", "smartcron"):
        log = work / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        parts.append(f"\n--- {name} log ---\n{text[-3000:]}")
    return "".join(parts)


# --------------------------------------------------------------------------- the test


def _environ(raw: bytes) -> list[bytes]:
    return raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")


def _attributes(probe: bytes) -> list[str]:
    """PROBE's lines, with one known and documented difference taken out.

    The job's stdout and stderr (and dash's saved copy of stdout, fd 10, while the probe
    runs) are an unlinked tmpfile in Debian's cron and a pipe in SmartCron, which streams
    and caps the output (see smartcron/executor.py). Which fds are open, and what fd 0
    (stdin) is, are still compared.
    """
    lines = []
    for line in probe.decode(errors="replace").splitlines():
        number, colon, kind = line.partition(": ")
        if number.startswith("fd ") and number != "fd 0" and kind in ("pipe", "deleted file"):
            line = f"{number}{colon}output (pipe or tmpfile)"
        lines.append(line)
    return lines


def _compare(debian: Outcome, smartcron: Outcome) -> list[str]:
    differences: list[str] = []

    def differ(what: str, expected: object, actual: object) -> None:
        if expected == actual:
            return
        if isinstance(expected, list) and isinstance(actual, list):
            # Only the lines that differ: "-" Debian's, "+" SmartCron's.
            diff = difflib.unified_diff(
                [repr(x) for x in expected], [repr(x) for x in actual], lineterm="", n=1
            )
            body = "\n".join(f"    {line}" for line in list(diff)[2:])
            differences.append(f"{what} (- debian, + smartcron):\n{body}")
        else:
            differences.append(f"{what}:\n  debian:    {expected!r}\n  smartcron: {actual!r}")

    for dump in JOB_DUMPS:
        want, got = debian.jobs[dump], smartcron.jobs[dump]
        differ(f"job {dump}: files written", sorted(want), sorted(got))
        differ(
            f"job {dump}: environment (execve order)",
            _environ(want.get("environ", b"")),
            _environ(got.get("environ", b"")),
        )
        differ(f"job {dump}: argv", want.get("cmdline"), got.get("cmdline"))
        differ(f"job {dump}: stdin bytes", want.get("stdin"), got.get("stdin"))
        want_probe = _attributes(want.get("probe", b""))
        got_probe = _attributes(got.get("probe", b""))
        differ(f"job {dump}: process attributes", want_probe, got_probe)

    differ("mail subjects", sorted(debian.mails), sorted(smartcron.mails))
    for subject in sorted(set(debian.mails) & set(smartcron.mails)):
        wants, gots = debian.mails[subject], smartcron.mails[subject]
        differ(f"{subject!r}: number of mails", len(wants), len(gots))
        for want, got in zip(wants, gots, strict=False):
            differ(f"{subject!r}: sendmail argv", want.argv, got.argv)
            differ(f"{subject!r}: sendmail ran as", want.who, got.who)
            if _normalised(want.message) != _normalised(got.message):
                differ(
                    f"{subject!r}: message",
                    _normalised(want.message).split(b"\n"),
                    _normalised(got.message).split(b"\n"),
                )
    return differences


@pytest.mark.timeout(180)
def test_smartcron_runs_a_minute_exactly_as_debians_cron_daemon():
    problem = daemon_namespace_problem()
    if problem is None and shutil.which(SERVICE_LIMITS[0]) is None:
        problem = f"{SERVICE_LIMITS[0]}(1) not found"
    if problem:
        pytest.skip(f"Debian's cron daemon cannot be run here: {problem}")
    try:
        package = fetch_package_root()
    except DebianUnavailable as err:
        pytest.skip(f"Debian's cron package is unavailable: {err}")
    # /tmp, not pytest's 0700 tmp_path: USER must reach its home, the probe and the view.
    work = Path(tempfile.mkdtemp(prefix="scdiff-", dir="/tmp"))
    try:
        work.chmod(0o755)
        debian, smartcron = _run_both(work, package)
        # The oracle must have worked before SmartCron can be measured against it.
        assert len([m for ms in debian.mails.values() for m in ms]) == MAILED, (
            f"Debian's cron sent {sorted(debian.mails)}" + _logs(work)
        )
        assert all(debian.jobs[d].get("done") is not None for d in JOB_DUMPS), _logs(work)
        # ... and described what is compared: the masks the shell was started with
        probe = debian.jobs[JOB_DUMPS[0]].get("probe", b"")
        assert b"\nSigBlk:\t" in probe and b"\nSigIgn:\t" in probe, probe
        differences = _compare(debian, smartcron)
        assert not differences, "SmartCron differs from Debian's cron:\n" + "\n".join(differences)
    finally:
        shutil.rmtree(work, ignore_errors=True)
