"""The model card training writes beside the ONNX graph (SPEC 6): the contract
`model.load_model` checks (format, features, digests) and what `smartcronctl model`
shows (estimators, versions, training rows, holdout metrics, the machine's rhythm)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from smartcron.ai.estimators import JOB_FOREST
from smartcron.ai.features import FEATURES
from smartcron.ai.model import (
    ACTIVE_IDLE_BELOW,
    CARD_FORMAT,
    ONNX_NAME,
    OUTPUT_P,
    OUTPUT_RUNTIME,
    PKL_NAME,
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def versions() -> dict[str, str]:
    import importlib

    names = {"scikit-learn": "sklearn", "onnx": "onnx", "skl2onnx": "skl2onnx"}
    names |= {"onnxruntime": "onnxruntime", "numpy": "numpy"}
    return {key: importlib.import_module(mod).__version__ for key, mod in names.items()}


def weight_summary(weight: np.ndarray, w_max: float) -> dict[str, Any]:
    """How much the explored rows count (holdout metrics are unweighted)."""
    explored = weight[weight != 1.0]
    return {
        "w_max": w_max,
        "weighted_rows": len(explored),
        "at_w_max": int((weight >= w_max).sum()),
        "mean": round(float(weight.mean()), 4) if len(weight) else None,
        "max": round(float(weight.max()), 4) if len(weight) else None,
    }


def model_card(
    data: Any, cut: int, metrics: dict, tz: Any, params: dict, now: datetime | None, dir: Path
) -> dict[str, Any]:
    """The model card of `data` (a train.Dataset; model.load_model reads the card):
    what the artifact is, how it was trained and on what, `metrics` (the holdout's and
    `weight_summary`'s) and the files' digests."""
    jobs = np.asarray(data.jobs)
    per_job = {
        str(j): {
            "runs": int((jobs == j).sum()),
            "failures": int(((jobs == j) & (data.ok == 0)).sum()),
        }
        for j in sorted(set(data.jobs))
    }
    return {
        "format": CARD_FORMAT,
        "features": list(FEATURES),
        "timezone": str(tz),
        "inputs": {
            "features": f"float32 [N, {len(FEATURES)}]",
            "job": "int64 scalar: the index of the job's own forest in job_models, -1 for none",
        },
        "outputs": {
            OUTPUT_P: "float32 [N, 2]: column 1 is P(success)",
            OUTPUT_RUNTIME: "float32 [N, 1]: log1p(runtime seconds)",
        },
        "estimators": {
            "success": "CalibratedClassifierCV(RandomForestClassifier, sigmoid, cv=3),"
            " one over every job and one per job in job_models (job_forest)",
            "job_forest": JOB_FOREST,
            "runtime": "RandomForestRegressor on log1p(runtime_s)",
            "params": params,
        },
        "versions": versions(),
        "training": {
            "from": data.at[0].isoformat(),
            "to": data.at[-1].isoformat(),
            "rows": len(data.ok),
            "failures": int((data.ok == 0).sum()),
            "train_rows": cut,
            "holdout_rows": len(data.ok) - cut,
            "runs_without_decision": data.dropped,
            "jobs": per_job,
        },
        "metrics": metrics,
        "active": {"idle_below_s": ACTIVE_IDLE_BELOW, "by_hour_of_week": data.active},
        "profile": data.profile.to_dict(),
        "load_share": data.load_share,  # to 4 decimals already (loadshare)
        "sha256": {ONNX_NAME: sha256_of(dir / ONNX_NAME), PKL_NAME: sha256_of(dir / PKL_NAME)},
        "created": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
    }
