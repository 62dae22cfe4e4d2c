"""Exploration (smartcron.smart.explore): random starts inside the window while a job learns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcron.smart.explore import Explorer, ExploreSettings, share
from smartcron.smart.gate import Firing, Verdict, constraint_failures, evaluate
from smartcron.smart.smartspec import SmartSpec
from smartcron.testing import sample_snapshot

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Record:
    off_nominal_runs: int = 0
    mean_runtime_s: float | None = None


class Records:
    """A stats reader with a fixed record per job (and the instants it was asked at)."""

    def __init__(self, off: int = 0, runtime_s: float | None = None) -> None:
        self.record = Record(off, runtime_s)
        self.asked: list[datetime] = []

    def stats(self, job_id: str, before: datetime) -> Record:
        self.asked.append(before)
        return self.record


class Inner:
    """An advisor that always defers by 5 minutes (to see when it is asked)."""

    def __init__(self) -> None:
        self.calls = 0

    def advise(self, firing, spec, snap, now):  # type: ignore[no-untyped-def]
        self.calls += 1
        return Verdict(action="defer", until=now + 5 * MIN, reason="model: later")


def firing(nominal: datetime = T0, window: timedelta = timedelta(hours=2), **kw) -> Firing:  # type: ignore[no-untyped-def]
    return Firing(
        id=1, job_id=kw.pop("job", "job"), nominal=nominal, deadline=nominal + window, **kw
    )


def first_start(
    explorer: Explorer, f: Firing, spec: SmartSpec, busy: set[int]
) -> tuple[datetime, Verdict]:
    """Evaluate minute by minute from the nominal time, as the machine would; `busy`:
    minute offsets where load is high. The first `run` verdict and its minute."""
    now = f.nominal
    while True:
        minute = int((now - f.nominal).total_seconds() // 60)
        snap = sample_snapshot(now, load1=5.0 if minute in busy else 0.2)
        verdict = evaluate(f, spec, snap, now, advisor=explorer)
        if verdict.action == "run":
            return now, verdict
        assert verdict.action == "defer" and verdict.until is not None
        now = max(now + MIN, verdict.until) if verdict.until <= now else verdict.until


@settings(max_examples=150, deadline=None)
@given(
    window_min=st.integers(1, 600),
    busy=st.sets(st.integers(0, 700), max_size=200),
    runtime=st.one_of(st.none(), st.floats(0, 20_000)),
    day=st.integers(0, 1000),
    retry=st.integers(0, 2),
)
def test_an_explored_firing_starts_inside_its_window_and_never_against_a_constraint(
    window_min, busy, runtime, day, retry
):
    spec = SmartSpec(window=timedelta(minutes=window_min), max_load=1.0, retry=retry)
    f = firing(T0 + timedelta(days=day), timedelta(minutes=window_min))
    explorer = Explorer(None, Records(0, runtime))
    at, _verdict = first_start(explorer, f, spec, busy)
    assert f.nominal <= at <= f.deadline
    minute = int((at - f.nominal).total_seconds() // 60)
    snap = sample_snapshot(at, load1=5.0 if minute in busy else 0.2)
    if at < f.deadline:  # before the deadline: only when the constraints hold
        assert constraint_failures(spec, snap) == ()
    drawn = explorer.draw(f, spec)
    assert drawn.explored and at >= drawn.target  # never before its drawn minute


def test_the_drawn_minutes_are_uniform_over_the_window_less_the_runtime():
    settings = ExploreSettings(runtime_factor=1.5)  # room for 1.5 runtimes after the start
    explorer = Explorer(None, Records(0, runtime_s=30 * 60), settings)  # 45 min of room
    spec = SmartSpec(window=timedelta(hours=4))
    offsets = Counter()
    for day in range(3000):
        f = firing(T0 + timedelta(days=day), timedelta(hours=4))
        drawn = explorer.draw(f, spec)
        offsets[int((drawn.target - f.nominal).total_seconds() // 60) // 39] += 1
        assert drawn.candidates == 4 * 60 - 45  # minutes 0 .. 194
    assert max(offsets) == 4  # 195 minutes in five bins of 39
    assert all(500 <= offsets[b] <= 700 for b in range(5)), offsets


def test_explored_decisions_record_their_propensity():
    explorer = Explorer(None, Records(0))
    spec = SmartSpec(window=timedelta(minutes=100))
    f = firing(window=timedelta(minutes=100))
    at, verdict = first_start(explorer, f, spec, set())
    assert verdict.model == {
        "explored": 1.0,
        "propensity": 0.01,  # share 1 (learning) x 1 / 100 minutes
        "uniform": 0.01,
        "explore_share": 1.0,
    }
    assert "explored: a random start at" in verdict.reason
    assert "learning period: 0 of 20 runs" in verdict.reason
    waiting = evaluate(f, spec, sample_snapshot(f.nominal), f.nominal, advisor=explorer)
    if at > f.nominal:
        assert waiting.action == "defer" and waiting.until == at
        assert waiting.reason.startswith("explored: waiting for")
        assert waiting.model is not None and waiting.model["propensity"] == 0.01


def test_the_share_is_one_while_learning_then_decays_to_its_floor_if_retraining():
    s = ExploreSettings(after_learning=True)
    assert [share(n, s) for n in (0, 19)] == [1.0, 1.0]
    assert share(20, s) == 0.05 and share(40, s) == 0.025 and share(50, s) == 0.02
    assert share(10_000, s) == s.floor == 0.01
    # A model in use and no retraining (the default): nothing would learn from a later
    # exploration, so none; before the first model, the model to come will.
    s = ExploreSettings()
    assert [share(n, s, model_in_use=True) for n in (0, 19, 20, 10_000)] == [1, 1, 0, 0]
    assert share(20, s) == 0.05 and share(10_000, s) == 0.01
    retraining = ExploreSettings(after_learning=True)
    assert share(20, retraining, model_in_use=True) == 0.05


class Watch(Inner):
    """The daemon's ModelWatch as the explorer sees it: a mode, smart while a model is in use."""

    mode = "legacy"


