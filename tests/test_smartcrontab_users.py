"""Real users install through the socket of a real root daemon (root only: useradd, runuser).

The daemon runs `smartcron --system -f` on a temporary spool. The users' smartcrontab
runs as them with runuser; it cannot run the venv's interpreter (it lives under /root),
so it runs the system python3 of the same version on the package and the venv's
site-packages, both world-readable.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from users import NOT_ROOT, ThrowawayUser, is_root, throwaway_user

import smartcron
from tests.polling import wait_for

pytestmark = [pytest.mark.root, pytest.mark.skipif(not is_root(), reason=NOT_ROOT)]

BIN = Path(sys.executable).parent
PACKAGE_ROOT = Path(smartcron.__file__).resolve().parents[1]
SITE = sysconfig.get_paths()["purelib"]
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


class World:
    """A world-readable directory with a config, a spool and a running root daemon."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.spool = base / "spool"
        self.spool.mkdir(mode=0o700)  # root's: users reach it only through the daemon
        self.state = base / "state"
        self.config = self.write_config("smartcron.toml", run_dir="run")
        self.proc: subprocess.Popen[str] | None = None

    def write_config(self, name: str, run_dir: str) -> Path:
        values = {
            "crontab": "",
            "cron_d": "",
            "spool_dir": str(self.spool),
            "state_dir": str(self.state),
            "run_dir": str(self.base / run_dir),
            "jobs_dir": str(self.base / "jobs"),
            "allow_file": str(self.base / "cron.allow"),
            "deny_file": str(self.base / "cron.deny"),
            "mail_command": str(self.base / "no-sendmail"),
        }
        path = self.base / name
        path.write_text("".join(f'{k} = "{v}"\n' for k, v in values.items()))
        path.chmod(0o644)
        return path

    @property
    def socket(self) -> Path:
        return self.base / "run" / "smartcron.sock"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "smartcron"), "--system", "-f", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(self.socket.exists, what="the daemon's socket")

    def stop(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        return out

    def jobs(self) -> list[dict]:
        try:
            return json.loads((self.state / "status.json").read_text())["jobs"]
        except (OSError, ValueError):
            return []

    def run(
        self,
        user: ThrowawayUser,
        *args: str,
        stdin: bytes | str = b"",
        config: Path | None = None,
        editor: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """smartcrontab as `user` (runuser, a clean environment), on this world's config."""
        pw = user.pw
        env = [
            "PATH=/usr/bin:/bin",
            f"HOME={pw.dir}",
            f"PYTHONPATH={PACKAGE_ROOT}:{SITE}",
            "LANG=C.UTF-8",
        ] + ([f"EDITOR={editor}"] if editor else [])
        cmd = ["runuser", "-u", pw.name, "--", "env", "-i", *env, SYSTEM_PYTHON]
        cmd += ["-m", "smartcron.cli.crontab", "--config", str(config or self.config), *args]
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return subprocess.run(cmd, input=data, capture_output=True, timeout=60, cwd="/")

    def raw(self, user: ThrowawayUser, payload: bytes) -> dict:
        """Send raw bytes to the daemon's socket as `user`; return its JSON reply."""
        script = (
            "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
            "d=sys.stdin.buffer.read()\ntry:\n s.sendall(d);s.shutdown(socket.SHUT_WR)\n"
            "except OSError: pass\nb=b''\nwhile (c:=s.recv(65536)): b+=c\n"
            "sys.stdout.buffer.write(b)"
        )
        cmd = ["runuser", "-u", user.pw.name, "--", SYSTEM_PYTHON, "-c", script, str(self.socket)]
        out = subprocess.run(cmd, input=payload, capture_output=True, timeout=60, check=True)
        return json.loads(out.stdout)


def text(result: subprocess.CompletedProcess[bytes]) -> tuple[int, str, str]:
    return result.returncode, result.stdout.decode(errors="replace"), result.stderr.decode()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    base = Path(tempfile.mkdtemp(prefix="smartcrontab-", dir="/tmp"))
    base.chmod(0o755)
    created = World(base)
    created.start()
    try:
        yield created
    finally:
        log = created.stop()
        shutil.rmtree(base, ignore_errors=True)
        assert "control: unexpected error" not in log, log


@pytest.fixture(scope="module")
def alice() -> Iterator[ThrowawayUser]:
    with throwaway_user() as user:
        yield user


@pytest.fixture(scope="module")
def bob() -> Iterator[ThrowawayUser]:
    with throwaway_user() as user:
        yield user


@pytest.fixture(autouse=True)
def fresh(world: World) -> Iterator[None]:
    """Each test starts with an empty spool and no allow/deny files."""
    for path in world.spool.iterdir():
        path.unlink()
    yield
    for name in ("cron.allow", "cron.deny"):
        (world.base / name).unlink(missing_ok=True)


@pytest.fixture(scope="module", autouse=True)
def user_can_run_the_client(world: World, alice: ThrowawayUser) -> None:
    code, _, err = text(world.run(alice, "-T", "-"))
    if code != 0:
        pytest.skip(f"the test user cannot run smartcrontab here: {err.strip()}")


# ---------------------------------------------------------------- installing


def test_a_user_installs_through_the_root_daemon_which_runs_it_without_restart(world, alice):
    name = alice.pw.name
    code, out, err = text(world.run(alice, "-", stdin="0 4 * * * echo from-alice\n"))
    assert (code, out, err) == (0, "", "")
    spooled = world.spool / name
    st = spooled.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_nlink) == (alice.pw.uid, 1)
    lines = spooled.read_bytes().split(b"\n", 3)
    assert (
        lines[0].startswith(b"# DO NOT EDIT THIS FILE")
        and lines[3] == b"0 4 * * * echo from-alice\n"
    )
    jobs = wait_for(
        lambda: [j for j in world.jobs() if j["owner"] == name], timeout=3, what="the job"
    )
    assert jobs[0]["command"] == "echo from-alice"
    assert text(world.run(alice, "-l")) == (0, "0 4 * * * echo from-alice\n", "")


def test_replacing_keeps_a_backup_for_the_user_and_for_root(world, alice):
    name = alice.pw.name
    world.run(alice, "-", stdin="0 1 * * * first\n")
    assert world.run(alice, "-", stdin="0 2 * * * second\n").returncode == 0
    own = Path(alice.pw.dir) / ".cache" / "smartcron" / "crontab-backups"
    mine = sorted(own.glob(f"{name}.*"))
    assert mine[-1].read_text() == "0 1 * * * first\n"
    assert mine[-1].stat().st_uid == alice.pw.uid
    roots = sorted((world.state / "crontab-backups").glob(f"{name}.*"))
    assert roots[-1].read_text() == "0 1 * * * first\n"
    assert (roots[-1].stat().st_uid, stat.S_IMODE(roots[-1].stat().st_mode)) == (0, 0o600)


def test_edit_and_remove_through_the_socket(world, alice):
    name = alice.pw.name
    editor = world.base / "append-editor"
    editor.write_text("#!/bin/sh\necho '*/10 * * * * edited' >> \"$1\"\n")
    editor.chmod(0o755)
    code, _, err = text(world.run(alice, "-e", editor=editor))
    assert code == 0, err
    assert f"no crontab for {name} - using an empty one" in err
    assert text(world.run(alice, "-l"))[1].endswith("*/10 * * * * edited\n")
    assert text(world.run(alice, "-r")) == (0, "", "")
    assert not (world.spool / name).exists()
    assert text(world.run(alice, "-l")) == (1, "", f"no crontab for {name}\n")
    assert text(world.run(alice, "-r")) == (1, "", f"no crontab for {name}\n")
    wait_for(lambda: not [j for j in world.jobs() if j["owner"] == name], 3, "job removal")


# ---------------------------------------------------------------- nobody else's crontab


def test_u_for_another_user_is_refused(world, alice, bob):
    world.run(bob, "-", stdin="0 3 * * * bobs\n")
    before = (world.spool / bob.pw.name).read_bytes()
    for args in (["-l"], ["-r"], ["-"]):
        result = world.run(alice, "-u", bob.pw.name, *args, stdin="0 0 * * * evil\n")
        assert text(result) == (1, "", "must be privileged to use -u\n")
    assert (world.spool / bob.pw.name).read_bytes() == before
    assert world.run(alice, "-u", alice.pw.name, "-", stdin="0 0 * * * me\n").returncode == 0


def test_a_forged_user_field_is_refused_and_writes_nothing(world, alice, bob):
    world.run(bob, "-", stdin="0 3 * * * bobs\n")
    before = (world.spool / bob.pw.name).read_bytes()
    evil = base64.b64encode(b"* * * * * evil\n").decode()
    for request in (
        {"op": "install", "user": bob.pw.name, "data": evil},
        {"op": "remove", "user": bob.pw.name},
        {"op": "list", "uid": bob.pw.uid},
    ):
        reply = world.raw(alice, json.dumps(request).encode())
        assert reply["ok"] is False
        assert "unknown field" in reply["errors"][0]
    assert (world.spool / bob.pw.name).read_bytes() == before
    assert not (world.spool / alice.pw.name).exists()
    assert world.raw(alice, b'{"op": "ping"}')["user"] == alice.pw.name
    assert world.raw(alice, b'{"op": "reload"}')["kind"] == "denied"


def test_a_symlink_planted_in_the_spool_is_never_followed(world, alice):
    secret = world.base / "secret"
    secret.write_text("TOP SECRET\n")
    secret.chmod(0o600)
    (world.spool / alice.pw.name).symlink_to(secret)
    code, out, err = text(world.run(alice, "-l"))
    assert code == 1 and "SECRET" not in out + err
    assert world.run(alice, "-", stdin="0 4 * * * mine\n").returncode == 0
    assert not (world.spool / alice.pw.name).is_symlink()
    assert secret.read_text() == "TOP SECRET\n"


def test_the_user_cannot_write_the_spool_directly(world, alice):
    probe = ["runuser", "-u", alice.pw.name, "--", "touch", str(world.spool / "x")]
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0


# ---------------------------------------------------------------- cron.allow, cron.deny


def test_cron_deny_and_cron_allow_are_applied_by_the_daemon(world, alice, bob):
    name = alice.pw.name
    denied = (
        1,
        "",
        f"You ({name}) are not allowed to use this program (smartcrontab)\n"
        "See crontab(1) for more information\n",
    )
    (world.base / "cron.deny").write_text(f"{name}\n")
    assert text(world.run(alice, "-", stdin="0 4 * * * x\n")) == denied
    assert text(world.run(alice, "-l")) == denied
    assert not (world.spool / name).exists()
    assert world.run(bob, "-", stdin="0 4 * * * x\n").returncode == 0
    (world.base / "cron.allow").write_text(f"{bob.pw.name}\n")
    assert text(world.run(alice, "-l")) == denied
    (world.base / "cron.allow").write_text(f"{bob.pw.name}\n{name}\n")
    assert world.run(alice, "-", stdin="0 4 * * * x\n").returncode == 0


# ---------------------------------------------------------------- bad input


def test_bad_input_through_the_socket_never_loses_the_installed_crontab(world, alice):
    name = alice.pw.name
    world.run(alice, "-", stdin="0 1 * * * keep\n")
    for data, message in (
        (b"#" * (17 << 20) + b"\n", "crontab too large"),
        (b"\x00\x01\x02binary\n", "binary file?"),
        (b"61 * * * * x\n", "-:1: bad minute"),
    ):
        code, _, err = text(world.run(alice, "-", stdin=data))
        assert code == 1 and message in err, err
    assert text(world.run(alice, "-l"))[1] == "0 1 * * * keep\n"
    odd = b"0 4 * * * echo \xff\xfe caf\xe9\n"
    assert world.run(alice, "-", stdin=odd).returncode == 0
    assert world.run(alice, "-l").stdout == odd
    assert (world.spool / name).read_bytes().endswith(odd)


def test_socket_garbage_and_a_huge_message_get_errors_and_the_daemon_carries_on(world, alice):
    assert "not JSON" in world.raw(alice, b"\xff\x00garbage")["errors"][0]
    assert "not a JSON object" in world.raw(alice, b"[1, 2]")["errors"][0]
    assert "op must be" in world.raw(alice, b'{"op": "format-disk"}')["errors"][0]
    huge = world.raw(alice, b'{"op": "install", "data": "' + b"A" * (40 << 20) + b'"}')
    assert "request too large" in huge["errors"][0]
    bad64 = world.raw(alice, b'{"op": "install", "data": "***"}')
    assert "not base64" in bad64["errors"][0]
    with socket.socket(socket.AF_UNIX) as idle:  # a silent peer does not block others
        idle.connect(str(world.socket))
        assert world.raw(alice, b'{"op": "ping"}')["ok"] is True
    assert world.proc is not None and world.proc.poll() is None


# ---------------------------------------------------------------- no daemon, user mode


def test_without_a_running_daemon_the_message_names_the_two_ways_out(world, alice):
    other = world.write_config("stopped.toml", run_dir="run-stopped")
    code, _, err = text(world.run(alice, "-l", config=other))
    assert code == 1
    assert "the SmartCron daemon is not running" in err
    assert "sudo systemctl start smartcron" in err
    assert "smartcrontab --user -e" in err


def test_user_mode_as_a_real_user_writes_a_private_own_crontab(world, alice):
    pw = alice.pw
    result = world.run(alice, "--user", "-", stdin="0 4 * * * mine\n")
    assert result.returncode == 0, result.stderr
    own = Path(pw.dir) / ".config" / "smartcron" / "crontab"
    st = own.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.uid, 0o600)
    assert stat.S_IMODE(own.parent.stat().st_mode) == 0o700
    assert own.read_text() == "0 4 * * * mine\n"
    assert not (world.spool / pw.name).exists()


