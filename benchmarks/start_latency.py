"""start-latency: how late after its minute boundary a `* * * * *` job really starts.

20 jobs, each stamping `date +%s.%N` as its first instruction, over several minute
boundaries; the latency is stamp - boundary. Goal: p99 <= 100 ms. Baseline, same run:
the same stamp taken by `sh -c 'date +%s.%N'` started from Python (subprocess.run),
i.e. the fork/exec cost no scheduler can avoid.
"""

from __future__ import annotations

from benchmarks import debiancron, firing
from benchmarks.common import Result, Row, median, ms, percentile
from benchmarks.firing import Params

GOAL_P99_MS = 100.0


FULL = Params(jobs=20, boundaries=5, baseline_runs=100)
QUICK = Params(jobs=20, boundaries=2, baseline_runs=40)
TINY = Params(jobs=3, boundaries=1, baseline_runs=3, beside_debian=False)
FIELDS = ("median_ms", "p99_ms", "max_ms", "started", "expected", "baseline_median_ms")


def run(params: Params) -> Result:
    base = [firing.spawn_one() for _ in range(params.baseline_runs)]
    starts = firing.measure(params.jobs, params.boundaries)
    debian = (
        debiancron.measured(params.jobs, params.boundaries)
        if params.beside_debian
        else "not asked for (a tiny run)"
    )
    offsets = starts.all_offsets
    base_med, base_p99 = median(base), percentile(base, 99)
    firsts = [min(starts.offsets[b], default=float("nan")) for b in starts.boundaries]
    lasts = [max(starts.offsets[b], default=float("nan")) for b in starts.boundaries]
    result = Result(
        name="start-latency",
        config=(
            f"{params.jobs} `* * * * *` jobs over {params.boundaries} minute boundaries "
            f"({starts.started} stamps); baseline {params.baseline_runs} runs"
        ),
        baseline="`sh -c 'date +%s.%N'` started from Python (subprocess.run), same run",
    )
    lost = starts.expected - starts.started
    result.add(
        Row("jobs started / due", f"{starts.started} / {starts.expected}", goal="all", met=not lost)
    )
    result.add(Row("start - boundary: median", ms(median(offsets)), "ms", baseline=ms(base_med)))
    result.add(
        Row(
            "start - boundary: p99",
            ms(percentile(offsets, 99)),
            "ms",
            baseline=ms(base_p99),
            goal=f"≤ {GOAL_P99_MS:.0f} ms",
            met=ms(percentile(offsets, 99)) <= GOAL_P99_MS,
        )
    )
    result.add(Row("start - boundary: max", ms(max(offsets, default=float("nan"))), "ms"))
    result.add(
        Row("first job of a boundary: median", ms(median(firsts)), "ms", baseline=ms(base_med))
    )
    result.add(Row("last job of a boundary: median", ms(median(lasts)), "ms"))
    _beside_debian(result, starts, debian)
    result.fields = {
        "median_ms": ms(median(offsets)),
        "p99_ms": ms(percentile(offsets, 99)),
        "max_ms": ms(max(offsets, default=float("nan"))),
        "started": starts.started,
        "expected": starts.expected,
        "baseline_median_ms": ms(base_med),
        "baseline_p99_ms": ms(base_p99),
        "per_boundary": {b: len(starts.offsets[b]) for b in starts.boundaries},
        "debian": None if isinstance(debian, str) else debian.all_offsets,
    }
    return result


def _beside_debian(result: Result, starts: firing.Starts, debian: firing.Starts | str) -> None:
    """SmartCron's figures against Debian's cron's on the same jobs, measured just after."""
    if isinstance(debian, str):
        result.notes.append(f"Debian's cron not measured: {debian}")
        return
    ours, theirs = starts.all_offsets, debian.all_offsets
    result.add(Row("Debian cron: jobs started / due", f"{debian.started} / {debian.expected}"))
    for label, pct in (("median", 50), ("p99", 99)):
        result.add(
            Row(
                f"start - boundary: {label}, against Debian's cron",
                ms(percentile(ours, pct)),
                "ms",
                baseline=ms(percentile(theirs, pct)),
            )
        )
    result.notes.append(
        "Against Debian's cron: the baseline is Debian's own cron 3.0pl1 on the same jobs and "
        "boundaries, run in a private namespace right after SmartCron (benchmarks/debiancron.py)."
    )
