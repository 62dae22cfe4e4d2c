"""daemon-idle: the real daemon on 1,000 ordinary entries, between and at its due instants.

Memory: VmRSS once settled (goal <= 30 MB), beside the RSS of a sleeping
`python -c "import time; time.sleep(60)"` measured in the same run.

Wake-ups: context switches (voluntary + nonvoluntary) of all the daemon's threads over
a measured window, against the distinct due instants in that window (goal: at most one
wake-up per due instant). The scheduler loop is the main thread, so its switches are
reported apart; the rest are the short-lived per-job collector threads. /proc only
shows live threads, so the threads are polled every POLL_S and a thread that lived
and died between two polls is missed (counted in `threads seen` only if seen).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import PYTHON, Result, Row
from benchmarks.daemon import rss_kib, running, spawner_pid, thread_switches

POLL_S = 0.25
NEAR_S = 15.0  # switches within this long after a due instant are that instant's
WAKE_SYSCALLS = "select,pselect6,poll,ppoll,epoll_wait,epoll_pwait"
RSS_GOAL_KIB = 30 * 1024
SEED = 1000


@dataclass(frozen=True)
class Params:
    entries: int
    window_s: float
    settle_s: float
    strace_s: float  # second window, main thread under strace (0: skipped)


FULL = Params(entries=1000, window_s=180.0, settle_s=10.0, strace_s=120.0)
QUICK = Params(entries=1000, window_s=60.0, settle_s=3.0, strace_s=0.0)
TINY = Params(entries=20, window_s=2.0, settle_s=0.5, strace_s=1.0)
FIELDS = (
    "rss_kib",
    "baseline_rss_kib",
    "due_instants",
    "firings",
    "main_switches",
    "idle_main_switches",
    "all_switches",
    "window_s",
    "wakeups",
)


def crontab(entries: int, seed: int = SEED) -> str:
    """Mostly hourly, daily and weekly jobs at people's favourite minutes; a few `*/5`."""
    rng = random.Random(seed)
    lines = ["MAILTO=''"]  # mail is off: nothing here is about sendmail
    fast = max(1, entries // 200)
    lines += ["*/5 * * * * true"] * fast
    for _ in range(entries - fast):
        minute = rng.choice((0, 0, 5, 10, 15, 20, 30, 30, 45)) if rng.random() < 0.6 else None
        m = rng.randrange(60) if minute is None else minute
        h, kind = rng.randrange(24), rng.random()
        if kind < 0.55:
            lines.append(f"{m} * * * * true")
        elif kind < 0.85:
            lines.append(f"{m} {h} * * * true")
        else:
            lines.append(f"{m} {h} * * {rng.randrange(7)} true")
    return "\n".join(lines) + "\n"


def due_in(text: str, start: datetime, end: datetime) -> tuple[list[float], int]:
    """(distinct due instants as epoch seconds, firings) in (start, end], as the daemon sees."""
    from smartcron.cron.crontab import parse
    from smartcron.cron.schedule import local_zone, next_fires

    zone = local_zone()
    instants: set[datetime] = set()
    firings = 0
    for entry in parse(text).entries:
        for when in next_fires(entry.spec, start, zone):
            if when > end:
                break
            instants.add(when)
            firings += 1
    return sorted(i.timestamp() for i in instants), firings


def sleeper_rss_kib() -> int:
    """RSS of a bare interpreter that only sleeps: the floor for any Python daemon."""
    proc = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(1.0)
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def empty_daemon_rss_kib(settle_s: float) -> int:
    """RSS of the daemon on an empty crontab: its imports and fixed state, no jobs."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-idle-empty-") as tmp,
        running(Path(tmp), "") as daemon,
    ):
        time.sleep(settle_s)
        return rss_kib(daemon.pid)


def _runs(state: Path) -> int:
    db = state / "history.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@dataclass
class Wakeups:
    """The main thread's returns from its sleep, by what woke it (strace, a second window)."""

    seconds: float
    instants: int
    firings: int
    reasons: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.reasons.values())


