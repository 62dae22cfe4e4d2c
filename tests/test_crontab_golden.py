"""Golden files for the parser: tests/golden/NAME.crontab (user) or NAME.system (system
format) in, NAME.json out. Regenerate with `UPDATE_GOLDEN=1 pytest tests/test_crontab_golden.py`,
then review the diff against Debian's entry.c/env.c/do_command.c before committing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from smartcron.cron.crontab import Crontab, Entry, Kind, parse
from smartcron.errors import CrontabSyntaxError

GOLDEN = Path(__file__).parent / "golden"
SYSTEM_USERS = frozenset({"root", "www-data", "nobody"})
CASES = sorted([*GOLDEN.glob("*.crontab"), *GOLDEN.glob("*.system")])


def _entry(entry: Entry) -> dict[str, Any]:
    spec = entry.spec
    return {
        "line": entry.line,
        "user": entry.user,
        "command": entry.command,
        "shell_command": entry.shell_command,
        "stdin": entry.stdin,
        "time": {
            "text": spec.text,
            "minutes": sorted(spec.minutes),
            "hours": sorted(spec.hours),
            "doms": sorted(spec.doms),
            "months": sorted(spec.months),
            "dows": sorted(spec.dows),
            "flags": [
                name
                for name in ("min_star", "hour_star", "dom_star", "dow_star", "reboot")
                if getattr(spec, name)
            ],
        },
        "env": dict(entry.env),
        "annotations": [{"line": a.line, "text": a.text} for a in entry.annotations],
    }


def render(path: Path) -> str:
    """The JSON a golden input must produce (int lists kept on one line for review)."""
    kind = Kind.SYSTEM if path.suffix == ".system" else Kind.USER
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    try:
        tab: Crontab | None = parse(text, kind, path.name, SYSTEM_USERS.__contains__)
    except CrontabSyntaxError as err:
        tab, errors = None, [str(p) for p in err.problems]
    result: dict[str, Any] = {"kind": kind.value}
    if tab is None:
        result["errors"] = errors
    else:
        result["entries"] = [_entry(e) for e in tab.entries]
        result["env"] = [{"line": a.line, "name": a.name, "value": a.value} for a in tab.env]
        result["warnings"] = [str(w) for w in tab.warnings]
    out = json.dumps(result, indent=2, ensure_ascii=False)
    return re.sub(r"\[[\d,\s]*\]", lambda m: json.dumps(json.loads(m.group())), out) + "\n"


def test_there_are_golden_files_for_both_formats():
    assert {p.suffix for p in CASES} == {".crontab", ".system"}


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_parse_matches_the_reviewed_golden_json(path: Path):
    expected = path.with_suffix(".json")
    actual = render(path)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(actual, encoding="utf-8")
    assert expected.exists(), f"no {expected.name}: run with UPDATE_GOLDEN=1 and review it"
    assert actual == expected.read_text(encoding="utf-8")
