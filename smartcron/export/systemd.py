"""One crontab line as a systemd `.timer` and `.service` pair (smartcronctl(1), EXPORT).

The service runs what cron's do_command runs: `$SHELL -c` (cron's /bin/sh unless the
crontab sets SHELL) as the line's owner, in its home directory, with cron's PATH
(/usr/bin:/bin) unless the crontab sets one, and the crontab's variables. The timer's
OnCalendar= lines come from oncalendar.py; AccuracySec=1s because systemd's default
(1 min) would let it start up to a minute after cron would.
"""

from __future__ import annotations

from smartcron.export.jobs import ExportJob, has_dst, seconds, shown
from smartcron.export.oncalendar import on_calendar

# Keys the units express; the rest become comments (and a warning).
MAPPED = ("timeout", "ac", "jitter", "catchup", "overlap")
_ENV_SKIPPED = ("CRON_TZ", "MAILTO", "MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING")
CRON_PATH = "/usr/bin:/bin"  # Debian's cron gives jobs this PATH (pathnames.h _PATH_DEFPATH)


def exec_quote(text: str) -> str:
    """`text` as one single-quoted word of ExecStart= (systemd.syntax(7), systemd.service(5)):
    C escapes for backslash, quote and control characters, `%%` for a specifier sign and
    `$$` for a dollar, which ExecStart= would otherwise expand."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "%":
            out.append("%%")
        elif ch == "$":
            out.append("$$")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _env_quote(key: str, value: str) -> str:
    """One Environment= assignment, double-quoted: specifiers doubled, C escapes."""
    body = f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + body.replace("\n", "\\n") + '"'


def _comment(text: str) -> str:
    return "# " + text.replace("\n", "\\n")


def _dropped(job: ExportJob) -> list[str]:
    """Keys with no systemd equivalent, and the overlap modes systemd cannot give."""
    changed = job.changed()
    kept = [key for key in changed if key not in MAPPED]
    if job.smart is not None and job.smart.overlap == "queue":
        kept.append("overlap")
    if changed.get("catchup") == "all":  # Persistent= runs what was missed once
        kept.append("catchup")
    return kept


def units(job: ExportJob) -> tuple[dict[str, str], list[str]]:
    """{file name: text} for the timer and its service, and the keys kept as comments.
    Raises ValueError for @reboot (no calendar) and a line that never fires."""
    calendar = on_calendar(job.entry.spec, job.zone)
    if not calendar:
        raise ValueError("the line never fires")
    changed = job.changed()
    kept = _dropped(job)
    header = [
        _comment(f"Exported by smartcronctl export from {job.where}:"),
        _comment(f"{job.entry.spec.text} {job.entry.command}"),
    ]
    notes = [
        _comment(f"smartcron: {key}={shown(changed[key])} (no systemd equivalent)") for key in kept
    ]
    if job.smart is not None:
        notes.append(_comment("smartcron: the smart gate and its model do not run under systemd"))
    description = f"Description=SmartCron job {job.name} ({job.where})"
    service = [*header, "[Unit]", description]
    if job.smart is not None and job.smart.ac:
        service.append("ConditionACPower=true")
    env = {k: v for k, v in dict(job.entry.env).items() if k not in _ENV_SKIPPED}
    env.setdefault("SHELL", "/bin/sh")
    env.setdefault("PATH", CRON_PATH)
    service += ["", "[Service]", "Type=exec", f"User={job.owner}", "WorkingDirectory=~"]
    service += [f"Environment={_env_quote(k, v)}" for k, v in env.items()]
    service.append(f"ExecStart={exec_quote(job.shell())} -c {exec_quote(job.script())}")
    if "timeout" in changed:
        service.append(f"RuntimeMaxSec={max(1, seconds(changed['timeout']))}")
    timer = [*header, "[Unit]", description, "", "[Timer]"]
    timer += [f"OnCalendar={line}" for line in calendar]
    timer.append("AccuracySec=1s")
    if has_dst(job.zone):  # smartcronctl(1): what cron.c does at a DST change, systemd not
        timer.append(_comment("systemd skips a DST gap's times and runs a repeated hour once"))
    jitter = changed.get("jitter")
    if jitter:
        # FixedRandomDelay: the same offset each time, per machine and timer, as jitter= is.
        timer += [f"RandomizedDelaySec={seconds(jitter)}", "FixedRandomDelay=true"]
    catchup = getattr(job.smart, "catchup", "no") if job.smart is not None else "no"
    if catchup != "no":  # a plain line keeps cron's rule: nothing missed is run
        timer.append("Persistent=true")
    timer += [*notes, "", "[Install]", "WantedBy=timers.target"]
    texts = {
        f"{job.name}.timer": "\n".join(timer) + "\n",
        f"{job.name}.service": "\n".join([*service, *notes]) + "\n",
    }
    return texts, kept
