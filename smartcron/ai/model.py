"""The daemon's side of the model (SPEC 5-6): load an artifact safely, infer, advise.

Imports numpy and onnxruntime only: never pandas, scikit-learn or pickle. `load_model`
returns a `LoadedModel` or a `ModelUnavailable` naming why the daemon must stay in
legacy mode. Every file is opened with O_NOFOLLOW and checked on the open descriptor
(regular file, owned by root or `owner_uid`, not writable by group or others, under a
size bound) before a byte is read; then the card must list exactly features.FEATURES,
be younger than `max_age`, and carry model.onnx's sha256.

Inference is guarded: an exception, a non-finite output or a call slower than
`latency_bound_s` raises `ModelFailure`, and `advisor.SmartAdvisor` then answers "run"
with the reason, so a failing model can only make a firing less deferred than the rules.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from smartcron.ai.features import (
    FEATURES,
    Profile,
)
from smartcron.hashes import sha256  # not hashlib: no OpenSSL in the daemon

CARD_NAME, ONNX_NAME, PKL_NAME = "model.json", "model.onnx", "model.pkl"
CARD_FORMAT = 1
INPUT = "features"
JOB_INPUT = "job"  # int64 scalar: the job's own forest (card: job_models), -1 for none
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
    # job id -> its own forest's index; None: a model from before the job input
    jobs: Mapping[str, int] | None = field(default_factory=dict)
    # the share of a run's cores this machine's load shows (loadshare; 1: older cards)
    load_share: float = 1.0

    def predict(self, rows: np.ndarray, job: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(P(success), runtime s) per row, every row a state of `job` (its own forest
        where the model has one); ModelFailure on error, NaN or slowness."""
        start = time.perf_counter()
        feed = {INPUT: np.asarray(rows, np.float32)}
        if self.jobs is not None:  # a graph with the job input (None: an older model)
            feed[JOB_INPUT] = np.asarray(self.jobs.get(job or "", -1), np.int64)
        try:
            p, log_rt = self.session.run([OUTPUT_P, OUTPUT_RUNTIME], feed)
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
        # maximum and minimum, not np.clip: the same floats here (no NaN), without its
        # Python-level checks (a decision's cost)
        return np.minimum(np.maximum(p_ok, 0.0), 1.0), np.maximum(runtime, 0.0)


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
    if st.st_uid not in (0, owner_uid):  # say which of the two it is: each has its fix
        return ModelUnavailable(
            f"{root}: directory owned by uid {st.st_uid}, not root or uid {owner_uid}"
        )
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        return ModelUnavailable(f"{root}: directory writable by group or others (mode {mode:04o})")
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
    if sha256(blob).hexdigest() != expected:
        return ModelUnavailable(f"{root / ONNX_NAME}: sha256 does not match the card (tampered)")
    try:
        session, with_jobs = _session(blob)
    except Exception as err:
        return ModelUnavailable(f"{root / ONNX_NAME}: corrupt ONNX: {err}")
    try:
        jobs = _job_models(card) if with_jobs else None
        share = _load_share(card)
    except ValueError as err:  # the card's fault, not the graph's
        return ModelUnavailable(f"{root / CARD_NAME}: corrupt card: {err}")
    model = LoadedModel(
        jobs=jobs,
        session=session,
        card=card,
        directory=root,
        tz=zone,
        active=active,
        profile=profile,
        latency_bound_s=latency_bound_s,
        load_share=share,
    )
    try:  # a first call: signature, finiteness (not timed: the first run warms up)
        model.latency_bound_s = math.inf
        for job in [None, *(jobs or ())]:  # every job's own forest too
            model.predict(np.zeros((1, len(FEATURES)), np.float32), job)
    except ModelFailure as err:
        return ModelUnavailable(f"{root / ONNX_NAME}: {err}")
    model.latency_bound_s = latency_bound_s
    trim_heap()
    return model


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim): loading
    leaves the file's bytes and the parsed graph freed but held in malloc's free lists,
    1.5 MB with the shipped model, for the daemon's lifetime. Elsewhere (musl): nothing."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's, no search


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


def _job_models(card: Mapping[str, Any]) -> dict[str, int]:
    """The card's ``job_models`` (job ids in the graph's order) as job -> index."""
    names = card.get("job_models", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("job_models: a list of job ids expected")
    return {name: k for k, name in enumerate(names)}


def _load_share(card: Mapping[str, Any]) -> float:
    """The card's ``load_share`` (cards written before it: 1, the load counted whole)."""
    share = card.get("load_share", 1.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ValueError("load_share: a share between 0 and 1 expected")
    return float(share)


def _session(blob: bytes) -> tuple[Any, bool]:
    """The inference session, and whether its graph takes the job input (models
    trained before the jobs' own forests do not)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outputs = {o.name for o in session.get_outputs()}
    if names not in ([INPUT], [INPUT, JOB_INPUT]) or not {OUTPUT_P, OUTPUT_RUNTIME} <= outputs:
        raise ValueError(f"inputs {names}, outputs {sorted(outputs)}: not a SmartCron model")
    return session, names == [INPUT, JOB_INPUT]
