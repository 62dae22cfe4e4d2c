"""parse-next: load a large crontab estate (read + parse every file) and find each first firing.

The estate is generated from a fixed seed: 10,000 entries over 500 files, in the shapes
real crontabs use. Each run starts cold: the parser's and the schedule's memo caches are
emptied first, as they are in a freshly started daemon. The baseline, measured in the
same run, is croniter's own `croniter(expr, start).get_next(datetime)` on the same
expressions (@reboot skipped), which is what a naive implementation would cost.

The adversarial estate gives every entry a distinct pair of restricted day fields
(`dom` and `dow` both restricted: cron ORs them), so no parsed croniter template is
ever reused; it is reported on its own.
"""

from __future__ import annotations

import itertools
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import Result, Row, median, ms

START = datetime(2026, 3, 2, 9, 17, 23, tzinfo=UTC)  # fixed: results do not depend on today
SEED = 20260302
GOAL_S = 1.0


@dataclass(frozen=True)
class Params:
    entries: int
    files: int
    runs: int
    adversarial_entries: int


FULL = Params(entries=10_000, files=500, runs=7, adversarial_entries=10_000)
QUICK = Params(entries=10_000, files=500, runs=3, adversarial_entries=10_000)
TINY = Params(entries=60, files=3, runs=1, adversarial_entries=40)
FIELDS = (
    "entries",
    "parse_s",
    "next_s",
    "load_s",
    "croniter_s",
    "adversarial_parse_s",
    "adversarial_next_s",
    "adversarial_croniter_s",
)

_DOWS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_KEYWORDS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")


def _minute(rng: random.Random) -> int:
    # People favour round minutes; the rest are spread (as `crontab -e` users pick them).
    return rng.choice((0, 0, 0, 5, 10, 15, 30, 30, 45)) if rng.random() < 0.5 else rng.randrange(60)


def realistic_expr(rng: random.Random) -> str:
    """One time expression, drawn from the shapes common in real crontabs."""
    m, h = _minute(rng), rng.randrange(24)
    shape = rng.random()
    if shape < 0.12:
        return f"*/{rng.choice((2, 5, 5, 10, 15, 20, 30))} * * * *"
    if shape < 0.27:
        return f"{m} * * * *"
    if shape < 0.45:
        return f"{m} {h} * * *"
    if shape < 0.53:
        day = rng.choice((str(rng.randrange(7)), _DOWS[rng.randrange(7)], "7"))
        return f"{m} {h} * * {day}"
    if shape < 0.60:
        weekdays = rng.choice(("mon-fri", "1-5"))
        return f"{m} {rng.choice((7, 8, 9))}-{rng.choice((17, 18, 19))} * * {weekdays}"
    if shape < 0.66:
        return f"{m} {h} {rng.randrange(1, 29)} * *"
    if shape < 0.70:
        return "15 2 1,15 * *"
    if shape < 0.74:
        return f"{m} {rng.randrange(12)}-{rng.randrange(12, 24)}/{rng.choice((2, 3, 4))} * * *"
    if shape < 0.78:
        months = ",".join(sorted(rng.sample(_MONTHS, rng.randrange(1, 4)), key=_MONTHS.index))
        return f"{m} {h} {rng.randrange(1, 29)} {months} *"
    if shape < 0.82:
        return (
            f"0-59/{rng.choice((7, 20, 30))} {rng.randrange(6, 10)}-{rng.randrange(16, 22)} * * *"
        )
    if shape < 0.86:  # both day fields restricted: cron ORs them
        dom, dow = rng.choice(("1", "13", "1,15", "28-31")), rng.choice(("fri", "5", "mon", "0"))
        return f"{m} {h} {dom} * {dow}"
    if shape < 0.89:
        return f"{m} {h},{(h + 12) % 24} * * *"
    if shape < 0.91:
        return f"{m} {h} */2 * *"
    if shape < 0.99:
        return rng.choice(_KEYWORDS)
    return "@reboot"


def adversarial_expr(index: int, days: tuple[str, str]) -> str:
    return f"{index % 60} {index % 24} {days[0]} * {days[1]}"


