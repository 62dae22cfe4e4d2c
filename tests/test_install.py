"""make install / uninstall, the systemd units, the logrotate file and migrate-from-cron."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
COMMANDS = ("smartcron", "smartcrontab", "smartcronctl")
PROFILES = ("laptop", "server", "quiet-hours")
# What `make install` writes, relative to DESTDIR (PREFIX=/usr/local, sysconfdir=/etc).
INSTALLED = [
    *(f"usr/local/bin/{c}" for c in COMMANDS),
    "usr/local/sbin/smartcron-migrate-from-cron",
    "usr/local/share/man/man1/smartcrontab.1",
    "usr/local/share/man/man1/smartcronctl.1",
    "usr/local/share/man/man5/smartcrontab.5",
    "usr/local/share/man/man8/smartcron.8",
    "usr/local/lib/systemd/system/smartcron.service",
    "usr/local/lib/systemd/user/smartcron.service",
    *(f"usr/local/share/bash-completion/completions/{c}" for c in COMMANDS),
    *(f"usr/local/share/zsh/site-functions/_{c}" for c in COMMANDS),
    "usr/local/lib/smartcron/site/smartcron/__init__.py",
    # the policy profiles: the package's own copy, and one to read and copy to /etc
    *(f"usr/local/lib/smartcron/site/smartcron/profiles/{p}.yaml" for p in PROFILES),
    *(f"usr/local/share/smartcron/profiles/{p}.yaml" for p in PROFILES),
    "etc/smartcron/smartcron.toml.example",
    "etc/logrotate.d/smartcron",
]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # --no-deps: the dependencies are the dev venv's already; this tests the layout.
    cmd = ["make", "-C", str(ROOT), f"PYTHON={sys.executable}", "PIP_INSTALL_FLAGS=--no-deps"]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_make_install_into_destdir_then_uninstall_removes_exactly_that(tmp_path: Path) -> None:
    dest = tmp_path / "stage"
    (dest / "etc/smartcron").mkdir(parents=True)
    config = dest / "etc/smartcron/smartcron.toml"
    config.write_text('mode = "cron"\n')
    make("install", f"DESTDIR={dest}")
    for rel in INSTALLED:
        assert (dest / rel).exists(), rel
    assert config.read_text() == 'mode = "cron"\n', "an existing config is never touched"
    # Launchers and units name the final paths, never DESTDIR.
    launcher = (dest / "usr/local/bin/smartcronctl").read_text()
    assert str(dest) not in launcher and "/usr/local/lib/smartcron/site" in launcher
    assert os.access(dest / "usr/local/bin/smartcronctl", os.X_OK)
    unit = (dest / "usr/local/lib/systemd/system/smartcron.service").read_text()
    assert "ExecStart=/usr/local/bin/smartcron --foreground" in unit
    user_unit = (dest / "usr/local/lib/systemd/user/smartcron.service").read_text()
    assert "ExecStart=/usr/local/bin/smartcron --user --foreground" in user_unit
    # The staged package is importable from its site directory, with its metadata.
    site = dest / "usr/local/lib/smartcron/site"
    probe = (
        "import smartcron, importlib.metadata as m;"
        " print(smartcron.__file__, m.version('smartcron'))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert out.startswith(str(site))
    if shutil.which("man") is not None:
        found = subprocess.run(
            ["man", "-M", str(dest / "usr/local/share/man"), "-w", "smartcron"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == str(dest / "usr/local/share/man/man8/smartcron.8")
    make("uninstall", f"DESTDIR={dest}")
    for rel in INSTALLED:
        assert not (dest / rel).exists(), rel
    assert not (dest / "usr/local/lib/smartcron").exists()
    assert config.read_text() == 'mode = "cron"\n'


def test_uninstall_keeps_an_edited_logrotate_file(tmp_path: Path) -> None:
    dest = tmp_path / "stage"
    make("install-data", f"DESTDIR={dest}")
    rotate = dest / "etc/logrotate.d/smartcron"
    rotate.write_text(rotate.read_text().replace("rotate 8", "rotate 52"))
    make("install-data", f"DESTDIR={dest}")
    assert "rotate 52" in rotate.read_text(), "install never overwrites it"
    make("uninstall", f"DESTDIR={dest}")
    assert rotate.exists()


@pytest.mark.slow
def test_make_install_without_destdir_builds_a_venv_at_the_final_path(tmp_path: Path) -> None:
    prefix, etc = tmp_path / "prefix", tmp_path / "etc"
    make("install", f"PREFIX={prefix}", f"sysconfdir={etc}")
    venv_python = prefix / "lib/smartcron/bin/python"
    for command in COMMANDS:
        link = prefix / "bin" / command
        assert link.is_symlink() and link.resolve() == (prefix / "lib/smartcron/bin" / command)
        assert link.read_text().startswith(f"#!{venv_python}")
    out = subprocess.run(
        [str(venv_python), "-c", "import smartcron; print(smartcron.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert out.startswith(str(prefix / "lib/smartcron"))
    assert (etc / "smartcron/smartcron.toml.example").exists()
    make("uninstall", f"PREFIX={prefix}", f"sysconfdir={etc}")
    assert not (prefix / "lib/smartcron").exists()
    assert not any(p.is_file() or p.is_symlink() for p in tmp_path.rglob("*"))


# --------------------------------------------------------------------------- systemd


@pytest.mark.parametrize(
    ("unit", "user"), [("smartcron.service", False), ("smartcron-user.service", True)]
)
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path, unit: str, user: bool) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (.ci/run: apt-get install systemd)")
    # verify checks that ExecStart exists: point it at one that does.
    text = (CONTRIB / unit).read_text().replace("/usr/local/bin/smartcron", "/bin/true")
    copy = tmp_path / "smartcron.service"
    copy.write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    cmd = ["systemd-analyze", *(["--user"] if user else []), "verify", "--man=no", str(copy)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    if result.returncode != 0 and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    # verify exits 0 on unknown keys and bad values: any message is a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("unit", ["smartcron.service", "smartcron-user.service"])
def test_systemd_unit_is_a_notify_service_that_leaves_jobs_running(unit: str) -> None:
    text = (CONTRIB / unit).read_text()
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=process",
        "Restart=on-failure",
    ):
        assert f"\n{line}\n" in text, line
    assert ("Conflicts=cron.service" in text) == (unit == "smartcron.service")
    assert ("--user" in text.split("ExecStart=")[1].splitlines()[0]) == (
        unit != "smartcron.service"
    )


def test_logrotate_file_is_valid(tmp_path: Path) -> None:
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed (.ci/run: apt-get install logrotate)")
    result = subprocess.run(
        ["logrotate", "--debug", "--state", str(tmp_path / "state"),
         str(CONTRIB / "logrotate/smartcron")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


# --------------------------------------------------------------------------- migrate-from-cron


@pytest.fixture
def fake_systemctl(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A systemctl that logs its arguments and knows cron.service and smartcron.service."""
    bin_dir, log = tmp_path / "bin", tmp_path / "systemctl.log"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit 0\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}, log


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    shell = shutil.which("dash") or "/bin/sh"  # POSIX sh, not bash
    return subprocess.run(
        [shell, str(CONTRIB / "migrate-from-cron"), *args], capture_output=True, text=True, env=env
    )


