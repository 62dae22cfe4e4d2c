"""Issue 14, finding 7: the checks a user meets first say everything they know, where,
and what was probably meant (smartcrontab -T, next --file, the config, model --dir,
--version, and no text citing a document users do not have)."""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smartcron import config as configuration
from smartcron.cli import crontab as crontab_cli
from smartcron.cli import ctl as ctl_cli
from smartcron.cli import daemon as daemon_cli
from smartcron.errors import ConfigError
from tests.harness import cli_config

ROOT = Path(__file__).resolve().parent.parent


def check(tmp_path: Path, crontab: str, companion: str | None = None) -> tuple[int, list[str]]:
    """`smartcrontab -T` on `crontab` (and its companion): exit status, stderr lines."""
    path = tmp_path / "tab"
    path.write_text(crontab)
    if companion is not None:
        (tmp_path / "tab.smart.yaml").write_text(companion)
    result = CliRunner().invoke(crontab_cli.main, ["-T", str(path)])
    return result.exit_code, [
        line.replace(str(tmp_path), "D") for line in result.stderr.splitlines()
    ]


def test_check_warns_about_a_name_given_to_two_jobs_and_a_companion_job_no_line_names(tmp_path):
    pytest.importorskip("smartcron.smart.smartspec")
    crontab = "#@smart name=backup\n0 1 * * * a\n#@smart name=backup\n0 2 * * * b\n"
    companion = "jobs:\n  backup:\n    max_load: 2\n  bakcup:\n    max_load: 3\n"
    code, lines = check(tmp_path, crontab, companion)
    assert code == 0  # warnings: the file stays valid, as the daemon runs it
    assert lines == [
        "D/tab:4: name=backup also names line 2 (warning)",
        "D/tab.smart.yaml:4: jobs: 'bakcup' is no annotated line's name= (did you mean"
        " 'backup'?) (warning)",
    ]


@pytest.mark.parametrize("comment", ["#@smrt window=2h", "# @smart", "#@Smart", "#smart ac=yes"])
def test_check_hints_at_a_mistyped_smart_line_that_cron_reads_as_a_comment(tmp_path, comment):
    code, lines = check(tmp_path, f"# start the backup at noon\n{comment}\n0 1 * * * a\n")
    head = comment.split("=")[0].rsplit(" ", 1)[0] if "=" in comment else comment
    assert code == 0
    assert lines == [f"D/tab:2: {head!r} is read as a comment: did you mean '#@smart'? (warning)"]


def test_next_reports_an_unknown_cron_tz_at_its_line_and_goes_on_in_the_default_zone(tmp_path):
    path = tmp_path / "tab"
    path.write_text("CRON_TZ=Mars/Base\n0 1 * * * a\n")
    args = ["next", "--file", str(path), "--count", "1", "--tz", "UTC"]
    args += ["--after", "2026-01-01T00:00"]
    result = CliRunner().invoke(ctl_cli.main, args)
    assert result.exit_code == 0
    assert result.stderr == (
        f"{path}:1: CRON_TZ='Mars/Base': unknown time zone; using the system zone (warning)\n"
    )
    assert result.stdout == f"{path}:2: 0 1 * * * a\n  2026-01-01T01:00:00+00:00\n"


def test_a_config_with_several_mistakes_reports_each_with_its_line_and_the_nearest_key(tmp_path):
    path = tmp_path / "smartcron.toml"
    path.write_text('# mine\nmax_concurent = 4\nmode = "smrt"\n\nstate_dir = 5\nexplore = 1\n')
    with pytest.raises(ConfigError) as err:
        configuration.read_config(path, user_mode=True)
    assert str(err.value).splitlines() == [
        f"{path}:2: unknown key 'max_concurent' (did you mean 'max_concurrent'?)",
        f"{path}:5: state_dir must be a string path",
        f"{path}:3: mode: must be one of smart, legacy, cron, not 'smrt' (did you mean 'smart'?)",
        f"{path}:6: explore: must be true or false",
    ]
    result = CliRunner().invoke(ctl_cli.main, ["status", "--config", str(path)])
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 4
    result = CliRunner().invoke(crontab_cli.main, ["--config", str(path), "-l"])
    assert result.exit_code == 1
    assert [line.split(": ")[0] for line in result.stderr.splitlines()] == ["smartcrontab"] * 4


