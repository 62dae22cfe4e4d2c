"""lifecycle starts and finishes a job from a RunContext and a callback, no Daemon: the
mail is sent before the callback hands the run back, and finishing records the run
and its job log with the context's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from smartcron.run.executor import RunResult
from smartcron.run.lifecycle import finish_job, start_job
from smartcron.run.runcontext import RunContext, RunningJob, RunSettings
from smartcron.store.history import HistoryStore, RunStatus
from smartcron.testing import FakeClock, FakeOutcome, FakeRunner, RecordingMailer
from tests.harness import make_daemon

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def test_a_job_starts_and_finishes_through_a_run_context_and_its_callback(tmp_path: Path):
    (job,) = make_daemon(tmp_path, "0 1 * * * echo hi\n", START)[0].db.jobs
    clock = FakeClock(START)
    mailer = RecordingMailer()
    store = HistoryStore.open(tmp_path / "history.db", clock=clock)
    runner = FakeRunner({job.id: FakeOutcome(exit_code=3, output=b"hi\n")}, auto=False)
    settings = RunSettings(hostname="box", job_log_dir=tmp_path / "logs")
    run = RunContext(runner=runner, mailer=mailer, history=store, clock=clock, settings=settings)
    done: list[tuple[RunningJob, RunResult, int]] = []

    def on_done(running: RunningJob, result: RunResult) -> None:
        done.append((running, result, len(mailer.sent)))

    running = start_job(run, job, START, "cron", done=on_done)
    assert running is not None and running.run_id is not None
    assert [request.command for request in runner.requests] == ["echo hi"]
    assert done == []
    runner.finish(job.id)
    ((back, result, mails),) = done
    assert back is running and mails == 1  # the mail went before the run was handed back
    assert b"box" in mailer.sent[0].message  # the context's hostname, in the subject
    assert finish_job(run, running, result) is RunStatus.FAILED
    (row,) = store.runs()
    assert (str(row.status), row.end.exit_code) == ("failed", 3)
    assert (tmp_path / "logs" / f"{job.id}.log").read_bytes().endswith(b"hi\n")
