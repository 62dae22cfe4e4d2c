"""Mail: Debian cron's recipient rules, its exact message, and a real sendmail process."""

from __future__ import annotations

import locale
import os
import stat
import tempfile
from pathlib import Path

import pytest

from smartcron.run.mail import (
    DEFAULT_SENDER,
    MailDecision,
    RunAs,
    SendmailMailer,
    build_message,
    decide_mail,
    default_mail_charset,
    safe_p,
    subject_host,
    wait_status,
)
from smartcron.testing import RecordingMailer
from tests.mailkit import RECORDER, RECORDER_CMD, recorder_mailer, stored

# e->envp of `MAILTO=ops` above a line in alice's crontab: crontab order, then the
# defaults load_entry() adds (SHELL, HOME, PATH), then LOGNAME.
JOB_ENV = {
    "MAILTO": "ops",
    "SHELL": "/bin/sh",
    "HOME": "/home/alice",
    "PATH": "/usr/bin:/bin",
    "LOGNAME": "alice",
}


# --- safe_p and the decision ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["alice", "ops@example.com", "a@b.c,d@e.f", "bob+cron@x", "a!b:c%d-e.f_g=h/i", "7up"],
)
def test_safe_p_accepts_what_debian_accepts(value: str) -> None:
    assert safe_p(value)


@pytest.mark.parametrize(
    "value",
    [
        "-oQ/tmp",  # an option smuggled to sendmail
        "@example.com",  # delimiter first
        ".alice",
        "alice bob",
        "alice\tbob",
        "Alice <alice@x>",
        "a;rm",
        "a'b",
        "jos\u00e9",  # not ASCII
        "a\nb",
    ],
)
def test_safe_p_refuses_leading_delimiters_blanks_and_specials(value: str) -> None:
    assert not safe_p(value)


def test_no_output_sends_nothing_whatever_mailto_says() -> None:
    assert decide_mail({"MAILTO": "-bad"}, "alice", 0) == MailDecision(
        send=False, reason="no output"
    )


def test_unset_mailto_mails_the_owner_from_root() -> None:
    decision = decide_mail({"LOGNAME": "alice"}, "alice", 3)
    assert decision == MailDecision(send=True, recipient="alice", sender="root (Cron Daemon)")


def test_empty_mailto_sends_nothing() -> None:
    assert decide_mail({"MAILTO": ""}, "alice", 3) == MailDecision(
        send=False, reason="MAILTO empty"
    )


@pytest.mark.parametrize("mailto", ["-oi evil", "alice bob", "<x@y>"])
def test_bad_mailto_sends_nothing_not_even_to_the_owner(mailto: str) -> None:
    # Debian 3.0pl1-162: `else if (!*mailto || !safe_p(usernm, mailto)) goto mail_finished;`
    decision = decide_mail({"MAILTO": mailto}, "alice", 3)
    assert decision == MailDecision(send=False, reason="bad mailto", unsafe=(mailto,))


def test_a_comma_list_mailto_is_one_recipient_argument() -> None:
    assert decide_mail({"MAILTO": "a@x,b@y"}, "alice", 1).recipient == "a@x,b@y"


def test_mailfrom_is_used_when_safe() -> None:
    decision = decide_mail({"MAILFROM": "cron@example.com"}, "alice", 1)
    assert (decision.sender, decision.unsafe) == ("cron@example.com", ())


@pytest.mark.parametrize(("mailfrom", "unsafe"), [("", ()), ("Cron <c@x>", ("Cron <c@x>",))])
def test_empty_or_unsafe_mailfrom_falls_back_to_root(
    mailfrom: str, unsafe: tuple[str, ...]
) -> None:
    decision = decide_mail({"MAILFROM": mailfrom}, "alice", 1)
    assert (decision.send, decision.sender, decision.unsafe) == (True, DEFAULT_SENDER, unsafe)


