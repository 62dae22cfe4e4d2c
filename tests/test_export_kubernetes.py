"""smartcronctl export --to kubernetes: each manifest loads into the official client's
V1CronJob model, and its schedule fires, read as Kubernetes reads it (robfig/cron: the
day fields are ORed unless one of them is `*`), when smartcronctl next says."""

from __future__ import annotations

import json
import os
import pwd
import re
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.cli.ctl import main as ctl
from smartcron.cron.crontab import parse_timespec
from smartcron.cron.schedule import next_fires

client = pytest.importorskip("kubernetes.client", reason="the kubernetes client is not installed")

DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def load_cron_job(manifest: dict) -> object:
    """The manifest as the client's V1CronJob (it raises on a missing or mistyped field)."""
    return client.ApiClient().deserialize(json.dumps(manifest), "V1CronJob", "application/json")


def export(tmp_path: Path, crontab: str, *args: str) -> tuple[list[dict], str]:
    tab = tmp_path / "crontab"
    tab.write_text(crontab)
    result = CliRunner().invoke(
        ctl, ["export", "--to", "kubernetes", "--crontab", str(tab), *args], env={"TZ": "UTC"}
    )
    assert result.exit_code == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None], result.stderr


def test_a_broken_manifest_does_not_load() -> None:
    good = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "x"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
        },
    }
    assert load_cron_job(good).spec.schedule == "* * * * *"
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        load_cron_job({**good, "spec": {**good["spec"], "startingDeadlineSeconds": "2h"}})
    with pytest.raises(ValueError):
        load_cron_job({**good, "spec": {"jobTemplate": {"spec": {}}}})


SMART = """\
MAILTO=ops@example.org
GREETING=hello world
#@smart name=Nightly_Backup window=2h retry=3 timeout=30m overlap=skip max_load=1.5 ac=yes
0 3 * * * /usr/local/bin/backup --all%first%second
#@smart name=queued overlap=queue window=01:00-05:00
*/10 * * * * work
CRON_TZ=Europe/Berlin
0 0 13 * 5 echo friday
@reboot echo boot
0 0 */2 * mon echo odd-mondays
#@smart name=again
5 4 * * * echo again
#@smart name=again
5 4 * * * echo again
"""


