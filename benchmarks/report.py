"""Printing results, and writing them into their section of docs/benchmarks.md."""

from __future__ import annotations

import math
import re
from pathlib import Path

from benchmarks.common import Result, Row

HEADER = """\
# Benchmarks

Speed and memory goals are checked here, never in timed unit tests. Run them with
`make bench` (the full suite, about 15 minutes) or `.venv/bin/python -m benchmarks
[NAME ...] [--quick] [--write docs/benchmarks.md]`. The machines are shared and noisy:
every number is a median (or the percentile it names) next to a baseline measured in
the same run, and the ratio is value / baseline. The blocks between the `bench:` markers
are rewritten by `--write`; the text after each block is written by hand.
"""


def fmt(value: float | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _cells(row: Row) -> list[str]:
    value = fmt(row.value) + (f" {row.unit}" if row.unit and fmt(row.value) != "n/a" else "")
    baseline = ""
    if row.baseline is not None:
        baseline = fmt(row.baseline) + (f" {row.unit}" if row.unit else "")
    ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
    status = {True: "met", False: "**missed**", None: ""}[row.met]
    return [row.metric, value, baseline, ratio, row.goal, status]


COLUMNS = ["metric", "value", "baseline", "ratio", "goal", ""]


def text_table(result: Result) -> str:
    rows = [COLUMNS] + [_cells(r) for r in result.rows]
    rows = [[c.replace("**", "").replace("`", "") for c in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [f"== {result.name}: {result.config}", f"   baseline: {result.baseline}"]
    for row in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    lines += [f"   - {note}" for note in result.notes]
    return "\n".join(lines)


def markdown(result: Result, command: str, machine: str, date: str) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine}  ",
        f"Date: {date}  ",
        f"Configuration: {result.config}  ",
        f"Baseline: {result.baseline}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in result.rows]
    if result.notes:
        lines.append("")
        lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the block between `name`'s markers, or append a new section with them."""
    text = path.read_text() if path.exists() else HEADER
    begin, end = _markers(name)
    block = f"{begin}\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + f"\n\n## {name}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
