"""The fleet benchmark needs PostgreSQL's binaries (tests/pgkit.py); CI installs them, a
developer's machine may not have them: its smoke run (tests/test_benchmarks_smoke.py)
is then skipped with the reason, not an error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import unittest

import pytest

from benchmarks import fleet
from tests import pgkit

NOWHERE = "/nonexistent-postgresql/*/bin"


def test_without_postgresql_the_fleet_benchmark_raises_skip_with_the_reason(monkeypatch):
    monkeypatch.setattr(pgkit, "BIN_GLOB", NOWHERE)
    assert fleet.problem() == f"fleet: {pgkit.MISSING}"
    with pytest.raises(unittest.SkipTest, match=r"apt-get install postgresql"):
        fleet.run(fleet.TINY)


def test_the_smoke_run_of_the_fleet_benchmark_is_skipped_where_postgresql_is_missing():
    # The smoke test itself, in a pytest of its own whose pgkit finds no binaries.
    code = textwrap.dedent(f"""
        import sys, pytest
        from tests import pgkit
        pgkit.BIN_GLOB = {NOWHERE!r}
        sys.exit(pytest.main(["tests/test_benchmarks_smoke.py", "-k", "runs_tiny and fleet",
                              "-rs", "-q", "-p", "no:cacheprovider"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 skipped" in done.stdout and "error" not in done.stdout.lower()
    assert f"fleet: {pgkit.MISSING}" in done.stdout
