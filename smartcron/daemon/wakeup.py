"""Sleeping until something matters: a due instant, a clock step, a file change or a signal.

The daemon never polls. It sleeps on a realtime timerfd armed for the next due
instant with TFD_TIMER_CANCEL_ON_SET, so the kernel also wakes it the moment the
wall clock is stepped (cron(8)'s clock-change rules need to know); on inotify
watches of the crontab directories; and on a self-pipe that signal handlers and
finished jobs write to. Without timerfd (not Linux, old kernel) it falls back to a
bounded monotonic sleep, timed on the injected clock.

`Sleeper` is what the daemon's loop needs of a Waker; `testing.FakeWaker` is the fake
(virtual time), and tests/test_contract_clock.py holds both to the same contract.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import signal
from datetime import datetime
from pathlib import Path
from typing import Protocol

from smartcron.clock import Clock, SystemClock

log = logging.getLogger("smartcron")

_CLOCK_REALTIME = 0
_TFD_CLOEXEC = 0o2000000
_TFD_NONBLOCK = 0o4000
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2
FALLBACK_MAX_SLEEP = 60.0  # seconds, when the kernel cannot tell us about clock steps


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create  # noqa: B018 (probe)
    except (OSError, AttributeError):
        return None
    return libc


class Sleeper(Protocol):
    """What the daemon's loop sleeps on (Waker, or testing.FakeWaker)."""

    @property
    def watches_files(self) -> bool:
        """True when a change in a watched directory wakes `wait` ("files")."""
        ...

    def notify(self) -> None:
        """Wake the sleeper now, or its next wait at once (thread-safe)."""
        ...

    def watch(self, directories: list[Path]) -> None:
        """Also wake on changes in these directories (once they exist)."""
        ...

    def wait(self, deadline: datetime) -> set[str]:
        """Sleep until `deadline` or an event; the reasons: timer, clock, notify, files."""
        ...


class Waker:
    """One object to sleep on. `wait(deadline)` returns the set of reasons it woke.

    The timerfd is armed on the kernel's real-time clock, so pair it with the real
    clock; `clock` times the fallback sleep (tests pass a FakeWaker instead)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._libc = _libc()
        self._timer_fd = -1
        if self._libc is not None:
            fd = self._libc.timerfd_create(_CLOCK_REALTIME, _TFD_CLOEXEC | _TFD_NONBLOCK)
            if fd >= 0:
                self._timer_fd = fd
        self._inotify = None
        self._watched: set[str] = set()
        self._wds: dict[int, str] = {}  # watch descriptor -> directory
        self._wanted: dict[str, Path] = {}  # asked for; watched whenever it exists
        try:
            import inotify_simple

            self._inotify = inotify_simple.INotify()
        except (ImportError, OSError) as err:
            log.info("inotify unavailable (%s); crontabs are rescanned periodically", err)

    @property
    def watches_files(self) -> bool:
        return self._inotify is not None

    def install_signal_wakeup(self) -> None:
        """Route signals to the self-pipe so a handler never does real work."""
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)

    def notify(self) -> None:
        """Wake the sleeper (thread-safe; async-signal-safe)."""
        with contextlib.suppress(BlockingIOError):  # full pipe: a wake-up is pending anyway
            os.write(self._write_fd, b"!")

    def watch(self, directories: list[Path]) -> None:
        """Watch these directories for changes. One that does not exist yet (or is removed
        later) is watched once it appears, when any watched directory reports a change:
        list its parent too, so that its mkdir is such a change."""
        if self._inotify is None:
            return
        import inotify_simple

        f = inotify_simple.flags
        mask = f.CREATE | f.DELETE | f.MOVED_TO | f.MOVED_FROM | f.CLOSE_WRITE | f.ATTRIB | f.MODIFY
        for directory in directories:
            key = str(directory)
            self._wanted.setdefault(key, directory)
            if key in self._watched or not directory.is_dir():
                continue
            try:
                self._wds[self._inotify.add_watch(key, mask)] = key
                self._watched.add(key)
            except OSError as err:
                log.warning("cannot watch %s: %s", directory, err.strerror)

    def _arm(self, deadline: datetime) -> None:
        assert self._libc is not None
        ts = deadline.timestamp()
        sec = int(ts)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, int((ts - sec) * 1e9)))
        flags = _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET
        if self._libc.timerfd_settime(self._timer_fd, flags, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def wait(self, deadline: datetime) -> set[str]:
        """Sleep until `deadline` (aware) or an event. Reasons: timer, clock, notify, files."""
        fds = [self._read_fd]
        timeout: float | None
        if self._timer_fd >= 0:
            self._arm(deadline)
            fds.append(self._timer_fd)
            timeout = None
        else:
            delay = (deadline - self._clock.now()).total_seconds()
            timeout = max(0.0, min(delay, FALLBACK_MAX_SLEEP))
        if self._inotify is not None:
            fds.append(self._inotify.fileno())
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            ready = []
        reasons: set[str] = set()
        if not ready:
            reasons.add("timer")
        if self._read_fd in ready:
            try:
                while os.read(self._read_fd, 4096):
                    pass
            except BlockingIOError:
                pass
            reasons.add("notify")
        if self._timer_fd >= 0 and self._timer_fd in ready:
            try:
                os.read(self._timer_fd, 8)
                reasons.add("timer")
            except OSError as err:
                if err.errno == errno.ECANCELED:
                    reasons.add("clock")  # the wall clock was set: cron's clock-change rules
                elif err.errno != errno.EAGAIN:
                    raise
        if self._inotify is not None and self._inotify.fileno() in ready:
            import inotify_simple

            for event in self._inotify.read(timeout=0):
                if event.mask & inotify_simple.flags.IGNORED:  # its directory went away
                    self._watched.discard(self._wds.pop(event.wd, ""))
            self.watch(list(self._wanted.values()))  # a directory made since: watch it
            reasons.add("files")
        return reasons

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd, self._timer_fd):
            if fd >= 0:
                os.close(fd)
        if self._inotify is not None:
            self._inotify.close()
