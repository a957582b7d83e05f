"""Plotting a tracking run: the truth, the blackboard's tracks and the raw readings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from blackboard import Blackboard, BlackboardError, read_runs

from ._evaluate import EstimatedTrack
from ._scenario import Scenario, TrackingError
from ._solve import TrackingResult, tracks_on

_SENSOR_MARKERS = ("o", "^", "s", "D", "v", "P")


def _stored_scenario(path: str, run: int | None) -> Scenario | None:
    """The scenario a tracking run on a file was given (None if it cannot be read)."""
    if path in ("", ":memory:") or run is None or not Path(path).is_file():
        return None
    try:
        runs = {r["id"]: r for r in read_runs(path)}
    except BlackboardError:
        return None
    problem = runs.get(run, {}).get("problem")
    if isinstance(problem, dict) and isinstance(problem.get("scenario"), dict):
        return Scenario.from_json(problem["scenario"])
    return None


def _what(source: Any, scenario: Scenario | None) -> tuple[Scenario | None, tuple[EstimatedTrack, ...] | None]:
    """The scenario and the estimated tracks to draw (None: no estimates, e.g. a bare scenario)."""
    if isinstance(source, Scenario):
        return source, None
    if isinstance(source, Blackboard):
        problem = source.problem
        if scenario is None and isinstance(problem, dict) and isinstance(problem.get("scenario"), dict):
            scenario = Scenario.from_json(problem["scenario"])
        return scenario, tracks_on(source, scenario.steps if scenario is not None else None)
    if isinstance(source, TrackingResult):
        if scenario is None:
            scenario = _stored_scenario(source.path, source.run_id)
        return scenario, source.tracks
    raise TrackingError(
        f"plot_tracks draws a TrackingResult, a Blackboard holding a tracking run or a Scenario, "
        f"not {type(source).__name__}")


def plot_tracks(result_or_blackboard: Any, *, truth: bool = True, readings: bool = True,
                scenario: Scenario | str | os.PathLike[str] | None = None, ax: Any = None,
                title: str | None = None) -> Any:
    """Draw a tracking run with matplotlib; returns the Axes.

    The true trajectories are dashed black lines (gid ``"truth"``, one per
    target, a dot where each starts), the tracks the blackboard identified
    solid coloured lines (gid ``"track"``, one per track), and the sensors'
    raw readings, targets and false alarms alike, faint markers (one
    collection per sensor, gid ``"readings"``). ``truth`` and ``readings``
    turn those layers off.

    ``result_or_blackboard`` is a :class:`TrackingResult`, a
    :class:`~blackboard.Blackboard` holding a tracking run (its tracks are
    read with :func:`tracks_on`), or a bare :class:`Scenario` (truth and
    readings only). The truth and the readings come from ``scenario`` (a
    Scenario or its JSON file) when given, else from the run: the problem a
    blackboard holds, or for a result the run stored in its file. A result
    solved in memory does not carry its scenario: pass ``scenario=``, or
    ``truth=False, readings=False``; otherwise :class:`TrackingError` says so.

    Needs matplotlib (``pip install 'duckdb-blackboard[notebook]'``).
    """
    from .._plotting import axes

    if scenario is not None and not isinstance(scenario, Scenario):
        from ._scenario import read_scenario

        scenario = read_scenario(scenario)
    scenario, tracks = _what(result_or_blackboard, scenario)
    if scenario is None and (truth or readings):
        raise TrackingError(
            "this result does not carry its scenario (it was solved in memory); pass scenario=, "
            "or truth=False and readings=False to draw the tracks alone")
    ax = axes(ax, "tracking.plot_tracks", (7.0, 7.0))
    if readings and scenario is not None:
        for s in range(len(scenario.sensors)):
            mine = [r for r in scenario.readings if r.sensor == s]
            ax.scatter([r.x for r in mine], [r.y for r in mine], s=12, alpha=0.5, linewidths=0,
                       marker=_SENSOR_MARKERS[s % len(_SENSOR_MARKERS)], color=f"C{7 + s % 3}",
                       label=f"sensor {s} readings", gid="readings", zorder=1)
    if truth and scenario is not None:
        for i, target in enumerate(scenario.truth):
            if not target:
                continue
            xs, ys = [p[1] for p in target], [p[2] for p in target]
            ax.plot(xs, ys, linestyle="--", color="black", linewidth=1.4, gid="truth", zorder=2,
                    label="truth" if i == 0 else "_nolegend_")
            ax.plot(xs[:1], ys[:1], marker="o", color="black", markersize=4, linestyle="", zorder=2,
                    label="_nolegend_")
    for j, track in enumerate(tracks or ()):
        ax.plot([p[1] for p in track.points], [p[2] for p in track.points], linestyle="-", linewidth=2.0,
                color=f"C{j % 7}", alpha=0.85, gid="track", zorder=3,
                label=f"track {track.id}" if len(tracks or ()) <= 8 else ("tracks" if j == 0 else "_nolegend_"))
    if scenario is not None:
        ax.set_xlim(0, scenario.area[0])
        ax.set_ylim(0, scenario.area[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title is None:
        parts = [f"scenario {scenario.name}" if scenario is not None else "tracks"]
        if tracks is not None:
            parts.append(f"{len(tracks)} tracks" + (f" for {scenario.targets} targets" if scenario else ""))
        elif scenario is not None:
            parts.append(f"{scenario.targets} targets, {len(scenario.readings)} readings")
        title = ": ".join(parts)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8, markerscale=1.6)
    return ax
