"""burst-200: 200 jobs due in the same minute. All must start (none lost); how long after
the boundary does the last one start?

Baseline, same run: the same 200 stamping shells started back to back from one Python
thread (subprocess.Popen in a loop), the floor for a daemon that forks them one by one.
"""

from __future__ import annotations

from benchmarks import debiancron, firing
from benchmarks.common import Result, Row, median, ms
from benchmarks.firing import Params

GOAL_LAST_MS = 500.0  # issue 14: the last of 200 jobs of one minute
FULL = Params(jobs=200, boundaries=3, baseline_runs=5)
QUICK = Params(jobs=200, boundaries=1, baseline_runs=3)
TINY = Params(jobs=5, boundaries=1, baseline_runs=1, beside_debian=False)
FIELDS = ("started", "expected", "lost", "first_ms", "last_ms", "baseline_last_ms")


def run(params: Params) -> Result:
    base_lasts = [
        max(firing.spawn_many(params.jobs), default=float("nan"))
        for _ in range(params.baseline_runs)
    ]
    starts = firing.measure(params.jobs, params.boundaries)
    debian = (
        debiancron.measured(params.jobs, params.boundaries)
        if params.beside_debian
        else "not asked for (a tiny run)"
    )
    counts = [len(starts.offsets[b]) for b in starts.boundaries]
    firsts = [min(starts.offsets[b], default=float("nan")) for b in starts.boundaries]
    lasts = [max(starts.offsets[b], default=float("nan")) for b in starts.boundaries]
    base_last = median(base_lasts)
    lost = starts.expected - starts.started
    result = Result(
        name="burst-200",
        config=(
            f"{params.jobs} `* * * * *` jobs, {params.boundaries} minute boundar"
            f"{'y' if params.boundaries == 1 else 'ies'}; per boundary: {counts} started"
        ),
        baseline=(
            f"{params.jobs} stamping shells started back to back from Python (subprocess.Popen "
            f"in a loop, no uid change), median of {params.baseline_runs}, same run"
        ),
    )
    result.add(
        Row(
            "jobs started / due",
            f"{starts.started} / {starts.expected}",
            goal="all, none lost",
            met=lost == 0,
        )
    )
    result.add(Row("first start after the boundary (median)", ms(median(firsts)), "ms"))
    result.add(
        Row(
            "last start after the boundary (median)",
            ms(median(lasts)),
            "ms",
            baseline=ms(base_last),
            goal=f"≤ {GOAL_LAST_MS:.0f} ms",
            met=ms(median(lasts)) <= GOAL_LAST_MS,
        )
    )
    result.add(Row("last start after the boundary (worst)", ms(max(lasts)), "ms"))
    result.add(
        Row(
            "start spread per job (last / jobs)",
            ms(median(lasts)) / params.jobs,
            "ms",
            baseline=ms(base_last) / params.jobs,
        )
    )
    debian_last = _beside_debian(result, lasts, debian)
    result.fields = {
        "started": starts.started,
        "expected": starts.expected,
        "lost": lost,
        "per_boundary": counts,
        "first_ms": ms(median(firsts)),
        "last_ms": ms(median(lasts)),
        "worst_last_ms": ms(max(lasts)),
        "baseline_last_ms": ms(base_last),
        "debian_last_ms": debian_last,
    }
    return result


def _beside_debian(result: Result, lasts: list[float], debian: firing.Starts | str) -> float | None:
    """The last start of each boundary against Debian's cron's; its median in ms, or None."""
    if isinstance(debian, str):
        result.notes.append(f"Debian's cron not measured: {debian}")
        return None
    theirs = [max(debian.offsets[b], default=float("nan")) for b in debian.boundaries]
    result.add(Row("Debian cron: jobs started / due", f"{debian.started} / {debian.expected}"))
    result.add(
        Row(
            "last start after the boundary (median), against Debian's cron",
            ms(median(lasts)),
            "ms",
            baseline=ms(median(theirs)),
        )
    )
    result.notes.append(
        "Against Debian's cron: the baseline is Debian's own cron 3.0pl1 on the same 200 jobs, "
        "run in a private namespace right after SmartCron (benchmarks/debiancron.py)."
    )
    return ms(median(theirs))