_RESULT = re.compile(r"^(\d+\.\d+) \w+\(.*\)\s+= (\d+|\?)(?: \((?:in \[([\d ]+)\])?)?")


def _fd_kinds(pid: int) -> dict[int, str]:
    kinds: dict[int, str] = {}
    names = {"anon_inode:[timerfd]": "timer", "anon_inode:inotify": "files"}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            kinds[int(fd)] = names.get(link, "notify" if link.startswith("pipe:") else link)
    return kinds


def strace_wakeups(pid: int, seconds: float, trace: Path) -> dict[str, int] | None:
    """Count the main thread's wake-ups by reason: strace -p traces that thread only.

    `trace` must be outside the directories the daemon watches (each line would wake it).
    """
    strace = shutil.which("strace")
    if strace is None or seconds <= 0:
        return None
    kinds = _fd_kinds(pid)
    proc = subprocess.Popen(
        [strace, "-ttt", "-p", str(pid), "-e", f"trace={WAKE_SYSCALLS}", "-o", str(trace)],
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds)
    finally:
        proc.send_signal(signal.SIGINT)  # strace detaches cleanly
        proc.wait(timeout=30)
    reasons: dict[str, int] = {}
    for line in trace.read_text().splitlines():
        match = _RESULT.match(line)
        if match is None:
            continue
        value, fds = match.group(2), match.group(3)
        if value == "?":
            why = ["signal"]
        elif value == "0":
            why = ["timeout"]
        else:
            why = sorted({kinds.get(int(fd), "other") for fd in (fds or "").split()}) or ["other"]
        key = "+".join(why)
        reasons[key] = reasons.get(key, 0) + 1
    return reasons