def test_root_edits_a_users_crontab_in_place_and_it_stays_theirs(world, alice):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(world.base)}
    cmd = [str(BIN / "smartcrontab"), "--config", str(world.config), "-u", alice.pw.name, "-"]
    assert subprocess.run(cmd, input=b"0 4 * * * by-root\n", env=env).returncode == 0
    assert (world.spool / alice.pw.name).stat().st_uid == alice.pw.uid
    assert text(world.run(alice, "-l"))[1] == "0 4 * * * by-root\n"
    assert wait_for(lambda: [j for j in world.jobs() if j["command"] == "by-root"], 3, "pickup")


@pytest.mark.skipif(
    Path("/etc/smartcron/smartcron.toml").exists() or Path("/run/smartcron.sock").exists(),
    reason="a system SmartCron is configured or running on this machine",
)
def test_without_any_system_smartcron_a_user_gets_user_mode_by_default(alice):
    pw = alice.pw
    env = ["PATH=/usr/bin:/bin", f"HOME={pw.dir}", f"PYTHONPATH={PACKAGE_ROOT}:{SITE}"]
    cmd = ["runuser", "-u", pw.name, "--", "env", "-i", *env, SYSTEM_PYTHON]
    cmd += ["-m", "smartcron.cli.crontab", "-"]
    result = subprocess.run(cmd, input=b"0 6 * * * default\n", capture_output=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert (Path(pw.dir) / ".config/smartcron/crontab").read_text() == "0 6 * * * default\n"
