"""smartcrontab's installs: a FILE or an edit session (-e), checked first, as crontab.c's
replace_cmd() and edit_cmd() (a private temporary file, the user's editor, checks that
it is still theirs afterwards, a retry on errors)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile

from smartcron.cli.crontabio import die, err, prog_name, yes_no
from smartcron.cron.crontab import Kind
from smartcron.daemon import install, installcheck
from smartcron.daemon.controlclient import RemoteStore
from smartcron.daemon.install import DirectStore

Store = DirectStore | RemoteStore

# crontab.c's text for a new crontab (edit_cmd, add_help_text), with our `suggest`.
HELP_TEXT = b"""\
# Edit this file to introduce tasks to be run by cron.
# 
# Each task to run has to be defined through a single line
# indicating with different fields when the task will be run
# and what command to run for the task
# 
# To define the time you can provide concrete values for
# minute (m), hour (h), day of month (dom), month (mon),
# and day of week (dow) or use '*' in these fields (for 'any').
# 
# Notice that tasks will be started based on the cron's system
# daemon's notion of time and timezones.
# 
# Output of the crontab jobs (including errors) is sent through
# email to the user the crontab file belongs to (unless redirected).
# 
# For example, you can run a backup of all your user accounts
# at 5 a.m every week with:
# 0 5 * * 1 tar -zcf /var/backups/home.tgz /home/
# 
# For more information see the manual pages of crontab(5) and cron(8)
# 
# Or describe a job in words, and paste the lines this prints:
# smartcronctl suggest "weekdays at 9:30 when I'm idle, retry twice"
# 
# m h  dom mon dow   command
"""  # noqa: W291 (Debian's "# " lines keep their blank)
EDITORS = ("/usr/bin/sensible-editor", "editor", "vi")  # pathnames.h's EDITOR, then fallbacks


def check_crontab_file(
    data: bytes, path: str, kind: Kind, fleet: bool | None = None
) -> installcheck.Verdict:
    """installcheck.check(), its problems and warnings told on stderr together, in line order."""
    problems, warnings = installcheck.check_lines(data, path, kind, path != "-", fleet)
    found = [(p, str(p)) for p in problems] + [(w, f"{w} (warning)") for w in warnings]
    order = installcheck.line_order(path)
    err(*(text for _, text in sorted(found, key=lambda pair: order(pair[0]))))
    return [str(p) for p in problems], [str(w) for w in warnings]


def try_install(store: Store, data: bytes, path: str, dry_run: bool) -> bool:
    """crontab.c's replace_cmd(): check, then install. False on a syntax error."""
    # fleet=once without a history_url: the daemon's configuration says (a RemoteStore's
    # daemon checks it itself)
    fleet = store.config.history_url is not None if isinstance(store, DirectStore) else None
    problems, warnings = check_crontab_file(data, path, Kind.USER, fleet)
    if problems:
        err("errors in crontab file, can't install.")
        return False
    if dry_run:
        err("The syntax of the crontab file was successfully checked.")
        return True
    try:  # the daemon's own check repeats the warnings: once is enough
        err(*(note for note in store.install(data, path) if note not in warnings))
    except install.BadCrontab as error:  # the daemon's own check disagreed
        err(*error.problems, "errors in crontab file, can't install.")
        return False
    return True


def edit_cmd(store: Store, dry_run: bool) -> None:
    p = prog_name()
    old = store.read()
    if old is None:
        err(f"no crontab for {store.user} - using an empty one")
        body = HELP_TEXT
    else:
        body = install.strip_header(old)
    # A private directory (mkdtemp: 0700) and file (0600), as create_tmp_crontab().
    directory = tempfile.mkdtemp(prefix="crontab.", dir=os.environ.get("TMPDIR") or "/tmp")
    path = os.path.join(directory, "crontab")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    editor = pick_editor()
    keep = False
    try:
        while True:
            run_editor(editor, path)
            edited = read_edited(path)
            if edited == body:
                err("No modification made")
                return
            err(f"{p}: installing new crontab")
            if try_install(store, edited, path, dry_run):
                return
            if not yes_no("Do you want to retry the same edit? (y/n) ", "Enter Y or N", True):
                keep = True
                die(f"{p}: edits left in {path}")
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def pick_editor() -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    editor = editor or next(filter(None, map(shutil.which, EDITORS)), None)
    return editor or die(f"{prog_name()}: no editor found: set $VISUAL or $EDITOR")


def run_editor(editor: str, path: str) -> None:
    """`sh -c "EDITOR FILE"` as crontab.c runs it; its signals ignored meanwhile."""
    p = prog_name()
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)}

    def child_signals() -> None:
        for s in saved:
            signal.signal(s, signal.SIG_DFL)

    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", f'{editor} "$1"', "sh", path],
            cwd="/tmp",
            preexec_fn=child_signals,
            check=False,
        )
    except OSError as error:
        die(f"{editor}: {error.strerror}")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    if proc.returncode > 0:
        die(f'{p}: "{editor}" exited with status {proc.returncode}')
    if proc.returncode < 0:
        die(f'{p}: "{editor}" killed; signal {-proc.returncode} (no core dumped)')


def read_edited(path: str) -> bytes:
    """open_tmp_crontab(): still there, still ours, still a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        die(f"Can't open tempfile after edit: {error.strerror}", "Error while editing crontab")
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid():
            die("Temporary crontab no longer owned by you.", "Error while editing crontab")
        if not stat.S_ISREG(st.st_mode):
            die("The temporary crontab must remain a regular file", "Error while editing crontab")
        return f.read(install.MAX_CRONTAB_BYTES + 1)
