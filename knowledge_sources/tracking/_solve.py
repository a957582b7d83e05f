"""Solving a scenario on a blackboard, resuming a run, batch helpers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from blackboard import Blackboard, Entry

from ._evaluate import EstimatedTrack, Metrics, baseline, evaluate
from ._scenario import Scenario, ScenarioFileError, TrackingError, read_scenario
from ._sources import conflict_strategies, load, sources, spaces, time_order

STATUSES = ("tracked", "failed")
_RUN_OPTIONS = ("max_cycles", "max_activations", "max_seconds")


@dataclass(frozen=True)
class TrackingResult:
    """What :func:`solve` found, and how it compares with the truth and the baseline.

    ``status`` is ``tracked`` when the run finished and identified at least
    one target, ``failed`` otherwise (a budget ran out, or nothing was
    found). ``tracks`` are the identified targets' tracks; ``metrics`` judge
    them against the ground truth, ``baseline`` judges the one-sensor
    nearest-neighbour tracker on the same scenario. ``seconds`` is the whole
    call, ``run_seconds`` the controller's run alone.
    """

    scenario: str
    seed: int | None
    status: str
    tracks: tuple[EstimatedTrack, ...]
    metrics: Metrics
    baseline: Metrics
    seconds: float
    activations: int
    run_id: int | None
    path: str
    run_seconds: float = 0.0

    @property
    def tracked(self) -> bool:
        return self.status == "tracked"

    def to_json(self) -> dict[str, Any]:
        """The one JSON object the command line prints for a scenario."""
        m, b = self.metrics.to_json(), self.baseline.to_json()
        return {
            "scenario": self.scenario, "seed": self.seed, "status": self.status,
            "rmse": m["rmse"], "tracked_share": m["tracked_share"], "false_tracks": m["false_tracks"],
            "tracks": m["tracks"], "targets": m["targets"],
            "baseline_rmse": b["rmse"], "baseline_tracked_share": b["tracked_share"],
            "baseline_false_tracks": b["false_tracks"],
            "seconds": round(self.seconds, 6), "activations": self.activations,
            "run_id": self.run_id, "db": self.path,
        }

    def __str__(self) -> str:
        m, b = self.metrics, self.baseline

        def rmse(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        def share(x: float | None) -> str:
            return "-" if x is None else f"{x:.0%}"

        return (
            f"{self.status}: scenario {self.scenario}, {len(self.tracks)} tracks for {m.targets} targets "
            f"in {self.seconds:.3f} s, {self.activations} activations\n"
            f"  blackboard: rmse {rmse(m.rmse)}, tracked {share(m.tracked_share)}, false tracks {m.false_tracks}\n"
            f"  baseline (one sensor, nearest neighbour): rmse {rmse(b.rmse)}, "
            f"tracked {share(b.tracked_share)}, false tracks {b.false_tracks}"
        )


def _scenario(problem: Any) -> Scenario:
    if isinstance(problem, Scenario):
        return problem
    if isinstance(problem, (str, os.PathLike)):
        return read_scenario(problem)
    if isinstance(problem, dict):
        return Scenario.from_json(problem)
    raise TrackingError(
        f"a scenario is a Scenario, a path to its JSON file or its JSON dict, not {type(problem).__name__}"
    )


def _controller(bb: Blackboard, options: dict[str, Any]) -> Any:
    from controller import Controller  # here: controller imports this package

    options.setdefault("conflict", conflict_strategies())
    options.setdefault("rating", time_order)
    options.setdefault("concurrency", 1)
    return Controller(bb, sources(), **options)


def solve(scenario: Scenario | str | os.PathLike[str], path: Any = None, *, on_close: Any = None,
          **controller_options: Any) -> TrackingResult:
    """Track the targets of ``scenario`` (a :class:`Scenario` or a path to its
    JSON file) on a blackboard in memory or in ``path`` (a new run per call).

    ``controller_options`` go to :class:`~controller.Controller` (defaults
    here: ``conflict`` NoisyOr for tracklets and HighestConfidence elsewhere,
    ``rating=time_order``), except ``max_cycles``, ``max_activations`` and
    ``max_seconds``, which go to its ``run``. The problem stored with the run
    is ``{"domain": "tracking", "scenario": ...}``, so :func:`resume` needs
    only the file. ``on_close(bb)`` is called before the blackboard closes.
    Bad input raises :class:`TrackingError` (a ``BlackboardError``).
    """
    started = time.perf_counter()
    problem = _scenario(scenario)
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, spaces=spaces(), problem={"domain": "tracking", "scenario": problem.to_json()})
    try:
        load(bb, problem)
        run = _controller(bb, controller_options).run(**run_options)
        result = _outcome(bb, problem, run)
        if on_close is not None:
            on_close(bb)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def resume(path: Any, run: int | None = None, **controller_options: Any) -> TrackingResult:
    """Continue an interrupted :func:`solve` on a file from its last commit.

    ``run`` picks the run (default: the newest unfinished tracking run, else
    the newest finished one). Nothing committed is lost and no activation
    whose contributions were committed runs again; the result is what
    :func:`solve` would return. A run that ran to its end is not run again:
    its result is read back, so resuming twice is harmless.
    """
    from controller import RunResult  # here: controller imports this package

    started = time.perf_counter()
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, run=_run_to_resume(path, run))
    try:
        problem = _problem_scenario(bb)
        outcome = RunResult.recorded(bb)  # a run that ran to its end: read back, not run again
        if outcome is None:
            if not bb.find("scan", f"{0:04d}", status=None):  # killed before the readings were first committed
                load(bb, problem)
            outcome = _controller(bb, controller_options).run(**run_options)
        result = _outcome(bb, problem, outcome)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def _run_to_resume(path: Any, run: int | None) -> int:
    """``run``, or the newest unfinished tracking run of ``path``, or its newest finished one."""
    from blackboard import read_runs

    if run is not None:
        return run
    if not Path(path).exists():
        raise ScenarioFileError(f"no blackboard file {os.fspath(path)}")
    runs = [r for r in read_runs(path)
            if isinstance(r.get("problem"), dict) and r["problem"].get("domain") == "tracking"]
    if not runs:
        raise TrackingError(f"{os.fspath(path)} holds no tracking run to resume")
    unfinished = [r for r in runs if r["state"] != "finished"]
    return int((unfinished or runs)[-1]["id"])


def _problem_scenario(bb: Blackboard) -> Scenario:
    problem = bb.problem
    if not isinstance(problem, dict) or problem.get("domain") != "tracking" or "scenario" not in problem:
        raise TrackingError(f"run {bb.run_id} of {bb.path} is not a tracking run (problem: {str(problem)[:200]})")
    return Scenario.from_json(problem["scenario"])


def tracks_on(bb: Blackboard, steps: int | None = None) -> tuple[EstimatedTrack, ...]:
    """The identified targets' tracks as the blackboard holds them.

    Each target's track is read from its active track entries (at a step
    held twice, the more confident one); steps it skipped are interpolated,
    and it is extended one step either way (its first and last tracklets
    span that step).
    """
    wanted = {e.value["track"] for e in bb.find("target")}
    by_track: dict[str, dict[int, Entry]] = {}
    for e in bb.entries("track"):
        track = e.value["track"]
        if track not in wanted:
            continue
        at = by_track.setdefault(track, {})
        held = at.get(e.value["t"])
        if held is None or (e.confidence, -e.id) > (held.confidence, -held.id):
            at[e.value["t"]] = e
    out = []
    for track, at in by_track.items():
        times = sorted(at)
        points: list[tuple[int, float, float]] = []
        for i, t in enumerate(times):
            v = at[t].value
            if i:
                t0 = times[i - 1]
                a = at[t0].value
                for s in range(t0 + 1, t):  # skipped steps: on the straight line between
                    f = (s - t0) / (t - t0)
                    points.append((s, round(a["x"] + f * (v["x"] - a["x"]), 4),
                                   round(a["y"] + f * (v["y"] - a["y"]), 4)))
            points.append((t, v["x"], v["y"]))
        first, last = at[times[0]].value, at[times[-1]].value
        if first["t"] > 0:
            points.insert(0, (first["t"] - 1, round(first["x"] - first["vx"], 4), round(first["y"] - first["vy"], 4)))
        if steps is None or last["t"] < steps - 1:
            points.append((last["t"] + 1, round(last["x"] + last["vx"], 4), round(last["y"] + last["vy"], 4)))
        out.append(EstimatedTrack(track, tuple(points)))
    out.sort(key=lambda tr: (tr.points[0][0], tr.id))
    return tuple(out)


def _outcome(bb: Blackboard, scenario: Scenario, run: Any) -> TrackingResult:
    """Read the tracks off the blackboard after a run and judge them."""
    tracks = tracks_on(bb, scenario.steps)
    metrics = evaluate(scenario, tracks)
    reference = evaluate(scenario, baseline(scenario).tracks)
    finished = run.outcome in ("quiescent", "goal")
    status = "tracked" if finished and tracks else "failed"
    if not bb.events("tracking_result"):  # once: a finished run resumed again reads it back
        bb.log("tracking_result", source="tracking", details={
            "status": status, "metrics": metrics.to_json(), "baseline": reference.to_json(),
            "tracks": [t.id for t in tracks],
        })
    return TrackingResult(
        scenario.name, scenario.seed, status, tracks, metrics, reference, 0.0,
        bb.activations, bb.run_id, bb.path, run.seconds,
    )


# ---------------------------------------------------------------- batches
def batch_problems(directory: Any) -> list[tuple[str, str]]:
    """The scenarios of a batch: every ``*.json`` file in ``directory``, by name, as (label, path)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ScenarioFileError(f"{os.fspath(directory)} is not a directory of scenario files")
    return [(p.name, str(p)) for p in sorted(folder.glob("*.json"))]


def batch_failure(label: str, status: str, error: str) -> dict[str, Any]:
    """The batch line of a scenario that could not be tracked (malformed, or a crash)."""
    return {"scenario": label, "status": status, "rmse": None, "tracked_share": None, "false_tracks": None,
            "baseline_rmse": None, "baseline_tracked_share": None, "seconds": 0.0, "activations": 0,
            "error": error}


def batch_status(result: TrackingResult) -> str:
    """A batch line's status: ``solved`` when tracked, else ``failed``."""
    return "solved" if result.tracked else "failed"

