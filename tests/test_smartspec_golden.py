"""Golden files for the smart layer: tests/golden_smart/NAME.crontab (with its companion
NAME.crontab.smart.yaml, if any) in, NAME.json out: every job line's resolved SmartSpec
(null for plain cron lines) or the errors the daemon would log for it. Regenerate with
`UPDATE_GOLDEN=1 pytest tests/test_smartspec_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from smartcron.cron.crontab import parse
from smartcron.errors import AnnotationError
from smartcron.smart.smartspec import companion_path, load_companion, smart_spec_for

GOLDEN = Path(__file__).parent / "golden_smart"
CASES = sorted(GOLDEN.glob("*.crontab"))


def render(path: Path) -> str:
    tab = parse(path.read_text(), path=path.name)
    side = companion_path(path)
    companion = load_companion(side.read_text(), side.name) if side.exists() else None
    entries: list[dict[str, Any]] = []
    for entry in tab.entries:
        item: dict[str, Any] = {"line": entry.line, "command": entry.command}
        try:
            spec = smart_spec_for(entry, path.name, companion, None)
            item["smart"] = None if spec is None else spec.as_dict()
        except AnnotationError as err:
            item["errors"] = [str(p) for p in err.problems]
        entries.append(item)
    result: dict[str, Any] = {"companion": side.name if companion else None, "entries": entries}
    return json.dumps(result, indent=2) + "\n"


def test_there_are_golden_cases():
    assert len(CASES) >= 3


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_crontab_resolves_to_its_expected_smart_specs(path: Path):
    expected = path.with_suffix(".json")
    got = render(path)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(got)
    assert expected.exists(), f"missing {expected.name}: run with UPDATE_GOLDEN=1"
    assert got == expected.read_text()
