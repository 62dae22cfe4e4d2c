"""The recording sendmail of fixtures/bin: a real MTA process that keeps each message."""

from __future__ import annotations

from pathlib import Path

from smartcron.run.mail import SendmailMailer

RECORDER = Path(__file__).resolve().parent.parent / "fixtures" / "bin" / "sendmail-recorder"


RECORDER_CMD = f"{RECORDER} -FCronDaemon -i -B8BITMIME -oem"


def stored(maildir: Path) -> list[tuple[list[str], bytes, dict[str, str]]]:
    """(argv, message, identity) of each message the recorder kept, oldest first."""
    out = []
    for eml in sorted(maildir.glob("*.eml")):
        argv = eml.with_suffix(".argv").read_text().splitlines()
        who = dict(line.split("=", 1) for line in eml.with_suffix(".who").read_text().splitlines())
        out.append((argv, eml.read_bytes(), who))
    return out


def recorder_mailer(maildir: Path, **extra: str) -> SendmailMailer:
    env = {"PATH": "/usr/bin:/bin", "SMARTCRON_MAILDIR": str(maildir), **extra}
    return SendmailMailer(RECORDER_CMD, env=env, timeout=10)