def test_model_dir_says_which_of_foreign_owner_or_writable_mode_is_wrong(tmp_path):
    pytest.importorskip("onnxruntime")
    from smartcron.ai.model import load_model

    tmp_path.chmod(0o775)
    found = load_model(tmp_path, owner_uid=os.getuid())
    assert str(found.reason) == f"{tmp_path}: directory writable by group or others (mode 0775)"
    tmp_path.chmod(0o755)
    if os.geteuid() == 0:  # root's own directories are always accepted: give it away
        os.chown(tmp_path, 12345, -1)
        owner, daemon = 12345, 0
    else:
        owner, daemon = os.getuid(), os.getuid() + 1
    found = load_model(tmp_path, owner_uid=daemon)
    assert (
        str(found.reason) == f"{tmp_path}: directory owned by uid {owner}, not root or uid {daemon}"
    )


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (crontab_cli.main, "smartcrontab"),
        (ctl_cli.main, "smartcronctl"),
        (daemon_cli.main, "smartcron"),
    ],
)
def test_version_prints_the_package_version(command: click.Command, name: str):
    result = CliRunner().invoke(command, ["--version"], prog_name=name)
    assert result.exit_code == 0
    assert result.stdout == f"{name} {version('smartcron')}\n"


SPEC_CITATION = re.compile(r"\bSPEC\b|shared/SPEC")


def help_texts(cmd: click.Command, path: tuple[str, ...]):
    """(command path, its --help text) for `cmd` and every subcommand."""
    ctx = click.Context(cmd, info_name=path[-1], **cmd.context_settings)  # click caches -h
    yield path, cmd.get_help(ctx)
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                yield from help_texts(sub, (*path, name))


HELPS = [
    *help_texts(crontab_cli.main, ("smartcrontab",)),
    *help_texts(ctl_cli.main, ("smartcronctl",)),
    *help_texts(daemon_cli.main, ("smartcron",)),
]


@pytest.mark.parametrize(("path", "text"), HELPS, ids=[" ".join(h[0]) for h in HELPS])
def test_no_help_text_cites_the_design_spec_users_do_not_have(path, text):
    assert SPEC_CITATION.findall(text) == []


def test_no_man_page_or_readme_line_cites_the_design_spec():
    files = [*sorted((ROOT / "man").iterdir()), ROOT / "README.md"]
    found = [
        f"{file.name}:{number}"
        for file in files
        for number, line in enumerate(file.read_text().splitlines(), 1)
        if SPEC_CITATION.search(line)
    ]
    assert found == []


@pytest.mark.parametrize("as_json", [False, True])
def test_status_exits_1_when_a_crontab_file_is_refused(tmp_path, as_json):
    """A syntax error refuses the file (cron(8) skips a bad crontab whole): status says
    so and exits 1, so a monitoring check sees it; a good file exits 0."""
    from click.testing import CliRunner

    conf = cli_config(tmp_path)
    args = ["status", "--user", "--config", str(conf)] + ["--json"] * as_json
    (tmp_path / "crontab").write_text("0 2 * * * backup\n")
    assert CliRunner().invoke(ctl_cli.main, args).exit_code == 0
    (tmp_path / "crontab").write_text("0 2 * * backup\n61 * * * * bad\n")
    result = CliRunner().invoke(ctl_cli.main, args)
    assert result.exit_code == 1 and "refused" in result.output


def test_a_relative_mail_command_is_taken_relative_to_the_config_file(tmp_path):
    """smartcron(8): relative paths in the file are relative to its directory; that held
    for path keys but not for mail_command, so the demo's mail silently failed."""
    from smartcron.config import read_config

    conf = tmp_path / "etc" / "smartcron.toml"
    conf.parent.mkdir()
    conf.write_text('mail_command = "bin/sendmail-recorder -i -oem"\n')
    got = read_config(conf, user_mode=True).mail_argv
    assert got == [str(tmp_path / "etc" / "bin" / "sendmail-recorder"), "-i", "-oem"]
    conf.write_text('mail_command = "sendmail -i"\n')  # a bare name: PATH, untouched
    assert read_config(conf, user_mode=True).mail_argv == ["sendmail", "-i"]
