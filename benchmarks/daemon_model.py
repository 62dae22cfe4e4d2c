"""daemon-model: the daemon's memory with the shipped model loaded (issue 13: <= 80 MiB).

The real daemon in user mode on fixtures/crontabs/laptop.crontab and its companion
.smart.yaml, `use_default_model = true`, `--mode smart`; VmRSS read once it has settled.
Baseline: the same daemon, same files, `--mode legacy` (no model), in the same run.
Also reported: which heavy libraries each process has mapped (from /proc/PID/maps), so
a regression says where it comes from.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, Result, Row
from benchmarks.daemon import rss_kib, running

GOAL_KIB = 80 * 1024
CRONTAB = ROOT / "fixtures" / "crontabs" / "laptop.crontab"
# The shared objects that stand for a library being loaded at all.
LIBRARIES = {"onnxruntime": "onnxruntime", "numpy": "numpy", "jsonschema": "rpds"}


@dataclass(frozen=True)
class Params:
    runs: int
    settle_s: float


FULL = Params(runs=3, settle_s=75.0)
QUICK = Params(runs=1, settle_s=30.0)
TINY = Params(runs=1, settle_s=1.0)
FIELDS = ("rss_kib", "legacy_rss_kib", "libraries", "legacy_libraries")


def mapped(pid: int) -> list[str]:
    """Which of LIBRARIES the process has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted(name for name, marker in LIBRARIES.items() if f"/{marker}" in maps)


def measure(mode: str, settle_s: float) -> tuple[int, list[str]]:
    """(VmRSS in KiB after `settle_s`, libraries mapped) of one daemon in `mode`."""
    companion = CRONTAB.with_name(CRONTAB.name + ".smart.yaml").read_text()
    with (
        tempfile.TemporaryDirectory(prefix="bench-model-") as tmp,
        running(
            Path(tmp),
            CRONTAB.read_text(),
            args=("--mode", mode),
            extra="use_default_model = true\n",
            companion=companion,
        ) as daemon,
    ):
        time.sleep(settle_s)
        return rss_kib(daemon.pid), mapped(daemon.pid)


def run(params: Params) -> Result:
    smart: list[int] = []
    legacy: list[int] = []
    libraries: list[str] = []
    legacy_libraries: list[str] = []
    for _ in range(params.runs):  # alternate, so drift hits both alike
        rss, libraries = measure("smart", params.settle_s)
        smart.append(rss)
        rss, legacy_libraries = measure("legacy", params.settle_s)
        legacy.append(rss)
    mib, base = statistics.median(smart) / 1024, statistics.median(legacy) / 1024
    result = Result(
        "daemon-model",
        f"laptop.crontab + companion, use_default_model, {params.runs} run(s), "
        f"VmRSS {params.settle_s:.0f} s after start",
        "the same daemon with --mode legacy (no model)",
    )
    ok = statistics.median(smart) <= GOAL_KIB
    result.add(Row("VmRSS with the model, median", mib, "MiB", base, "<= 80 MiB", ok))
    result.add(Row("VmRSS with the model, max", max(smart) / 1024, "MiB", base))
    result.add(Row("libraries mapped with the model", ", ".join(libraries) or "none"))
    result.add(Row("libraries mapped in legacy mode", ", ".join(legacy_libraries) or "none"))
    result.fields.update(
        rss_kib=smart,
        legacy_rss_kib=legacy,
        libraries=libraries,
        legacy_libraries=legacy_libraries,
    )
    return result
