"""The real `smartcron` process on a temporary configuration (end-to-end tests)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def write_config(tmp_path: Path, crontab: str, **extra: str) -> Path:
    tab = tmp_path / "crontab"
    tab.write_text(crontab)
    tab.chmod(0o600)
    lines = [
        'user_crontab = "crontab"',
        'state_dir = "state"',
        'run_dir = "run"',
        'jobs_dir = "jobs"',
        f'mail_command = "{tmp_path}/no-such-sendmail"',
    ] + [f"{key} = {value}" for key, value in extra.items()]
    config = tmp_path / "smartcron.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "smartcron"), "--user", "--foreground", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def runs(state: Path) -> list[tuple]:
    db = state / "history.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT command, status, exit_code, trigger FROM runs ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out
