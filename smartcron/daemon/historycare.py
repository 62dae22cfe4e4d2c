"""The history store's care thread: maintenance each minute, off the main loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from smartcron.daemon.statusfile import history_document
from smartcron.store.history import HistoryStore

__all__ = ["HistoryCare"]

log = logging.getLogger("smartcron")


class HistoryCare:
    """A timer thread for the history store: each minute, `maintain()` (an unavailable
    database tried again, a quick_check hourly), and the status file republished (by the
    main loop, woken with a forced reload: `on_change`) when whether history is recorded
    changed."""

    every = 60.0

    def __init__(self, history: HistoryStore, on_change: Callable[[], None]) -> None:
        self.history = history
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="history-care", daemon=True)
        self._shown = self._state()

    def _state(self) -> tuple[object, ...]:
        doc = history_document(self.history) or {}
        return doc.get("available"), doc.get("reason"), len(doc.get("moved_aside") or ())  # type: ignore[arg-type]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.history.maintain()
            except Exception:  # never let the care thread die on a bug
                log.exception("history: maintenance failed")
            state = self._state()
            if state != self._shown:
                self._shown = state
                self.on_change()
