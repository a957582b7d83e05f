"""The tracking domain: a seeded multi-sensor simulator, tracking on the blackboard, and the baseline."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from blackboard import Blackboard, BlackboardError, Status
from controller import Controller, HighestConfidence, NoisyOr
from knowledge_sources import KnowledgeSource
from knowledge_sources.tracking import (
    CONFIRM,
    GATE,
    EstimatedTrack,
    Reading,
    Scenario,
    ScenarioError,
    ScenarioFileError,
    Sensor,
    TrackingError,
    TrackingResult,
    baseline,
    batch_failure,
    batch_problems,
    batch_status,
    conflict_strategies,
    evaluate,
    generate_scenarios,
    load,
    read_scenario,
    resume,
    simulate,
    solve,
    sources,
    spaces,
    time_order,
)
from knowledge_sources.tracking._sources import PRUNE

JSON_KEYS = {
    "scenario", "seed", "status", "rmse", "tracked_share", "false_tracks", "tracks", "targets",
    "baseline_rmse", "baseline_tracked_share", "baseline_false_tracks", "seconds", "activations",
    "run_id", "db",
}


def crossing(seed: int = 3, steps: int = 30) -> Scenario:
    """Two targets whose straight paths cross in the middle of the run, three sensors, clutter."""
    rng = random.Random(seed)
    sensors = (Sensor(1.0, 0.8, 2.0), Sensor(1.5, 0.75, 3.0), Sensor(0.8, 0.7, 2.0))
    truth = (
        tuple((t, 20.0 + 2.0 * t, 35.0 + 1.0 * t) for t in range(steps)),
        tuple((t, 20.0 + 2.0 * t, 64.0 - 1.0 * t) for t in range(steps)),
    )
    readings = []
    for t in range(steps):
        for s, sensor in enumerate(sensors):
            seen = [(x + rng.gauss(0, sensor.sigma), y + rng.gauss(0, sensor.sigma))
                    for target in truth for (_, x, y) in target[t:t + 1] if rng.random() < sensor.p_detect]
            seen += [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(int(sensor.clutter))]
            rng.shuffle(seen)
            readings += [Reading(t, s, round(x, 3), round(y, 3)) for x, y in seen]
    return Scenario("crossing", seed, steps, (100.0, 100.0), sensors, truth, tuple(readings))


# ---------------------------------------------------------------- simulator
def test_simulator_is_deterministic_per_seed() -> None:
    """The same seed gives the same scenario; another seed another one."""
    first, again, other = simulate(7), simulate(7), simulate(8)
    assert first == again
    assert first != other
    assert (first.targets, first.steps, len(first.sensors)) == (4, 30, 3)
    assert all(0 <= r.t < 30 and 0 <= r.sensor < 3 for r in first.readings)
    assert all(len(target) >= 10 for target in first.truth)  # each lives at least a third of the run
    assert all(0 <= x <= 100 and 0 <= y <= 100 for target in first.truth for _, x, y in target)


def test_simulated_motion_is_near_constant_velocity() -> None:
    """Targets keep their velocity up to the small process noise."""
    scenario = simulate(3, process_noise=0.05)
    for target in scenario.truth:
        steps = [(b[1] - a[1], b[2] - a[2]) for a, b in zip(target, target[1:])]
        changes = [math.hypot(u[0] - v[0], u[1] - v[1]) for u, v in zip(steps, steps[1:])]
        assert max(changes) < 0.5


def test_scenario_round_trips_through_json(tmp_path: Path) -> None:
    """to_json/from_json (as a dict and as text) and save/read_scenario give the scenario back."""
    scenario = simulate(11, targets=3, steps=20, sensors=2)
    assert Scenario.from_json(scenario.to_json()) == scenario
    assert Scenario.from_json(json.dumps(scenario.to_json())) == scenario
    path = scenario.save(tmp_path / "one.json")
    assert read_scenario(path) == scenario
    assert json.loads(path.read_text())["format"] == "blackboard-tracking-scenario"


def test_given_sensors_are_used() -> None:
    """Sensors given explicitly are kept; a perfect sensor reports each target once a step, nothing else."""
    given = [Sensor(0.5, 1.0, 0.0), {"sigma": 2.0, "p_detect": 0.5, "clutter": 1.0}]
    scenario = simulate(5, targets=2, steps=12, sensors=given)
    assert scenario.sensors == (Sensor(0.5, 1.0, 0.0), Sensor(2.0, 0.5, 1.0))
    perfect = [r for r in scenario.readings if r.sensor == 0]
    assert len(perfect) == sum(len(target) for target in scenario.truth)


def test_generate_scenarios_writes_a_directory_for_batch_runs(tmp_path: Path) -> None:
    """generate_scenarios writes one file per seed; batch_problems lists them in order."""
    paths = generate_scenarios(tmp_path / "scenarios", 3, seed=40, steps=15)
    assert [p.name for p in paths] == ["scenario-0040.json", "scenario-0041.json", "scenario-0042.json"]
    assert read_scenario(paths[1]) == simulate(41, steps=15, name="scenario-0041")
    assert batch_problems(tmp_path / "scenarios") == [(p.name, str(p)) for p in paths]
    line = batch_failure("x.json", "invalid", "broken")
    assert line["status"] == "invalid" and line["scenario"] == "x.json"
    with pytest.raises(ScenarioFileError):
        batch_problems(tmp_path / "missing")


# ------------------------------------------------------------------ solving
def test_solve_in_memory_end_to_end() -> None:
    """A seeded scenario is tracked in memory; the result has the figures and prints one JSON object."""
    result = solve(simulate(1))
    assert isinstance(result, TrackingResult)
    assert result.status == "tracked" and result.tracked
    assert result.path == ":memory:" and isinstance(result.run_id, int)
    assert result.activations > 0 and result.seconds > 0
    assert result.tracks and all(isinstance(t, EstimatedTrack) for t in result.tracks)
    assert result.metrics.targets == 4
    assert result.metrics.tracked_share == 1.0
    data = result.to_json()
    assert JSON_KEYS <= set(data)
    assert data["scenario"] == "seed-1" and data["db"] == ":memory:"
    assert json.loads(json.dumps(data)) == data
    assert batch_status(result) == "solved"
    assert "baseline" in str(result)


def test_solve_on_a_file_and_query_tracks_with_sql(tmp_path: Path) -> None:
    """Solved from a scenario file into a DuckDB file, the run reopens and SQL finds the tracks reported."""
    scenario = simulate(2)
    source = scenario.save(tmp_path / "scenario.json")
    db = tmp_path / "tracking.duckdb"
    result = solve(source, db)
    assert result.status == "tracked" and result.path == str(db)
    with Blackboard(db, run=result.run_id) as bb:
        assert bb.problem["domain"] == "tracking"
        assert Scenario.from_json(bb.problem["scenario"]) == scenario
        rows = bb.sql(
            "SELECT value->>'track' AS track, count(*) AS steps, min(CAST(value->>'t' AS INTEGER)) AS first "
            "FROM entries WHERE space = 'track' AND status = 'active' AND value->>'track' IN "
            "(SELECT key FROM entries WHERE space = 'target' AND status = 'active') GROUP BY ALL ORDER BY track"
        ).to_pylist()
        assert sorted(r["track"] for r in rows) == sorted(t.id for t in result.tracks)
        by_id = {t.id: t for t in result.tracks}
        for r in rows:  # a reported track spans its entries, plus one step either side at most
            assert by_id[r["track"]].points[0][0] in (r["first"], r["first"] - 1)
            assert len(by_id[r["track"]].points) >= r["steps"] >= CONFIRM - 1
        (logged,) = bb.events("tracking_result")
        assert logged.details is not None and logged.details["status"] == "tracked"
        assert sorted(logged.details["tracks"]) == sorted(t.id for t in result.tracks)
        readings = bb.sql("SELECT count(*) AS n FROM entries WHERE space = 'reading'").to_pylist()[0]["n"]
        assert readings == len(scenario.readings)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_blackboard_beats_the_one_sensor_baseline(seed: int) -> None:
    """Fusing three sensors tracks at least as many targets as one sensor with nearest neighbour, at well
    under its position error, with fewer false tracks."""
    result = solve(simulate(seed))
    ours, theirs = result.metrics, result.baseline
    assert ours.rmse is not None and theirs.rmse is not None
    assert ours.tracked_share is not None and theirs.tracked_share is not None
    assert ours.tracked_share >= theirs.tracked_share
    assert ours.tracked_share >= 0.75
    assert ours.rmse < 0.6 * theirs.rmse
    assert ours.false_tracks <= 1 and ours.false_tracks < theirs.false_tracks


def test_blackboard_beats_the_baseline_overall() -> None:
    """Over ten seeds the blackboard tracks clearly more targets, at under half the error."""
    results = [solve(simulate(seed)) for seed in range(20, 30)]
    share = sum(r.metrics.tracked_share or 0.0 for r in results) / len(results)
    base_share = sum(r.baseline.tracked_share or 0.0 for r in results) / len(results)
    rmse = sum(r.metrics.rmse or 0.0 for r in results) / len(results)
    base_rmse = sum(r.baseline.rmse or 0.0 for r in results) / len(results)
    assert share >= 0.95 and share >= base_share + 0.1
    assert rmse < 0.5 * base_rmse
    assert sum(r.metrics.false_tracks for r in results) < sum(r.baseline.false_tracks for r in results) / 4


def test_competing_hypotheses_are_resolved_by_conflict_resolution(tmp_path: Path) -> None:
    """Where two targets cross, tracklets, links and tracks competing for one key are decided by the
    controller's strategies (losers superseded, scores logged), and each target keeps its own track."""
    db = tmp_path / "crossing.duckdb"
    scenario = crossing()
    result = solve(scenario, db)
    assert result.metrics.tracked_share == 1.0 and result.metrics.false_tracks == 0
    assert result.metrics.matched >= 0.9 * sum(len(t) for t in scenario.truth)  # no identity switch
    with Blackboard(db, run=result.run_id) as bb:
        strategies: dict[str, set[str]] = {}
        for event in bb.events("superseded"):
            details = event.details or {}
            if "strategy" not in details:
                continue  # superseded by a revision, not by a conflict
            loser = bb.get(event.entry)  # type: ignore[arg-type]
            strategies.setdefault(loser.space, set()).add(details["strategy"])
            assert details["scores"] and details["by"] is not None
            winner = bb.get(details["by"])
            assert winner.key == loser.key and winner.space == loser.space and winner.value != loser.value
        assert strategies["tracklet"] == {"noisy_or"}
        assert strategies["link"] == {"highest_confidence"}
        assert strategies["track"] == {"highest_confidence"}
        # no slot holds two different active claims
        for space in ("tracklet", "link", "track"):
            values: dict[str, str] = {}
            for e in bb.entries(space):
                text = json.dumps(e.value, sort_keys=True)
                assert values.setdefault(e.key, text) == text  # type: ignore[arg-type]
        # agreeing sensors: a tracklet claimed at once by readings of all three sensors, each
        # claim with its sensor's confidence, all standing together
        detection = sorted(sensor.p_detect for sensor in scenario.sensors)
        claims: dict[str, list[float]] = {}
        for e in bb.entries("tracklet"):
            claims.setdefault(e.key, []).append(e.confidence)  # type: ignore[arg-type]
        assert any(sorted(c) == detection for c in claims.values())


