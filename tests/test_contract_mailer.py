"""The Mailer contract, one suite run against every implementation: SendmailMailer
driving the recording sendmail of fixtures/bin (a real process), and
testing.RecordingMailer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from smartcron.run.mail import Mailer, SendmailMailer
from smartcron.testing import RecordingMailer

MESSAGE = b"From: root (Cron Daemon)\nSubject: x\n\nbody \xff\n"


@dataclass
class Kit:
    """A working mailer, one whose MTA refuses, one with no MTA, and what was delivered."""

    working: Mailer
    refusing: Mailer
    absent: Mailer
    delivered: Callable[[], list[tuple[str, bytes]]]


@pytest.fixture(params=["sendmail", "recording"])
def kit(request: pytest.FixtureRequest, tmp_path) -> Kit:
    if request.param == "recording":
        mailer = RecordingMailer()
        return Kit(
            mailer,
            RecordingMailer(fail_with="refused"),
            RecordingMailer(mta=False),
            lambda: [(m.recipient, m.message) for m in mailer.sent],
        )
    rec = request.getfixturevalue("sendmail_recorder")
    return Kit(
        rec.mailer(),
        rec.mailer(SMARTCRON_MAIL_EXIT="75"),
        SendmailMailer(f"{tmp_path}/no-such-sendmail -i"),
        lambda: [(argv[-1], body) for argv, body, _ in rec.stored()],
    )


def test_a_working_mta_is_available_and_gets_the_message_byte_for_byte(kit):
    assert kit.working.available()
    result = kit.working.send("alice,bob@example.org", MESSAGE)
    assert (result.sent, result.error) == (True, None)
    assert kit.delivered() == [("alice,bob@example.org", MESSAGE)]


def test_a_refusing_mta_is_a_result_that_says_why_not_an_exception(kit):
    result = kit.refusing.send("alice", MESSAGE)
    assert not result.sent and result.error


def test_no_mta_is_not_available(kit):
    assert not kit.absent.available()
