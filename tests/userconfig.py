"""A user-mode configuration on a crontab in a temporary directory (daemon tests)."""

from __future__ import annotations

import os
from pathlib import Path

from smartcron import config as configuration


def user_config(tmp_path: Path, crontab: str, **settings: object) -> configuration.Config:
    """Write `crontab` (mode 0600; left alone when unchanged, so its mtime holds) and a
    user-mode Config whose every path lies under `tmp_path`."""
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
