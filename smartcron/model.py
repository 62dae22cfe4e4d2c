"""The daemon's side of the model (SPEC 5-6): load an artifact safely, infer, advise.

Imports numpy and onnxruntime only: never pandas, scikit-learn or pickle. `load_model`
returns a `LoadedModel` or a `ModelUnavailable` naming why the daemon must stay in
legacy mode. Every file is opened with O_NOFOLLOW and checked on the open descriptor
(regular file, owned by root or `owner_uid`, not writable by group or others, under a
size bound) before a byte is read; then the card must list exactly features.FEATURES,
be younger than `max_age`, and carry model.onnx's sha256.

Inference is guarded: an exception, a non-finite output or a call slower than
`latency_bound_s` raises `ModelFailure`, and `SmartAdvisor` then answers "run" with
the reason, so a failing model can only make a firing less deferred than the rules.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from smartcron.errors import SmartcronError
from smartcron.features import (
    FEATURES,
    JobStats,
    Outcome,
    Profile,
    features,
    forecast,
    hour_of_week,
    job_stats,
    p_active_at,
)

CARD_NAME, ONNX_NAME, PKL_NAME = "model.json", "model.onnx", "model.pkl"
CARD_FORMAT = 1
INPUT = "features"
OUTPUT_P, OUTPUT_RUNTIME = "p_success", "runtime_log1p"
ACTIVE_IDLE_BELOW = 60.0  # seconds: what counts as a user-active minute
MAX_ONNX_BYTES = 64 << 20
MAX_CARD_BYTES = 1 << 20
MAX_AGE = timedelta(days=365)
LATENCY_BOUND_S = 0.050


@dataclass(frozen=True, slots=True)
class ModelUnavailable:
    """No usable model; `reason` says why (the daemon logs it and runs legacy mode)."""

    reason: str

    def __bool__(self) -> bool:
        return False


class ModelFailure(Exception):
    """One inference failed (error, NaN, too slow): fall back to the rules."""


def check_file(path: Path, *, owner_uid: int, max_bytes: int = MAX_ONNX_BYTES) -> str | None:
    """Why `path` must not be trusted, or None. Checks the path itself (not a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path}: missing"
    except OSError as err:
        return f"{path}: unreadable: {err.strerror or err}"
    return _check_stat(path, st, owner_uid, max_bytes)


def _check_stat(path: Path, st: os.stat_result, owner_uid: int, max_bytes: int) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file"
    if st.st_uid not in (0, owner_uid):
        return f"{path}: owned by uid {st.st_uid}, not root or uid {owner_uid}"
    if st.st_mode & 0o022:
        return f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_size > max_bytes:
        return f"{path}: {st.st_size} bytes, over the {max_bytes}-byte bound"
    return None


