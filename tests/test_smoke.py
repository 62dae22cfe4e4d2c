from smartcron.cron.crontab import Kind, parse


def test_a_minimal_user_crontab_parses():
    tab = parse("0 1 * * * echo hi\n", Kind.USER)
    assert [e.command for e in tab.entries] == ["echo hi"]
