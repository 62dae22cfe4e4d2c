"""`smartcronctl suggest`'s grammar, phrase by phrase (issue 16, point 7).

The table was written before the grammar: each row is a sentence a user might type, the
cron schedule it must give, and the `#@smart` keys (as written on the line). A row that
uses a key another part of issue 16 adds is skipped until that key is in KINDS.
"""

from __future__ import annotations

import pytest

from smartcron.smart import suggest
from smartcron.smart.annotations import KINDS

# (sentence, schedule, keys)
PHRASINGS: list[tuple[str, str, dict[str, str]]] = [
    # ---- the issue's own example
    (
        "back up every night around 1am when I'm idle and on AC power, retry twice,"
        " give up after 6 hours",
        "0 1 * * *",
        {"idle": "10m", "ac": "yes", "retry": "2", "window": "6h", "on_deadline": "skip"},
    ),
    # ---- schedules
    ("every 15 minutes", "*/15 * * * *", {}),
    ("every minute", "* * * * *", {}),
    ("every 5 mins", "*/5 * * * *", {}),
    ("every five minutes", "*/5 * * * *", {}),
    ("every half hour", "*/30 * * * *", {}),
    ("every hour", "0 * * * *", {}),
    ("hourly", "0 * * * *", {}),
    ("every 2 hours", "0 */2 * * *", {}),
    ("every three hours", "0 */3 * * *", {}),
    ("every night at 1am", "0 1 * * *", {}),
    ("every night", "0 1 * * *", {}),
    ("nightly at 2:30", "30 2 * * *", {}),
    ("every morning", "0 8 * * *", {}),
    ("every evening at 7pm", "0 19 * * *", {}),
    ("daily", "0 0 * * *", {}),
    ("every day at 6:45am", "45 6 * * *", {}),
    ("every day at 18:05", "5 18 * * *", {}),
    ("weekdays at 9:30", "30 9 * * 1-5", {}),
    ("every weekday at 9am", "0 9 * * 1-5", {}),
    ("on weekends at 10am", "0 10 * * 0,6", {}),
    ("at 6pm on weekends", "0 18 * * 0,6", {}),
    ("every Sunday at noon", "0 12 * * 0", {}),
    ("every monday at midnight", "0 0 * * 1", {}),
    ("on mondays and thursdays at 8pm", "0 20 * * 1,4", {}),
    ("every Friday evening", "0 18 * * 5", {}),
    ("every saturday night", "0 1 * * 6", {}),
    ("weekly", "0 0 * * 0", {}),
    ("once a week", "0 0 * * 0", {}),
    ("on the first of every month", "0 0 1 * *", {}),
    ("on the 15th of each month at 3am", "0 3 15 * *", {}),
    ("on the 1st and 15th at noon", "0 12 1,15 * *", {}),
    ("monthly", "0 0 1 * *", {}),
    ("every year", "0 0 1 1 *", {}),
    ("on January 1st at 9am", "0 9 1 1 *", {}),
    ("twice a day", "0 0,12 * * *", {}),
    ("three times a day", "0 0,8,16 * * *", {}),
    ("twice a day at 9am", "0 9,21 * * *", {}),
    ("at 9am and 5pm", "0 9,17 * * *", {}),
    ("every 15 minutes between 9am and 5pm on weekdays", "*/15 9-16 * * 1-5", {}),
    ("every 10 minutes during working hours", "*/10 9-16 * * 1-5", {}),
    ("every day at quarter past 7", "15 7 * * *", {}),
    ("at half past 11pm", "30 23 * * *", {}),
    # ---- found by trying the grammar (added after it)
    ("at 3 in the morning", "0 3 * * *", {}),
    ("at 7 in the evening", "0 19 * * *", {}),
    ("every night at 11", "0 23 * * *", {}),
    ("every morning at 9 and 11", "0 9,11 * * *", {}),
    ("tuesdays at 1400", "0 14 * * 2", {}),
    ("every day at quarter to 12am", "45 23 * * *", {}),
    ("every day at 1 a.m.", "0 1 * * *", {}),
    (
        "daily at 1a.m., with 5% free disk space on /srv/a.m",
        "0 1 * * *",
        {"min_disk": "5%", "disk_path": "/srv/a.m"},
    ),
    ("every day at a quarter to 7 in the evening", "45 18 * * *", {}),
    ("at 8am on workdays", "0 8 * * 1-5", {}),
    ("every hour on the hour", "0 * * * *", {}),
    ("every hour from 9 to 5", "0 9-16 * * *", {}),
    ("every 5 minutes during the night", "*/5 0-5,22,23 * * *", {}),
    ("every 10 minutes between 10pm and 2am", "*/10 22-23,0-1 * * *", {}),
    ("every evening between 7 and 10", "0 19 * * *", {"window": "19:00-22:00"}),
    ("every day at noon unless the battery is below 20%", "0 12 * * *", {"min_battery": "20%"}),
    ("hourly unless the load is above 3", "0 * * * *", {"max_load": "3"}),
    ("every 6 hours with a 10 minute timeout", "0 */6 * * *", {"timeout": "10m"}),
    (
        "every day at 10pm when I haven't touched the keyboard for 5 minutes",
        "0 22 * * *",
        {"idle": "5m"},
    ),
    (
        "every sunday at 3am, give up if it can't run by 6am",
        "0 3 * * 0",
        {"window": "03:00-06:00", "on_deadline": "skip"},
    ),
    ("daily when the user has been idle for 1 hour", "0 0 * * *", {"idle": "1h"}),
    ("daily if less than 50% cpu", "0 0 * * *", {"max_cpu": "50%"}),
    ("daily when cpu load is below 40%", "0 0 * * *", {"max_cpu": "40%"}),
    ("daily when the disk has 10% free", "0 0 * * *", {"min_disk": "10%"}),
    (
        "daily if the free space on /srv is above 20%",
        "0 0 * * *",
        {"min_disk": "20%", "disk_path": "/srv"},
    ),
    ("daily, time limit 2 hours", "0 0 * * *", {"timeout": "2h"}),
    ("daily, retry on failure", "0 0 * * *", {"retry": "1"}),
    ("daily, priority high", "0 0 * * *", {"priority": "100"}),
    ("daily, skip if still running", "0 0 * * *", {"overlap": "skip"}),
    ("daily, don't run if the previous one is still running", "0 0 * * *", {"overlap": "skip"}),
    ("daily, don't send email", "0 0 * * *", {"mail": "never"}),
    ("daily, mail errors only", "0 0 * * *", {"mail": "error"}),
    ("daily, within the next 2 hours", "0 0 * * *", {"window": "2h"}),
    ("daily, can be delayed by 3 hours", "0 0 * * *", {"window": "3h"}),
    ("daily, if it can't run in time skip it", "0 0 * * *", {"on_deadline": "skip"}),
    ("daily named 'backup'", "0 0 * * *", {"name": "backup"}),
    ("daily, catch up after sleep", "0 0 * * *", {"catchup": "once"}),
    ("daily with 10 minutes of random delay", "0 0 * * *", {"jitter": "10m"}),
    ("daily when there is internet", "0 0 * * *", {"network": "online"}),
    ("daily after the backup job has succeeded", "0 0 * * *", {"after": "backup"}),
    # ---- every #@smart key
    ("every night, call it nightly_backup", "0 1 * * *", {"name": "nightly_backup"}),
    ("daily, named db-dump", "0 0 * * *", {"name": "db-dump"}),
    ("every day at 1am within 3 hours", "0 1 * * *", {"window": "3h"}),
    ("daily at 2am, it can wait up to 90 minutes", "0 2 * * *", {"window": "1h30m"}),
    ("every night between 1am and 4am", "0 1 * * *", {"window": "01:00-04:00"}),
    ("every night at 1am, finish starting by 5am", "0 1 * * *", {"window": "01:00-05:00"}),
    ("hourly when load is below 2", "0 * * * *", {"max_load": "2"}),
    ("hourly if the load average is under 1.5", "0 * * * *", {"max_load": "1.5"}),
    ("every hour when cpu usage is below 20%", "0 * * * *", {"max_cpu": "20%"}),
    ("every hour when the CPU is under 30 percent", "0 * * * *", {"max_cpu": "30%"}),
    ("daily when memory use is below 80%", "0 0 * * *", {"max_ram": "80%"}),
    ("daily when less than 70% of ram is used", "0 0 * * *", {"max_ram": "70%"}),
    ("nightly, only when the battery is above 50%", "0 1 * * *", {"min_battery": "50%"}),
    ("nightly with at least 30% battery", "0 1 * * *", {"min_battery": "30%"}),
    ("every night when plugged in", "0 1 * * *", {"ac": "yes"}),
    ("every night, even on battery", "0 1 * * *", {"ac": "no"}),
    ("every night when I've been idle for 15 minutes", "0 1 * * *", {"idle": "15m"}),
    ("every night, not while I'm using the computer", "0 1 * * *", {"idle": "10m"}),
    ("every night when nobody is using the machine", "0 1 * * *", {"idle": "10m"}),
    ("every night after 20 minutes of inactivity", "0 1 * * *", {"idle": "20m"}),
    ("weekly when at least 10% of the disk is free", "0 0 * * 0", {"min_disk": "10%"}),
    (
        "weekly with 20% free disk space on /srv",
        "0 0 * * 0",
        {"min_disk": "20%", "disk_path": "/srv"},
    ),
    ("every hour without the model", "0 * * * *", {"ai": "no"}),
    ("every hour, don't use ai", "0 * * * *", {"ai": "no"}),
    ("every hour, never explore", "0 * * * *", {"explore": "no"}),
    ("daily, a failure costs 5", "0 0 * * *", {"fail_cost": "5"}),
    ("daily, interference costs 0.5", "0 0 * * *", {"interference_cost": "0.5"}),
    ("daily, delay costs 0.2 per hour", "0 0 * * *", {"delay_cost": "0.2"}),
    ("daily, no rush", "0 0 * * *", {"delay_cost": "0"}),
    ("daily, retry 3 times", "0 0 * * *", {"retry": "3"}),
    ("daily, if it fails try again once", "0 0 * * *", {"retry": "1"}),
    ("daily, don't retry", "0 0 * * *", {"retry": "0"}),
    (
        "daily, retry twice, 10 minutes apart",
        "0 0 * * *",
        {"retry": "2", "retry_delay": "10m"},
    ),
    (
        "daily, retry 4 times waiting 2 minutes between attempts",
        "0 0 * * *",
        {"retry": "4", "retry_delay": "2m"},
    ),
    ("every 15 minutes, kill it after 30 minutes", "*/15 * * * *", {"timeout": "30m"}),
    ("hourly, time out after half an hour", "0 * * * *", {"timeout": "30m"}),
    ("hourly, stop it if it runs longer than 2 hours", "0 * * * *", {"timeout": "2h"}),
    ("hourly at low priority", "0 * * * *", {"priority": "-100"}),
    ("hourly at high priority", "0 * * * *", {"priority": "100"}),
    ("hourly with priority 7", "0 * * * *", {"priority": "7"}),
    ("nightly, skip it if it can't run in time", "0 1 * * *", {"on_deadline": "skip"}),
    ("nightly, run it anyway at the deadline", "0 1 * * *", {"on_deadline": "run"}),
    (
        "every 5 minutes, skip it if the previous run is still going",
        "*/5 * * * *",
        {"overlap": "skip"},
    ),
    ("every 5 minutes, never two at once", "*/5 * * * *", {"overlap": "skip"}),
    (
        "every 5 minutes, queue it if the last run is still running",
        "*/5 * * * *",
        {"overlap": "queue"},
    ),
    ("every 5 minutes, runs may overlap", "*/5 * * * *", {"overlap": "allow"}),
    ("daily, only mail me on errors", "0 0 * * *", {"mail": "error"}),
    ("daily, email me only if it fails", "0 0 * * *", {"mail": "error"}),
    ("daily, never mail me", "0 0 * * *", {"mail": "never"}),
    ("daily, mail me the output", "0 0 * * *", {"mail": "output"}),
    # ---- the keys the rest of issue 16 adds
    ("daily, if the laptop was off run it once when it's back", "0 0 * * *", {"catchup": "once"}),
    ("daily, catch up on every missed run", "0 0 * * *", {"catchup": "all"}),
    ("daily, don't catch up", "0 0 * * *", {"catchup": "no"}),
    # hypothesis found it: "catch up within" must not take the words of "don't catch up"
    ("daily, don't catch up within 3 hours", "0 0 * * *", {"catchup": "no", "window": "3h"}),
    (
        "daily, catch up within 12 hours",
        "0 0 * * *",
        {"catchup": "once", "catchup_window": "12h"},
    ),
    ("hourly with up to 5 minutes of jitter", "0 * * * *", {"jitter": "5m"}),
    ("hourly, spread it over 10 minutes", "0 * * * *", {"jitter": "10m"}),
    ("hourly when cpu pressure is below 10%", "0 * * * *", {"max_cpu_pressure": "10%"}),
    ("hourly when io pressure is under 20%", "0 * * * *", {"max_io_pressure": "20%"}),
    ("hourly when memory pressure is below 5%", "0 * * * *", {"max_mem_pressure": "5%"}),
    ("hourly when the network is up", "0 * * * *", {"network": "online"}),
    ("hourly when online", "0 * * * *", {"network": "online"}),
    ("hourly, not on a metered connection", "0 * * * *", {"network": "unmetered"}),
    ("daily after the backup job", "0 0 * * *", {"after": "backup"}),
    ("daily after backup and sync have succeeded", "0 0 * * *", {"after": "backup,sync"}),
    ("daily on only one host of the fleet", "0 0 * * *", {"fleet": "once"}),
    ("daily on every machine", "0 0 * * *", {"fleet": "each"}),
    ("daily with the laptop profile", "0 0 * * *", {"profile": "laptop"}),
    ("daily, use the quiet-hours profile", "0 0 * * *", {"profile": "quiet-hours"}),
]

# What the grammar must report as not understood (runs of words); nothing for the others.
UNPARSED = {PHRASINGS[0][0]: ["back up"]}


@pytest.mark.parametrize(("text", "schedule", "keys"), PHRASINGS, ids=[p[0] for p in PHRASINGS])
def test_each_phrasing_gives_its_schedule_and_keys(text, schedule, keys):
    missing = sorted(set(keys) - set(KINDS))
    if missing:
        pytest.skip(f"{', '.join(missing)} not in annotations.KINDS yet")
    found = suggest.suggest(text)
    assert (found.schedule, found.annotation) == (schedule, keys)
    assert found.unparsed == UNPARSED.get(text, [])


def test_the_table_covers_every_smart_key():
    covered = {key for _, _, keys in PHRASINGS for key in keys}
    assert set(KINDS) - covered == set()
    assert len(PHRASINGS) >= 60
