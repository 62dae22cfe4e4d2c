"""status-10k: wall time of `smartcronctl status` on a 10,000-line user crontab.

First against a live daemon (user mode), which publishes the jobs and each job's next
firing in status.json: status reads them instead of re-parsing every entry and
recomputing every schedule. Then, in the same run on the same crontab, with the daemon
stopped: status loads the crontab itself, the old path and the baseline.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BIN, Result, Row, median, ms
from benchmarks.daemon import running
from benchmarks.parse_next import realistic_expr

SEED = 20261205
GOAL_MS = 300.0


@dataclass(frozen=True)
class Params:
    entries: int
    runs: int


FULL = Params(entries=10_000, runs=9)
QUICK = Params(entries=10_000, runs=5)
TINY = Params(entries=50, runs=1)
FIELDS = ("entries", "daemon_ms", "no_daemon_ms", "status_json_bytes", "jobs_shown")


def crontab(entries: int, seed: int = SEED) -> str:
    """`entries` realistic lines (no @reboot: a start must not run a hundred jobs)."""
    rng = random.Random(seed)
    lines = []
    for index in range(entries):
        expr = realistic_expr(rng)
        lines.append(f"{'@daily' if expr == '@reboot' else expr} true job-{index}")
    return "\n".join(lines) + "\n"


def _status_argv(directory: Path) -> list[str]:
    config = directory / "etc" / "smartcron.toml"
    return [str(BIN / "smartcronctl"), "status", "--user", "--config", str(config)]


def _time_status(argv: list[str], runs: int) -> tuple[list[float], str]:
    samples, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        samples.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"status failed ({proc.returncode}): {proc.stderr[-500:]}")
        out = proc.stdout
    return samples, out


def _jobs_shown(out: str) -> int:
    for line in out.splitlines():
        if line.startswith("files:"):  # "files: 1 loaded, 0 refused, N jobs (...)"
            return int(line.split(",")[2].split()[0])
    return -1


def run(params: Params) -> Result:
    with tempfile.TemporaryDirectory(prefix="smartcron-status-") as tmp:
        directory = Path(tmp)
        argv = _status_argv(directory)
        with running(directory, crontab(params.entries)) as daemon:
            live, out = _time_status(argv, params.runs)
            if f"running (pid {daemon.pid})" not in out:
                raise RuntimeError(f"status did not see the daemon:\n{out[:500]}")
            size = (directory / "state" / "status.json").stat().st_size
        stopped, out_stopped = _time_status(argv, params.runs)
        if "not running" not in out_stopped:
            raise RuntimeError(f"status still saw a daemon:\n{out_stopped[:500]}")
    daemon_ms, base_ms = ms(median(live)), ms(median(stopped))
    result = Result(
        name="status-10k",
        config=f"{params.entries} entries in one user crontab (seed {SEED}), "
        f"median of {params.runs} runs",
        baseline="the same command with the daemon stopped (status loads the crontab itself)",
    )
    met = daemon_ms <= GOAL_MS
    result.add(Row("status, daemon running", daemon_ms, "ms", base_ms, f"≤ {GOAL_MS:.0f} ms", met))
    result.add(Row("status, daemon stopped", base_ms, "ms"))
    result.add(Row("status.json size", size / 1e6, "MB"))
    result.fields.update(
        entries=params.entries,
        daemon_ms=daemon_ms,
        no_daemon_ms=base_ms,
        status_json_bytes=size,
        jobs_shown=_jobs_shown(out),
    )
    return result
