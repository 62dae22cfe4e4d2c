"""The estimators behind `smartcronctl train` (SPEC 6): fitting, holdout metrics, and
the ONNX graph of the two fitted forests.

Imported by smartcron.ai.train only; scikit-learn, onnx and skl2onnx are imported
inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smartcron.ai.features import FEATURES
from smartcron.ai.model import OUTPUT_P, OUTPUT_RUNTIME

PARAMS = {"n_estimators": 40, "max_depth": 8, "min_samples_leaf": 5}  # small, commit-sized


def fit(
    X: np.ndarray,
    ok: np.ndarray,
    runtime_s: np.ndarray,
    seed: int = 0,
    params: dict | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[Any, Any]:
    """(calibrated success classifier, log1p-runtime regressor), deterministic for `seed`.
    Weights all 1 fit exactly as no weights (the same bytes as before exploration)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    params = params or PARAMS
    forest = RandomForestClassifier(**params, random_state=seed, n_jobs=1)
    clf = CalibratedClassifierCV(forest, method="sigmoid", cv=3, ensemble=False)
    w = None if sample_weight is None or bool(np.all(sample_weight == 1.0)) else sample_weight
    clf.fit(X, ok, sample_weight=w)
    reg = RandomForestRegressor(**params, random_state=seed, n_jobs=1)
    reg.fit(X, np.log1p(runtime_s), sample_weight=w)
    return clf, reg


def metrics(models: tuple[Any, Any], X: np.ndarray, ok: np.ndarray, rt: np.ndarray) -> dict:
    """Holdout figures: PR-AUC of predicting a failure, Brier score, runtime MAE (s) and
    the share of runs whose runtime the model underestimates."""
    from sklearn.metrics import average_precision_score, brier_score_loss

    clf, reg = models
    p = clf.predict_proba(X)[:, 1]
    predicted = np.expm1(reg.predict(X))
    both = 0 < ok.sum() < len(ok)
    return {
        "rows": len(ok),
        "failures": int((ok == 0).sum()),
        "pr_auc_failure": round(float(average_precision_score(1 - ok, 1 - p)), 4) if both else None,
        "pr_auc_baseline": round(float((ok == 0).mean()), 4),
        "brier": round(float(brier_score_loss(ok, p)), 4),
        "runtime_mae_s": round(float(np.abs(predicted - rt).mean()), 1),
        "runtime_underestimated": round(float((predicted < rt).mean()), 4),
    }


def to_onnx(models: tuple[Any, Any]) -> bytes:
    """One graph, one float32 input ``features`` [N, len(FEATURES)], two outputs:
    OUTPUT_P [N, 2] (class probabilities, column 1 = success) and OUTPUT_RUNTIME [N, 1]
    (log1p of runtime seconds): the two converted graphs side by side."""
    import onnx
    from onnx import compose, helper
    from skl2onnx import to_onnx as convert
    from skl2onnx.common.data_types import FloatTensorType

    clf, reg = models
    kind = [("features", FloatTensorType([None, len(FEATURES)]))]
    opset = {"": 17, "ai.onnx.ml": 1}
    g1 = convert(clf, initial_types=kind, options={id(clf): {"zipmap": False}}, target_opset=opset)
    g2 = convert(reg, initial_types=kind, target_opset=opset)
    g1 = compose.add_prefix(g1, "clf_", rename_inputs=False)
    g2 = compose.add_prefix(g2, "reg_", rename_inputs=False)
    outputs = [
        helper.make_tensor_value_info(OUTPUT_P, onnx.TensorProto.FLOAT, [None, 2]),
        helper.make_tensor_value_info(OUTPUT_RUNTIME, onnx.TensorProto.FLOAT, [None, 1]),
    ]
    nodes = [*g1.graph.node, *g2.graph.node]
    nodes.append(helper.make_node("Identity", ["clf_probabilities"], [OUTPUT_P]))
    nodes.append(helper.make_node("Identity", ["reg_variable"], [OUTPUT_RUNTIME]))
    graph = helper.make_graph(
        nodes,
        "smartcron",
        [g1.graph.input[0]],
        outputs,
        initializer=list(g1.graph.initializer) + list(g2.graph.initializer),
    )
    imports = {o.domain: o.version for o in [*g1.opset_import, *g2.opset_import]}
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(imports.items())],
        producer_name="smartcron.train",
    )
    model.ir_version = g1.ir_version
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)
