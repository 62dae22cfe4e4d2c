"""The Runner contract, one suite run against every implementation: ProcessRunner (real
processes) and testing.FakeRunner. Then what only the fake promises."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from smartcron.run.executor import ProcessRunner, RunRequest, RunResult
from smartcron.run.runapi import Runner
from smartcron.testing import FakeClock, FakeOutcome, FakeRunner
from tests.runkit import request, run


def emulate(req: RunRequest) -> FakeOutcome:
    """What the fake answers to the contract suite's commands."""
    if req.command.startswith("exit "):
        return FakeOutcome(exit_code=int(req.command[5:]))
    if req.command.startswith("echo "):
        return FakeOutcome(output=req.command[5:].encode() + b"\n")
    if req.command == "cat":
        return FakeOutcome(output=(req.stdin or "").encode())
    return FakeOutcome()


@pytest.fixture(params=["process", "fake"])
def make_runner(request: pytest.FixtureRequest) -> Callable[..., Runner]:
    """Builds the runner under test; `blocking` makes its jobs run until terminated."""

    def make(*, blocking: bool = False) -> Runner:
        if request.param == "process":
            return ProcessRunner(grace_s=1.0, linger_s=0.5)
        return FakeRunner(emulate, auto=not blocking)

    return make


def long_job(runner: Runner) -> RunRequest:
    return request("sleep 30" if isinstance(runner, ProcessRunner) else "wait")


def test_contract_exit_code_is_reported(make_runner):
    result = run(make_runner(), request("exit 3"))
    assert (result.exit_code, result.signal, result.ok) == (3, None, False)


def test_contract_output_is_captured(make_runner):
    result = run(make_runner(), request("echo hello"))
    assert (result.output, result.output_size, result.ok) == (b"hello\n", 6, True)


def test_contract_stdin_text_reaches_the_job(make_runner):
    result = run(make_runner(), request("cat", stdin="line 1\nline 2\n"))
    assert result.output == b"line 1\nline 2\n"


def test_contract_on_done_runs_once_on_another_thread_before_wait_returns(make_runner):
    calls: list[tuple[RunResult, threading.Thread]] = []
    handle = make_runner().start(
        request("echo x"), lambda r: calls.append((r, threading.current_thread()))
    )
    result = handle.wait(20)
    assert result is not None and handle.pid is not None
    assert [c[0] for c in calls] == [result]
    assert calls[0][1] is not threading.current_thread()


def test_contract_terminate_stops_a_running_job(make_runner):
    runner = make_runner(blocking=True)
    handle = runner.start(long_job(runner), lambda r: None)
    assert handle.wait(0.2) is None
    handle.terminate()
    result = handle.wait(20)
    assert result is not None
    assert (result.interrupted, result.timed_out, result.signal) == (True, False, signal.SIGTERM)
    assert result.exit_code is None


def test_contract_times_are_aware_utc_and_ordered(make_runner):
    result = run(make_runner(), request("exit 0"))
    assert result.started.tzinfo is not None and result.started.utcoffset().total_seconds() == 0
    assert result.started <= result.ended and result.wall_s >= 0


def test_contract_output_is_capped_with_a_note(make_runner):
    runner = make_runner()
    req = request("echo " + "x" * 99, output_cap=10)
    result = run(runner, req)
    assert result.output_size == 100
    assert result.output == b"x" * 10 + b"\n[smartcron: output cut at 10 of 100 bytes]\n"


def test_fake_records_requests_and_finishes_on_demand():
    clock = FakeClock(datetime(2024, 3, 1, 12, tzinfo=UTC))
    runner = FakeRunner({"a": FakeOutcome(exit_code=2, duration_s=5)}, auto=False, clock=clock)
    seen: list[RunResult] = []
    runner.start(request("x", job_id="a"), seen.append)
    assert runner.running == ["a"] and seen == []
    result = runner.finish("a")
    assert seen == [result] and runner.requests[0].job_id == "a"
    assert (result.exit_code, (result.ended - result.started).total_seconds()) == (2, 5)


def test_fake_times_out_an_outcome_longer_than_the_timeout():
    runner = FakeRunner(lambda req: FakeOutcome(duration_s=60))
    result = run(runner, request("x", timeout=10))
    assert (result.timed_out, result.signal, result.wall_s) == (True, signal.SIGTERM, 10)
