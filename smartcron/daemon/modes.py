"""The daemon's mode (SPEC section 5) and the smart parts that move it.

smart, legacy or cron: configured, and in smart mode as the model allows. A model
watch (modelwatch.py) loads the model when it is usable and says why not otherwise; a
retrainer (retrain.py) makes a new one on its schedule. A fixed advisor (tests, tools)
counts as a usable model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartcron.config import Config
from smartcron.smart.gate import Advisor
from smartcron.smart.monitor import Monitor

if TYPE_CHECKING:
    from smartcron.ai.modelwatch import ModelWatch
    from smartcron.ai.retrain import Retrainer

__all__ = ["Modes", "SmartParts", "explores", "exploring", "initial_mode"]

log = logging.getLogger("smartcron")


@dataclass(frozen=True, kw_only=True)
class SmartParts:
    """What smart firings go through: the system's state (SystemMonitor by default, made
    when needed), a fixed advisor, or a model watch and its retrainer (smart mode only)."""

    monitor: Monitor | None = None
    advisor: Advisor | None = None
    models: ModelWatch | None = None
    retrainer: Retrainer | None = None


def initial_mode(config: Config, model: bool = False) -> tuple[str, str]:
    """The mode the daemon runs in and why (SPEC section 5). `model`: a usable advisor."""
    if config.mode == "cron":
        return "cron", "configured: annotations are ignored, every job runs at its cron time"
    if config.mode == "legacy":
        return "legacy", "configured: rules only (hard constraints, no model)"
    if not model:
        return "legacy", "no usable model yet: rules only (hard constraints, no model)"
    return "smart", "rules and model"


def explores(config: Config, history: object | None) -> bool:
    """Smart mode with exploration on and a history to learn from (smart.explore)."""
    return config.mode == "smart" and config.explore and history is not None


def exploring(config: Config, advisor: Advisor | None, history: Any) -> Advisor | None:
    """The advisor the engine asks: the model's, wrapped in the exploration of the jobs
    still learning (asked in legacy mode too, while no model is usable)."""
    if not explores(config, history):
        return advisor
    from smartcron.ai.jobstats import HistoryStats
    from smartcron.smart.explore import Explorer, ExploreSettings

    # With a model in use, exploring after the learning period only if retraining will
    # learn from it (smart.explore).
    settings = ExploreSettings(after_learning=config.retrain_spec is not None)
    return Explorer(advisor, HistoryStats(history), settings)


class Modes:
    """The mode now and why, and the model's upkeep (retraining, reloading)."""

    def __init__(self, config: Config, parts: SmartParts) -> None:
        smart = config.mode == "smart"
        self.models = parts.models if smart else None
        self.retrainer = parts.retrainer if smart else None
        self._mode, self._reason = initial_mode(config, model=parts.advisor is not None)
        # What the engine asks in smart mode: the model watch, else the fixed advisor.
        self.advisor: Advisor | None = self.models if self.models is not None else parts.advisor

    @property
    def mode(self) -> str:
        """smart, legacy or cron: with a model watch, as its model allows."""
        return self.models.mode if self.models is not None else self._mode

    @property
    def reason(self) -> str:
        return self.models.reason if self.models is not None else self._reason

    def key(self) -> tuple[object, ...]:
        """What the status file shows of the mode: a change republishes it."""
        retrain = self.retrainer
        busy = retrain is not None and retrain.child is not None
        return self.mode, self.reason, busy, None if retrain is None else retrain.last

    def check(self, now: datetime, force: bool, watch: Callable[[list[Path]], None] | None) -> None:
        """Retraining (start when due, swap when done), then reload a changed model
        (`force`: SIGHUP, or a model just swapped in: at once); `watch` is given the
        model directories (one made since the start)."""
        swapped = False
        if self.retrainer is not None:
            try:
                swapped = self.retrainer.step(now)
            except Exception:
                log.exception("retraining failed; carrying on with the current model")
        if self.models is None:
            return
        try:
            self.models.refresh(now, force=force or swapped)
        except Exception:  # load_model answers with reasons; this would be a bug
            log.exception("model check failed; carrying on")
        if watch is not None:
            watch(self.models.watch_dirs())

    def next_wakes(self, now: datetime) -> list[datetime]:
        """When the retrainer and the model watch want a wake-up."""
        wants = (
            None if self.retrainer is None else self.retrainer.next_wake(now),
            None if self.models is None else self.models.next_check(),
        )
        return [when for when in wants if when is not None]