def run(params: Params) -> Result:
    text = crontab(params.entries)
    baseline = sleeper_rss_kib()
    empty = empty_daemon_rss_kib(params.settle_s)
    wakeups: Wakeups | None = None
    with (
        tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp,
        running(Path(tmp), text) as daemon,
    ):
        pid = daemon.pid
        time.sleep(params.settle_s)
        rss = rss_kib(pid)
        spawner = spawner_pid(pid)
        spawner_kib = (rss_kib(spawner), rss_kib(spawner, "RssAnon")) if spawner else None
        runs_before = _runs(Path(tmp, "state"))
        first = thread_switches(pid)
        last = dict(first)
        samples = [(time.time(), *first[pid])]  # the main thread over time
        start = datetime.now(UTC)
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < params.window_s:
            time.sleep(min(POLL_S, params.window_s - elapsed))
            last.update(thread_switches(pid))
            samples.append((time.time(), *last[pid]))
        end = datetime.now(UTC)
        window = time.monotonic() - t0
        rss_end = rss_kib(pid)
        hwm = rss_kib(pid, "VmHWM")
        runs = _runs(Path(tmp, "state")) - runs_before
        t_start = datetime.now(UTC)
        reasons = strace_wakeups(pid, params.strace_s, Path(tmp, "strace.txt"))
        if reasons is not None:
            t_end = datetime.now(UTC)
            s_instants, s_firings = due_in(text, t_start, t_end)
            seconds = (t_end - t_start).total_seconds()
            wakeups = Wakeups(seconds, len(s_instants), s_firings, reasons)
    instants, firings = due_in(text, start, end)

    def delta(tid: int) -> tuple[int, int]:
        before = first.get(tid, (0, 0))
        return last[tid][0] - before[0], last[tid][1] - before[1]

    main_v, main_n = delta(pid)
    others = [delta(tid) for tid in last if tid != pid]
    other_v = sum(v for v, _ in others)
    other_n = sum(n for _, n in others)
    # Main-thread switches away from any due instant: what polling would cost.
    idle_switches, idle_s = 0, 0.0
    for (t_a, v_a, n_a), (t_b, v_b, n_b) in itertools.pairwise(samples):
        if not any(t_b >= d and t_a < d + NEAR_S for d in instants):
            idle_switches += (v_b - v_a) + (n_b - n_a)
            idle_s += t_b - t_a
    per_min = 60.0 / window
    main_total = main_v + main_n
    result = Result(
        name="daemon-idle",
        config=(
            f"{params.entries} entries (seed {SEED}; mostly hourly/daily/weekly, "
            f"{max(1, params.entries // 200)} `*/5`, command `true`), settled "
            f"{params.settle_s:.0f} s; /proc window {window:.0f} s (threads polled every "
            f"{POLL_S} s)" + (f", then a {wakeups.seconds:.0f} s strace window" if wakeups else "")
        ),
        baseline='RSS of `python -c "import time; time.sleep(60)"`, same run',
    )
    mb = baseline / 1024
    result.add(Row("VmRSS once settled", rss / 1024, "MB", mb, "≤ 30 MB", rss <= RSS_GOAL_KIB))
    if spawner_kib is not None:  # a process of its own beside the daemon: counted apart
        total, private = (kib / 1024 for kib in spawner_kib)
        result.add(Row("spawner process: VmRSS / private (RssAnon)",
                       f"{total:.1f} / {private:.1f} MB"))  # fmt: skip
    result.add(Row("VmRSS on an empty crontab", empty / 1024, "MB", baseline=mb))
    result.add(Row("VmRSS at the end of the window", rss_end / 1024, "MB", baseline=mb))
    result.add(Row("VmHWM (peak RSS)", hwm / 1024, "MB", baseline=mb))
    result.add(Row("/proc window: distinct due instants", len(instants)))
    result.add(Row("/proc window: firings due / runs recorded", f"{firings} / {runs}"))
    result.add(Row("main thread: switches per minute", main_total * per_min, "/min"))
    result.add(
        Row(
            "main thread: switches per due instant",
            main_total / len(instants) if instants else float(main_total),
        )
    )
    result.add(
        Row(
            f"main thread: switches away from due instants (> {NEAR_S:.0f} s after one)",
            f"{idle_switches} in {idle_s:.0f} s",
            goal="0 (no polling)",
            met=idle_switches == 0,
        )
    )
    result.add(
        Row("all threads: switches per minute", (main_total + other_v + other_n) * per_min, "/min")
    )
    result.add(Row("other threads seen (alive at a poll)", len(others)))
    if wakeups is not None:
        timer = sum(n for k, n in wakeups.reasons.items() if "timer" in k)
        result.add(
            Row(
                "strace window: due instants / firings",
                f"{wakeups.instants} / {wakeups.firings}",
            )
        )
        result.add(
            Row(
                "strace window: timer wake-ups per due instant",
                timer / wakeups.instants if wakeups.instants else float(timer),
                goal="≤ 1",
                met=timer <= wakeups.instants,
            )
        )
        result.add(
            Row(
                "strace window: all wake-ups by reason",
                ", ".join(f"{k} {n}" for k, n in sorted(wakeups.reasons.items())),
            )
        )
    result.fields = {
        "rss_kib": rss,
        "rss_end_kib": rss_end,
        "hwm_kib": hwm,
        "empty_rss_kib": empty,
        "baseline_rss_kib": baseline,
        "due_instants": len(instants),
        "firings": firings,
        "runs": runs,
        "main_switches": (main_v, main_n),
        "idle_main_switches": idle_switches,
        "all_switches": (main_v + other_v, main_n + other_n),
        "job_threads_seen": len(others),
        "window_s": window,
        "wakeups": None if wakeups is None else wakeups.reasons,
    }
    result.notes.append(
        f"/proc window: main thread {main_v} voluntary + {main_n} nonvoluntary switches; "
        f"other threads {other_v} + {other_n}; {len(instants)} due instants, "
        f"{firings} firings."
    )
    if wakeups is not None:
        result.notes.append(
            "strace window: wake-ups are the main thread's returns from pselect6, by the fd "
            "that was ready: timer = the timerfd armed for the next due instant, notify = "
            "the self-pipe (a job finished, or a signal), files = inotify."
        )
    return result
