"""Job requests as cron makes them, and running one to its end (runner tests)."""

from __future__ import annotations

import os

from smartcron.run.executor import RunRequest, RunResult
from smartcron.run.jobenv import PasswdEntry, job_environment, resolve_user
from smartcron.run.runapi import Runner


def request(command: str, pw: PasswdEntry | None = None, **changes: object) -> RunRequest:
    """A request as cron would make it for `pw` (default: whoever runs the tests)."""
    pw = pw or resolve_user_self()
    env = job_environment([], pw)
    fields: dict[str, object] = dict(
        job_id="job", command=command, stdin=None, env=env, user=pw.name, uid=pw.uid,
        gid=pw.gid, home=env["HOME"], shell=env["SHELL"],
    )  # fmt: skip
    fields.update(changes)
    return RunRequest(**fields)  # type: ignore[arg-type]


def resolve_user_self() -> PasswdEntry:
    import pwd

    found = resolve_user(pwd.getpwuid(os.geteuid()).pw_name)
    assert found is not None
    return found


def run(runner: Runner, req: RunRequest, timeout: float = 20) -> RunResult:
    result = runner.start(req, lambda r: None).wait(timeout)
    assert result is not None, "the job did not finish"
    return result
