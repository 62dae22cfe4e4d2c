"""Loading crontab files as the daemon does: cron's permission rules, bad files, changes."""

from __future__ import annotations

import os
import pwd
from datetime import timedelta
from pathlib import Path

import pytest

from smartcron.daemon.loader import Database
from tests.userconfig import system_config

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as others")
NOBODY = 65534


def put(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def refusals(db: Database) -> dict[str, str | None]:
    return {Path(k).name: v.refused for k, v in db.files.items()}


@root_only
def test_cron_permission_rules_refuse_insecure_files_with_crons_reasons(tmp_path):
    cfg = system_config(tmp_path)
    put(cfg.crontab, "0 1 * * * root true\n", 0o644)
    put(cfg.cron_d / "good", "0 1 * * * root true\n", 0o644)
    put(cfg.cron_d / "groupwrite", "0 1 * * * root true\n", 0o664)
    foreign = put(cfg.cron_d / "foreign", "0 1 * * * root true\n", 0o644)
    os.chown(foreign, NOBODY, -1)
    put(cfg.spool_dir / "root", "0 1 * * * true\n", 0o644)  # user crontabs must be 0600
    db = Database(cfg)
    db.refresh()
    assert refusals(db) == {
        "crontab": None,
        "good": None,
        "groupwrite": "INSECURE MODE (group/other writable)",
        "foreign": "WRONG FILE OWNER",
        "root": "INSECURE MODE (mode 0600 expected)",
    }
    assert len(db.jobs) == 2


@root_only
def test_a_user_crontab_owned_by_someone_else_is_refused(tmp_path):
    cfg = system_config(tmp_path)
    tab = put(cfg.spool_dir / "root", "0 1 * * * true\n", 0o600)
    os.chown(tab, NOBODY, -1)
    db = Database(cfg)
    db.refresh()
    assert refusals(db)["root"] == "WRONG FILE OWNER"


def test_a_spool_file_for_an_unknown_user_is_an_orphan(tmp_path):
    cfg = system_config(tmp_path)
    put(cfg.spool_dir / "no-such-user-xyz", "0 1 * * * true\n", 0o600)
    db = Database(cfg)
    db.refresh()
    assert refusals(db) == {"no-such-user-xyz": "ORPHAN (no passwd entry)"}


def test_symlinked_user_crontab_is_never_followed(tmp_path):
    cfg = system_config(tmp_path)
    target = put(tmp_path / "elsewhere", "0 1 * * * true\n", 0o600)
    (cfg.spool_dir / "root").symlink_to(target)
    db = Database(cfg)
    db.refresh()
    assert refusals(db)["root"].startswith("CAN'T OPEN")


def test_a_system_symlink_owned_by_root_is_allowed(tmp_path):
    cfg = system_config(tmp_path)
    target = put(tmp_path / "real", "0 1 * * * root true\n", 0o644)
    (cfg.cron_d / "linked").symlink_to(target)
    db = Database(cfg)
    db.refresh()
    assert refusals(db) == {"linked": None}


def test_a_file_with_a_syntax_error_is_refused_whole_while_others_run(tmp_path):
    cfg = system_config(tmp_path)
    put(cfg.cron_d / "broken", "0 1 * * * root true\n61 * * * * root false\n", 0o644)
    put(cfg.cron_d / "fine", "0 2 * * * root true\n", 0o644)
    db = Database(cfg)
    db.refresh()
    assert refusals(db)["broken"] == f"{cfg.cron_d}/broken:2: bad minute"
    assert [job.source for job in db.jobs] == [str(cfg.cron_d / "fine")]


def test_cron_d_files_with_dots_are_ignored_as_debian_does(tmp_path):
    cfg = system_config(tmp_path)
    for name in ("backup", "backup.dpkg-old", "backup.smart.yaml", "x~", "ok_name-2"):
        put(cfg.cron_d / name, "0 1 * * * root true\n", 0o644)
    db = Database(cfg)
    db.refresh()
    assert sorted(refusals(db)) == ["backup", "ok_name-2"]


def test_a_system_line_with_an_unknown_user_is_skipped_not_the_whole_file(tmp_path):
    cfg = system_config(tmp_path)
    put(cfg.cron_d / "mixed", "0 1 * * * nosuchuser-q true\n0 2 * * * root true\n", 0o644)
    db = Database(cfg)
    db.refresh()
    loaded = db.files[str(cfg.cron_d / "mixed")]
    assert loaded.refused is None
    assert [job.line for job in loaded.jobs] == [2]
    assert "bad username 'nosuchuser-q': skipped" in loaded.warnings[0]


@pytest.mark.parametrize("kind", ["directory", "fifo", "binary", "huge", "unreadable-utf8"])
def test_bad_files_are_refused_or_read_without_crashing(tmp_path, kind):
    cfg = system_config(tmp_path)
    path = cfg.cron_d / "bad"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path, 0o644)
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 64)
    elif kind == "huge":
        with open(path, "wb") as out:
            out.truncate(64 * 1024 * 1024)  # sparse: 64 MB of NULs, over the size limit
    else:
        path.write_bytes(b"0 1 * * * root echo \xff\xfe caf\xe9\n")
    if path.is_file():
        path.chmod(0o644)
    put(cfg.cron_d / "good", "0 1 * * * root true\n", 0o644)
    db = Database(cfg)
    db.refresh()
    reasons = refusals(db)
    assert reasons["good"] is None
    if kind == "directory" or kind == "fifo":
        assert reasons["bad"] == "NOT A REGULAR FILE"
    elif kind == "huge":
        assert reasons["bad"].startswith("FILE TOO LARGE")
    elif kind == "binary":
        assert reasons["bad"] is not None and ":1: " in reasons["bad"]
    else:  # cron works on bytes: a Latin-1 command is fine and kept byte for byte
        assert reasons["bad"] is None
        job = db.files[str(path)].jobs[0]
        assert job.entry.command.encode("utf-8", "surrogateescape") == b"echo \xff\xfe caf\xe9"