def test_false_alarms_are_pruned_by_their_precondition() -> None:
    """Tracklets holding too few of the readings the sensors should give are retracted, the others stay."""
    scenario = simulate(4)
    with Blackboard(spaces=spaces()) as bb:
        load(bb, scenario)
        Controller(bb, sources(), conflict=conflict_strategies(), rating=time_order, concurrency=1).run()
        retracted = [e for e in bb.entries("tracklet", status=Status.RETRACTED) if e.source == "fuse_readings"]
        kept = bb.entries("tracklet")
        assert retracted and kept
        assert all(e.value["hits"] < PRUNE * e.value["expected"] for e in retracted)
        assert all(e.value["hits"] >= PRUNE * e.value["expected"] for e in kept)
        reasons = [ev for ev in bb.events("retracted") if ev.source == "prune_false_alarms"]
        assert len(reasons) == len(retracted)


def test_solving_is_deterministic_and_any_concurrency_tracks() -> None:
    """Two runs of one scenario agree; with the controller's default concurrency it still tracks well."""
    scenario = simulate(6)
    first, second = solve(scenario), solve(scenario)
    assert first.tracks == second.tracks and first.metrics == second.metrics
    wide = solve(scenario, concurrency=16)
    assert wide.status == "tracked"
    assert wide.metrics.tracked_share is not None and wide.metrics.tracked_share >= 0.75