def _read(path: Path, owner_uid: int, max_bytes: int) -> bytes | str:
    """The file's bytes, or why not: checked by fstat on the descriptor that is read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return f"{path}: missing"
    except OSError as err:
        return f"{path}: unreadable: {err.strerror or err}"
    try:
        problem = _check_stat(path, os.fstat(fd), owner_uid, max_bytes)
        if problem:
            return problem
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        return f"{path}: unreadable: {err.strerror or err}"
    finally:
        os.close(fd)
    return data if len(data) <= max_bytes else f"{path}: grew past the {max_bytes}-byte bound"


@dataclass(slots=True, kw_only=True)
class LoadedModel:
    """An accepted artifact: the ONNX session, its card and the card's active table."""

    session: Any = field(repr=False)
    card: Mapping[str, Any]
    directory: Path
    tz: tzinfo
    active: Sequence[float]  # P(user active) by hour of week
    profile: Profile | None = None  # how later slots are forecast (None: frozen snapshot)
    latency_bound_s: float = LATENCY_BOUND_S

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(success), runtime s) per row; ModelFailure on error, NaN or slowness."""
        start = time.perf_counter()
        try:
            p, log_rt = self.session.run(
                [OUTPUT_P, OUTPUT_RUNTIME], {INPUT: np.asarray(rows, np.float32)}
            )
            p_ok = np.asarray(p, np.float64)[:, 1]
            runtime = np.expm1(np.asarray(log_rt, np.float64).reshape(-1))
        except Exception as err:  # onnxruntime raises its own types
            raise ModelFailure(f"inference error: {err}") from err
        spent = time.perf_counter() - start
        if len(p_ok) != len(rows) or len(runtime) != len(rows):
            raise ModelFailure("inference error: wrong output shape")
        if not (np.isfinite(p_ok).all() and np.isfinite(runtime).all()):
            raise ModelFailure("NaN output")
        if spent > self.latency_bound_s:
            bound = self.latency_bound_s * 1000
            raise ModelFailure(f"inference too slow: {spent * 1000:.1f} ms > {bound:g} ms")
        return np.clip(p_ok, 0.0, 1.0), np.maximum(runtime, 0.0)


def load_model(
    directory: str | os.PathLike[str],
    *,
    owner_uid: int,
    max_age: timedelta | None = MAX_AGE,
    max_bytes: int = MAX_ONNX_BYTES,
    latency_bound_s: float = LATENCY_BOUND_S,
    now: datetime | None = None,
) -> LoadedModel | ModelUnavailable:
    """The model in `directory` if the daemon may use it, else why not. Never unpickles."""
    root = Path(directory)
    try:
        st = os.stat(root)
    except OSError as err:
        return ModelUnavailable(f"{root}: missing: {err.strerror or err}")
    if not stat.S_ISDIR(st.st_mode):
        return ModelUnavailable(f"{root}: not a directory")
    if st.st_uid not in (0, owner_uid) or st.st_mode & 0o022:
        return ModelUnavailable(
            f"{root}: directory owned by uid {st.st_uid} or group/other-writable"
        )
    raw_card = _read(root / CARD_NAME, owner_uid, MAX_CARD_BYTES)
    if isinstance(raw_card, str):
        return ModelUnavailable(raw_card)
    try:
        card, created, expected, zone, active, profile = _parse_card(raw_card)
    except (ValueError, KeyError, TypeError) as err:
        return ModelUnavailable(f"{root / CARD_NAME}: corrupt card: {err}")
    if card.get("format") != CARD_FORMAT:
        return ModelUnavailable(f"{root / CARD_NAME}: card format {card.get('format')!r}")
    if card.get("features") != list(FEATURES):
        return ModelUnavailable(
            f"{root / CARD_NAME}: feature mismatch: the model was trained on other features"
        )
    age = (now or datetime.now(UTC)) - created
    if max_age is not None and age > max_age:
        return ModelUnavailable(f"{root}: stale: trained {age.days} days ago (max {max_age.days})")
    blob = _read(root / ONNX_NAME, owner_uid, max_bytes)
    if isinstance(blob, str):
        return ModelUnavailable(blob)
    if hashlib.sha256(blob).hexdigest() != expected:
        return ModelUnavailable(f"{root / ONNX_NAME}: sha256 does not match the card (tampered)")
    try:
        session = _session(blob)
    except Exception as err:
        return ModelUnavailable(f"{root / ONNX_NAME}: corrupt ONNX: {err}")
    model = LoadedModel(
        session=session,
        card=card,
        directory=root,
        tz=zone,
        active=active,
        profile=profile,
        latency_bound_s=latency_bound_s,
    )
    try:  # a first call: signature, finiteness (not timed: the first run warms up)
        model.latency_bound_s = math.inf
        model.predict(np.zeros((1, len(FEATURES)), np.float32))
    except ModelFailure as err:
        return ModelUnavailable(f"{root / ONNX_NAME}: {err}")
    model.latency_bound_s = latency_bound_s
    return model


def _parse_card(
    raw: bytes,
) -> tuple[dict[str, Any], datetime, str, tzinfo, list[float], Profile | None]:
    card = json.loads(raw)
    if not isinstance(card, dict):
        raise ValueError("not a JSON object")
    created = datetime.fromisoformat(card["created"])
    if created.tzinfo is None:
        raise ValueError("created has no UTC offset")
    expected = str(card["sha256"][ONNX_NAME])
    try:
        zone = ZoneInfo(str(card.get("timezone", "UTC")))
    except Exception as err:
        raise ValueError(f"timezone: {err}") from None
    active = [float(v) for v in card["active"]["by_hour_of_week"]]
    if len(active) != 168 or not all(0.0 <= v <= 1.0 for v in active):
        raise ValueError("active.by_hour_of_week: 168 shares between 0 and 1 expected")
    profile = None
    if card.get("profile") is not None:  # cards written before profiles: frozen forecasts
        try:
            profile = Profile.from_dict(card["profile"], active)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"profile: {err}") from None
    return card, created, expected, zone, active, profile


def _session(blob: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outputs = {o.name for o in session.get_outputs()}
    if names != [INPUT] or not {OUTPUT_P, OUTPUT_RUNTIME} <= outputs:
        raise ValueError(f"inputs {names}, outputs {sorted(outputs)}: not a SmartCron model")
    return session


# ------------------------------------------------------------------ job history


class StatsReader(Protocol):
    """A job's record before an instant (strictly: runs that ended earlier)."""

    def stats(self, job_id: str, before: datetime) -> JobStats: ...


