"""The optional sandbox: the command is wrapped when the tool exists, refused clearly when not."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest

from smartcron import config as configuration
from smartcron.daemon.service import SANDBOX_PREFIX, sandbox_prefix
from smartcron.errors import SmartcronError
from smartcron.run.executor import ProcessRunner, RunRequest


def base_config(tmp_path, sandbox: str) -> configuration.Config:
    path = tmp_path / "smartcron.toml"
    path.write_text(f'sandbox = "{sandbox}"\nstate_dir = "state"\n')
    return configuration.read_config(path, user_mode=False)


def test_no_sandbox_wraps_nothing(tmp_path):
    assert sandbox_prefix(base_config(tmp_path, "none")) == ()


@pytest.mark.parametrize("tool", ["systemd-run", "firejail"])
def test_a_configured_sandbox_that_is_not_installed_is_a_clear_error_at_start(
    tmp_path, monkeypatch, tool
):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(SmartcronError, match=f"sandbox = '{tool}', but {tool} is not installed"):
        sandbox_prefix(base_config(tmp_path, tool))


@pytest.mark.skipif(shutil.which("firejail") is None, reason="firejail is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="runs the job as root through firejail")
def test_a_job_runs_inside_firejail_when_configured(tmp_path):
    request = RunRequest(
        job_id="sandboxed",
        command='echo "container=$container"; id -u',
        stdin=None,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"},
        user="root",
        uid=0,
        gid=0,
        home=str(tmp_path),
        shell="/bin/sh",
        sandbox=SANDBOX_PREFIX["firejail"],
    )
    result = ProcessRunner().start(request, lambda r: None).wait(60)
    assert result is not None and result.exit_code == 0, result
    assert b"container=firejail" in result.output
    plain = ProcessRunner().start(replace(request, sandbox=()), lambda r: None).wait(60)
    assert plain is not None and b"container=firejail" not in plain.output
