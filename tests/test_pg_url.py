"""A fleet's history_url (smartcron.store.pgurl): never a password in it, none in a
message; the password from a private file; the daemon's light path without psycopg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smartcron import config as configuration
from smartcron.errors import ConfigError
from smartcron.store.pgurl import connect_kwargs, redact, url_problem


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('history_url = "postgresql://u:s3cret@db/h"', "must not hold a password"),
        ('history_url = "postgresql://u@db/h?password=s3cret"', "must not hold a password"),
        ('history_url = "mysql://u@db/h"', "must be a postgresql:// URL"),
        ("history_url = 5", "must be a postgresql:// URL"),
        ('fleet_host = "a b"', "fleet_host: must be a host name"),
    ],
)
def test_a_bad_fleet_setting_is_refused_at_its_line_without_echoing_a_secret(
    tmp_path: Path, text: str, why: str
) -> None:
    file = tmp_path / "smartcron.toml"
    file.write_text(f'mode = "smart"\n{text}\n')
    with pytest.raises(ConfigError) as err:
        configuration.read_config(file, user_mode=True)
    assert f"{file}:2: " in str(err.value) and why in str(err.value)
    assert "s3cret" not in str(err.value)


def test_redact_hides_passwords_in_urls_and_conninfo_and_keeps_the_rest() -> None:
    said = "connect to postgresql://bob:pw1@db:5432/h failed; dsn password=pw2 host=db"
    assert redact(said) == (
        "connect to postgresql://bob:***@db:5432/h failed; dsn password=*** host=db"
    )
    assert redact("postgresql://bob@db/h") == "postgresql://bob@db/h"
    assert url_problem("postgresql://bob@/h?host=/run/postgresql") is None


def test_the_password_comes_from_a_private_file_only(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        connect_kwargs("postgresql://u@db/h", secret)
    secret.chmod(0o600)
    assert connect_kwargs("postgresql://u@db/h", secret)["password"] == "s3cret"
    assert "password" not in connect_kwargs("postgresql://u@db/h", None)


def test_a_daemon_without_history_url_never_imports_psycopg(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from smartcron.config import read_config\n"
        "from smartcron.store.fleetparts import fleet_for\n"
        "from smartcron.store.history import HistoryStore\n"
        f"cfg = read_config({str(tmp_path / 'none.toml')!r}, user_mode=True)\n"
        "fleet = fleet_for(cfg, HistoryStore(':memory:'))\n"
        "print(type(fleet.claimer).__name__, 'psycopg' in sys.modules)\n"
    )
    (tmp_path / "none.toml").write_text("")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["LocalClaimer", "False"]
