"""Configuration: paths and settings for system mode (root) and user mode (smartcron(8)).

Every path can be overridden in a TOML file; relative paths in that file are taken
relative to the file's own directory, so a demo or test config can sit beside its
crontabs. Unknown keys are an error naming the key.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

from smartcron.errors import ConfigError

APP = "smartcron"
MODES = ("smart", "legacy", "cron")
SANDBOXES = ("none", "systemd-run", "firejail")
DEFAULT_MAIL_COMMAND = "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem"
SYSTEM_CONFIG = Path("/etc/smartcron/smartcron.toml")
# Retraining schedules by name: early morning, when a machine that is on is idle.
RETRAIN_ALIASES = {"off": "", "daily": "30 4 * * *", "weekly": "30 4 * * 0"}


@dataclass(frozen=True, kw_only=True)
class Config:
    user_mode: bool
    config_file: Path | None
    user_crontab: Path | None  # user mode: the user's own crontab (user format)
    crontab: Path | None  # system mode: /etc/crontab (None: disabled)
    cron_d: Path | None
    spool_dir: Path | None
    jobs_dir: Path
    state_dir: Path
    run_dir: Path
    allow_file: Path
    deny_file: Path
    mail_command: str = DEFAULT_MAIL_COMMAND
    max_concurrent: int = 8
    mode: str = "smart"
    sandbox: str = "none"
    job_log_dir: Path | None = None  # per-job log files (e.g. /var/log/smartcron)
    history_days: int = 90  # retention of runs and decisions
    output_cap: int = 1024 * 1024  # bytes of a run's output kept and mailed
    kill_grace: float = 10.0  # seconds between SIGTERM and SIGKILL on timeout
    fqdn_in_subject: bool = False
    mtime_check: float = 60.0  # seconds between crontab rescans when inotify is missing
    model_dir: Path | None = None  # the daemon's own model (None: state_dir/models)
    use_default_model: bool | Path = False  # True: the shipped models/; or a directory
    model_max_age: float = 365.0  # days: an older model card is refused as stale
    inference_bound_ms: float = 50.0  # a slower inference counts as a model failure
    retrain: str = "off"  # off | daily | weekly | a cron expression
    explore: bool = True  # smart mode: random starts while a job learns (smart.explore)
    presence: bool = True  # sample the user's idle time every fifth minute (daemon.presence)
    # A fleet's shared history (docs/fleet.md): a libpq URL without a password (~/.pgpass,
    # or history_password_file); fleet_host names this daemon there (default: hostname).
    history_url: str | None = None
    history_password_file: Path | None = None
    fleet_host: str | None = None

    @property
    def history_db(self) -> Path:
        return self.state_dir / "history.db"

    @property
    def models_dir(self) -> Path:
        """Where the daemon's own model lives (and retraining writes)."""
        return self.model_dir or self.state_dir / "models"

    @property
    def default_model_dir(self) -> Path | None:
        """The shipped model to fall back on, when `use_default_model` asks for one."""
        if self.use_default_model is True:
            return shipped_model_dir()
        return self.use_default_model or None

    @property
    def retrain_spec(self) -> str | None:
        """The retraining schedule as a cron expression, or None (off)."""
        return RETRAIN_ALIASES.get(self.retrain, self.retrain) or None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "smartcron.pid"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "smartcron.sock"

    @property
    def status_files(self) -> tuple[Path, Path]:
        """Where the daemon publishes its status: the state directory, else (read-only
        or full) the run directory; readers take the newer of the two."""
        return self.state_dir / "status.json", self.run_dir / "smartcron.status.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "smartcron.lock"

    @property
    def mail_argv(self) -> list[str]:
        return shlex.split(self.mail_command)


def shipped_model_dir() -> Path:
    """The default model shipped with SmartCron: inside the package, beside it (a source
    checkout), or under the installation's share/ directory; the first that holds one."""
    package = Path(__file__).resolve().parent
    candidates = [
        package / "models",
        package.parent / "models",
        Path(sys.prefix) / "share" / APP / "models",
        Path("/usr/share") / APP / "models",
    ]
    for candidate in candidates:
        if (candidate / "model.json").is_file():
            return candidate
    return candidates[1]


