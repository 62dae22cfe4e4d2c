"""SmartCron's benchmark suite: `python -m benchmarks [NAME ...] [--quick] [--write FILE]`.

Speed and memory goals live here, never in timed unit tests. The machines are shared
and noisy, so every benchmark reports medians (or percentiles) together with a
baseline measured in the same run, and the ratio between them.

Each benchmark is a module with a `Params` dataclass, three configurations (`FULL`,
`QUICK`, and `TINY` for the smoke test), the raw `FIELDS` it reports, and
`run(params) -> Result`.
"""

from __future__ import annotations

from types import ModuleType

from benchmarks import (
    burst,
    cold_start,
    daemon_idle,
    daemon_model,
    fleet,
    parse_next,
    start_latency,
    status_scale,
)

BENCHMARKS: dict[str, ModuleType] = {
    "parse-next": parse_next,
    "cold-start": cold_start,
    "daemon-idle": daemon_idle,
    "daemon-model": daemon_model,
    "start-latency": start_latency,
    "burst-200": burst,
    "status-10k": status_scale,
    "fleet": fleet,
}
