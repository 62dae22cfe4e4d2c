"""What every command shares: -h, one-line errors with exit code 1, time arguments."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar

import click

from smartcron.config import Config
from smartcron.errors import SmartcronError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# The library logs for the daemon; a command reports what matters itself, so the library's
# warnings (a model not used, a file refused) must not leak to the terminal through
# Python's last-resort handler. The daemon installs its own handlers (service.py).
logging.getLogger("smartcron").addHandler(logging.NullHandler())

F = TypeVar("F", bound=Callable[..., Any])


config_options = [
    click.option("--config", "config_file", metavar="FILE", help="Configuration file (TOML)."),
    click.option("--user", "user_mode", is_flag=True, default=None, help="User mode."),
]


def with_config(func: F) -> F:
    """--config FILE and --user, which load_config takes."""
    for option in reversed(config_options):
        func = option(func)
    return func


def load_config(config_file: str | None, user_mode: bool | None) -> Config:
    from smartcron import config as configuration

    return configuration.read_config(config_file, user_mode=True if user_mode else None)


def fail(message: str) -> None:
    """Print each line of `message` to stderr and exit 1 (user or input error)."""
    for line in str(message).splitlines() or [""]:
        click.echo(line, err=True)
    sys.exit(1)


def user_errors(func: F) -> F:
    """Turn library errors into messages and exit 1, as SPEC section 2 wants."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SmartcronError as err:
            fail(str(err))
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            fail(f"{where}{err.strerror or err}")

    return wrapper  # type: ignore[return-value]


def zone_option(name: str | None) -> tzinfo:
    """--tz NAME, else the system zone."""
    from smartcron.cron.schedule import local_zone

    if not name:
        return local_zone()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SmartcronError(f"--tz: unknown time zone {name!r}") from None


def instant_option(text: str | None, zone: tzinfo, what: str = "--after") -> datetime:
    """An ISO 8601 instant; naive means wall time in `zone`; None means now."""
    if text is None:
        return datetime.now(UTC).astimezone(zone)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:  # a bad option value: a usage error (exit 2), as click's own are
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint=what) from None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def read_text_arg(file: str) -> tuple[str, str]:
    """A crontab named on the command line ('-' for stdin), bytes kept as cron keeps them."""
    if file == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "-"
    path = Path(file)
    if path.is_dir():
        raise SmartcronError(f"{file}: is a directory")
    return path.read_bytes().decode("utf-8", "surrogateescape"), file