def test_a_job_past_its_learning_period_is_explored_only_until_a_model_is_in_use():
    spec = SmartSpec(window=timedelta(hours=1))
    watch = Watch()
    explorer = Explorer(watch, Records(off=20))  # no retraining
    explored = {"legacy": 0, "smart": 0}
    for mode in explored:
        watch.mode = mode
        for day in range(2000):
            f = firing(T0 + timedelta(days=day, hours=len(mode)), timedelta(hours=1))
            verdict = explorer.advise(f, spec, sample_snapshot(f.nominal), f.nominal)
            explored[mode] += verdict is not None and "explored" in verdict.reason
    assert 60 <= explored["legacy"] <= 140 and explored["smart"] == 0  # 5 % of 2000 = 100
    assert Explorer(None, Records(off=20)).model_in_use() is False
    assert Explorer(Inner(), Records(off=20)).model_in_use() is True


def test_a_daemon_explores_after_the_learning_period_only_while_it_retrains(tmp_path):
    from smartcron.config import read_config
    from smartcron.daemon.modes import exploring

    history = object()  # read only when a firing is drawn
    for retrain, after in (("off", False), ("weekly", True), ("0 3 * * 0", True)):
        conf = tmp_path / "smartcron.toml"
        conf.write_text(f'mode = "smart"\nretrain = "{retrain}"\n')
        explorer = exploring(read_config(conf, user_mode=True), None, history)
        assert isinstance(explorer, Explorer)
        assert explorer.settings.after_learning is after, retrain


def test_a_mature_job_explores_about_its_share_and_the_rest_goes_to_the_model():
    inner = Inner()
    explorer = Explorer(inner, Records(off=20), ExploreSettings(after_learning=True))  # 5 %
    spec = SmartSpec(window=timedelta(hours=1))
    explored = 0
    for day in range(4000):
        f = firing(T0 + timedelta(days=day), timedelta(hours=1))
        verdict = explorer.advise(f, spec, sample_snapshot(f.nominal), f.nominal)
        assert verdict is not None
        explored += "explored" in verdict.reason
    assert 160 <= explored <= 240  # 5 % of 4000 = 200
    assert inner.calls == 4000 - explored


def test_the_same_firing_draws_the_same_minute_after_a_restart():
    spec = SmartSpec(window=timedelta(hours=6))
    f = firing(window=timedelta(hours=6))
    first = Explorer(None, Records(0)).draw(f, spec)
    again = Explorer(None, Records(0)).draw(f, spec)
    assert first == again
    other_seed = Explorer(None, Records(0), ExploreSettings(seed=1)).draw(f, spec)
    assert other_seed.target != first.target


def test_the_record_is_read_at_the_nominal_time_not_at_each_look():
    records = Records(0)
    explorer = Explorer(None, records)
    spec = SmartSpec(window=timedelta(hours=2))
    f = firing(window=timedelta(hours=2))
    first_start(explorer, f, spec, set())
    assert set(records.asked) == {f.nominal}


def test_explore_off_ai_off_global_off_and_retries_are_not_explored():
    inner = Inner()
    f = firing()
    snap = sample_snapshot(T0)
    cases = [
        (Explorer(inner, Records(0)), SmartSpec(window=timedelta(hours=2), explore=False), f),
        (
            Explorer(inner, Records(0), ExploreSettings(enabled=False)),
            SmartSpec(window=timedelta(hours=2)),
            f,
        ),
        (Explorer(inner, Records(0)), SmartSpec(window=timedelta(hours=2)), firing(attempt=1)),
    ]
    for explorer, spec, fi in cases:
        verdict = explorer.advise(fi, spec, snap, T0)
        assert verdict is not None and verdict.reason == "model: later"
    assert inner.calls == 3
    # ai=off: the gate asks no advisor at all, so neither the model nor exploration
    spec = SmartSpec(window=timedelta(hours=2), ai=False)
    verdict = evaluate(f, spec, snap, T0, advisor=Explorer(inner, Records(0)))
    assert verdict.action == "run" and verdict.reason == "constraints hold"
    # no model (the learning period's rules alone): not explored -> no advice
    assert (
        Explorer(None, Records(0), ExploreSettings(enabled=False)).advise(
            f, SmartSpec(window=timedelta(hours=2)), snap, T0
        )
        is None
    )


def test_a_clock_window_draws_from_its_opening_on():
    f = firing(window=timedelta(hours=8), not_before=T0 + timedelta(hours=3))
    explorer = Explorer(None, Records(0))
    for day in range(200):
        g = Firing(
            id=1,
            job_id="job",
            nominal=f.nominal + timedelta(days=day),
            deadline=f.deadline + timedelta(days=day),
            not_before=f.not_before + timedelta(days=day),
        )  # type: ignore[operator]
        drawn = explorer.draw(g, SmartSpec(window=timedelta(hours=8)))
        assert g.not_before <= drawn.target < g.deadline  # type: ignore[operator]
        assert drawn.candidates == 5 * 60