def test_migrate_from_cron_is_a_dry_run_by_default(fake_systemctl) -> None:
    env, log = fake_systemctl
    result = migrate(env)
    assert result.returncode == 0, result.stderr
    assert "would run: systemctl disable --now cron.service" in result.stdout
    assert "would run: systemctl enable --now smartcron.service" in result.stdout
    calls = log.read_text().splitlines()
    assert all(call.startswith("cat ") for call in calls), calls


@pytest.mark.skipif(os.geteuid() != 0, reason="--yes needs root")
@pytest.mark.parametrize(
    ("args", "order"),
    [
        (["--yes"], ["disable --now cron.service", "enable --now smartcron.service"]),
        (["--back", "--yes"], ["disable --now smartcron.service", "enable --now cron.service"]),
    ],
)
def test_migrate_from_cron_yes_stops_the_old_daemon_first(fake_systemctl, args, order) -> None:
    env, log = fake_systemctl
    result = migrate(env, *args)
    assert result.returncode == 0, result.stderr
    assert [c for c in log.read_text().splitlines() if not c.startswith("cat ")] == order


def test_migrate_from_cron_rejects_an_unknown_option_with_usage(fake_systemctl) -> None:
    env, _log = fake_systemctl
    result = migrate(env, "--force")
    assert result.returncode == 2 and "usage: migrate-from-cron" in result.stderr
    assert migrate(env, "-h").returncode == 0