def test_changes_are_picked_up_and_a_removed_file_stops_its_jobs(tmp_path):
    cfg = system_config(tmp_path)
    one = put(cfg.cron_d / "one", "0 1 * * * root true\n", 0o644)
    db = Database(cfg)
    db.refresh()
    assert len(db.jobs) == 1
    assert db.refresh() == []  # nothing changed: nothing reloaded
    put(one, "0 1 * * * root true\n0 2 * * * root true\n", 0o644)
    os.utime(one, ns=(1, 1))  # even with an old mtime: size and ctime changed
    assert db.refresh() == [str(one)]
    assert len(db.jobs) == 2
    one.unlink()
    assert db.refresh() == [str(one)]
    assert db.jobs == []


@root_only
def test_fixing_a_refused_files_mode_is_noticed_without_an_edit(tmp_path):
    cfg = system_config(tmp_path)
    bad = put(cfg.cron_d / "late", "0 1 * * * root true\n", 0o666)
    db = Database(cfg)
    db.refresh()
    assert refusals(db)["late"].startswith("INSECURE MODE")
    bad.chmod(0o644)
    db.refresh()
    assert refusals(db)["late"] is None


def test_job_ids_survive_moving_lines_and_tell_identical_lines_apart(tmp_path):
    cfg = system_config(tmp_path)
    tab = put(cfg.cron_d / "ids", "0 1 * * * root a\n0 1 * * * root a\n0 2 * * * root b\n", 0o644)
    db = Database(cfg)
    db.refresh()
    before = {job.entry.command + str(job.line): job.id for job in db.jobs}
    ids = [job.id for job in db.jobs]
    assert len(set(ids)) == 3 and ids[1] == ids[0] + "#2"
    put(tab, "# a comment moves everything down\n0 2 * * * root b\n0 1 * * * root a\n", 0o644)
    db.refresh()
    moved = {job.entry.command: job.id for job in db.jobs}
    assert moved["b"] == before["b3"]
    assert moved["a"] == before["a1"]


