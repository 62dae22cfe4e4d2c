"""The What-if view's data: `smartcronctl simulate` of a trace under each policy that
needs no model (cron, random, rules, oracle), on one prepared timeline (the same
dice for every policy, as bench-ai does), as a table of SPEC 9's metrics."""

from __future__ import annotations

from typing import Any

from smartcron.dash.records import DashQuery, Row
from smartcron.errors import SmartcronError

POLICIES = ("cron", "random", "rules", "oracle")
METRICS = (
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


def _crontab(query: DashQuery, config: Any) -> tuple[str, bool]:
    """The crontab to simulate: --crontab, else the config's own (user or system)."""
    if query.crontab is not None:
        return str(query.crontab), False
    if config.user_crontab is not None:
        return str(config.user_crontab), False
    if config.crontab is not None:
        return str(config.crontab), True
    raise SmartcronError("--trace: give --crontab too (the config names no crontab)")


def what_if(query: DashQuery, config: Any) -> Row:
    """Each policy's metrics over the whole trace. Raises SmartcronError."""
    from smartcron.sim import simulator
    from smartcron.sim.trace import read_trace
    from smartcron.sim.world import read_world

    assert query.trace is not None
    if query.world is None:
        raise SmartcronError("--trace needs --world (the jobs' runtimes and failure laws)")
    tab, system = _crontab(query, config)
    world = read_world(query.world)
    scenario = simulator.load_scenario(tab, zone=_zone(), system=system)
    trace = read_trace(query.trace)
    timeline = simulator.Timeline(trace, world, scenario.specs())
    policies = {}
    for policy in POLICIES:
        result = simulator.simulate(scenario, timeline, world, policy)
        metrics = result.metrics()
        policies[policy] = {key: metrics[key] for key in METRICS}
        start, end = result.start, result.end
    return {
        "trace": str(query.trace),
        "crontab": tab,
        "world": str(query.world),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "metrics": list(METRICS),
        "policies": policies,
    }


def _zone() -> Any:
    from datetime import UTC

    return UTC  # simulate's --tz default: traces are recorded in UTC
