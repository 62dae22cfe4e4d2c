"""Success forests as one ONNX tree ensemble (issue 13, fourth round).

The forest over every job and each job's own forest become a single
``TreeEnsembleRegressor``: every tree gains a root that tests the job code (a column
the graph appends to the features: -1 for the forest over every job, k for the k-th
job of the card's ``job_models``) and leads elsewhere to a leaf worth 0, so the sum over
all trees is the chosen forest's mean P(success), each tree's leaf worth its class-1
fraction / the forest's tree count. That forest's sigmoid calibration (scikit-learn's
``_SigmoidCalibration``: 1 / (1 + exp(a f + b))) is then gathered by the code.

Why not an ONNX ``If`` per job: onnxruntime keeps a session state per branch, about
0.9 MB each on this machine, where one ensemble costs its nodes only; a tree that is not
the job's exits at its root. Thresholds are rounded down to float32: a float32 feature
x satisfies x <= t exactly when x <= floor32(t), so every row takes scikit-learn's path.

Imported by smartcron.ai.estimators only (training): onnx is imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smartcron.ai.model import INPUT, JOB_INPUT, OUTPUT_P

_ROOT, _NOWHERE, _SHIFT = 0, 1, 2  # the job test, its leaf worth 0, the tree's own nodes


def _floor32(value: float) -> float:
    """The largest float32 not above `value` (see the module's docstring)."""
    down = np.float32(value)
    if float(down) > value:
        down = np.nextafter(down, np.float32(-np.inf))
    return float(down)


def _calibrated(clf: Any) -> tuple[Any, float, float]:
    """(the random forest, a, b) of a CalibratedClassifierCV(sigmoid, ensemble=False)."""
    (one,) = clf.calibrated_classifiers_
    (sigmoid,) = one.calibrators
    return one.estimator, float(sigmoid.a_), float(sigmoid.b_)


_NODE = ("treeids", "nodeids", "modes", "featureids", "values", "truenodeids", "falsenodeids")
_TARGET = ("treeids", "nodeids", "ids", "weights")


def _ensemble(forests: list[tuple[int, Any]], job_column: int) -> dict[str, list[Any]]:
    """The TreeEnsembleRegressor attributes of every tree of every (code, forest)."""
    nodes: list[tuple[Any, ...]] = []  # in _NODE's order
    targets: list[tuple[Any, ...]] = []  # in _TARGET's order
    tree = 0
    for code, forest in forests:
        share = 1.0 / len(forest.estimators_)
        for estimator in forest.estimators_:
            t = estimator.tree_
            nodes.append((tree, _ROOT, "BRANCH_EQ", job_column, float(code), _SHIFT, _NOWHERE))
            nodes.append((tree, _NOWHERE, "LEAF", 0, 0.0, 0, 0))
            targets.append((tree, _NOWHERE, 0, 0.0))
            for i in range(t.node_count):
                left, right, nid = int(t.children_left[i]), int(t.children_right[i]), i + _SHIFT
                if left == -1:  # a leaf: its share of successes, over the forest's trees
                    counts = t.value[i, 0]
                    nodes.append((tree, nid, "LEAF", 0, 0.0, 0, 0))
                    targets.append((tree, nid, 0, share * float(counts[1] / counts.sum())))
                else:  # scikit-learn goes left when x <= threshold
                    value = _floor32(float(t.threshold[i]))
                    split = (int(t.feature[i]), value, left + _SHIFT, right + _SHIFT)
                    nodes.append((tree, nid, "BRANCH_LEQ", *split))
            tree += 1
    out = {f"nodes_{k}": list(v) for k, v in zip(_NODE, zip(*nodes, strict=True), strict=True)}
    out |= {
        f"target_{k}": list(v) for k, v in zip(_TARGET, zip(*targets, strict=True), strict=True)
    }
    return out


def success_nodes(forests: list[Any], default: Any, n_features: int) -> tuple[list[Any], list[Any]]:
    """(nodes, initializers) computing OUTPUT_P [N, 2] from INPUT and JOB_INPUT: the
    calibrated classifier `forests[k]` for job code k, `default` for -1 (and any code
    out of range)."""
    from onnx import TensorProto, helper, numpy_helper

    parts = [(-1, *_calibrated(default))] + [(k, *_calibrated(c)) for k, c in enumerate(forests)]
    minus_a = np.asarray([-p[2] for p in parts], np.float32)  # negation is exact
    minus_b = np.asarray([-p[3] for p in parts], np.float32)
    inits = [
        numpy_helper.from_array(minus_a, "minus_a"),
        numpy_helper.from_array(minus_b, "minus_b"),
        numpy_helper.from_array(np.asarray([-1], np.int64), "code_min"),
        numpy_helper.from_array(np.asarray([len(forests) - 1], np.int64), "code_max"),
        numpy_helper.from_array(np.asarray([1], np.int64), "one_i"),
        numpy_helper.from_array(np.asarray([0], np.int64), "zero_i"),
        numpy_helper.from_array(np.asarray(1.0, np.float32), "one_f"),
    ]
    attrs: dict[str, Any] = _ensemble([(p[0], p[1]) for p in parts], n_features)
    attrs |= {"n_targets": 1, "aggregate_function": "SUM", "post_transform": "NONE"}
    make = helper.make_node
    nodes = [
        # the job code (-1 where it is out of the table's range) as a float column
        # beside the features
        make("Reshape", [JOB_INPUT, "one_i"], ["code1"]),
        make("Max", ["code1", "code_min"], ["code_lo"]),
        make("Min", ["code_lo", "code_max"], ["code"]),
        make("Equal", ["code", "code1"], ["in_range"]),
        make("Where", ["in_range", "code", "code_min"], ["code_ok"]),
        make("Cast", ["code_ok"], ["code_f"], to=TensorProto.FLOAT),
        make("Shape", [INPUT], ["shape"]),
        make("Slice", ["shape", "zero_i", "one_i"], ["rows"]),
        make("Concat", ["rows", "one_i"], ["column_shape"], axis=0),
        make("Expand", ["code_f", "column_shape"], ["code_column"]),
        make("Concat", [INPUT, "code_column"], ["with_code"], axis=1),
        make(
            "TreeEnsembleRegressor",
            ["with_code"],
            ["forest_mean"],
            domain="ai.onnx.ml",
            base_values=[0.0],
            **attrs,
        ),
        # the chosen forest's calibration: p = 1 / (1 + exp(a f + b)) = sigmoid(-a f - b)
        make("Add", ["code_ok", "one_i"], ["slot"]),
        make("Gather", ["minus_a", "slot"], ["ma"]),
        make("Gather", ["minus_b", "slot"], ["mb"]),
        make("Mul", ["forest_mean", "ma"], ["maf"]),
        make("Add", ["maf", "mb"], ["minus_z"]),
        make("Sigmoid", ["minus_z"], ["p_ok"]),
        make("Sub", ["one_f", "p_ok"], ["p_fail"]),
        make("Concat", ["p_fail", "p_ok"], [OUTPUT_P], axis=1),
    ]
    return nodes, inits