def test_a_named_job_keeps_its_id_when_its_line_changes_and_a_reused_name_is_flagged(tmp_path):
    cfg = system_config(tmp_path)
    tab = put(cfg.cron_d / "named", "#@smart name=sync\n0 1 * * * root sync -a\n", 0o644)
    db = Database(cfg)
    db.refresh()
    (before,) = db.jobs
    assert before.id == "named-root-sync"
    put(tab, "#@smart name=sync window=1h\n30 2 * * * root sync -av\n", 0o644)
    db.refresh()
    (after,) = db.jobs
    assert after.id == before.id and after.entry.command == "sync -av"
    put(tab, "#@smart name=sync\n0 1 * * * root a\n#@smart name=sync\n0 2 * * * root b\n", 0o644)
    db.refresh()
    assert [job.id for job in db.jobs] == ["named-root-sync", "named-root-sync#2"]
    (warning,) = db.files[str(tab)].warnings
    assert warning == f"{tab}:4: name=sync also names line 2"


BACKUP_JOB = """\
job_name: daily_backup
command: /usr/local/bin/backup.sh --all
preferred_time: ["01:00", "03:00"]
max_cpu: 50
retry_on_fail: true
"""


def test_standalone_job_files_are_jobs_checked_like_cron_d_files(tmp_path):
    cfg = system_config(tmp_path)
    cfg.jobs_dir.mkdir()
    put(cfg.jobs_dir / "backup.yaml", BACKUP_JOB, 0o644)
    put(cfg.jobs_dir / "sync.json", '{"name": "sync", "command": "true",'
        ' "schedule": "*/30 * * * *", "user": "nobody", "window": "10m"}', 0o644)  # fmt: skip
    put(cfg.jobs_dir / "groupwrite.yml", BACKUP_JOB.replace("daily_", "g_"), 0o664)
    put(cfg.jobs_dir / "typo.yaml", BACKUP_JOB + "max_cpuu: 3\n", 0o644)
    put(cfg.jobs_dir / "stranger.yaml", BACKUP_JOB + "user: nosuchuser-q\n", 0o644)
    put(cfg.jobs_dir / "notes.txt", "not a job\n", 0o644)
    put(cfg.jobs_dir / ".hidden.yaml", BACKUP_JOB, 0o644)
    db = Database(cfg)
    db.refresh()
    found = refusals(db)
    assert sorted(found) == [
        "backup.yaml",
        "groupwrite.yml",
        "stranger.yaml",
        "sync.json",
        "typo.yaml",
    ]
    assert found["backup.yaml"] is None and found["sync.json"] is None
    assert found["groupwrite.yml"] == "INSECURE MODE (group/other writable)"
    assert found["typo.yaml"].startswith(f"{cfg.jobs_dir}/typo.yaml:6: ")  # file:line
    assert (
        found["stranger.yaml"] == f"{cfg.jobs_dir}/stranger.yaml: user: no such user 'nosuchuser-q'"
    )
    backup, sync = sorted(db.jobs, key=lambda job: job.source)
    assert (backup.name, backup.owner, backup.entry.spec.text) == (
        "daily_backup",
        "root",
        "0 1 * * *",
    )
    assert backup.entry.command == "/usr/local/bin/backup.sh --all"
    assert backup.smart is not None and backup.smart.max_cpu == 50 and backup.smart.retry == 1
    assert (sync.name, sync.owner, sync.smart.window) == ("sync", "nobody", timedelta(minutes=10))


def test_user_mode_reads_the_users_own_job_files_and_refuses_a_user_field(tmp_path):
    from tests.userconfig import user_config

    cfg = user_config(tmp_path, "")
    cfg.jobs_dir.mkdir(parents=True, exist_ok=True)
    put(cfg.jobs_dir / "mine.yaml", BACKUP_JOB, 0o644)
    put(cfg.jobs_dir / "theirs.yaml", BACKUP_JOB + "user: root\n", 0o644)
    db = Database(cfg)
    db.refresh()
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert [(job.name, job.owner) for job in db.jobs] == [("daily_backup", me)]
    assert "only system job files" in refusals(db)["theirs.yaml"]
