"""smartcrontab: crontab(1) for SmartCron, with Debian's options, messages and exit codes."""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from smartcron import config as configuration
from smartcron.cli.common import CONTEXT
from smartcron.cli.crontabedit import Store, check_crontab_file, edit_cmd, try_install
from smartcron.cli.crontabio import die, err, prog_name, yes_no
from smartcron.config import SYSTEM_CONFIG, defaults
from smartcron.cron.crontab import Kind
from smartcron.daemon import install
from smartcron.daemon.controlclient import RemoteStore, Unavailable, ask_reload
from smartcron.daemon.install import DirectStore
from smartcron.errors import SmartcronError

USAGE = """\
usage:\t{p} [-u user] [-n] file
\t{p} [ -u user ] [ -i ] {{ -e | -l | -r }}
\t{p} -T file [--system]
\t{p} --user ...  (your own crontab, for a user-mode daemon)

\t-h\t(displays the help)
\t--version\t(displays the version)

\tfile\t(default operation is replace, per 1003.2)
\t-n\t(dry run: checks the syntax, then bails out)
\t-u user\t(choose the user whose crontab is touched)

\t-e\t(edit user's crontab)
\t-l\t(list user's crontab)
\t-r\t(delete user's crontab)

\t-i\t(prompt before deleting user's crontab)"""


def usage(message: str) -> NoReturn:
    p = prog_name()
    die(*([f"{p}: usage error: {message}"] if message else []), USAGE.format(p=p))


