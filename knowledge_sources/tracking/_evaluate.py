"""Judging tracks against the ground truth, and the baseline to beat.

:func:`evaluate` matches estimated tracks to true targets one to one
(greedily, by the number of steps a track stays within ``gate`` of a target,
then by mean distance) and reports:

``rmse``            root mean square position error over matched target-time
                    pairs (a pair is matched when the target's track has an
                    estimate at that time within the gate)
``tracked_share``   the share of targets whose track stays within the gate
                    for at least half of the target's lifetime
``false_tracks``    reported tracks matched to no target

:func:`baseline` is the simple tracker the blackboard is compared with: one
sensor (the one with the best detection probability), nearest-neighbour
association, plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._scenario import Scenario

GATE = 5.0  # distance within which an estimate counts as on its target


@dataclass(frozen=True)
class EstimatedTrack:
    """One estimated track: an id and its positions ``(t, x, y)`` by time."""

    id: str
    points: tuple[tuple[int, float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class TrackEstimate:
    """The tracks a tracker reports for a scenario."""

    tracks: tuple[EstimatedTrack, ...]

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Any:
        return iter(self.tracks)


@dataclass(frozen=True)
class Metrics:
    """How a set of tracks compares with the ground truth (see the module doc)."""

    rmse: float | None
    tracked_share: float | None
    false_tracks: int
    tracks: int
    targets: int
    matched: int  # matched target-time pairs

    def to_json(self) -> dict[str, Any]:
        return {
            "rmse": None if self.rmse is None else round(self.rmse, 4),
            "tracked_share": None if self.tracked_share is None else round(self.tracked_share, 4),
            "false_tracks": self.false_tracks, "tracks": self.tracks, "targets": self.targets,
            "matched": self.matched,
        }


def evaluate(scenario: Scenario, tracks: Iterable[EstimatedTrack], gate: float = GATE) -> Metrics:
    """Compare ``tracks`` with the scenario's ground truth."""
    tracks = list(tracks)
    by_time = [{p[0]: (p[1], p[2]) for p in track.points} for track in tracks]
    pairs = []
    for i, target in enumerate(scenario.truth):
        for j, points in enumerate(by_time):
            close, total = 0, 0.0
            for t, x, y in target:
                estimate = points.get(t)
                if estimate is not None:
                    d = math.hypot(estimate[0] - x, estimate[1] - y)
                    if d <= gate:
                        close += 1
                        total += d
            if close:
                pairs.append((-close, total / close, i, j))
    pairs.sort()
    owner: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, i, j in pairs:
        if i not in owner and j not in taken:
            owner[i] = j
            taken.add(j)
    squares, matched, tracked = 0.0, 0, 0
    for i, target in enumerate(scenario.truth):
        j = owner.get(i)
        if j is None:
            continue
        close = 0
        for t, x, y in target:
            estimate = by_time[j].get(t)
            if estimate is not None:
                d2 = (estimate[0] - x) ** 2 + (estimate[1] - y) ** 2
                if d2 <= gate * gate:
                    squares += d2
                    close += 1
        matched += close
        if close >= 0.5 * len(target):
            tracked += 1
    n = len(scenario.truth)
    return Metrics(
        rmse=math.sqrt(squares / matched) if matched else None,
        tracked_share=tracked / n if n else None,
        false_tracks=len(tracks) - len(taken),
        tracks=len(tracks),
        targets=n,
        matched=matched,
    )


def best_sensor(scenario: Scenario) -> int:
    """The sensor a one-sensor tracker should use: best detection, then least noise."""
    return min(range(len(scenario.sensors)),
               key=lambda s: (-scenario.sensors[s].p_detect, scenario.sensors[s].sigma, s))


def baseline(scenario: Scenario, sensor: int | None = None, *, max_speed: float = 6.0,
             max_misses: int = 2, min_hits: int = 3) -> TrackEstimate:
    """One sensor, nearest-neighbour association: the tracker to beat.

    Each step, every live track predicts its position (last position plus
    velocity), readings are given to the nearest prediction within a gate
    (closest pairs first), a track unseen for more than ``max_misses`` steps
    ends, and each reading left over starts a track. Tracks with at least
    ``min_hits`` readings are reported, with their positions from their
    first to their last reading (coasting in between).
    """
    s = best_sensor(scenario) if sensor is None else sensor
    sigma = scenario.sensors[s].sigma
    near = 3.5 * math.sqrt(2.0 * sigma * sigma + 0.25)  # the reading's noise and the target's own turns
    live: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    serial = 0
    for t in range(scenario.steps):
        readings = [(r.x, r.y) for r in scenario.readings if r.t == t and r.sensor == s]
        candidates = []
        for k, track in enumerate(live):
            px, py = track["x"] + track["vx"], track["y"] + track["vy"]
            gate = near + (max_speed if track["hits"] == 1 else 0.0) + track["misses"] * 1.0
            for m, (x, y) in enumerate(readings):
                d = math.hypot(x - px, y - py)
                if d <= gate:
                    candidates.append((d, k, m))
        candidates.sort()
        used_tracks: set[int] = set()
        used_readings: set[int] = set()
        for _, k, m in candidates:
            if k in used_tracks or m in used_readings:
                continue
            used_tracks.add(k)
            used_readings.add(m)
            track = live[k]
            x, y = readings[m]
            gap = track["misses"] + 1
            vx, vy = (x - track["x"]) / gap, (y - track["y"]) / gap
            if track["hits"] > 1:
                vx, vy = 0.5 * (track["vx"] + vx), 0.5 * (track["vy"] + vy)
            track.update(x=x, y=y, vx=vx, vy=vy, hits=track["hits"] + 1, misses=0)
            track["points"].append((t, x, y))
            track["seen"] = len(track["points"])
        still = []
        for k, track in enumerate(live):
            if k in used_tracks:
                still.append(track)
                continue
            track["misses"] += 1
            if track["misses"] > max_misses:
                done.append(track)
                continue
            track["x"] += track["vx"]
            track["y"] += track["vy"]
            track["points"].append((t, track["x"], track["y"]))
            still.append(track)
        for m, (x, y) in enumerate(readings):
            if m not in used_readings:
                serial += 1
                still.append({"id": f"nn{serial}", "x": x, "y": y, "vx": 0.0, "vy": 0.0,
                              "hits": 1, "misses": 0, "points": [(t, x, y)], "seen": 1})
        live = still
    reported = []
    for track in done + live:
        if track["hits"] < min_hits:
            continue
        points = track["points"][:track["seen"]]  # without the coasting after the last reading
        reported.append(EstimatedTrack(track["id"], tuple((t, round(x, 3), round(y, 3)) for t, x, y in points)))
    reported.sort(key=lambda tr: (tr.points[0][0], tr.id))
    return TrackEstimate(tuple(reported))