class HistoryStats:
    """JobStats from a HistoryStore (the daemon's)."""

    def __init__(self, store: Any, window: int = 10) -> None:
        self.store, self.window = store, window

    def stats(self, job_id: str, before: datetime) -> JobStats:
        outcomes = []
        for row in self.store.runs(job_id, limit=self.window * 3):
            end = row.end
            if end is None or row.status.value not in ("ok", "failed", "timeout"):
                continue
            ok = row.status.value == "ok" and end.exit_code == 0 and not end.timed_out
            outcomes.append(Outcome(ended=end.ended, ok=ok, runtime_s=end.runtime_s))
        outcomes.sort(key=lambda o: o.ended)
        return job_stats(outcomes, before, self.window)


class MemoryStats:
    """JobStats from outcomes given as they happen (the simulator, tests)."""

    def __init__(self) -> None:
        self._runs: dict[str, list[Outcome]] = {}

    def add(self, job_id: str, outcome: Outcome) -> None:
        runs = self._runs.setdefault(job_id, [])
        runs.append(outcome)
        if len(runs) > 1 and runs[-2].ended > outcome.ended:
            runs.sort(key=lambda o: o.ended)

    def stats(self, job_id: str, before: datetime) -> JobStats:
        return job_stats(self._runs.get(job_id, []), before)