def test_a_bad_mailto_stops_before_mailfrom_is_checked() -> None:
    decision = decide_mail({"MAILTO": "-x", "MAILFROM": "-y"}, "alice", 1)
    assert decision.unsafe == ("-x",)


def test_no_mta_is_decided_last() -> None:
    assert decide_mail({}, "alice", 1, mta_available=False) == MailDecision(
        send=False, recipient="alice", reason="no MTA"
    )
    assert decide_mail({"MAILTO": ""}, "alice", 1, mta_available=False).reason == "MAILTO empty"


# --- the message ------------------------------------------------------------------


def test_message_headers_are_in_debian_order_and_format() -> None:
    message = build_message(
        sender=DEFAULT_SENDER,
        recipient="ops",
        user="alice",
        hostname="box.example.com",
        command="backup --all",
        env=JOB_ENV,
        output=b"done\n",
        charset="UTF-8",
    )
    assert message == (
        b"From: root (Cron Daemon)\n"
        b"To: ops\n"
        b"Subject: Cron <alice@box> backup --all\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=UTF-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"X-Cron-Env: <MAILTO=ops>\n"
        b"X-Cron-Env: <SHELL=/bin/sh>\n"
        b"X-Cron-Env: <HOME=/home/alice>\n"
        b"X-Cron-Env: <PATH=/usr/bin:/bin>\n"
        b"X-Cron-Env: <LOGNAME=alice>\n"
        b"\n"
        b"done\n"
    )
    assert b"Date:" not in message  # MAIL_DATE is not defined in config.h


# Recorded from Debian's own cron 3.0pl1-162 (`cron -f -L 15`, LANG=C.UTF-8, host "vm"),
# run in `unshare -m` with tmpfs over the spool, /etc/cron.d and /usr/sbin, and
# fixtures/bin/sendmail-recorder as /usr/sbin/sendmail, from root's crontab:
#   FOO = bar baz / MAILTO=ops@example.com / MAILFROM=cron@example.com /
#   CONTENT_TYPE=text/html / * * * * * echo withfrom
# In the same run MAILFROM=-evil gave "From: root (Cron Daemon)", `echo out; exit 2`
# got " (failed)", and MAILTO=-oi, MAILTO=alice bob and MAILTO="" sent nothing at all.
DEBIAN_RECORDED = (
    b"From: cron@example.com\n"
    b"To: ops@example.com\n"
    b"Subject: Cron <root@vm> echo withfrom\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/html\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"X-Cron-Env: <FOO=bar baz>\n"
    b"X-Cron-Env: <MAILTO=ops@example.com>\n"
    b"X-Cron-Env: <MAILFROM=cron@example.com>\n"
    b"X-Cron-Env: <CONTENT_TYPE=text/html>\n"
    b"X-Cron-Env: <SHELL=/bin/sh>\n"
    b"X-Cron-Env: <HOME=/root>\n"
    b"X-Cron-Env: <PATH=/usr/bin:/bin>\n"
    b"X-Cron-Env: <LOGNAME=root>\n"
    b"\n"
    b"withfrom\n"
)


def test_the_message_is_byte_for_byte_what_debian_cron_sent() -> None:
    env = {
        "FOO": "bar baz",
        "MAILTO": "ops@example.com",
        "MAILFROM": "cron@example.com",
        "CONTENT_TYPE": "text/html",
        "SHELL": "/bin/sh",
        "HOME": "/root",
        "PATH": "/usr/bin:/bin",
        "LOGNAME": "root",
    }
    decision = decide_mail(env, "root", 9)
    assert decision.send and decision.recipient is not None
    message = build_message(
        sender=decision.sender,
        recipient=decision.recipient,
        user="root",
        hostname="vm",
        command="echo withfrom",
        env=env,
        output=b"withfrom\n",
        charset="UTF-8",
    )
    assert message == DEBIAN_RECORDED