def test_a_budget_leaves_the_run_failed() -> None:
    """A run stopped by a budget is reported failed, not tracked."""
    result = solve(simulate(1), max_activations=50)
    assert result.status == "failed" and not result.tracked
    assert batch_status(result) == "failed"


def test_resume_finishes_a_run_killed_before_it_started(tmp_path: Path) -> None:
    """A run whose readings were committed but which never ran is finished by resume, as solve would."""
    scenario = simulate(3)
    db = tmp_path / "killed.duckdb"
    bb = Blackboard(db, spaces=spaces(), problem={"domain": "tracking", "scenario": scenario.to_json()})
    load(bb, scenario)
    bb.close()
    resumed = resume(db)
    fresh = solve(scenario)
    assert resumed.status == "tracked" and resumed.path == str(db)
    assert resumed.metrics == fresh.metrics and resumed.tracks == fresh.tracks
    again = resume(db)  # nothing left unfinished: the finished run's result, read back
    assert (again.status, again.metrics, again.tracks, again.run_id) == (
        resumed.status, resumed.metrics, resumed.tracks, resumed.run_id)
    with pytest.raises(TrackingError, match="no blackboard file"):
        resume(tmp_path / "missing.duckdb")


# ----------------------------------------------------------------- pieces
def test_sources_and_spaces_are_declared() -> None:
    """Fresh sources each call, every precondition checked against the declared fields."""
    first, second = sources(), sources()
    assert all(isinstance(s, KnowledgeSource) for s in first)
    assert {s.name for s in first} == {s.name for s in second} and first[0] is not second[0]
    assert all(space.fields for space in spaces())
    with Blackboard(spaces=spaces()) as bb:
        controller = Controller(bb, first, conflict=conflict_strategies())
        assert isinstance(controller.strategy("tracklet"), NoisyOr)
        assert isinstance(controller.strategy("track"), HighestConfidence)
        assert isinstance(controller.strategy("link"), HighestConfidence)