def test_each_line_is_a_cron_job_with_the_mapped_keys(tmp_path: Path) -> None:
    docs, stderr = export(tmp_path, SMART, "--image", "busybox:1.36")
    jobs = {d["metadata"]["name"]: d for d in docs}
    assert list(jobs) == ["nightly-backup", "queued", "echo-8", "again", "again-2"]
    for doc in docs:
        model = load_cron_job(doc)
        # Nothing of the manifest is lost in the model (a misspelt field would be).
        assert client.ApiClient().sanitize_for_serialization(model) == doc
        assert DNS_1123.fullmatch(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 52
        assert doc["spec"]["concurrencyPolicy"] in ("Allow", "Forbid", "Replace")
    backup = jobs["nightly-backup"]
    assert backup["spec"]["schedule"] == "0 3 * * *"
    assert backup["spec"]["timeZone"] == "UTC"  # the system zone (TZ=UTC)
    assert backup["spec"]["concurrencyPolicy"] == "Forbid"
    assert backup["spec"]["startingDeadlineSeconds"] == 7200
    run = backup["spec"]["jobTemplate"]["spec"]
    assert (run["backoffLimit"], run["activeDeadlineSeconds"]) == (3, 1800)
    container = run["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.36"
    assert container["command"] == [
        "/bin/sh", "-c", "printf %s 'first\nsecond\n' | {\n/usr/local/bin/backup --all\n}",
    ]  # fmt: skip
    assert container["env"] == [{"name": "GREETING", "value": "hello world"}]
    assert backup["metadata"]["annotations"] == {
        "smartcron.io/source": f"{tmp_path}/crontab:4",
        "smartcron.io/user": pwd.getpwuid(os.geteuid()).pw_name,  # the crontab's owner
        "smartcron.io/smart": "true",
        "smartcron.io/max_load": "1.5",
        "smartcron.io/ac": "yes",
    }
    queued = jobs["queued"]
    assert queued["spec"]["concurrencyPolicy"] == "Forbid"
    assert "startingDeadlineSeconds" not in queued["spec"]  # a clock window has none
    assert queued["metadata"]["annotations"]["smartcron.io/overlap"] == "queue"
    assert queued["metadata"]["annotations"]["smartcron.io/window"] == "01:00-05:00"
    friday = jobs["echo-8"]
    assert friday["spec"]["timeZone"] == "Europe/Berlin"
    assert friday["spec"]["schedule"] == "0 0 13 * 5"
    assert friday["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0  # cron never retries
    assert f"{tmp_path}/crontab:4: nightly-backup: the smart gate does not run" in stderr
    assert "annotations: max_load, ac" in stderr
    assert f"{tmp_path}/crontab:9: not exported: @reboot" in stderr
    assert f"{tmp_path}/crontab:10: not exported: Debian ANDs" in stderr


def test_out_writes_one_manifest_per_file(tmp_path: Path) -> None:
    tab = tmp_path / "crontab"
    tab.write_text("0 3 * * * backup\n")
    out = tmp_path / "manifests"
    args = ["export", "--to", "kubernetes", "--crontab", str(tab), "--out", str(out)]
    result = CliRunner().invoke(ctl, args)
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["backup-1.yaml"]
    assert yaml.safe_load((out / "backup-1.yaml").read_text())["spec"]["schedule"] == "0 3 * * *"
    assert result.stdout == ""


# ------------------------------------------------------------------ the schedule's meaning


def _robfig_set(field: str, low: int, high: int) -> tuple[set[int], bool]:
    """The values of one exported field and robfig's star bit (the field is `*`)."""
    if field == "*":
        return set(range(low, high + 1)), True
    values: set[int] = set()
    for part in field.split(","):
        first, _, last = part.partition("-")
        values.update(range(int(first), int(last or first) + 1))
    return values, False


def robfig_fires(schedule: str, after: datetime, count: int) -> list[datetime]:
    """robfig/cron's standard parser's matching, on the (minute, hour, dom, month, dow)
    forms the exporter writes: days are ANDed if either day field is `*`, else ORed."""
    minute, hour, dom, month, dow = schedule.split()
    minutes, _ = _robfig_set(minute, 0, 59)
    hours, _ = _robfig_set(hour, 0, 23)
    doms, dom_star = _robfig_set(dom, 1, 31)
    months, _ = _robfig_set(month, 1, 12)
    dows, dow_star = _robfig_set(dow, 0, 6)
    out: list[datetime] = []
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    while len(out) < count and day.year < after.year + 100:
        in_dom, in_dow = day.day in doms, (day.weekday() + 1) % 7 in dows
        ok = (in_dom and in_dow) if dom_star or dow_star else (in_dom or in_dow)
        if ok and day.month in months:
            for h in sorted(hours):
                for m in sorted(minutes):
                    instant = day.replace(hour=h, minute=m)
                    if instant > after and len(out) < count:
                        out.append(instant)
        day += timedelta(days=1)
    return out


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    ranged = st.tuples(number, number).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.integers(1, high - low + 1).map(str)
    part = st.one_of(number.map(str), ranged, st.tuples(ranged, step).map("/".join))
    return (
        st.just("*")
        | step.map(lambda s: f"*/{s}")
        | st.lists(part, min_size=1, max_size=3).map(",".join)
    )


EXPRESSIONS = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 7)
).map(" ".join)
AFTER = datetime(2026, 1, 1, tzinfo=UTC)


def _same_firings(expressions: list[str], tmp_path: Path) -> None:
    crontab = "".join(f"{expr} true\n" for expr in expressions)
    docs, stderr = export(tmp_path, crontab)
    exported = {
        int(d["metadata"]["annotations"]["smartcron.io/source"].rsplit(":", 1)[1]): d for d in docs
    }
    for line, expr in enumerate(expressions, 1):
        cron = list(islice(next_fires(parse_timespec(expr), AFTER, UTC), 20))
        if line not in exported:  # only a line that never fires or ANDs two day lists
            assert f":{line}: not exported" in stderr
            continue
        assert robfig_fires(exported[line]["spec"]["schedule"], AFTER, 20) == cron, expr


def test_nasty_schedules_fire_in_kubernetes_as_in_cron(tmp_path: Path) -> None:
    _same_firings(
        ["0 0 13 * 5", "0 0 1-31 * 3", "*/7 1-5 1-31/2 * *", "0 0 29 2 *", "0 0 31 2 sun",
         "0 0 */2 * *", "0 0 * * */3", "@weekly", "0 0 * 2 mon", "0 12 */1 4 fri",
         "0 0 31 4,6 *", "0 0 1,15 * 0-6"],
        tmp_path,
    )  # fmt: skip


@settings(max_examples=5, deadline=None)
@given(st.lists(EXPRESSIONS, min_size=40, max_size=40))
def test_generated_schedules_fire_in_kubernetes_as_in_cron(
    tmp_path_factory: pytest.TempPathFactory, expressions: list[str]
) -> None:
    _same_firings(expressions, tmp_path_factory.mktemp("k8s"))