def _distinct_days(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` distinct (dom, dow) pairs, both restricted, so every days string differs."""
    dom_sets = [f"{a},{b}" for a, b in itertools.combinations(range(1, 32), 2)]
    dow_sets = [str(d) for d in range(7)] + [
        f"{a},{b}" for a, b in itertools.combinations(range(7), 2)
    ]
    pairs = list(itertools.product(dom_sets, dow_sets))
    rng.shuffle(pairs)
    return pairs[:count]


def _command(rng: random.Random, index: int) -> str:
    tail = rng.choice(
        (" > /dev/null 2>&1", "", " >> /var/log/job.log 2>&1", " | logger -t job", "")
    )
    if rng.random() < 0.03:
        return f"mail -s 'report {index}' root%Report body%line two"
    return f"/usr/local/bin/job-{index}.sh --quiet{tail}"


def write_estate(directory: Path, exprs: list[str], files: int, seed: int) -> list[Path]:
    """Spread the expressions over `files` crontab files with the usual env and comments."""
    rng = random.Random(seed)
    per_file = -(-len(exprs) // files)
    paths = []
    for number in range(files):
        chunk = exprs[number * per_file : (number + 1) * per_file]
        lines = [f"# crontab {number}: generated for the parse-next benchmark", ""]
        if rng.random() < 0.5:
            lines.append("MAILTO=ops@example.com")
        if rng.random() < 0.3:
            lines.append("SHELL = /bin/bash")
            lines.append('PATH="/usr/local/bin:/usr/bin:/bin"')
        for offset, expr in enumerate(chunk):
            if rng.random() < 0.2:
                lines.append(f"# job {offset}: nightly maintenance")
            lines.append(f"{expr} {_command(rng, number * per_file + offset)}")
        path = directory / f"crontab-{number:04d}"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def _clear_caches() -> None:
    """Empty every functools cache of the parser and the schedule: each run starts cold."""
    from smartcron.cron import crontab, schedule

    for module in (crontab, schedule):
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


def load_once(paths: list[Path]) -> tuple[float, float, int]:
    """Read and parse every file, then each entry's first firing: (parse s, next s, entries)."""
    from smartcron.cron.crontab import parse
    from smartcron.cron.schedule import next_fires

    _clear_caches()
    t0 = time.perf_counter()
    tabs = [parse(path.read_bytes(), path=str(path)) for path in paths]
    t1 = time.perf_counter()
    count = 0
    for tab in tabs:
        for entry in tab.entries:
            next(next_fires(entry.spec, START, UTC), None)
            count += 1
    return t1 - t0, time.perf_counter() - t1, count


def croniter_once(exprs: list[str]) -> float:
    from croniter import croniter

    t0 = time.perf_counter()
    for expr in exprs:
        croniter(expr, START).get_next(datetime)
    return time.perf_counter() - t0


def _measure(paths: list[Path], exprs: list[str], runs: int) -> dict[str, float]:
    parse_s, next_s, base_s = [], [], []
    timed = [e for e in exprs if e != "@reboot"]
    for _ in range(runs):  # interleaved, so drifting machine load hits both alike
        p, n, _count = load_once(paths)
        parse_s.append(p)
        next_s.append(n)
        base_s.append(croniter_once(timed))
    return {
        "parse_s": median(parse_s),
        "next_s": median(next_s),
        "load_s": median([p + n for p, n in zip(parse_s, next_s, strict=True)]),
        "croniter_s": median(base_s),
    }


def run(params: Params) -> Result:
    rng = random.Random(SEED)
    exprs = [realistic_expr(rng) for _ in range(params.entries)]
    days = _distinct_days(rng, params.adversarial_entries)
    adversarial = [adversarial_expr(i, d) for i, d in enumerate(days)]
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        normal_dir, hard_dir = Path(tmp, "normal"), Path(tmp, "adversarial")
        normal_dir.mkdir()
        hard_dir.mkdir()
        paths = write_estate(normal_dir, exprs, params.files, SEED)
        hard_paths = write_estate(hard_dir, adversarial, params.files, SEED + 1)
        _, _, loaded = load_once(paths)  # also checks that every generated file parses
        normal = _measure(paths, exprs, params.runs)
        hard = _measure(hard_paths, adversarial, params.runs)

    result = Result(
        name="parse-next",
        config=(
            f"{params.entries:,} entries in {params.files} files (seed {SEED}), "
            f"{params.runs} runs, caches emptied before each; first firing after "
            f"{START.isoformat()} in UTC"
        ),
        baseline="croniter(expr, start).get_next(datetime) on the same expressions, same run",
    )
    result.add(Row("parse (read + parse every file)", ms(normal["parse_s"]), "ms"))
    result.add(Row("first firing of every entry", ms(normal["next_s"]), "ms"))
    result.add(
        Row(
            "whole load (parse + next)",
            ms(normal["load_s"]),
            "ms",
            baseline=ms(normal["croniter_s"]),
            goal=f"< {GOAL_S * 1000:.0f} ms",
            met=normal["load_s"] < GOAL_S,
        )
    )
    result.add(Row("adversarial: parse", ms(hard["parse_s"]), "ms"))
    result.add(Row("adversarial: first firing", ms(hard["next_s"]), "ms"))
    result.add(
        Row(
            "adversarial: whole load",
            ms(hard["load_s"]),
            "ms",
            baseline=ms(hard["croniter_s"]),
            goal="reported only",
        )
    )
    result.fields = {
        "entries": loaded,
        **normal,
        **{f"adversarial_{key}": value for key, value in hard.items()},
    }
    per_entry = normal["next_s"] / max(loaded, 1) * 1e6
    result.notes.append(
        f"{loaded:,} entries loaded; first firing costs {per_entry:.0f} µs per entry "
        f"on the realistic estate, {hard['next_s'] / max(len(adversarial), 1) * 1e6:.0f} µs "
        "on the adversarial one."
    )
    return result
