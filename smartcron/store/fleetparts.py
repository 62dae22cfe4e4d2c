"""A daemon's fleet parts (docs/fleet.md), from config `history_url`: the Claimer that
fleet=once asks, and the Uploader that sends the runs. Without a history_url: a
LocalClaimer (fleet=once behaves as each) and no upload; psycopg is never imported."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smartcron.config import Config
from smartcron.store.claims import Claimer, LocalClaimer

if TYPE_CHECKING:
    from smartcron.store.history import HistoryStore
    from smartcron.store.spool import Uploader


@dataclass
class Fleet:
    claimer: Claimer
    uploader: Uploader | None = None


def fleet_host(config: Config) -> str:
    return config.fleet_host or socket.gethostname()


def fleet_for(config: Config, history: HistoryStore | None) -> Fleet:
    """The parts for `config`; the history's rows are then written as this fleet host."""
    host = fleet_host(config)
    if config.history_url is None or history is None:
        return Fleet(LocalClaimer(host))
    from smartcron.store.claims import PgClaimer
    from smartcron.store.pgconn import PgConnection
    from smartcron.store.pgstore import PgHistoryStore
    from smartcron.store.spool import Uploader

    url, secret = config.history_url, config.history_password_file
    history.host = host
    claimer = PgClaimer(PgConnection(url, password_file=secret), host)
    uploader = Uploader(history, lambda: PgHistoryStore(url, host=host, password_file=secret))
    # The upload runs from now until the history closes (the daemon's end), when what
    # waits is sent once more (else at the next start: nothing is lost).
    uploader.start()
    history.before_close.append(uploader.stop)
    return Fleet(claimer, uploader)
