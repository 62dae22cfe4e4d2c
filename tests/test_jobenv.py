from smartcron.run.jobenv import (
    PasswdEntry,
    build_env,
    job_environment,
    parse_pam_env_file,
    resolve_user,
)

ALICE = PasswdEntry(name="alice", uid=1001, gid=1001, dir="/home/alice", shell="/bin/zsh")


def test_defaults_come_in_debians_order_and_nothing_else():
    env = job_environment([], ALICE)
    assert list(env.items()) == [
        ("SHELL", "/bin/sh"),
        ("HOME", "/home/alice"),
        ("PATH", "/usr/bin:/bin"),
        ("LOGNAME", "alice"),
    ]


def test_the_login_shell_from_passwd_is_not_used():
    assert job_environment([], ALICE)["SHELL"] == "/bin/sh"


def test_crontab_assignments_come_first_and_defaults_are_appended():
    env = job_environment([("MAILTO", "bob"), ("PATH", "/opt/bin")], ALICE)
    assert list(env) == ["MAILTO", "PATH", "SHELL", "HOME", "LOGNAME"]
    assert env["PATH"] == "/opt/bin"


def test_crontab_may_override_shell_home_and_path():
    crontab = [("HOME", "/srv"), ("SHELL", "/bin/bash"), ("PATH", "/x")]
    env = job_environment(crontab, ALICE)
    assert env == {"HOME": "/srv", "SHELL": "/bin/bash", "PATH": "/x", "LOGNAME": "alice"}


def test_logname_cannot_be_overridden_but_keeps_its_place():
    env = job_environment([("LOGNAME", "mallory"), ("A", "1")], ALICE)
    assert env["LOGNAME"] == "alice"
    assert list(env)[:2] == ["LOGNAME", "A"]  # env_set replaces in place


def test_there_is_no_user_variable_on_linux():
    assert "USER" not in job_environment([], ALICE)


def test_a_reassignment_replaces_in_place():
    env = job_environment([("A", "1"), ("B", "2"), ("A", "3")], ALICE)
    assert list(env)[:2] == ["A", "B"]
    assert env["A"] == "3"


def test_build_env_puts_pam_variables_first_and_lets_cron_win():
    cron = job_environment([("LANG", "de_DE.UTF-8")], ALICE)
    env = build_env(cron.items(), [("LANG", "C.UTF-8"), ("TZ", "UTC")])
    assert list(env) == ["LANG", "TZ", "SHELL", "HOME", "PATH", "LOGNAME"]
    assert env["LANG"] == "de_DE.UTF-8"


def test_build_env_without_pam_is_the_cron_list():
    cron = job_environment([], ALICE)
    assert list(build_env(cron.items()).items()) == list(cron.items())


def test_pam_env_file_parsing_follows_pam_env():
    text = (
        "# comment\n"
        "\n"
        'LANG="C.UTF-8"\n'
        "export EDITOR=vi\n"
        "  TZ=UTC # trailing comment\n"
        "BAD-NAME=x\n"
        'QUOTE="it\'s"\n'
        "=nokey\n"
        "GONE=1\n"
        "GONE\n"
    )
    assert parse_pam_env_file(text) == [
        ("LANG", "C.UTF-8"),
        ("EDITOR", "vi"),
        ("TZ", "UTC "),
        ("QUOTE", "it's"),
    ]


def test_resolve_user_finds_root_and_not_a_stranger():
    root = resolve_user("root")
    assert root is not None
    assert (root.uid, root.gid, root.name) == (0, 0, "root")
    assert resolve_user("no_such_user_scxt") is None
    assert resolve_user("bad\0name") is None
