"""The Model view's data: the model card (as `smartcronctl model` shows it), its
holdout validation figures, the last retraining (as `status` shows it), a calibration
table (predicted vs observed failure rate of the runs the model let start) and each
job's observed failure rate by hour of the day."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smartcron.ai.modelwatch import card_summary, summary_text
from smartcron.dash.historyread import HistoryPart
from smartcron.dash.records import Row

BINS = 10  # calibration: predicted failure rate in tenths


def read_card(config: Any) -> tuple[str | None, Row | None]:
    """(the directory, its model.json) of the daemon's model, else the shipped one it
    may fall back on; (None, None) when neither has a readable card."""
    dirs = [config.models_dir, getattr(config, "default_model_dir", None)]
    for directory in [d for d in dirs if d is not None]:
        try:
            card = json.loads((Path(directory) / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict):
            return str(directory), card
    return None, None


def calibration(pairs: list[tuple[float, bool]]) -> list[Row]:
    """Runs grouped by predicted failure rate (tenths): mean predicted vs observed."""
    groups: dict[int, list[tuple[float, bool]]] = {}
    for predicted, failed in pairs:
        groups.setdefault(min(BINS - 1, int(predicted * BINS)), []).append((predicted, failed))
    out = []
    for index in sorted(groups):
        items = groups[index]
        out.append(
            {
                "bin": f"{index / BINS:.1f}-{(index + 1) / BINS:.1f}",
                "predicted": round(sum(p for p, _ in items) / len(items), 4),
                "observed": round(sum(1 for _, f in items if f) / len(items), 4),
                "runs": len(items),
            }
        )
    return out


def _validation(card: Mapping[str, Any]) -> list[str]:
    metrics = card.get("metrics")
    holdout = metrics.get("holdout") if isinstance(metrics, Mapping) else None
    if not isinstance(holdout, Mapping):
        return []
    from smartcron.cli.ai import metric_lines

    try:
        return metric_lines(dict(holdout))
    except (KeyError, TypeError, ValueError):
        return [f"{key}: {value}" for key, value in holdout.items()]


def model_view(
    status: Mapping[str, Any], config: Any, part: HistoryPart, names: dict[str, str]
) -> Row:
    directory, card = read_card(config)
    summary = card_summary(card)
    by_hour: dict[str, list[Row]] = {}
    for job_id, hours in part.by_hour.items():
        key = names.get(job_id, job_id)
        by_hour.setdefault(key, []).extend(hours)
    training = card.get("training") if isinstance(card, Mapping) else None
    return {
        "dir": directory,
        "mode": status.get("mode"),
        "mode_reason": status.get("mode_reason"),
        "status": status.get("model"),
        "summary": summary_text(summary) if summary else None,
        "card": summary,
        "estimators": card.get("estimators") if isinstance(card, Mapping) else None,
        "training_jobs": training.get("jobs") if isinstance(training, Mapping) else None,
        "validation": _validation(card) if isinstance(card, Mapping) else [],
        "retrain": status.get("retrain"),
        "calibration": calibration(part.calibration),
        "by_hour": by_hour,
    }
