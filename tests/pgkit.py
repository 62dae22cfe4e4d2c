"""A real PostgreSQL server for the tests: initdb and pg_ctl from /usr/lib/postgresql/*/bin
on a temporary directory, listening only on a Unix socket with trust authentication.

PostgreSQL refuses to run as root, so as root the server runs as a throwaway user
(tests/users.py) and the tests connect as that user's role. `PgServer.stop()` and
`start()` take it down and back (the outage tests); `url(db)` is a libpq URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
MISSING = "needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    found = [p for p in found if os.access(Path(p) / "initdb", os.X_OK)]
    return Path(found[-1]) if found else None


@dataclass
class PgServer:
    bin: Path
    data: Path
    socket_dir: Path
    port: int
    user: str  # the OS user running the server, and its superuser role
    run_as: tuple[str, ...]  # prefix running a command as `user` ("runuser -u NAME --")

    def _pg_ctl(self, *args: str) -> None:
        argv = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-s", *args]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' -c fsync=off"
        log = str(self.data.parent / "server.log")
        self._pg_ctl("-w", "-l", log, "-o", opts, "start")

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{db}?host={self.socket_dir}&port={self.port}"

    def create_db(self, name: str | None = None) -> str:
        """A fresh database; its URL."""
        import psycopg

        name = name or f"t_{secrets.token_hex(4)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """A started server, stopped and removed on exit (raises if the binaries are missing)."""
    bindir = pg_bin()
    if bindir is None:
        raise FileNotFoundError(MISSING)
    with contextlib.ExitStack() as stack:
        run_as: tuple[str, ...] = ()
        if os.geteuid() == 0:
            from tests.users import throwaway_user

            pw = stack.enter_context(throwaway_user()).pw
            user, run_as = pw.name, ("runuser", "-u", pw.name, "--")
        else:
            import pwd

            pw = None
            user = pwd.getpwuid(os.geteuid()).pw_name
        top = Path(tempfile.mkdtemp(prefix="scpg-", dir="/tmp"))
        stack.callback(shutil.rmtree, top, True)
        os.chmod(top, 0o755)  # the server's user reaches its socket and data below
        data, sock = top / "data", top / "sock"
        for d in (data, sock):
            d.mkdir(mode=0o700)
            if pw is not None:
                os.chown(d, pw.uid, pw.gid)
        os.chmod(sock, 0o777)  # clients of any uid connect through the socket
        if pw is not None:
            os.chown(top, pw.uid, pw.gid)
        initdb = [*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user]
        subprocess.run([*initdb, "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        port = 40000 + secrets.randbelow(20000)
        server = PgServer(bindir, data, sock, port, user, run_as)
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(subprocess.SubprocessError):
                server.stop()