def message_for(env: dict[str, str], **kw: object) -> bytes:
    args: dict[str, object] = {
        "sender": DEFAULT_SENDER,
        "recipient": "alice",
        "user": "alice",
        "hostname": "box",
        "command": "true",
        "env": env,
        "output": b"x",
        "charset": "US-ASCII",
    }
    args.update(kw)
    return build_message(**args)  # type: ignore[arg-type]


def test_failed_suffix_and_fqdn_subject() -> None:
    message = message_for({}, failed=True, fqdn=True, hostname="box.example.com")
    assert b"Subject: Cron <alice@box.example.com> true (failed)\n" in message


def test_subject_host_is_cron_first_word() -> None:
    assert subject_host("box.example.com") == "box"
    assert subject_host(".box.lan") == "box"  # first_word() skips leading terminators
    assert subject_host("box.lan", fqdn=True) == "box.lan"


def test_content_type_overrides_lose_their_newlines() -> None:
    env = {"CONTENT_TYPE": "text/html\nBcc: x@y", "CONTENT_TRANSFER_ENCODING": "base64\nX: y"}
    head = message_for(env).split(b"\n\n", 1)[0].decode()
    assert "Content-Type: text/html Bcc: x@y" in head.splitlines()
    assert "Content-Transfer-Encoding: base64 X: y" in head.splitlines()
    assert "charset" not in head


def test_content_type_comes_from_the_pam_merged_job_env() -> None:
    # do_command.c: env_get("CONTENT_TYPE", build_env(e->envp)); X-Cron-Env: e->envp only.
    message = message_for({"A": "1"}, job_env={"CONTENT_TYPE": "text/x", "A": "1"})
    assert b"\nContent-Type: text/x\n" in message
    assert b"X-Cron-Env: <CONTENT_TYPE" not in message


def test_an_empty_content_type_is_kept_empty() -> None:
    assert b"\nContent-Type: \n" in message_for({"CONTENT_TYPE": ""})


def test_non_utf8_output_and_env_bytes_pass_through() -> None:
    env = {"X": os.fsdecode(b"\xe9t\xe9")}
    message = message_for(env, output=b"\xff\xfe raw\n")
    assert b"X-Cron-Env: <X=\xe9t\xe9>\n" in message
    assert message.endswith(b"\n\n\xff\xfe raw\n")


@pytest.mark.parametrize(
    ("environ", "charset"),
    [
        ({}, "US-ASCII"),
        ({"LANG": "C"}, "US-ASCII"),
        ({"LANG": "C.UTF-8"}, "UTF-8"),
        ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, "UTF-8"),
        ({"LC_ALL": "C", "LC_CTYPE": "C.UTF-8"}, "US-ASCII"),
        ({"LC_ALL": "", "LANG": "C.UTF-8"}, "UTF-8"),
        ({"LANG": "xx_NOWHERE.BOGUS"}, "US-ASCII"),
        # setlocale(LC_ALL, "") fails as a whole when any category's locale is missing.
        ({"LANG": "C.UTF-8", "LC_MESSAGES": "xx_NOWHERE.BOGUS"}, "US-ASCII"),
        ({"LC_ALL": "C.UTF-8", "LC_MESSAGES": "xx_NOWHERE.BOGUS"}, "UTF-8"),
    ],
)
def test_default_charset_follows_the_locale_like_cron(
    environ: dict[str, str], charset: str
) -> None:
    before = locale.setlocale(locale.LC_CTYPE)
    assert default_mail_charset(environ) == charset
    assert locale.setlocale(locale.LC_CTYPE) == before  # the process locale is restored


# --- mailers ----------------------------------------------------------------------


