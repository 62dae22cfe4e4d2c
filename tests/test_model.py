"""smartcron.ai.model and smartcron.ai.advisor: refusing a model, guarded inference, advice.

Crafted tiny ONNX graphs (onnx.helper) stand in for trained models where a test needs
a model that returns NaN, fails or scores a known way; the card is then re-signed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartcron.ai.advisor import MemoryStats, Policy, SmartAdvisor
from smartcron.ai.features import FEATURES, RunOutcome
from smartcron.ai.model import LoadedModel, ModelUnavailable, load_model
from smartcron.smart import gate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot
from tests.modelkit import card_profile as profile
from tests.modelkit import graph, install

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 01:00
ROOT = os.geteuid() == 0
N = len(FEATURES)


def load(directory: Path, **options: object) -> LoadedModel | ModelUnavailable:
    return load_model(directory, owner_uid=os.geteuid(), now=NOW, **options)  # type: ignore[arg-type]


def refused(directory: Path, **options: object) -> str:
    result = load(directory, **options)
    assert isinstance(result, ModelUnavailable), "the model should have been refused"
    return result.reason


def test_a_sound_model_is_accepted(tmp_path: Path) -> None:
    assert isinstance(load(install(tmp_path / "m", graph())), LoadedModel)


def test_missing_model_is_refused(tmp_path: Path) -> None:
    assert "missing" in refused(tmp_path / "nowhere")
    d = install(tmp_path / "m", graph())
    (d / "model.onnx").unlink()
    assert "missing" in refused(d)


def test_corrupt_onnx_is_refused(tmp_path: Path) -> None:
    assert "corrupt ONNX" in refused(install(tmp_path / "m", b"\x08\x07not a model" * 50))


def test_corrupt_card_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    (d / "model.json").write_text("{not json")
    assert "corrupt card" in refused(d)


@pytest.mark.parametrize("share", [-0.1, 1.5, "1", True, None])
def test_a_card_with_a_load_share_outside_zero_to_one_is_refused(
    share: object, tmp_path: Path
) -> None:
    assert "load_share" in refused(install(tmp_path / "m", graph(), load_share=share))


def test_the_cards_load_share_is_the_models_and_an_older_card_counts_the_load_whole(
    tmp_path: Path,
) -> None:
    half = load(install(tmp_path / "h", graph(), load_share=0.25))
    older = load(install(tmp_path / "o", graph()))
    assert isinstance(half, LoadedModel) and isinstance(older, LoadedModel)
    assert (half.load_share, older.load_share) == (0.25, 1.0)


def test_stale_model_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph(), created=(NOW - timedelta(days=400)).isoformat())
    assert "stale" in refused(d)
    assert isinstance(load(d, max_age=timedelta(days=500)), LoadedModel)


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    with open(d / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    assert "tampered" in refused(d)


def test_feature_mismatch_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph(), features=list(FEATURES)[:-1])
    assert "feature mismatch" in refused(d)


def test_group_writable_files_are_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    os.chmod(d / "model.onnx", 0o664)
    assert "writable by group or others" in refused(d)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_a_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    os.chown(d / "model.onnx", pwd.getpwnam("nobody").pw_uid, -1)
    assert "owned by uid" in refused(d)


def test_an_oversized_model_is_refused_by_stat_before_reading(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    os.truncate(d / "model.onnx", 2 << 30)  # sparse: 2 GB that take no disk space
    assert "over the" in refused(d)


def test_a_symlinked_model_is_refused(tmp_path: Path) -> None:
    d = install(tmp_path / "m", graph())
    (d / "model.onnx").rename(tmp_path / "elsewhere.onnx")
    (d / "model.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    assert "unreadable" in refused(d)  # O_NOFOLLOW: a link could point anywhere


def test_an_unreadable_model_is_refused(tmp_path: Path) -> None:
    d = install(Path(tempfile.mkdtemp(dir="/tmp")) / "m", graph())
    os.chmod(d.parent, 0o755)
    os.chmod(d / "model.onnx", 0o000)
    try:
        if not ROOT:
            assert "unreadable" in refused(d)
            return
        code = (
            "import sys; from smartcron.ai.model import load_model;"
            f"print(load_model({str(d)!r}, owner_uid=0, max_age=None).reason)"
        )
        try:
            done = subprocess.run(
                [sys.executable, "-c", code], user="nobody", capture_output=True, text=True,
                cwd=Path(__file__).resolve().parents[1], check=False,
            )  # fmt: skip
        except PermissionError:
            pytest.skip("nobody may not run this Python")
        if done.returncode != 0:
            pytest.skip(f"cannot run Python as nobody here: {done.stderr[-200:]}")
        assert "unreadable" in done.stdout
    finally:
        shutil.rmtree(d.parent)


def test_nan_output_is_refused_at_load_or_falls_back_at_inference(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph(p_success="nan")))
    assert isinstance(model, LoadedModel)  # the all-zero probe gives sqrt(0)
    verdict = advise(model, sample_snapshot(NOW, load1=0.5))
    assert verdict.action == "run" and "NaN output" in verdict.reason


def test_an_inference_error_falls_back_to_the_rules(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph(runtime="one-row-only")))
    assert isinstance(model, LoadedModel)
    verdict = advise(model, sample_snapshot(NOW))
    assert verdict.action == "run" and "inference error" in verdict.reason


def test_slow_inference_falls_back_to_the_rules(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph()), latency_bound_s=0.0)
    assert isinstance(model, LoadedModel)
    verdict = advise(model, sample_snapshot(NOW))
    assert verdict.action == "run" and "too slow" in verdict.reason


# ------------------------------------------------------------------ the advisor

SPEC = SmartSpec(window=timedelta(hours=6))
# The first design's constants (a run must end 1.5 runtimes before the deadline; a later
# slot must win by 0.03 plus half the user-state spread), and no bar on a hopeless start
# (the stand-in's P(success) is hour / 24: 0.04 at 01:00; tests/test_hopeless.py): these
# tests check those mechanisms; tests/test_plan.py checks the defaults.
CAUTIOUS = Policy(runtime_factor=1.5, margin=0.03, uncertainty=0.5, hopeless=0.0)


def advise(model: LoadedModel, snap: object, spec: SmartSpec = SPEC) -> gate.Verdict:
    firing = gate.Firing(id=1, job_id="job", nominal=NOW, deadline=NOW + spec.window)  # type: ignore[operator]
    return gate.evaluate(
        firing, spec, snap, NOW, advisor=SmartAdvisor(model, MemoryStats(), CAUTIOUS)
    )  # type: ignore[arg-type]


def test_advisor_defers_to_a_clearly_better_slot_that_leaves_time_to_finish(
    tmp_path: Path,
) -> None:
    model = load(install(tmp_path / "m", graph()))
    assert isinstance(model, LoadedModel)
    verdict = advise(model, sample_snapshot(NOW))
    assert verdict.action == "defer"
    # P(success) = hour/24 grows to the end; the last slot whose run (10m x 1.5 + 5m)
    # ends before the deadline at 07:00 is 06:40, and 06:00 is as good and earlier
    assert verdict.reason.startswith("model: success 0.04 now vs 0.25 at 06:00 (runtime ~10m")
    assert verdict.model is not None and verdict.model["p_success"] == pytest.approx(1 / 24, 1e-3)
    assert verdict.until == NOW + timedelta(minutes=1)  # asked again each minute meanwhile
    firing = gate.Firing(id=1, job_id="job", nominal=NOW, deadline=NOW + SPEC.window)  # type: ignore[operator]
    patient = SmartAdvisor(model, MemoryStats(), replace(CAUTIOUS, recheck=None))
    plain = patient.advise(firing, SPEC, sample_snapshot(NOW), NOW)
    assert plain.action == "defer" and plain.until == NOW + timedelta(hours=5)


def test_advisor_runs_now_and_reports_its_outputs_when_no_slot_is_clearly_better(
    tmp_path: Path,
) -> None:
    model = load(install(tmp_path / "m", graph()))
    assert isinstance(model, LoadedModel)
    short = SmartSpec(window=timedelta(minutes=40))  # 01:00-01:40: no slot gains 0.05
    verdict = advise(model, sample_snapshot(NOW), short)
    assert verdict.action == "run" and verdict.until is None
    assert verdict.model is not None and "runtime_s" in verdict.model


def test_advisor_never_defers_past_the_deadline_nor_when_rules_defer(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph()))
    assert isinstance(model, LoadedModel)
    on_battery = sample_snapshot(NOW, on_ac=False, charging=False)
    verdict = advise(model, on_battery, SmartSpec(window=timedelta(hours=6), ac=True))
    assert verdict.reason == "on battery (ac=yes)"  # the rules answer; the model is not asked


def test_advisor_ignores_outcomes_after_the_decision_instant(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph()))
    assert isinstance(model, LoadedModel)
    past, future = MemoryStats(), MemoryStats()
    for stats in (past, future):
        stats.add("job", RunOutcome(ended=NOW - timedelta(hours=1), ok=True, runtime_s=60))
    future.add("job", RunOutcome(ended=NOW, ok=False, runtime_s=9999))  # not strictly before
    future.add("job", RunOutcome(ended=NOW + timedelta(hours=1), ok=False, runtime_s=9999))
    assert past.stats("job", NOW) == future.stats("job", NOW)
    firing = gate.Firing(id=1, job_id="job", nominal=NOW, deadline=NOW + SPEC.window)  # type: ignore[operator]
    snap = sample_snapshot(NOW)
    a = SmartAdvisor(model, past, Policy()).advise(firing, SPEC, snap, NOW)
    b = SmartAdvisor(model, future, Policy()).advise(firing, SPEC, snap, NOW)
    assert a == b


# ------------------------------------------------------------------ forecasts (card profile)


def test_a_card_profile_is_loaded_and_a_bad_one_refused(tmp_path: Path) -> None:
    model = load(install(tmp_path / "m", graph(), profile=profile()))
    assert isinstance(model, LoadedModel) and model.profile is not None
    assert model.profile.level("load1", NOW, UTC) == 6.0  # 01:00: the spike minute
    assert isinstance(load(install(tmp_path / "old", graph())), LoadedModel)  # no profile: ok
    bad = profile()
    bad["minute_of_hour"]["load1"] = [0.0] * 59
    assert "profile" in refused(install(tmp_path / "bad", graph(), profile=bad))


def test_advisor_forecasts_the_spike_away_and_defers_past_it(tmp_path: Path) -> None:
    """At the :00 spike (load1 6 = the usual 1 + 5 for that minute), the slots after it
    are forecast at load1 1: the frozen forecast saw no gain, the profile does."""
    spiky = sample_snapshot(NOW, load1=6.0)
    window = SmartSpec(window=timedelta(minutes=30))  # slots every 2 minutes
    nobody = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}  # interference aside
    with_profile = load(install(tmp_path / "p", graph("load"), profile=profile(), active=nobody))
    frozen = load(install(tmp_path / "f", graph("load")))
    assert isinstance(with_profile, LoadedModel) and isinstance(frozen, LoadedModel)
    assert advise(frozen, spiky, window).action == "run"
    verdict = advise(with_profile, spiky, window)
    assert verdict.action == "defer" and verdict.reason.endswith(
        "at 01:02 (runtime ~10m, user active 0.00 vs 0.00, cost 0.60 vs 0.10)"
    )
    assert verdict.model is not None and verdict.model["p_success"] == pytest.approx(0.4)
    assert verdict.model["best_p_success"] == pytest.approx(0.9, abs=1e-6)
    # the slot leaves 1.5 x the predicted runtime (10m) before the deadline: none does here
    short = SmartSpec(window=timedelta(minutes=15))
    assert advise(with_profile, spiky, short).action == "run"


def test_a_deferred_firing_runs_as_soon_as_now_is_the_cheapest(tmp_path: Path) -> None:
    """Deferred at the 01:00 spike to 01:05, it is planned again each minute: still
    spiking at 01:01 it waits (for a later slot now: the spike is forecast to decay from
    01:01); the spike gone at 01:02, it runs then. A new advisor (a restarted daemon)
    plans the same way."""
    nobody = {"idle_below_s": 60, "by_hour_of_week": [0.0] * 168}
    model = load(install(tmp_path / "m", graph("load"), profile=profile(), active=nobody))
    assert isinstance(model, LoadedModel)
    hour = SmartSpec(window=timedelta(hours=1))  # slots every 5 minutes
    firing = gate.Firing(id=1, job_id="job", nominal=NOW, deadline=NOW + timedelta(hours=1))
    advisor = SmartAdvisor(model, MemoryStats(), CAUTIOUS)

    def at(minute: int, load1: float, who: SmartAdvisor = advisor) -> gate.Verdict:
        now = NOW + timedelta(minutes=minute)
        return gate.evaluate(firing, hour, sample_snapshot(now, load1=load1), now, advisor=who)  # type: ignore[arg-type]

    first = at(0, 6.0)
    assert first.action == "defer" and " at 01:05 " in first.reason
    waiting = at(1, 6.0)
    assert waiting.action == "defer" and waiting.until == NOW + timedelta(minutes=2)
    assert waiting.reason.startswith("model: success 0.40 now vs 0.90 at 01:33")
    assert waiting.model is not None and waiting.model["p_success"] == pytest.approx(0.4)
    early = at(2, 0.5)
    assert early.action == "run"
    assert early.reason.startswith("constraints hold (model: success 0.95 now")
    assert early.model is not None and early.model["cost_now"] == pytest.approx(0.05, abs=1e-3)
    again = at(3, 6.0, SmartAdvisor(model, MemoryStats(), CAUTIOUS))  # load 6 again at 01:03
    assert again.action == "defer" and again.reason.startswith("model: success 0.40 now vs")


def test_an_active_user_is_waited_for_and_the_job_runs_when_they_step_away(
    tmp_path: Path,
) -> None:
    """P(success) grows with idle time; the user at the keyboard now (80 % of this hour
    active, departures last 5 minutes). Waiting for them to step away (P 0.83 within the
    45 minutes that leave time to finish) beats every fixed slot; the firing waits while
    they type and runs the minute they are away."""
    busy = {"idle_below_s": 60, "by_hour_of_week": [0.8] * 168}
    model = load(install(tmp_path / "m", graph("idle"), profile=profile(), active=busy))
    assert isinstance(model, LoadedModel)
    hour = SmartSpec(window=timedelta(hours=1))
    firing = gate.Firing(id=1, job_id="job", nominal=NOW, deadline=NOW + timedelta(hours=1))
    advisor = SmartAdvisor(model, MemoryStats(), CAUTIOUS)

    def at(minute: int, idle: float, who: SmartAdvisor = advisor) -> gate.Verdict:
        now = NOW + timedelta(minutes=minute)
        snap = sample_snapshot(now, idle_seconds=idle)
        return gate.evaluate(firing, hour, snap, now, advisor=who)  # type: ignore[arg-type]

    first = at(0, 10.0)
    assert first.action == "defer"
    assert first.reason.startswith("model: success 0.24 now vs 0.58 when the user steps away,")
    assert "by 01:45 (runtime ~10m, user active 0.87 vs 0.59, cost 1.11 vs 0.67)" in first.reason
    assert "when the user steps away" in at(1, 5.0).reason
    blip = at(2, 61.0)  # away for a minute: not gone yet, so not worth starting
    assert blip.action == "defer"
    gone = at(3, 600.0)  # away for 10 minutes: log1p(600) / 10 = 0.64
    assert gone.action == "run" and gone.reason.startswith("constraints hold (model: success 0.64")
    patient = SmartAdvisor(model, MemoryStats(), replace(CAUTIOUS, recheck=None))  # no re-checks:
    assert "steps away" not in at(0, 10.0, patient).reason  # waiting for the user is no plan


def test_a_departure_that_persists_is_forecast_to_last(tmp_path: Path) -> None:
    """load1 6 at 01:05 (usual: 1) with a 10-hour persistence stays ~6: no gain, no defer."""
    later = NOW + timedelta(minutes=5)
    model = load(install(tmp_path / "m", graph("load"), profile=profile(tau=600.0)))
    assert isinstance(model, LoadedModel)
    firing = gate.Firing(id=1, job_id="job", nominal=later, deadline=later + timedelta(hours=1))
    verdict = SmartAdvisor(model, MemoryStats(), CAUTIOUS).advise(
        firing, SPEC, sample_snapshot(later, load1=6.0), later
    )
    assert verdict.action == "run"


def test_slot_spacing_follows_the_window() -> None:
    pol = Policy()
    assert pol.step_for(timedelta(hours=6)) == timedelta(minutes=10)
    assert pol.step_for(timedelta(minutes=30)) == timedelta(minutes=2)
    assert pol.step_for(timedelta(minutes=10)) == timedelta(minutes=1)
