"""The simulator's metrics (SPEC 9), totalled and per job.

* firings: nominal firings in the period; runs: starts, retries included.
* failures: failed runs (a timeout counts); failure_rate = failures / runs.
* wasted_cpu_s: CPU seconds (cores x seconds) of failed runs.
* interference_cpu_s / on_battery_cpu_s: CPU seconds spent in user-active minutes
  (world.is_active) / in minutes on battery (``on_ac`` false).
* window_misses: firings whose first run did not start inside [nominal, deadline] and
  that were not skipped on purpose (``on_deadline=skip``, ``overlap=skip``).
* skipped: firings skipped on purpose.
* not_done: firings whose final outcome is not a successful run inside the window: every
  run failed (retries included), skipped (a first run or a retry), or a window miss.
  Each firing counts once, however many of these apply (failures count runs).
* delay_mean_s, delay_p95_s: first start minus nominal time over started firings
  (p95: nearest rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

KEYS = (
    "firings",
    "runs",
    "failures",
    "failure_rate",
    "wasted_cpu_s",
    "interference_cpu_s",
    "on_battery_cpu_s",
    "window_misses",
    "skipped",
    "not_done",
    "delay_mean_s",
    "delay_p95_s",
)


@dataclass(slots=True)
class JobMetrics:
    """Running totals for one job (or all of them)."""

    firings: int = 0
    runs: int = 0
    failures: int = 0
    wasted_cpu_s: float = 0.0
    interference_cpu_s: float = 0.0
    on_battery_cpu_s: float = 0.0
    window_misses: int = 0
    skipped: int = 0
    not_done: int = 0
    delays: list[int] = field(default_factory=list)  # seconds, one per started firing

    def add_run(
        self, *, cpu_s: float, active_s: float, battery_s: float, cpu: float, failed: bool
    ) -> None:
        self.runs += 1
        self.interference_cpu_s += cpu * active_s
        self.on_battery_cpu_s += cpu * battery_s
        if failed:
            self.failures += 1
            self.wasted_cpu_s += cpu_s

    def merge(self, other: JobMetrics) -> None:
        for name in ("firings", "runs", "failures", "window_misses", "skipped", "not_done"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("wasted_cpu_s", "interference_cpu_s", "on_battery_cpu_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.delays.extend(other.delays)

    def as_dict(self) -> dict[str, Any]:
        """The SPEC 9 keys, floats rounded to 0.1 s (rates to 1e-4)."""
        delays = sorted(self.delays)
        mean = sum(delays) / len(delays) if delays else 0.0
        p95 = float(delays[math.ceil(0.95 * len(delays)) - 1]) if delays else 0.0
        return {
            "firings": self.firings,
            "runs": self.runs,
            "failures": self.failures,
            "failure_rate": round(self.failures / self.runs, 4) if self.runs else 0.0,
            "wasted_cpu_s": round(self.wasted_cpu_s, 1),
            "interference_cpu_s": round(self.interference_cpu_s, 1),
            "on_battery_cpu_s": round(self.on_battery_cpu_s, 1),
            "window_misses": self.window_misses,
            "skipped": self.skipped,
            "not_done": self.not_done,
            "delay_mean_s": round(mean, 1),
            "delay_p95_s": p95,
        }


def metrics_report(per_job: dict[str, JobMetrics]) -> dict[str, Any]:
    """Totals at the top level (SPEC 9's keys) and ``jobs``: the same keys per job."""
    total = JobMetrics()
    for stats in per_job.values():
        total.merge(stats)
    out = total.as_dict()
    out["jobs"] = {name: per_job[name].as_dict() for name in sorted(per_job)}
    return out