_PATH_KEYS = {
    "user_crontab",
    "crontab",
    "cron_d",
    "spool_dir",
    "jobs_dir",
    "state_dir",
    "run_dir",
    "allow_file",
    "deny_file",
    "job_log_dir",
    "model_dir",
    "history_password_file",
}
_OPTIONAL_PATHS = {"user_crontab", "crontab", "cron_d", "spool_dir", "job_log_dir", "model_dir"}
_OPTIONAL_PATHS |= {"history_password_file"}
_NOT_SETTABLE = {"user_mode", "config_file"}


def defaults(user_mode: bool) -> dict[str, Any]:
    """The built-in paths for each mode (smartcron(8), FILES)."""
    if not user_mode:
        return {
            "user_crontab": None,
            "crontab": Path("/etc/crontab"),
            "cron_d": Path("/etc/cron.d"),
            "spool_dir": Path("/var/spool/cron/crontabs"),
            "jobs_dir": Path("/etc/smartcron/jobs"),
            "state_dir": Path("/var/lib/smartcron"),
            "run_dir": Path("/run"),
            "allow_file": Path("/etc/cron.allow"),
            "deny_file": Path("/etc/cron.deny"),
        }
    conf = Path(platformdirs.user_config_dir(APP))
    state = Path(platformdirs.user_data_dir(APP))
    # $XDG_RUNTIME_DIR is the user's private tmpfs; without one (no login session),
    # keep the pid file and socket in the private state directory, not in /tmp.
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    run = Path(runtime) / APP if runtime else state
    return {
        "user_crontab": conf / "crontab",
        "crontab": None,
        "cron_d": None,
        "spool_dir": None,
        "jobs_dir": conf / "jobs",
        "state_dir": state,
        "run_dir": run,
        "allow_file": Path("/etc/cron.allow"),
        "deny_file": Path("/etc/cron.deny"),
    }


def default_config_file(user_mode: bool) -> Path:
    if user_mode:
        return Path(platformdirs.user_config_dir(APP)) / "smartcron.toml"
    return SYSTEM_CONFIG


