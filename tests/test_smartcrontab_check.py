"""The check behind smartcrontab -T, -n and every install (installcheck.check), in process."""

from __future__ import annotations

import pytest

from smartcron.cli import crontabedit
from smartcron.cron.crontab import Kind
from smartcron.daemon import installcheck


def test_a_refused_file_names_its_bad_annotations_too_for_the_daemons_reply():
    pytest.importorskip("smartcron.smart.smartspec")
    data = b"#@smart foo=1\n0 4 * * * x\nbad line\n#@smart bar=2\n0 5 * * * y"
    problems, warnings = installcheck.check(data, "f")
    assert problems == ["f:1: unknown key 'foo'", "f:3: bad minute", "f:4: unknown key 'bar'"]
    assert warnings == [
        "f:5: no newline at end of file; the last line is still read"
        " (Debian's cron would ignore the file)"
    ]


def test_system_lines_for_unknown_users_and_unknown_zones_are_warnings():
    data = b'CRON_TZ=Nowhere/X\n0 2 * * * nosuchuserzz b\nCRON_TZ=""\n0 3 * * * root c\n'
    assert installcheck.check(data, "f", Kind.SYSTEM) == (
        [],
        [
            "f:1: CRON_TZ='Nowhere/X': unknown time zone; using the system zone",
            "f:2: bad username 'nosuchuserzz': skipped",
        ],
    )


class DaemonStore:
    """A RemoteStore's reply: the daemon runs installcheck.check too and returns its warnings."""

    user = "alice"

    def install(self, data: bytes, source: str) -> list[str]:
        return [*installcheck.check(data, source)[1], "a note of the daemon's own"]


def test_a_warning_the_daemon_repeats_is_shown_once(capsys):
    data = b"CRON_TZ=Nowhere/X\n0 4 * * * x\n"
    assert crontabedit.try_install(DaemonStore(), data, "-", dry_run=False)  # type: ignore[arg-type]
    assert capsys.readouterr().err.splitlines() == [
        "-:1: CRON_TZ='Nowhere/X': unknown time zone; using the system zone (warning)",
        "a note of the daemon's own",
    ]
