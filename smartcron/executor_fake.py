"""Moved to smartcron.testing (issue 12): the old import path stays for now."""

from smartcron.testing import FakeOutcome, FakeRunner, Responder

__all__ = ["FakeOutcome", "FakeRunner", "Responder"]
