"""The TOML configuration: defaults per mode, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcron import config as configuration
from smartcron.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smartcron.toml"
    path.write_text(text)
    return path


def test_system_mode_defaults_are_crons_paths(monkeypatch):
    monkeypatch.delenv("SMARTCRON_CONFIG", raising=False)
    if configuration.SYSTEM_CONFIG.exists():
        pytest.skip(f"{configuration.SYSTEM_CONFIG} exists on this machine")
    cfg = configuration.read_config(None, user_mode=False)
    assert cfg.crontab == Path("/etc/crontab")
    assert cfg.cron_d == Path("/etc/cron.d")
    assert cfg.spool_dir == Path("/var/spool/cron/crontabs")
    assert cfg.state_dir == Path("/var/lib/smartcron")
    assert cfg.socket_path == Path("/run/smartcron.sock")
    assert cfg.mail_argv == ["/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem"]


def test_user_mode_reads_only_the_users_own_crontab(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("SMARTCRON_CONFIG", raising=False)
    cfg = configuration.read_config(None, user_mode=True)
    assert cfg.user_crontab == tmp_path / "conf" / "smartcron" / "crontab"
    assert (cfg.crontab, cfg.cron_d, cfg.spool_dir) == (None, None, None)
    assert cfg.state_dir == tmp_path / "data" / "smartcron"
    assert cfg.run_dir == cfg.state_dir  # no runtime dir: never a shared /tmp path


def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path):
    cfg = configuration.read_config(
        write(tmp_path, 'state_dir = "st"\ncron_d = ""\n'), user_mode=False
    )
    assert cfg.state_dir == tmp_path / "st"
    assert cfg.cron_d is None  # "" disables


def test_smartcron_config_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCRON_CONFIG", str(write(tmp_path, "max_concurrent = 3\n")))
    assert configuration.read_config(user_mode=False).max_concurrent == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ('mode = "clever"\n', "mode: must be one of smart, legacy, cron"),
        ('sandbox = "docker"\n', "sandbox: must be one of none, systemd-run, firejail"),
        ("max_concurrent = 0\n", "max_concurrent: must be a positive integer"),
        ("max_concurrent = true\n", "max_concurrent: must be a positive integer"),
        ("kill_grace = -1\n", "kill_grace: must be a positive number of seconds"),
        ("model_max_age = -1\n", "model_max_age: must be a positive number of days"),
        ("inference_bound_ms = 0\n", "must be a positive number of milliseconds"),
        ("state_dir = 5\n", "state_dir must be a string path"),
        ('mail_command = "sendmail \'unclosed"\n', "mail_command: No closing quotation"),
        ("mode = \n", "Invalid value"),
        ("user_mode = true\n", "unknown key 'user_mode'"),
    ],
)
def test_bad_configuration_is_an_error_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        configuration.read_config(path, user_mode=False)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_an_explicit_config_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        configuration.read_config(tmp_path / "missing.toml", user_mode=False)