class CrontabCommand(click.Command):
    """Usage errors as crontab.c's usage(): Debian's message on stderr, exit 1 (not 2)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as error:
            usage(error.format_message())
        sys.exit(code if isinstance(code, int) else 0)


@click.command(cls=CrontabCommand, context_settings=CONTEXT)
@click.option("-u", "user", metavar="USER", help="The user whose crontab is touched (root only).")
@click.option("-l", "list_", is_flag=True, help="List the crontab.")
@click.option("-r", "remove", is_flag=True, help="Delete the crontab.")
@click.option("-e", "edit", is_flag=True, help="Edit the crontab ($VISUAL, else $EDITOR).")
@click.option("-i", "ask", is_flag=True, help="With -r: ask before deleting.")
@click.option("-n", "dry_run", is_flag=True, help="With FILE or -e: check only, install nothing.")
@click.option("-T", "check", metavar="FILE", help="Check FILE ('-' for stdin); install nothing.")
@click.option("--system", is_flag=True, help="With -T: the file is in system format.")
@click.option("--user", "user_mode", is_flag=True, help="Your own crontab (user-mode daemon).")
@click.option("--config", "config_file", metavar="FILE", help="SmartCron configuration (TOML).")
@click.argument("file", required=False)
@click.version_option(package_name="smartcron", message="%(prog)s %(version)s")
def main(
    user: str | None,
    list_: bool,
    remove: bool,
    edit: bool,
    ask: bool,
    dry_run: bool,
    check: str | None,
    system: bool,
    user_mode: bool,
    config_file: str | None,
    file: str | None,
) -> None:
    """Install, list, edit, remove or check crontabs for SmartCron (like crontab(1)).

    \b
    Examples:
      smartcrontab -e                      # edit your crontab
      smartcrontab -l > saved              # list it (no header lines)
      smartcrontab saved                   # install a file ('-' reads stdin)
      smartcrontab -n saved                # check it, install nothing
      smartcrontab -i -r                   # remove it, after asking
      sudo smartcrontab -u alice -l        # root: another user's crontab
      smartcrontab -T mycrontab            # check only: silent, exit 0 when valid
      smartcrontab -T /etc/cron.d/backup --system
      smartcrontab --user -e               # your own crontab, for `smartcron --user`
    \b
    Which crontab: with --user, or when no system SmartCron is configured or running,
    your own <config>/crontab; as root the spool (spool_dir/USER); otherwise the system
    daemon installs it for you through its socket (run_dir/smartcron.sock). Every
    replaced or removed crontab is kept (last 5): a spool crontab's in
    state_dir/crontab-backups (and, installed through the socket, a copy in your
    ~/.cache/smartcron/crontab-backups), your own in ~/.cache/smartcron/crontab-backups;
    restore one with `smartcrontab FILE`. Messages and exit status (1 on any error) are
    crontab(1)'s.
    """
    ops = [list_, remove, edit, check is not None]
    if sum(ops) > 1:
        usage("only one operation permitted")
    if any(ops) and file is not None:
        usage("no arguments permitted after this option")
    if system and check is None:
        usage("--system can only be used with -T")
    if ask and not remove:
        usage("-i can only be used with -r")
    if dry_run and any(ops) and not edit:
        usage("-n can only be used with a file or -e")
    if check is not None:  # -T: silent and 0 when valid, else every `path:line: reason`
        data, path = read_input(check)
        kind, fleet = Kind.SYSTEM if system else Kind.USER, fleet_configured(config_file, user_mode)
        problems, _ = check_crontab_file(data, path, kind, fleet)
        sys.exit(1 if problems else 0)
    if not any(ops) and file is None:
        # Debian reads stdin when there is no argument at all; at a terminal that is the
        # classic trap (Ctrl-D wipes the crontab), so there it is crontab.c's usage error.
        if user is not None or dry_run or sys.stdin.isatty():
            usage("file name must be specified for replace")
        file = "-"
    store = open_store(user, user_mode, config_file)
    try:
        if list_:
            print_crontab(store)
        elif remove:
            delete_cmd(store, ask)
        elif edit:
            edit_cmd(store, dry_run)
        else:
            data, path = read_input(file or "-")
            sys.exit(0 if try_install(store, data, path, dry_run) else 1)
    except install.InstallError as error:
        fail_with(error)


def read_input(file: str) -> tuple[bytes, str]:
    """FILE or '-' (stdin), read as the invoking user, at most one byte over the limit."""
    if file == "-":
        return sys.stdin.buffer.read(install.MAX_CRONTAB_BYTES + 1), "-"
    try:
        with open(file, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                die(f"{file}: Not a regular file.")
            return f.read(install.MAX_CRONTAB_BYTES + 1), file
    except IsADirectoryError:
        die(f"{file}: Not a regular file.")
    except OSError as error:
        die(f"{file}: {error.strerror}")  # perror(Filename)


def open_store(user: str | None, user_mode: bool, config_file: str | None) -> Store:
    p = prog_name()
    try:
        me = pwd.getpwuid(os.getuid())
    except KeyError:
        die(f"{p}: your UID isn't in the passwd file.", "bailing out.")
    target = me
    if user is not None:
        try:
            target = pwd.getpwnam(user)
        except KeyError:
            die(f"{p}:  user `{user}' unknown")  # sic: two blanks, as crontab.c
        if os.getuid() != 0 and target.pw_uid != me.pw_uid:
            die("must be privileged to use -u")
    if user_mode and target.pw_uid != me.pw_uid:
        usage("-u cannot be used with --user")
    if not user_mode and os.geteuid() != 0:
        user_mode = not system_configured(config_file)
    try:
        config = configuration.read_config(config_file, user_mode=user_mode)
        if user_mode:
            own = install.own_target(config, me.pw_name)
            store: Store = DirectStore(config, own, notify=lambda: ask_reload(config))
        elif os.geteuid() == 0:
            spool = install.spool_target(config, target.pw_name, target.pw_uid, target.pw_gid)
            store = DirectStore(config, spool, notify=lambda: ask_reload(config))
        else:
            return RemoteStore(config, me.pw_name)  # the daemon checks cron.allow itself
        install.check_allowed(config, target.pw_name)
    except install.NotAllowed as error:
        if os.getuid() == 0:
            die(f"The user {target.pw_name} cannot use this program ({p})")
        fail_with(error)
    except SmartcronError as error:  # a config may list several mistakes: one line each
        die(*(f"{p}: {line}" for line in str(error).splitlines()))
    return store


def fleet_configured(config_file: str | None, user_mode: bool) -> bool | None:
    """-T: whether the daemon that would run the file has a history_url (its config, by
    open_store's rule), so that fleet=once without one is a warning, as in `status`.
    None when that config cannot be read (then not checked)."""
    if not user_mode and os.geteuid() != 0:
        user_mode = not system_configured(config_file)
    try:
        return configuration.read_config(config_file, user_mode=user_mode).history_url is not None
    except SmartcronError:
        return None


def system_configured(config_file: str | None) -> bool:
    """The mode rule for a non-root user without --user (told in --help)."""
    if config_file or os.environ.get("SMARTCRON_CONFIG"):
        return True
    socket_path = Path(defaults(False)["run_dir"]) / "smartcron.sock"
    return SYSTEM_CONFIG.exists() or socket_path.exists()


def fail_with(error: install.InstallError) -> NoReturn:
    """Print an install error as crontab(1) would, exit 1."""
    if isinstance(error, install.BadCrontab):
        die(*error.problems, "errors in crontab file, can't install.")
    if isinstance(error, install.NotAllowed):
        p = prog_name()
        die(str(error).replace("(crontab)", f"({p})"), "See crontab(1) for more information")
    if isinstance(error, install.NoCrontab | Unavailable):
        die(*str(error).splitlines())
    die(f"{prog_name()}: {error}")


def print_crontab(store: Store) -> None:
    data = store.read()
    if data is None:
        die(f"no crontab for {store.user}")
    if not os.environ.get("CRONTAB_NOHEADER", "").upper().startswith("N"):
        data = install.strip_header(data)
    # crontab.c escapes \b and \r, "which might be used to obfuscate a listing".
    sys.stdout.buffer.write(data.replace(b"\b", b"\\b").replace(b"\r", b"\\r"))
    sys.stdout.flush()


def delete_cmd(store: Store, ask: bool) -> None:
    if store.read() is None:
        die(f"no crontab for {store.user}")
    if ask:
        question = f"{prog_name()}: really delete {store.user}'s crontab? (y/n) "
        answer = yes_no(question, "Please enter Y or N: ", repeat=False)
        if not answer:
            sys.exit(0 if answer is False else 1)  # crontab.c: "n" exits 0
    err(*store.remove())


if __name__ == "__main__":  # pragma: no cover
    main()
