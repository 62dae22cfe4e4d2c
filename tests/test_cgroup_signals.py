"""A stop or timeout signals each of a job's processes once (smartcron.run.cgroup,
collector._signal): killpg reaches the job's process group, and the cgroup sweep only
those that left it. A shell that got SIGTERM twice ran its `trap ... TERM` twice."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from smartcron.run import cgroup
from smartcron.run.cgroup import JobCgroup


def test_the_cgroup_sweep_skips_the_process_group_killpg_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_group = subprocess.Popen(["sleep", "60"], start_new_session=True)
    left = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a setsid grandchild
    try:
        (tmp_path / "cgroup.procs").write_text(f"{in_group.pid}\n{left.pid}\n")
        group = JobCgroup(tmp_path, kill_file=False)
        sent: list[tuple[int, int]] = []
        # the module's os only: the real os.kill still ends the sleeps below
        recording = SimpleNamespace(
            getpgid=os.getpgid, kill=lambda pid, sig: sent.append((pid, sig))
        )
        monkeypatch.setattr(cgroup, "os", recording)
        group.signal_all(signal.SIGTERM, but_group=os.getpgid(in_group.pid))
        assert sent == [(left.pid, signal.SIGTERM)]
        sent.clear()
        group.signal_all(signal.SIGTERM)  # no group named: every process in it
        assert sent == [(in_group.pid, signal.SIGTERM), (left.pid, signal.SIGTERM)]
        monkeypatch.undo()
        group.close()
    finally:
        for proc in (in_group, left):
            proc.kill()
            proc.wait()
