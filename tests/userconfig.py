"""Configurations in a temporary directory (daemon and control socket tests)."""

from __future__ import annotations

import os
from pathlib import Path

from smartcron import config as configuration


def user_config(tmp_path: Path, crontab: str, **settings: object) -> configuration.Config:
    """Write `crontab` (mode 0600; left alone when unchanged, so its mtime holds) and a
    user-mode Config whose every path lies under `tmp_path`. Exploration is off unless
    asked for (`explore=True`): tests of the rules and the model need firings to start
    when those say, not at a random minute (tests/test_explore_daemon.py turns it on)."""
    settings.setdefault("explore", False)
    tmp_path.mkdir(parents=True, exist_ok=True)
    tab = tmp_path / "crontab"
    if not tab.exists() or tab.read_text() != crontab:
        tab.write_text(crontab)
        os.chmod(tab, 0o600)
    return configuration.Config(
        user_mode=True,
        config_file=None,
        user_crontab=tab,
        crontab=None,
        cron_d=None,
        spool_dir=None,
        jobs_dir=tmp_path / "jobs",
        state_dir=tmp_path / "state",
        run_dir=tmp_path / "run",
        allow_file=tmp_path / "allow",
        deny_file=tmp_path / "deny",
        **settings,  # type: ignore[arg-type]
    )


def make_config(tmp_path: Path, user_mode: bool = False) -> configuration.Config:
    """A system-mode (or `user_mode`) Config loaded from a file, its spool, state and run
    directories under `tmp_path` (control socket tests)."""
    path = tmp_path / "smartcron.toml"
    keys = ("spool_dir", "state_dir", "run_dir", "jobs_dir", "allow_file", "deny_file")
    path.write_text("".join(f'{k} = "{k}"\n' for k in keys) + 'crontab = ""\ncron_d = ""\n')
    (tmp_path / "run_dir").mkdir()
    return configuration.read_config(path, user_mode=user_mode)


def system_config(tmp_path: Path, **settings: object) -> configuration.Config:
    """A system-mode Config on tmp_path: cron.d/ and spool/ made, /etc/crontab absent
    (exploration off unless asked for, as in user_config)."""
    settings.setdefault("explore", False)
    for name in ("cron.d", "spool"):
        (tmp_path / name).mkdir(exist_ok=True)
    return configuration.Config(
        user_mode=False,
        config_file=None,
        user_crontab=None,
        crontab=tmp_path / "crontab",
        cron_d=tmp_path / "cron.d",
        spool_dir=tmp_path / "spool",
        jobs_dir=tmp_path / "jobs",
        state_dir=tmp_path / "state",
        run_dir=tmp_path / "run",
        allow_file=tmp_path / "cron.allow",
        deny_file=tmp_path / "cron.deny",
        **settings,  # type: ignore[arg-type]
    )