def test_time_order_works_step_by_step() -> None:
    """The default rating runs earlier steps first and, within a step, fusion before association."""
    named = {s.name: s for s in sources()}
    with Blackboard(spaces=spaces()) as bb:
        early = bb.post("tracklet", {"t": 3})
        late = bb.post("reading", {"t": 4})
        same = bb.post("reading", {"t": 3})
        assert time_order(named["associate"], (early,)) > time_order(named["fuse_readings"], (late,))
        assert time_order(named["fuse_readings"], (same,)) > time_order(named["associate"], (early,))


def test_load_refuses_a_second_scenario() -> None:
    """A blackboard holds one scenario."""
    with Blackboard() as bb:
        load(bb, simulate(1, steps=5))
        assert set(spaces()[i].name for i in range(6)) <= set(bb.spaces)
        with pytest.raises(TrackingError):
            load(bb, simulate(2, steps=5))


def test_baseline_and_evaluate_on_a_clean_scenario() -> None:
    """Without noise, misses or clutter the baseline is exact, and evaluate scores tracks as expected."""
    scenario = simulate(9, targets=2, steps=15, sensors=[Sensor(1e-6, 1.0, 0.0)])
    estimate = baseline(scenario)
    metrics = evaluate(scenario, estimate.tracks)
    assert metrics.tracked_share == 1.0 and metrics.false_tracks == 0
    assert metrics.rmse is not None and metrics.rmse < 1e-3
    perfect = [EstimatedTrack(f"t{i}", target) for i, target in enumerate(scenario.truth)]
    assert evaluate(scenario, perfect).rmse == 0.0
    shifted = [EstimatedTrack("far", tuple((t, x + 2 * GATE, y) for t, x, y in scenario.truth[0]))]
    none = evaluate(scenario, shifted)
    assert none.tracked_share == 0.0 and none.false_tracks == 1 and none.rmse is None
    assert evaluate(scenario, []).tracked_share == 0.0


