"""smartcron: the daemon's command line (like cron(8))."""

from __future__ import annotations

import os
import sys

import click

from smartcron.cli.common import CONTEXT, fail


@click.command(context_settings=CONTEXT)
@click.option("-f", "--foreground", is_flag=True, help="Stay in the foreground; log to stderr.")
@click.option("--user", "user_mode", is_flag=True, help="User mode: run your own crontab, no root.")
@click.option("--system", "system_mode", is_flag=True, help="System mode (the default as root).")
@click.option("--config", "config_file", metavar="FILE", help="Configuration file (TOML).")
@click.option(
    "--mode",
    type=click.Choice(["smart", "legacy", "cron"]),
    help="Override the configured mode (cron: ignore annotations).",
)
@click.option("--debug", is_flag=True, help="Log more.")
@click.option(
    "--container", "container", metavar="CRONTAB",
    help="Container mode: run this crontab as the current user, log to stdout.",
)  # fmt: skip
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Container mode: log lines as text or JSON.",
)  # fmt: skip
@click.option(
    "--grace", type=click.FloatRange(0, 3600), default=30.0, show_default=True, metavar="SECONDS",
    help="Container mode: SIGTERM to SIGKILL for running jobs at a stop (not a timeout's).",
)  # fmt: skip
@click.option(
    "--state-dir", metavar="DIR",
    help="Container mode: state here (default: the config's state_dir, else a temp dir).",
)  # fmt: skip
@click.version_option(package_name="smartcron", message="%(prog)s %(version)s")
def main(
    foreground: bool,
    user_mode: bool,
    system_mode: bool,
    config_file: str | None,
    mode: str | None,
    debug: bool,
    container: str | None,
    log_format: str,
    grace: float,
    state_dir: str | None,
) -> None:
    """Run the SmartCron daemon: every crontab as cron runs it, plus annotated smart jobs.

    \b
    As root it reads /etc/crontab, /etc/cron.d and /var/spool/cron/crontabs; as any
    other user (or with --user) it runs that user's own crontab.
    \b
    Examples:
      smartcron --foreground                       # system mode, as root
      smartcron --user --foreground                # your own crontab, no root
      smartcron --user -f --config demo.toml       # a demo configuration
      smartcron --container /etc/crontab --log-format json   # in a container
    """
    from smartcron import config as configuration
    from smartcron.daemon.service import serve, setup_logging
    from smartcron.errors import SmartcronError

    if user_mode and system_mode:
        raise click.UsageError("--user and --system exclude each other")
    if container is not None:
        sys.exit(_container(container, config_file, mode, debug, log_format, grace, state_dir))
    given = click.get_current_context().get_parameter_source
    if state_dir is not None or any(
        given(name) is click.core.ParameterSource.COMMANDLINE for name in ("log_format", "grace")
    ):
        raise click.UsageError("--log-format, --grace and --state-dir go with --container")
    if system_mode and os.geteuid() != 0:
        fail("smartcron: system mode needs root (use --user to run your own crontab)")
    try:
        config = configuration.read_config(
            config_file,
            user_mode=True if user_mode else (False if system_mode else None),
            mode=mode,
        )
    except SmartcronError as err:
        fail(str(err))
    setup_logging(foreground, debug)
    if not foreground:
        _daemonize()
    try:
        sys.exit(serve(config, foreground=foreground))
    except SmartcronError as err:
        fail(f"smartcron: {err}")


def _container(
    crontab: str,
    config_file: str | None,
    mode: str | None,
    debug: bool,
    log_format: str,
    grace: float,
    state_dir: str | None,
) -> int:
    """smartcron --container: the daemon in the foreground on one crontab (container.py)."""
    from smartcron import config as configuration
    from smartcron.daemon.container import run_container, setup_container_logging
    from smartcron.errors import SmartcronError

    setup_container_logging(log_format, debug)
    try:
        base = configuration.read_config(config_file, user_mode=True, mode=mode)
        return run_container(base, crontab, state_dir=state_dir, grace=grace, log_format=log_format)
    except SmartcronError as err:
        fail(f"smartcron: {err}")
    return 1


def _daemonize() -> None:
    """cron(8)'s default: fork, new session, stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    main()