# ------------------------------------------------------------------ the advisor


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """When a later slot is "clearly better" (see SmartAdvisor)."""

    step: timedelta = timedelta(minutes=10)  # candidate slots, now + k * step, at most this
    min_step: timedelta = timedelta(minutes=1)  # and at least this
    per_window: int = 12  # a short window still gets about this many candidates
    max_slots: int = 72
    min_gain: float = 0.05  # P(success) gain that justifies waiting
    min_quieter: float = 0.3  # P(user active) drop that justifies waiting
    tolerance: float = 0.01  # how much worse the other quantity may get
    runtime_factor: float = 1.5  # the runtime we plan for, over the predicted one
    retry_room: bool = True  # and, for a job with retries, one retry_delay more

    def step_for(self, left: timedelta) -> timedelta:
        """The slot spacing for `left` time to the deadline: left / per_window, in whole
        minutes, between min_step and step."""
        minutes = int(left.total_seconds() // 60 // self.per_window)
        return max(self.min_step, min(self.step, timedelta(minutes=minutes)))


class SmartAdvisor:
    """gate.Advisor: scores now and the rest of the window, defers only to a clearly
    better slot that still leaves time to finish before the deadline.

    Slots: now and every `Policy.step_for(deadline - now)`. With a profile in the card, a
    slot's state is `features.forecast`: load, CPU and RAM at their hour-of-week and
    minute-of-hour level plus today's departure from it, decaying with the lead time;
    the user active with P(active) (the hour-of-week share plus the current departure,
    decaying), so the slot is scored twice (active, away) and P(success) and the runtime
    are mixed by that probability; P(active) at the run's midpoint is its chance of
    disturbing the user. Without a profile (older cards) a slot is the current snapshot
    with the clock moved, and P(active) the hour-of-week share (1 now if active now).
    A slot is clearly better when P(success) gains `min_gain` without more
    interference, or P(active) drops `min_quieter` without less success; among those the
    best P(success) - P(active), earliest on ties.
    """

    def __init__(self, model: LoadedModel, history: StatsReader, policy: Policy | None = None):
        self.model, self.history, self.policy = model, history, policy or Policy()
        self.failures = 0  # inferences that failed (fallback to the rules)
        self.last_error: str | None = None

    def _active(self, at: datetime, runtime_s: float) -> float:
        mid = at + timedelta(seconds=runtime_s / 2)
        return float(self.model.active[hour_of_week(mid, self.model.tz)])

    def _score(
        self, snap: Any, stats: JobStats, nominal: datetime, slots: list[datetime]
    ) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """P(success), runtime (s) and P(user active during the run) per slot."""
        tz, profile = self.model.tz, self.model.profile
        rows = [features(snap, stats, nominal, slots[0], tz=tz)]
        if profile is None:
            rows += [features(snap, stats, nominal, s, tz=tz) for s in slots[1:]]
            p, runtime = self.model.predict(np.asarray(rows))
            active_now = snap.idle_seconds is not None and snap.idle_seconds < ACTIVE_IDLE_BELOW
            a = [1.0 if active_now else self._active(slots[0], runtime[0])]
            a += [self._active(s, r) for s, r in zip(slots[1:], runtime[1:], strict=True)]
            return p, runtime, a
        q = [0.0]
        for slot in slots[1:]:
            busy, away, share = forecast(snap, profile, slot, tz)
            rows += [features(busy, stats, nominal, slot, tz=tz)]
            rows += [features(away, stats, nominal, slot, tz=tz)]
            q.append(share)
        p_raw, rt_raw = self.model.predict(np.asarray(rows))
        w = np.asarray(q[1:])
        p = np.concatenate([p_raw[:1], w * p_raw[1::2] + (1 - w) * p_raw[2::2]])
        runtime = np.concatenate([rt_raw[:1], w * rt_raw[1::2] + (1 - w) * rt_raw[2::2]])
        half = [timedelta(seconds=float(r) / 2) for r in runtime]
        a = [p_active_at(profile, snap, s + h, tz) for s, h in zip(slots, half, strict=True)]
        return p, runtime, a

    def advise(self, firing: Any, spec: Any, snap: Any, now: datetime) -> Any:
        from smartcron.gate import Verdict

        pol, tz = self.policy, self.model.tz
        stats = self.history.stats(firing.job_id, now)
        step = pol.step_for(firing.deadline - now)
        retries = getattr(spec, "retry", 0) or 0
        margin = getattr(spec, "retry_delay", None) if pol.retry_room and retries else None
        margin = margin or timedelta(0)
        slots = [now + k * step for k in range(pol.max_slots + 1)]
        slots = [s for s in slots if s < firing.deadline] or [now]
        try:
            p, runtime, a = self._score(snap, stats, firing.nominal, slots)
        except ModelFailure as err:
            self.failures += 1
            self.last_error = str(err)
            return Verdict(action="run", until=None, reason=f"constraints hold (model: {err})")
        best = 0
        for k in range(1, len(slots)):
            need = timedelta(seconds=float(runtime[k]) * pol.runtime_factor) + margin
            if slots[k] + need > firing.deadline:
                break
            gain, quieter = p[k] - p[0], a[0] - a[k]
            better = (gain >= pol.min_gain and quieter >= -pol.tolerance) or (
                quieter >= pol.min_quieter and gain >= -pol.tolerance
            )
            if better and p[k] - a[k] > p[best] - a[best] + 1e-9:
                best = k
        outputs = {
            "p_success": round(float(p[0]), 4),
            "runtime_s": round(float(runtime[0]), 1),
            "p_active": round(a[0], 4),
            "slots": float(len(slots)),
        }
        if best == 0:
            reason = (
                f"constraints hold (model: success {p[0]:.2f} now, runtime ~{_mins(runtime[0])})"
            )
            return Verdict(action="run", until=None, reason=reason, model=outputs)
        until = slots[best]
        outputs |= {"best_p_success": round(float(p[best]), 4), "best_p_active": round(a[best], 4)}
        reason = (
            f"model: success {p[0]:.2f} now vs {p[best]:.2f} at"
            f" {until.astimezone(tz).strftime('%H:%M')} (runtime ~{_mins(runtime[best])},"
            f" user active {a[0]:.2f} vs {a[best]:.2f})"
        )
        return Verdict(action="defer", until=until, reason=reason, model=outputs)


def _mins(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))}m"


class ModelError(SmartcronError):
    """A model the caller asked for explicitly cannot be used (the message says why)."""


def load_advisor(
    directory: str | os.PathLike[str],
    history: str | os.PathLike[str] | StatsReader | None = None,
    *,
    owner_uid: int | None = None,
    **options: Any,
) -> SmartAdvisor:
    """A SmartAdvisor over the model in `directory`; job stats from `history` (a history
    database path, read-only, or any StatsReader; None: no job history, neutral stats).
    Raises ModelError naming why the model is unusable."""
    uid = os.geteuid() if owner_uid is None else owner_uid
    model = load_model(directory, owner_uid=uid, **options)
    if isinstance(model, ModelUnavailable):
        raise ModelError(f"model {directory}: {model.reason}")
    reader: StatsReader
    if history is None:
        reader = MemoryStats()
    elif isinstance(history, str | os.PathLike):
        from smartcron.history import HistoryStore

        reader = HistoryStats(HistoryStore.open(history, readonly=True))
    else:
        reader = history
    return SmartAdvisor(model, reader)
