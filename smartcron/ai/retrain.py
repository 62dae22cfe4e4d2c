"""Online learning (SPEC 6): retrain on a schedule in a child process; swap if no worse.

`Retrainer.step(now)` runs at every wake-up and never blocks. At a due instant of the
`retrain` schedule it spawns `smartcronctl train` at low priority (nice 19, and the
idle I/O class through ionice(1) where it exists; its own session) into a fresh
`.retrain-*` directory inside the model directory; a thread waits for the child and
wakes the daemon. The new artifact must then pass `model.load_model` and score at
least as well as the daemon's own model in use on its holdout: Brier score not
higher, PR-AUC of failures not lower (a metric either card lacks is not compared;
with no own model in use any model that loads wins). Only then are model.onnx,
model.pkl and, last, model.json renamed into place: same file system, each rename
atomic, and the card goes last because it vouches for the other two. A failing,
refused or worse model leaves the old one and is logged with the reason. The daemon
never imports the training stack: pandas and scikit-learn live in the child.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeGuard

from smartcron.cron.cronfields import parse_timespec
from smartcron.cron.schedule import next_fires

if TYPE_CHECKING:
    from smartcron.config import Config

log = logging.getLogger("smartcron")

CHILD_TIMEOUT = timedelta(hours=1)
POLL = timedelta(minutes=1)  # a safety net while a child runs (its exit wakes the daemon)
SWAP_ORDER = ("model.onnx", "model.pkl", "model.json")  # the card last
# The child lowers its own priority, then becomes the real command.
_NICE = "import os, sys; os.nice(19); os.execvp(sys.argv[1], sys.argv[1:])"

Command = Callable[[Path], list[str]]


def train_command(history_db: Path, zone: tzinfo) -> Command:
    """`smartcronctl train --history DB --out DIR --tz ZONE`, by this interpreter."""
    tz = getattr(zone, "key", None) or "UTC"  # a zoneinfo name; else the hours in UTC

    def argv(out: Path) -> list[str]:
        train = ["train", "--history", str(history_db), "--out", str(out), "--tz", tz]
        return [sys.executable, "-m", "smartcron.cli.ctl", *train]

    return argv


def worse_than(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> str | None:
    """Why the `new` card scores worse than `old` on their holdouts, or None."""
    if old is None:
        return None
    n, o = _holdout(new), _holdout(old)
    brier_n, brier_o = n.get("brier"), o.get("brier")
    if _number(brier_n) and _number(brier_o) and brier_n > brier_o:
        return f"Brier {brier_n} > {brier_o} of the model in use"
    pr_n, pr_o = n.get("pr_auc_failure"), o.get("pr_auc_failure")
    if _number(pr_n) and _number(pr_o) and pr_n < pr_o:
        return f"PR-AUC(failure) {pr_n} < {pr_o} of the model in use"
    return None


def _holdout(card: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = card.get("metrics")
    holdout = metrics.get("holdout") if isinstance(metrics, Mapping) else None
    return holdout if isinstance(holdout, Mapping) else {}


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    """How the last retraining ended: swapped, kept (the old model) or failed."""

    at: datetime
    result: str
    why: str


@dataclass(slots=True)
class _Child:
    proc: subprocess.Popen[bytes]
    out: Path
    stderr: IO[bytes]
    started: datetime
    mono: float


class Retrainer:
    def __init__(
        self,
        schedule: str,
        *,
        model_dir: Path,
        command: Command,
        zone: tzinfo,
        owner_uid: int,
        max_age: timedelta | None = None,
        latency_bound_s: float = math.inf,
        current: Callable[[], Mapping[str, Any] | None] = lambda: None,
        on_exit: Callable[[], None] | None = None,
        timeout: timedelta = CHILD_TIMEOUT,
    ) -> None:
        self.schedule = schedule
        self.spec = parse_timespec(schedule)
        self.model_dir = model_dir
        self.command = command
        self.zone = zone
        self.owner_uid = owner_uid
        self.max_age = max_age
        self.latency_bound_s = latency_bound_s
        self.current = current
        self.on_exit = on_exit
        self.timeout = timeout
        self.next_due: datetime | None = None
        self.child: _Child | None = None
        self.last: RetrainOutcome | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        zone: tzinfo,
        current: Callable[[], Mapping[str, Any] | None],
        on_exit: Callable[[], None] | None = None,
    ) -> Retrainer | None:
        spec = config.retrain_spec
        if spec is None or config.mode != "smart":
            return None
        return cls(
            spec,
            model_dir=config.models_dir,
            command=train_command(config.history_db, zone),
            zone=zone,
            owner_uid=os.geteuid() if config.user_mode else 0,
            max_age=timedelta(days=config.model_max_age),
            latency_bound_s=config.inference_bound_ms / 1000.0,
            current=current,
            on_exit=on_exit,
        )

    def _after(self, now: datetime) -> datetime | None:
        return next(next_fires(self.spec, now, self.zone), None)

    def next_wake(self, now: datetime) -> datetime | None:
        if self.child is not None:
            return now + POLL
        return self.next_due

    def step(self, now: datetime) -> bool:
        """Finish an exited child, start a due one. True when a new model was swapped in."""
        swapped = self._collect(now) if self.child is not None else False
        upcoming = self._after(now)
        if self.next_due is None or (upcoming is not None and upcoming < self.next_due):
            self.next_due = upcoming  # first call, or the wall clock was set back
        elif now >= self.next_due:
            self.next_due = upcoming
            if self.child is not None:
                log.warning("retraining: the previous run is still going; not starting another")
            else:
                self._start(now)
        return swapped

    # ------------------------------------------------------------ the child

    def _start(self, now: datetime) -> None:
        with contextlib.suppress(OSError):
            for stale in self.model_dir.glob(".retrain-*"):  # left by a crashed daemon
                shutil.rmtree(stale, ignore_errors=True)
        out: Path | None = None
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
            out = Path(tempfile.mkdtemp(prefix=".retrain-", dir=self.model_dir))
            argv = [sys.executable, "-c", _NICE, *self.command(out)]
            ionice = shutil.which("ionice")
            if ionice:
                argv = [ionice, "-c", "3", "-t", *argv]  # idle I/O class; -t: not fatal
            stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the child's life)
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                env=_child_env(),
            )
        except OSError as err:
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)
            self._done(now, "failed", f"could not start the training child: {err}")
            return
        self.child = _Child(proc, out, stderr, now, time.monotonic())
        log.info("retraining: started (pid %d) into %s", proc.pid, out)
        threading.Thread(target=self._wait, args=(proc,), name="retrain", daemon=True).start()

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        if self.on_exit is not None:
            self.on_exit()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the child exits (tests; the daemon never calls this)."""
        if self.child is not None:
            self.child.proc.wait(timeout)

    def _collect(self, now: datetime) -> bool:
        child = self.child
        assert child is not None
        code = child.proc.poll()
        if code is None:
            if time.monotonic() - child.mono < self.timeout.total_seconds():
                return False
            self._kill(child)
            code = None
        self.child = None
        try:
            if code is None:
                return self._done(now, "failed", f"timed out after {self.timeout}; killed")
            if code != 0:
                why = _tail(child.stderr) or "no message"
                return self._done(now, "failed", f"the training child exited with {code}: {why}")
            problem = self._validate(child.out, now)
            if problem is not None:
                return self._done(now, "kept", problem)
            self._swap(child.out)
            return self._done(now, "swapped", f"new model in {self.model_dir}")
        except OSError as err:
            return self._done(now, "failed", f"cannot install the new model: {err}")
        finally:
            child.stderr.close()
            shutil.rmtree(child.out, ignore_errors=True)

    def _validate(self, out: Path, now: datetime) -> str | None:
        from smartcron.ai import model as models

        loaded = models.load_model(
            out,
            owner_uid=self.owner_uid,
            max_age=self.max_age,
            latency_bound_s=self.latency_bound_s,
            now=now,
        )
        if isinstance(loaded, models.ModelUnavailable):
            return f"the new model is refused: {loaded.reason}"
        worse = worse_than(loaded.card, self.current())
        return None if worse is None else f"the new model scores worse: {worse}"

    def _swap(self, out: Path) -> None:
        for name in SWAP_ORDER:
            if (out / name).exists():
                os.replace(out / name, self.model_dir / name)

    def _done(self, now: datetime, result: str, why: str) -> bool:
        self.last = RetrainOutcome(now, result, why)
        level = {"swapped": logging.INFO, "kept": logging.WARNING}.get(result, logging.ERROR)
        log.log(level, "retraining: %s: %s", result, why)
        return result == "swapped"

    def _kill(self, child: _Child, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(OSError):
            os.killpg(child.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(5)

    def stop(self) -> None:
        """At daemon stop: end a running child (TERM, then KILL) and clean up."""
        child, self.child = self.child, None
        if child is None:
            return
        self._kill(child, signal.SIGTERM)
        if child.proc.poll() is None:
            self._kill(child)
        child.stderr.close()
        shutil.rmtree(child.out, ignore_errors=True)

    def document(self) -> dict[str, Any]:
        """The retraining part of `smartcronctl status --json`."""
        last = self.last
        return {
            "schedule": self.schedule,
            "next": None if self.next_due is None else self.next_due.isoformat(),
            "running": self.child is not None,
            "last": None
            if last is None
            else {"at": last.at.isoformat(), "result": last.result, "why": last.why},
        }


def _tail(stream: IO[bytes], limit: int = 4096) -> str:
    """The child's last non-empty stderr line (its error message), bounded."""
    try:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(max(0, size - limit))
        text = stream.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _child_env() -> dict[str, str]:
    """This environment, with this smartcron package first on the child's path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the smartcron package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
