"""cold-start: wall time of the short-lived commands, run as subprocesses from the venv.

Commands and the `python -c pass` baseline are run round-robin, so a noisy neighbour
slows them alike. A second pass runs each command under `python -X importtime` and
lists what it imported: none of pandas, sklearn or onnxruntime may appear (the daemon
and the everyday commands must not pay for the training stack).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BIN, PYTHON, Result, Row, median, ms, percentile

# Training, inference, the dashboard's web stack and the fleet's drivers: none of them
# belongs in these commands' start.
HEAVY = (
    "pandas", "sklearn", "onnxruntime", "starlette", "uvicorn", "jinja2", "plotly",
    "cron_descriptor", "psycopg", "kubernetes",
)  # fmt: skip
CRONTAB = """\
# A typical user crontab.
MAILTO=ops@example.com
SHELL=/bin/sh
*/5 * * * * /usr/local/bin/poll-queue > /dev/null 2>&1
0 3 * * * /usr/local/bin/backup --full
15 2 1,15 * * /usr/local/bin/rotate-archives
30 8-18/2 * * mon-fri /usr/local/bin/sync-mail
0 0 13 * fri echo 'friday the 13th' | logger
@reboot /usr/local/bin/warm-cache
@weekly /usr/local/bin/report%weekly%summary
#@smart name=nightly window=2h max_load=1.5
0 1 * * * /usr/local/bin/nightly.sh
"""


@dataclass(frozen=True)
class Params:
    runs: int


FULL = Params(runs=15)
QUICK = Params(runs=9)
TINY = Params(runs=1)
FIELDS = ("baseline_ms", "crontab_T_ms", "next_ms", "status_ms", "heavy_imports")
GOALS_MS = {"crontab_T": 150.0, "next": 150.0, "status": 300.0}


def commands(tmp: Path) -> dict[str, list[str]]:
    """The measured command lines (the venv's console scripts), keyed by short name."""
    tab = tmp / "crontab"
    tab.write_text(CRONTAB)
    tab.chmod(0o600)
    config = tmp / "smartcron.toml"
    config.write_text(
        'user_crontab = "crontab"\nstate_dir = "state"\nrun_dir = "run"\njobs_dir = "jobs"\n'
    )
    return {
        "crontab_T": [str(BIN / "smartcrontab"), "-T", str(tab)],
        "next": [str(BIN / "smartcronctl"), "next", "--expr", "*/5 * * * *"],
        "status": [str(BIN / "smartcronctl"), "status", "--user", "--config", str(config)],
    }


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def imported(argv: list[str]) -> tuple[set[str], list[tuple[int, str]]]:
    """Top-level packages a command imports, and its costliest outermost imports (µs)."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", *argv], capture_output=True, text=True, check=False
    )
    tops: set[str] = set()
    outer: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, raw = line.split(":", 1)[1].split("|")
        if not cumulative.strip().isdigit():  # the header line
            continue
        name = raw.strip()
        tops.add(name.split(".")[0])
        if len(raw) - len(raw.lstrip()) == 1:  # nested imports are indented further
            outer.append((int(cumulative), name))
    return tops, sorted(outer, reverse=True)


def run(params: Params) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp_name:
        tmp = Path(tmp_name)
        argvs = {"baseline": [PYTHON, "-c", "pass"], **commands(tmp)}
        for argv in argvs.values():  # warm the page cache and .pyc files once
            _time(argv)
        samples: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(params.runs):
            for name, argv in argvs.items():
                samples[name].append(_time(argv))
        heavy: dict[str, list[str]] = {}
        costliest: dict[str, str] = {}
        for name, argv in argvs.items():
            if name == "baseline":
                continue
            tops, costs = imported(argv)
            heavy[name] = sorted(tops & set(HEAVY))
            costliest[name] = ", ".join(f"{n} {c / 1000:.0f} ms" for c, n in costs[:3])

    base = median(samples["baseline"])
    result = Result(
        name="cold-start",
        config=f"{params.runs} runs of each command, round-robin, after one warm-up run",
        baseline="`python -c pass` (the venv's interpreter), same run",
    )
    result.add(Row("`python -c pass`", ms(base), "ms"))
    labels = {
        "crontab_T": "`smartcrontab -T FILE`",
        "next": "`smartcronctl next --expr '*/5 * * * *'`",
        "status": "`smartcronctl status --user --config FILE`",
    }
    for name, label in labels.items():
        med = median(samples[name])
        goal = GOALS_MS[name]
        result.add(
            Row(
                f"{label} (median)",
                ms(med),
                "ms",
                baseline=ms(base),
                goal=f"< {goal:.0f} ms",
                met=ms(med) < goal,
            )
        )
        result.add(
            Row(f"{label} (p90)", ms(percentile(samples[name], 90)), "ms", baseline=ms(base))
        )
        result.fields[f"{name}_ms"] = ms(med)
        result.fields[f"{name}_p90_ms"] = ms(percentile(samples[name], 90))
    result.fields["baseline_ms"] = ms(base)
    result.fields["heavy_imports"] = heavy
    clean = all(not mods for mods in heavy.values())
    result.add(
        Row(
            "heavy libraries imported (training, web, fleet)",
            "none" if clean else "; ".join(f"{k}: {','.join(v)}" for k, v in heavy.items() if v),
            goal="none",
            met=clean,
        )
    )
    for name, label in labels.items():
        result.notes.append(f"{label}: costliest top-level imports: {costliest[name]}.")
    return result
