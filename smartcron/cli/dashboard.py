"""smartcronctl dashboard: the web UI, served on loopback behind a random token.

Its web stack (starlette, uvicorn, jinja2, plotly) is imported inside the command only:
the daemon and the other commands never load it (tests/test_architecture.py).
"""

from __future__ import annotations

import ipaddress
import socket
import sys

import click

from smartcron.cli.common import CONTEXT, load_config, user_errors, with_config
from smartcron.cli.dashopts import dash_query, view_options
from smartcron.errors import SmartcronError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free port the kernel picks), bound before the URL is
    printed, so the printed port is the one served."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise SmartcronError(f"--bind {host}: {err.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise SmartcronError(f"--bind {host} --port {port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, token: str) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/?token={token}"


@click.command("dashboard", context_settings=CONTEXT)
@with_config
@view_options
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address to listen on (a warning when it is not loopback).",
)
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    metavar="N",
    help="TCP port (default: a free one).",
)
@click.option(
    "--allow-actions", is_flag=True, help="Add 'Run now' and 'Cancel' (through the daemon)."
)
@user_errors
def dashboard_cmd(
    config_file: str | None,
    user_mode: bool | None,
    history: str | None,
    bind: str,
    port: int,
    allow_actions: bool,
    days: int,
    trace: str | None,
    crontab: str | None,
    world: str | None,
) -> None:
    """Serve the web dashboard until interrupted (Ctrl-C or SIGTERM).

    Prints its URL, with a random access token, as the first line of standard output
    (as Jupyter does); a request without the token gets 401. It reads the history with
    your rights and shows only your jobs (root sees all); the open page updates live
    when the history or the daemon's status changes. Read-only unless --allow-actions:
    then 'Run now' and 'Cancel' ask the daemon through its socket, with the checks of
    `smartcronctl run` and `cancel`.

    \b
    Examples:
      smartcronctl dashboard --user
      smartcronctl dashboard --user --allow-actions --port 8080 --days 14
    """
    import secrets

    from smartcron.dash.server import DashSettings, Snapshots, serve, watched_files

    config = load_config(config_file, user_mode)
    query = dash_query(
        config_file,
        user_mode,
        history=history,
        days=days,
        trace=trace,
        crontab=crontab,
        world=world,
    )
    settings = DashSettings(
        query=query,
        token=secrets.token_urlsafe(32),
        socket_path=config.socket_path,
        watched=watched_files(query.history or config.history_db, config.status_files),
        allow_actions=allow_actions,
    )
    snapshots = Snapshots(query, settings.watched)
    snapshots.get()  # a bad config or a damaged history: one line and exit 1, now
    sock = listen(bind, port)
    if not is_loopback(bind):
        click.echo(
            f"smartcronctl dashboard: warning: {bind} is not a loopback address: anyone who "
            "reaches it and learns the token sees your jobs, over plain HTTP",
            err=True,
        )
    click.echo(url_of(sock, settings.token))
    sys.stdout.flush()
    serve(settings, sock, snapshots)
