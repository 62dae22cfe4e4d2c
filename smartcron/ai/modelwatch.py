"""The daemon's model (SPEC 5, 6): used while usable, else legacy mode and the reason.

`ModelWatch` is the advisor the engine asks in smart mode. It loads the model
directory through `model.load_model` (every safety check is there; nothing is ever
unpickled) and answers with its `SmartAdvisor` while the model is usable. It falls
back to legacy mode (rules only), logs why once and keeps the reason for `status`:

* at load: a missing, unreadable, corrupt, stale, tampered, feature-mismatched,
  oversize, foreign-owned or group/other-writable model (load_model's reason);
* at inference: an error or a NaN output at once; an inference slower than
  `inference_bound_ms` three times in a row (one slow call may be the machine, not the
  model; each slow call already falls back to the rules for its own decision);
* while loaded: the card growing older than `model_max_age`.

`refresh` runs at every wake-up: it compares a stat signature of the model files
(inode, size, mtime, ctime, mode, owner) with the one last tried, and a change (the
daemon's inotify watch wakes it, else the periodic rescan) that then holds for
SETTLE is one new load attempt: `smartcronctl train` renames three files one after
the other, and a half-written artifact must not be logged as tampered.
numpy and onnxruntime are imported only once a model file exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smartcron.store.history import HistoryError

if TYPE_CHECKING:
    from smartcron.config import Config
    from smartcron.smart.gate import Firing, Verdict
    from smartcron.smart.monitor import Snapshot
    from smartcron.smart.smartspec import SmartSpec
    from smartcron.store.history import HistoryStore

log = logging.getLogger("smartcron")

FILES = ("model.json", "model.onnx")  # model.CARD_NAME, ONNX_NAME (without importing numpy)
SLOW_LIMIT = 3  # inferences over the bound in a row before the model is dropped
SETTLE = timedelta(seconds=2)  # files unchanged this long before a new load attempt
RULES_ONLY = "rules only (hard constraints, no model)"

Signature = tuple[tuple[int, ...] | None, ...]


def _stat(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid)


class ModelWatch:
    """The model state: `mode` ("smart" or "legacy"), `reason`, the card in use."""

    def __init__(
        self,
        directory: Path,
        *,
        default: Path | None = None,
        owner_uid: int,
        max_age: timedelta | None = timedelta(days=365),
        latency_bound_s: float = 0.050,
        history: HistoryStore | None = None,
    ) -> None:
        self.directory = directory
        self.default = default
        self.owner_uid = owner_uid
        self.max_age = max_age
        self.latency_bound_s = latency_bound_s
        self.history = history
        self.mode = "legacy"
        self.reason = f"no model loaded yet: {RULES_ONLY}"
        self.advisor: Any = None  # an advisor.SmartAdvisor while the model is usable
        self.card: Mapping[str, Any] | None = None  # of the model loaded last
        self.source: Path | None = None  # the directory it came from
        self._created: datetime | None = None
        self._seen: Signature | None = None  # the files as last tried
        self._settling: Signature | None = None  # as last seen, since `_settle_at`
        self._settle_at: datetime | None = None
        self._slow = 0
        self._logged: str | None = None

    @classmethod
    def from_config(cls, config: Config, *, history: HistoryStore | None = None) -> ModelWatch:
        """System mode trusts root's files only; user mode also the user's own."""
        return cls(
            config.models_dir,
            default=config.default_model_dir,
            owner_uid=os.geteuid() if config.user_mode else 0,
            max_age=timedelta(days=config.model_max_age),
            latency_bound_s=config.inference_bound_ms / 1000.0,
            history=history,
        )

    def watch_dirs(self) -> list[Path]:
        """The directories whose changes should wake the daemon."""
        return [d for d in (self.directory, self.default) if d is not None]

    def own_card(self) -> Mapping[str, Any] | None:
        """The card of the model in use if it is the daemon's own (what retraining must
        match), else None (no own model in use: any model that loads is better)."""
        if self.mode == "smart" and self.source == self.directory:
            return self.card
        return None

    def next_check(self) -> datetime | None:
        """When to look again: a change settles, or the model in use turns stale."""
        times = [] if self._settle_at is None else [self._settle_at]
        if self.mode == "smart" and self._created is not None and self.max_age is not None:
            times.append(self._created + self.max_age + timedelta(microseconds=1))
        return min(times, default=None)

    # ------------------------------------------------------------ loading

    def _signature(self) -> Signature:
        out: list[tuple[int, ...] | None] = []
        for directory in self.watch_dirs():
            out += [_stat(directory), *(_stat(directory / name) for name in FILES)]
        return tuple(out)

    def refresh(self, now: datetime, *, force: bool = False) -> bool:
        """Try the model again if its files changed (or `force`); drop it once stale.
        True when the mode or its reason changed."""
        before = (self.mode, self.reason)
        created, limit = self._created, self.max_age
        if (
            self.mode == "smart"
            and limit is not None
            and created is not None
            and now - created > limit
        ):
            days = (now - created).days
            self._fallback(f"{self.source}: stale: trained {days} days ago", keep_card=True)
        signature = self._signature()
        if force or self._seen is None:
            self._try(signature, now)
        elif signature == self._seen:
            self._settling = self._settle_at = None
        elif signature != self._settling:  # changed: wait until it holds (three files
            self._settling, self._settle_at = signature, now + SETTLE  # are renamed in turn)
        elif self._settle_at is not None and now >= self._settle_at:
            self._try(signature, now)
        return (self.mode, self.reason) != before

    def _try(self, signature: Signature, now: datetime) -> None:
        self._seen, self._settling, self._settle_at = signature, None, None
        self._load(now)

    def _target(self) -> Path:
        """The own model directory; the default model's only when there is no own model
        at all (an own model that is refused is never masked by the default)."""
        own = any(_stat(self.directory / name) for name in FILES)
        return self.directory if own or self.default is None else self.default

    def _load(self, now: datetime) -> None:
        target = self._target()
        if not any(_stat(target / name) for name in FILES):
            hint = "smartcronctl train makes one from the history"
            self._fallback(f"{target}: missing: no model yet ({hint})")
            return
        from smartcron.ai import advisor as advice
        from smartcron.ai import model as models

        loaded = models.load_model(
            target,
            owner_uid=self.owner_uid,
            max_age=self.max_age,
            latency_bound_s=self.latency_bound_s,
            now=now,
        )
        if isinstance(loaded, models.ModelUnavailable):
            self._fallback(loaded.reason)
            return
        stats: Any = advice.MemoryStats()
        if self.history is not None:
            stats = advice.HistoryStats(self.history)
        self.advisor = advice.SmartAdvisor(loaded, stats)
        self.card, self.source = loaded.card, target
        self._created = datetime.fromisoformat(str(loaded.card["created"]))
        self._slow, self._logged = 0, None
        self.mode = "smart"
        self.reason = f"rules and model ({target}, trained {self._created.date()})"
        log.info(
            "model loaded from %s: %s; smart mode", target, summary_text(card_summary(self.card))
        )

    def _fallback(self, why: str, *, keep_card: bool = False) -> None:
        """Legacy mode, logged once per reason (until a model loads again)."""
        self.advisor = None
        if not keep_card:
            self.card, self.source, self._created = None, None, None
        self.mode = "legacy"
        self.reason = f"{why}; {RULES_ONLY}"
        if why != self._logged:
            self._logged = why
            log.warning("model not used: %s; legacy mode until the model files change", why)

    # ------------------------------------------------------------ advising

    def advise(
        self, firing: Firing, spec: SmartSpec, snap: Snapshot, now: datetime
    ) -> Verdict | None:
        """gate.Advisor: the model's advice while usable. A failing inference still
        answers `run` (the advisor's own fallback); the model is then dropped."""
        advisor = self.advisor
        if advisor is None:
            return None
        failures = advisor.failures
        try:
            verdict: Verdict | None = advisor.advise(firing, spec, snap, now)
        except HistoryError:
            raise  # the job's stats could not be read: not the model's fault
        except Exception as err:  # outside the guarded call: a failure all the same
            self._failed(f"inference error: {err}")
            raise  # the gate answers `run` with the reason
        if advisor.failures == failures:
            self._slow = 0
            return verdict
        error = advisor.last_error or "inference failed"
        if error.startswith("inference too slow"):
            self._slow += 1
            if self._slow < SLOW_LIMIT:
                return verdict
            error = f"{error} ({SLOW_LIMIT} times in a row)"
        self._failed(error)
        return verdict

    def plan_start(self, firing: Firing, at: datetime) -> None:
        """A start decided elsewhere (explored, or the deadline's) into the model's
        machine-wide plan (SmartAdvisor.plan_start), while there is a model."""
        if self.advisor is not None:
            self.advisor.plan_start(firing, at)

    def _failed(self, error: str) -> None:
        self._fallback(f"{self.source}: model failed: {error}", keep_card=True)

    # ------------------------------------------------------------ status

    def document(self) -> dict[str, Any]:
        """The model part of `smartcronctl status --json`."""
        return {
            "dir": str(self.directory),
            "default": None if self.default is None else str(self.default),
            "source": None if self.source is None else str(self.source),
            "in_use": self.mode == "smart",
            "card": card_summary(self.card),
        }


def card_summary(card: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What status shows of a model card: features, training period, metrics, created."""
    if not isinstance(card, Mapping):
        return None
    training = card.get("training")
    training = training if isinstance(training, Mapping) else {}
    metrics = card.get("metrics")
    holdout = metrics.get("holdout") if isinstance(metrics, Mapping) else None
    holdout = holdout if isinstance(holdout, Mapping) else {}
    features = card.get("features")
    keys = ("pr_auc_failure", "pr_auc_baseline", "brier", "runtime_mae_s")
    return {
        "features": len(features) if isinstance(features, list) else None,
        "created": card.get("created"),
        "training": {key: training.get(key) for key in ("from", "to", "rows", "failures")},
        "metrics": {key: holdout.get(key) for key in keys},
    }


def summary_text(summary: Mapping[str, Any] | None) -> str:
    """A card_summary in one line: `20 features, 1084 runs (205 failures) 2026-01-05..`."""
    if summary is None:
        return "no card"
    t, m = summary["training"], summary["metrics"]
    span = f"{str(t['from'])[:10]}..{str(t['to'])[:10]}"
    return (
        f"{summary['features']} features, {t['rows']} runs ({t['failures']} failures)"
        f" {span}, PR-AUC(failure) {m['pr_auc_failure']} (baseline {m['pr_auc_baseline']}),"
        f" Brier {m['brier']}, created {str(summary['created'])[:19]}"
    )
