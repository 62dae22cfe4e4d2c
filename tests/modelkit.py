"""Models for the tests: crafted ONNX stand-ins, and real tiny ones trained on simulated
history (this helper needs the `train` extra: onnx, numpy, scikit-learn)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from smartcron.ai.features import FEATURES
from smartcron.sim import simulator
from smartcron.sim.trace import read_trace
from smartcron.sim.world import read_world

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 01:00: cards are made the day before
N = len(FEATURES)


TINY = {"n_estimators": 8, "max_depth": 5, "min_samples_leaf": 5}


def simulated_history(path: Path, days: int) -> Path:
    """`days` of cron on the laptop fixtures, recorded as the daemon records them."""
    world = read_world(FIXTURES / "worlds" / "laptop.yaml")
    scenario = simulator.load_scenario(FIXTURES / "crontabs" / "laptop.crontab", zone=UTC)
    trace = read_trace(FIXTURES / "traces" / "laptop-8w.csv.gz")
    end = trace.start + timedelta(days=days)
    simulator.simulate(scenario, trace, world, "cron", end=end, history=str(path))
    return path


def graph(p_success: str = "hour", runtime: str = "plain") -> bytes:
    """A stand-in model: P(success) = hour / 24 (`p_success`: or by idle, by load1, a
    step at load1 2, or NaN for positive loads), runtime from log1p 600 s (or a Reshape
    that only works on one row: an inference error)."""
    x = helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, N])
    outs = [
        helper.make_tensor_value_info("p_success", TensorProto.FLOAT, [None, 2]),
        helper.make_tensor_value_info("runtime_log1p", TensorProto.FLOAT, [None, 1]),
    ]
    hour, idle = FEATURES.index("hour"), FEATURES.index("idle_log1p")
    inits = [
        helper.make_tensor("h0", TensorProto.INT64, [1], [hour]),
        helper.make_tensor("h1", TensorProto.INT64, [1], [hour + 1]),
        helper.make_tensor("i0", TensorProto.INT64, [1], [idle]),
        helper.make_tensor("i1", TensorProto.INT64, [1], [idle + 1]),
        helper.make_tensor("c0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("c2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("day", TensorProto.FLOAT, [], [24.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("rt", TensorProto.FLOAT, [], [float(np.log1p(600.0))]),
        helper.make_tensor("shape1", TensorProto.INT64, [2], [1, 1]),
        helper.make_tensor("l1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
        helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
    ]
    nodes = [helper.make_node("Slice", ["features", "h0", "h1", "axis"], ["h"])]
    if p_success == "hour":
        nodes.append(helper.make_node("Div", ["h", "day"], ["p"]))
    elif p_success == "idle":  # P(success) = idle_log1p / 10: the user away helps
        nodes.append(helper.make_node("Slice", ["features", "i0", "i1", "axis"], ["i"]))
        nodes.append(helper.make_node("Div", ["i", "ten"], ["p"]))
    elif p_success == "load":  # P(success) = 1 - load1 / 10 (the runs starting beside in it)
        nodes.append(helper.make_node("Slice", ["features", "c0", "l1", "axis"], ["l"]))
        nodes.append(helper.make_node("Div", ["l", "ten"], ["lt"]))
        nodes.append(helper.make_node("Sub", ["one", "lt"], ["p"]))
    elif p_success == "step":  # P(success) = 1 below a load1 of 2, else 0: a threshold law
        nodes.append(helper.make_node("Slice", ["features", "c0", "l1", "axis"], ["l"]))
        nodes.append(helper.make_node("Less", ["l", "two"], ["below"]))
        nodes.append(helper.make_node("Cast", ["below"], ["p"], to=TensorProto.FLOAT))
    else:  # sqrt(-load1): NaN for any load above zero, 0 on the all-zero probe
        nodes.append(helper.make_node("Slice", ["features", "c0", "h0", "axis"], ["l0"]))
        nodes.append(helper.make_node("Slice", ["l0", "c0", "h1", "axis"], ["l"]))
        nodes += [helper.make_node("Neg", ["h"], ["nh"]), helper.make_node("Sqrt", ["nh"], ["p"])]
    nodes.append(helper.make_node("Sub", ["one", "p"], ["q"]))
    nodes.append(helper.make_node("Concat", ["q", "p"], ["p_success"], axis=1))
    nodes.append(helper.make_node("Mul", ["h", "one"], ["h_"]))
    nodes.append(helper.make_node("Sub", ["h_", "h_"], ["zero"]))
    nodes.append(helper.make_node("Add", ["zero", "rt"], ["r"]))
    if runtime == "plain":
        nodes.append(helper.make_node("Identity", ["r"], ["runtime_log1p"]))
    else:
        nodes.append(helper.make_node("Reshape", ["r", "shape1"], ["runtime_log1p"]))
    model = helper.make_model(
        helper.make_graph(nodes, "stand-in", [x], outs, initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def card(blob: bytes, **changes: object) -> dict:
    data = {
        "format": 1,
        "features": list(FEATURES),
        "timezone": "UTC",
        "active": {"idle_below_s": 60, "by_hour_of_week": [0.1] * 168},
        "sha256": {"model.onnx": hashlib.sha256(blob).hexdigest()},
        "created": (NOW - timedelta(days=1)).isoformat(),
    }
    return data | changes


def install(directory: Path, blob: bytes, **changes: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    (directory / "model.onnx").write_bytes(blob)
    (directory / "model.json").write_text(json.dumps(card(blob, **changes)))
    for name in ("model.onnx", "model.json"):
        os.chmod(directory / name, 0o644)
    return directory


def put(trained: Path, directory: Path) -> Path:
    """A fresh copy of the trained model (new inodes: the daemon sees a change)."""
    if directory.is_dir():
        shutil.rmtree(directory)
    shutil.copytree(trained, directory)
    os.chmod(directory, 0o755)
    for file in directory.iterdir():
        os.chmod(file, 0o644)
    return directory


def edit_card(directory: Path, **changes: object) -> None:
    card = json.loads((directory / "model.json").read_text())
    (directory / "model.json").write_text(json.dumps(card | changes))


def card_profile(spike: float = 5.0, tau: float = 5.0, spread: float = 0.0) -> dict:
    """A card profile: load1 at 1 everywhere, +`spike` at minute :00; other columns flat;
    departures with standard deviation `spread` (0: an older card without one)."""
    columns = ["load1", "load5", "cpu_percent", "ram_percent"]
    moh = {c: [0.0] * 60 for c in columns}
    moh["load1"][0] = spike
    return {
        "columns": columns,
        "spread": {"load1": spread} if spread else {},
        "hour_of_week": {c: [1.0] * 168 for c in columns},
        "minute_of_hour": moh,
        "tau_min": {c: tau for c in [*columns, "active"]},
        "idle_below_s": 60.0,
        "active_idle_s": 10.0,
    }


def load_model_p_is_one_minus_load_over_ten(tmp_path: Path, now: datetime) -> object:
    """A model with P(success) = 1 - load1 / 10, runtime 10 minutes, a
    flat load1 profile of 1 and nobody at the keyboard (test_plan, test_plan_deadline): a
    LoadedModel."""
    from smartcron.ai.model import LoadedModel, load_model

    nobody = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
    directory = install(
        tmp_path / "m", graph("load"), profile=card_profile(spike=0.0), active=nobody
    )
    model = load_model(directory, owner_uid=os.geteuid(), now=now)
    assert isinstance(model, LoadedModel)
    return model
