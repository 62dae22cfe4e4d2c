"""A simulated week of the shipped laptop scenario, as the dashboard reads it: a user-mode
config file (its crontab a copy of fixtures/crontabs/laptop.crontab and its companion),
and the history database the simulator writes under policy rules (deferrals, waits,
failures, retries), so every view has something to show. Shared by the dashboard tests
(tests/test_dash_*.py, tests/test_dashboard_*.py)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smartcron.cli.sim import simulation_advisor
from smartcron.sim import simulator
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CRONTAB = FIXTURES / "crontabs" / "laptop.crontab"
TRACE = FIXTURES / "traces" / "laptop-8w.csv.gz"
WORLD = FIXTURES / "worlds" / "laptop.yaml"
START = datetime(2026, 1, 5, tzinfo=UTC)  # the trace's first minute, a Monday
MODELS = Path(__file__).resolve().parents[1] / "models"  # the shipped default model
SMART_JOBS = ("nightly_backup", "photo_sync", "mail_index", "updatedb_user", "build_cache")


@dataclass(frozen=True)
class LaptopWeek:
    config: Path  # smartcron.toml (user mode: pass user_mode=True with it)
    history: Path  # state/history.db
    crontab: Path
    state: Path


def config_text(top: Path) -> str:
    keys = {
        "user_crontab": top / "crontab",
        "state_dir": top / "state",
        "run_dir": top / "run",
        "jobs_dir": top / "jobs",
        "model_dir": top / "state" / "models",
        "allow_file": top / "cron.allow",
        "deny_file": top / "cron.deny",
    }
    return "".join(f'{key} = "{value}"\n' for key, value in keys.items()) + "explore = false\n"


def laptop_week(top: Path, days: float = 7, policy: str = "rules") -> LaptopWeek:
    """`days` of the laptop scenario from START, under `policy`, recorded in top/state.
    Policy "smart" decides with the shipped model (exploration off: every start records
    the predicted success), copied to top/state/models so the daemon would use it too."""
    top.mkdir(parents=True, exist_ok=True)
    for name in ("state", "run", "jobs"):
        (top / name).mkdir(exist_ok=True, mode=0o700)
    tab = top / "crontab"
    shutil.copy(CRONTAB, tab)
    shutil.copy(CRONTAB.with_name(CRONTAB.name + ".smart.yaml"), top / "crontab.smart.yaml")
    os.chmod(tab, 0o600)
    config = top / "smartcron.toml"
    config.write_text(config_text(top))
    history = top / "state" / "history.db"
    scenario = simulator.load_scenario(tab, zone=UTC)
    trace = read_trace(TRACE)
    advisor, on_run = None, None
    if policy == "smart":
        models = top / "state" / "models"
        shutil.copytree(MODELS, models, dirs_exist_ok=True)
        for path in (models, *models.iterdir()):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        advisor, on_run = simulation_advisor(str(models), explore=False)
    simulator.simulate(
        scenario,
        trace,
        read_world(WORLD),
        policy,
        end=START + timedelta(days=days),
        history=str(history),
        advisor=advisor,
        on_run=on_run,
    )
    return LaptopWeek(config=config, history=history, crontab=tab, state=top / "state")