def test_sendmail_mailer_drives_a_real_process(tmp_path: Path) -> None:
    decision = decide_mail(JOB_ENV, "alice", 5)
    assert decision.recipient is not None
    message = build_message(
        sender=decision.sender,
        recipient=decision.recipient,
        user="alice",
        hostname="box.lan",
        command="echo hello",
        env=JOB_ENV,
        output=b"hello\n",
        charset="UTF-8",
    )
    result = recorder_mailer(tmp_path).send(decision.recipient, message)
    assert (result.sent, result.error) == (True, None)
    [(argv, body, _who)] = stored(tmp_path)
    assert argv == ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "ops"]
    assert body == message
    head, text = body.split(b"\n\n", 1)
    assert b"Subject: Cron <alice@box> echo hello" in head.split(b"\n")
    assert [h for h in head.split(b"\n") if h.startswith(b"X-Cron-Env")][-1] == (
        b"X-Cron-Env: <LOGNAME=alice>"
    )
    assert text == b"hello\n"


def test_an_mta_failure_reports_the_wait_status_and_stderr(tmp_path: Path) -> None:
    result = recorder_mailer(tmp_path, SMARTCRON_MAIL_EXIT="75").send("alice", b"x")
    assert not result.sent
    assert result.error == "got status 0x4b00 from MTA: recorder: failing on purpose"


def test_a_hanging_mta_is_killed_after_the_timeout(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SMARTCRON_MAILDIR": str(tmp_path)}
    mailer = SendmailMailer(RECORDER_CMD, env={**env, "SMARTCRON_MAIL_SLEEP": "30"}, timeout=0.5)
    result = mailer.send("alice", b"x")
    assert not result.sent
    assert result.error is not None and "timed out after 0.5s" in result.error
    assert stored(tmp_path) == []


def test_no_mta_when_the_command_does_not_exist(tmp_path: Path) -> None:
    missing = SendmailMailer(f"{tmp_path}/sendmail -i")
    assert not missing.available()
    result = missing.send("alice", b"x")
    assert not result.sent and result.error is not None and "cannot run" in result.error
    assert not SendmailMailer("no-such-sendmail-anywhere", env={"PATH": str(tmp_path)}).available()


def test_availability_is_existence_not_execute_permission(tmp_path: Path) -> None:
    # do_command.c only stat()s MAILCMD.
    script = tmp_path / "sendmail"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    assert SendmailMailer(str(script)).available()
    assert SendmailMailer("sendmail", env={"PATH": str(tmp_path)}).available()


def test_wait_status_matches_cron_log_format() -> None:
    assert (wait_status(0), wait_status(1), wait_status(-9)) == (0, 0x100, 9)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_as_root_the_mta_runs_as_the_job_owner() -> None:
    # cron_popen(): setgid(e->gid), initgroups(), setuid(e->uid), chdir(HOME).
    maildir = Path(tempfile.mkdtemp(prefix="smartcron-mail-"))
    try:
        maildir.chmod(0o777)
        mode = RECORDER.stat().st_mode
        assert mode & stat.S_IXOTH, "the recorder must be executable by others"
        run_as = RunAs(uid=65534, gid=65534, groups=(65534,), cwd="/tmp")
        result = recorder_mailer(maildir).send("nobody", b"x", run_as=run_as)
        assert result.sent, result.error
        [(_argv, _body, who)] = stored(maildir)
        assert who == {"uid": "65534", "gid": "65534", "groups": "65534", "cwd": "/tmp"}
    finally:
        for child in maildir.iterdir():
            child.unlink()
        maildir.rmdir()


def test_run_as_for_user_reads_passwd_and_groups() -> None:
    run_as = RunAs.for_user("root", home="/srv")
    assert (run_as.uid, run_as.gid, run_as.cwd) == (0, 0, "/srv")
    assert 0 in run_as.groups


def test_recording_mailer_keeps_messages_and_can_fail() -> None:
    mailer = RecordingMailer()
    mailer.send("alice", b"m1")
    assert [(m.recipient, m.message) for m in mailer.sent] == [("alice", b"m1")]
    assert not RecordingMailer(mta=False).available()
    failing = RecordingMailer(fail_with="boom")
    assert failing.send("alice", b"m") == failing.send("bob", b"m")
    assert failing.send("alice", b"m").error == "boom" and failing.sent == []
