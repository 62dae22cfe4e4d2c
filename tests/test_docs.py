"""The man pages render cleanly and document every command, option and config key.

The option check walks the click commands as they are *now*, so an option added to any
command fails here until its man page names it (in the command's own `.SS` subsection
for smartcronctl subcommands).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.shell_completion import get_completion_class
from click.testing import CliRunner

from smartcron.cli import crontab as crontab_cli
from smartcron.cli import ctl as ctl_cli
from smartcron.cli import daemon as daemon_cli
from smartcron.config import Config

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
PAGES = ["smartcron.8", "smartcrontab.1", "smartcrontab.5", "smartcronctl.1"]
# Each command line tool and the page that documents it.
TOOLS = {
    "smartcron": (daemon_cli.main, "smartcron.8"),
    "smartcrontab": (crontab_cli.main, "smartcrontab.1"),
    "smartcronctl": (ctl_cli.main, "smartcronctl.1"),
}


def plain(roff: str) -> str:
    """Roff source as searchable text: escapes for '-', quotes and fonts undone."""
    text = roff.replace("\\-", "-").replace("\\(dq", '"').replace("\\(aq", "'")
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", text)
    return text.replace("\\&", "").replace("\\ ", " ").replace("\\e", "\\")


def sections(roff: str) -> dict[str, str]:
    """`.SS` subsections by title (quotes and escapes removed), as plain text."""
    out: dict[str, str] = {}
    title = None
    for line in plain(roff).splitlines():
        if line.startswith((".SS ", ".SH ")):
            title = line[4:].strip().strip('"') if line.startswith(".SS ") else None
            if title is not None:
                out[title] = ""
            continue
        if title is not None:
            out[title] += line + "\n"
    return out


def mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def walk(cmd: click.Command, path: tuple[str, ...]):
    """(path, command, context) for a command and all its subcommands, recursively."""
    ctx = click.Context(cmd, info_name=path[-1], **cmd.context_settings)
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name))


def option_names(cmd: click.Command, ctx: click.Context) -> list[str]:
    names = []
    for param in cmd.get_params(ctx):
        if isinstance(param, click.Option) and not param.hidden:
            names += [*param.opts, *param.secondary_opts]
    return names


ALL_COMMANDS = [
    (path, cmd, ctx)
    for tool, (main, _page) in TOOLS.items()
    for path, cmd, ctx in walk(main, (tool,))
]
IDS = [" ".join(path) for path, _cmd, _ctx in ALL_COMMANDS]


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders_without_any_groff_warning(page: str) -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (.ci/run: apt-get install groff)")
    result = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(MAN / page)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"groff warnings for {page}:\n{result.stderr}"


@pytest.mark.parametrize("page", PAGES)
def test_man_page_passes_mandoc_lint(page: str) -> None:
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc is not installed (groff's check above still runs)")
    result = subprocess.run(
        ["mandoc", "-T", "lint", "-W", "warning", str(MAN / page)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("page", PAGES)
def test_man_page_names_itself_and_has_the_usual_sections(page: str) -> None:
    roff = (MAN / page).read_text()
    name, section = page.rsplit(".", 1)
    assert re.search(rf"^\.TH {name.upper()} {section} ", roff, re.M)
    for heading in ("NAME", "DESCRIPTION", '"SEE ALSO"'):
        assert re.search(rf"^\.SH {heading}$", roff, re.M), heading
    if section != "5":
        assert re.search(r"^\.SH SYNOPSIS$", roff, re.M)
        assert re.search(r'^\.SH "EXIT STATUS"$', roff, re.M)


# --------------------------------------------------------------------------- coverage


def test_every_cli_option_is_documented_in_its_man_page() -> None:
    missing = []
    for path, cmd, ctx in ALL_COMMANDS:
        page = TOOLS[path[0]][1]
        roff = (MAN / page).read_text()
        subsections = sections(roff)
        where, text = page, plain(roff)
        if len(path) > 1:
            title = " ".join(path[1:])
            if title not in subsections:
                missing.append(f"{' '.join(path)}: no '.SS {title}' subsection in man/{page}")
                continue
            where, text = f"{page}, .SS {title}", subsections[title]
        for name in option_names(cmd, ctx):
            if name in ("-h", "--help") and len(path) > 1:
                continue  # COMMON OPTIONS documents -h for every subcommand
            if not mentions(text, name):
                missing.append(f"{' '.join(path)}: option {name} not in man/{where}")
    assert not missing, "undocumented:\n" + "\n".join(missing)


def test_every_configuration_key_is_in_smartcron_8_and_the_example_config() -> None:
    page = plain((MAN / "smartcron.8").read_text())
    example = (ROOT / "contrib" / "smartcron.toml.example").read_text()
    keys = [f.name for f in fields(Config) if f.name not in ("user_mode", "config_file")]
    assert keys
    for key in keys:
        assert re.search(rf"^\.BR? (.* )?{key}\b", page, re.M), f"{key} not in smartcron(8)"
        assert re.search(rf"^# {key} = ", example, re.M), f"{key} not in the example"


def test_the_example_config_is_valid_when_uncommented(tmp_path: Path) -> None:
    from smartcron import config as configuration

    example = (ROOT / "contrib" / "smartcron.toml.example").read_text()
    lines = [line[2:] for line in example.splitlines() if re.match(r"^# [a-z_]+ = ", line)]
    path = tmp_path / "smartcron.toml"
    path.write_text("\n".join(lines) + "\n")
    config = configuration.read_config(path, user_mode=True)
    assert config.mode == "smart" and config.output_cap == 1024 * 1024


def test_every_smart_key_is_in_smartcrontab_5_and_the_readme() -> None:
    annotations = pytest.importorskip("smartcron.smart.annotations")
    page = plain((MAN / "smartcrontab.5").read_text())
    draft = (ROOT / "README.md").read_text()
    for key in annotations.KEYS:
        assert re.search(rf"^\.B(I|R)? {key}=", page, re.M), f"{key} not in smartcrontab(5)"
        assert f"`{key}" in draft, f"{key} not in the README's cheat-sheet"


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize(("path", "cmd", "ctx"), ALL_COMMANDS, ids=IDS)
def test_every_command_has_help_with_an_example(
    path: tuple[str, ...], cmd: click.Command, ctx: click.Context
) -> None:
    assert cmd.help and cmd.help.strip(), f"{' '.join(path)} has no help text"
    assert "Example" in cmd.help, f"{' '.join(path)}: help text without an example"


@pytest.mark.parametrize(("path", "cmd", "ctx"), ALL_COMMANDS, ids=IDS)
def test_dash_h_prints_the_help(path: tuple[str, ...], cmd: click.Command, ctx: click.Context):
    main = TOOLS[path[0]][0]
    result = CliRunner().invoke(main, [*path[1:], "-h"], prog_name=path[0])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:"), result.output


# --------------------------------------------------------------------------- completion


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize(("shell", "name"), [("bash", "{}.bash"), ("zsh", "_{}")])
def test_shipped_completion_scripts_are_what_click_generates(
    tool: str, shell: str, name: str
) -> None:
    main = TOOLS[tool][0]
    var = f"_{tool.upper()}_COMPLETE"
    expected = get_completion_class(shell)(main, {}, tool, var).source()
    shipped = (ROOT / "contrib" / "completion" / name.format(tool)).read_text()
    assert shipped.strip() == expected.strip(), "stale: run `make completion`"