def read_config(
    path: Path | str | None = None, *, user_mode: bool | None = None, mode: str | None = None
) -> Config:
    """Build the configuration: built-in defaults, then the TOML file, then overrides.

    `path` None means $SMARTCRON_CONFIG, else the mode's default file if it exists.
    `user_mode` None means "user mode unless running as root". A bad file raises one
    ConfigError listing every mistake, each `file:line: key: why`.
    """
    if user_mode is None:
        user_mode = os.geteuid() != 0
    explicit = path is not None or "SMARTCRON_CONFIG" in os.environ
    if path is None:
        path = os.environ.get("SMARTCRON_CONFIG") or default_config_file(user_mode)
    file = Path(path)
    values = defaults(user_mode)
    problems: list[str] = []
    where: dict[str, str] = {}
    if file.exists() or explicit:
        settings, where, problems = _read_toml(file)
        values.update(settings)
    if mode is not None:
        values["mode"] = mode
        where.pop("mode", None)
    config = Config(user_mode=user_mode, config_file=file if file.exists() else None, **values)
    problems += _validate(config, lambda key: where.get(key, str(file)))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _key_lines(text: str) -> dict[str, int]:
    """Each top-level key's 1-based line (tomllib keeps none), for `file:line` messages."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = re.match(r"""\s*["']?([A-Za-z0-9_-]+)["']?\s*=""", line)
        if match:
            lines.setdefault(match.group(1), number)
    return lines


def _read_toml(file: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The file's settings, each key's `file:line`, and every problem found (all of them,
    not only the first: a user fixes a file in one go)."""
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise ConfigError(f"{file}: cannot read config: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        found = re.search(r"\(at line (\d+), column \d+\)", str(err))
        at = f"{file}:{found.group(1)}" if found else str(file)
        raise ConfigError(f"{at}: {err}") from None
    lines = _key_lines(text)
    where = {key: f"{file}:{lines[key]}" if key in lines else str(file) for key in data}
    known = {f.name for f in fields(Config)} - _NOT_SETTABLE
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where[key]}: unknown key {key!r}{hint}")
        elif key in _PATH_KEYS:
            if not isinstance(value, str):
                problems.append(f"{where[key]}: {key} must be a string path")
            elif value == "" and key in _OPTIONAL_PATHS:
                out[key] = None  # "" disables (smartcron(8))
            else:
                p = Path(os.path.expanduser(value))
                out[key] = p if p.is_absolute() else (file.parent / p).resolve()
        elif key == "mail_command" and isinstance(value, str):
            out[key] = _mail_command(value, file.parent)
        elif key == "use_default_model" and isinstance(value, str) and value:
            p = Path(os.path.expanduser(value))  # a directory instead of the shipped one
            out[key] = p if p.is_absolute() else (file.parent / p).resolve()
        else:
            out[key] = value
    return out, where, problems


def _mail_command(value: str, base: Path) -> str:
    """A relative program path (one with a '/', like fixtures/bin/sendmail) is taken
    relative to the config file's directory, as every path in the file; a bare name is
    looked up on PATH, as a shell would."""
    try:
        words = shlex.split(value)
    except ValueError:
        return value  # _validate names the problem
    if not words or "/" not in words[0] or os.path.isabs(os.path.expanduser(words[0])):
        return value
    program = str((base / os.path.expanduser(words[0])).resolve())
    return shlex.join([program, *words[1:]])


def _validate(config: Config, where: Callable[[str], str]) -> list[str]:
    """Every bad value, each `file:line: key: why` (`where` gives a key's `file:line`)."""
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{where(key)}: {key}: {why}")

    for key, choices in (("mode", MODES), ("sandbox", SANDBOXES)):
        value = getattr(config, key)
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad(key, f"must be one of {', '.join(choices)}, not {value!r}{hint}")
    for key in ("max_concurrent", "history_days", "output_cap"):
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            bad(key, f"must be a positive integer, not {value!r}")
    units = {"model_max_age": "days", "inference_bound_ms": "milliseconds"}
    for key in ("kill_grace", "mtime_check", "model_max_age", "inference_bound_ms"):
        value = getattr(config, key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            unit = units.get(key, "seconds")
            bad(key, f"must be a positive number of {unit}, not {value!r}")
    for key in ("fqdn_in_subject", "explore", "presence"):
        if not isinstance(getattr(config, key), bool):
            bad(key, "must be true or false")
    if not isinstance(config.mail_command, str):
        bad("mail_command", "must be a string")
    else:
        try:
            shlex.split(config.mail_command)
        except ValueError as err:
            bad("mail_command", str(err))
    if not isinstance(config.use_default_model, bool | Path):
        bad("use_default_model", "must be true, false or a directory")
    if not isinstance(config.retrain, str):
        bad("retrain", "must be off, daily, weekly or a cron expression")
    else:
        _check_retrain(config.retrain_spec, lambda why: bad("retrain", why))
    if config.history_url is not None:
        from smartcron.store.pgurl import url_problem

        if problem := url_problem(config.history_url):
            bad("history_url", problem)
    if config.fleet_host is not None and not (
        isinstance(config.fleet_host, str)
        and re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", config.fleet_host)
    ):
        bad("fleet_host", "must be a host name (letters, digits, '_', '.', '-')")
    return problems


def _check_retrain(spec: str | None, bad: Callable[[str], None]) -> None:
    """`retrain`'s schedule: a cron expression the daemon can fire (told through `bad`)."""
    if spec is None:
        return
    from smartcron.cron.cronfields import parse_timespec
    from smartcron.errors import SmartcronError

    try:
        timespec = parse_timespec(spec)
    except SmartcronError as err:
        bad(f"off, daily, weekly or a cron expression: {err}")
        return
    if timespec.reboot:
        bad("@reboot is not a schedule for retraining")
