"""The What-if view's data: `smartcronctl simulate` of a trace under each policy that
needs no model (cron, random, rules, oracle), and under `smart` when the daemon's model
(or the shipped one it falls back on) is usable, on one prepared timeline (the same
dice for every policy, as bench-ai does), as a table of SPEC 9's metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smartcron.dash.records import DashQuery, Row
from smartcron.errors import SmartcronError
from smartcron.sim.metrics import KEYS

POLICIES = ("cron", "random", "rules", "oracle")
# the simulator's metrics but the firings count (every policy sees the same firings)
METRICS = tuple(key for key in KEYS if key != "firings")


def _crontab(query: DashQuery, config: Any) -> tuple[str, bool]:
    """The crontab to simulate: --crontab, else the config's own (user or system)."""
    if query.crontab is not None:
        return str(query.crontab), False
    if config.user_crontab is not None:
        return str(config.user_crontab), False
    if config.crontab is not None:
        return str(config.crontab), True
    raise SmartcronError("--trace: give --crontab too (the config names no crontab)")


# The last comparison and what it was made from: the live dashboard collects its data
# again at each history change (every run), and the What-if view depends on none of it.
_LAST: list[tuple[tuple[object, ...], Row]] = []


def what_if(query: DashQuery, config: Any) -> Row:
    """Each policy's metrics over the whole trace, computed again only when the trace,
    world, crontab or model files change. Raises SmartcronError."""
    assert query.trace is not None
    tab, _ = _crontab(query, config)
    model_dirs = [d for d in (config.models_dir, config.default_model_dir) if d is not None]
    key = (config.explore, *(_stamp(p) for p in (query.trace, query.world, Path(tab))),
           *(_stamp(d / "model.onnx") for d in model_dirs))  # fmt: skip
    if _LAST and _LAST[0][0] == key:
        return _LAST[0][1]
    row = _compare(query, config)
    _LAST[:] = [(key, row)]
    return row


def _stamp(path: Path | None) -> tuple[str, int, int] | None:
    """The file's path, size and modification time (None: no such file)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path), st.st_size, st.st_mtime_ns


def _compare(query: DashQuery, config: Any) -> Row:
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
    model, note = _smart(config)
    if model is not None:
        advisor, on_run = model
        result = simulator.simulate(
            scenario, timeline, world, "smart", advisor=advisor, on_run=on_run
        )
        policies["smart"] = {key: result.metrics()[key] for key in METRICS}
    return {
        "trace": str(query.trace),
        "crontab": tab,
        "world": str(query.world),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "metrics": list(METRICS),
        "policies": policies,
        "smart_note": note,
    }


def _smart(config: Any) -> tuple[Any, str]:
    """(the smart policy's advisor and run hook, or None; which model, or why none): the
    daemon's model directory, else the shipped one it may fall back on, exploring as the
    daemon does (`simulate --policy smart --model DIR`)."""
    from smartcron.ai.advisor import ModelError
    from smartcron.cli.sim import simulation_advisor

    dirs = [d for d in (config.models_dir, config.default_model_dir) if d is not None]
    why = "no model (smartcronctl train makes one)"
    for directory in dirs:
        if not (directory / "model.onnx").exists():
            continue
        try:
            return simulation_advisor(str(directory), config.explore), f"model {directory}"
        except ModelError as err:
            why = str(err)
    return None, why


def _zone() -> Any:
    from datetime import UTC

    return UTC  # simulate's --tz default: traces are recorded in UTC