# --------------------------------------------------------------- bad input
def _scenario_dict() -> dict:  # type: ignore[type-arg]
    return simulate(1, targets=2, steps=8).to_json()


@pytest.mark.parametrize("change, words", [
    (lambda d: d.pop("readings"), "missing field"),
    (lambda d: d.update(colour="red"), "unknown field"),
    (lambda d: d.update(steps="thirty"), "steps must be an integer"),
    (lambda d: d["sensors"][0].update(sigma=-1.0), "sensors[0]"),
    (lambda d: d["sensors"][0].pop("clutter"), "sensors[0]"),
    (lambda d: d["readings"].append([2, 9, 1.0, 1.0]), "sensor 9"),
    (lambda d: d["readings"].append([99, 0, 1.0, 1.0]), "time 99"),
    (lambda d: d["readings"].append([1, 0, "x", 1.0]), "finite number"),
    (lambda d: d["truth"][0].append([0, 1.0, 1.0]), "out of order"),
    (lambda d: d.update(sensors=[]), "at least one sensor"),
    (lambda d: d.update(format="something-else"), "format"),
])
def test_wrong_fields_are_a_clear_error(change, words: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A scenario with a missing, unknown or invalid field is refused, naming it, in memory and from a file."""
    data = _scenario_dict()
    change(data)
    with pytest.raises(ScenarioError, match=None) as caught:
        Scenario.from_json(data)
    assert words in str(caught.value)
    assert isinstance(caught.value, BlackboardError) and isinstance(caught.value, ValueError)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BlackboardError, match="bad.json"):
        solve(path)


def test_missing_file_and_malformed_json_are_clear_errors(tmp_path: Path) -> None:
    """A missing scenario file and one that is not JSON raise BlackboardErrors saying so."""
    with pytest.raises(ScenarioFileError, match="no such file") as missing:
        solve(tmp_path / "nowhere.json")
    assert isinstance(missing.value, BlackboardError) and isinstance(missing.value, FileNotFoundError)
    broken = tmp_path / "broken.json"
    broken.write_text('{"steps": 3, "sensors": [')
    with pytest.raises(ScenarioError, match="not JSON"):
        solve(broken)
    broken.write_text("[1, 2, 3]")
    with pytest.raises(ScenarioError, match="JSON object"):
        read_scenario(broken)
    with pytest.raises(TrackingError, match="not int"):
        solve(42)  # type: ignore[arg-type]
    with pytest.raises(BlackboardError):
        resume(tmp_path / "no.duckdb")
