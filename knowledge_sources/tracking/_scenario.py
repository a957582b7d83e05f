"""Scenarios: a seeded simulator of moving targets seen by noisy sensors.

A :class:`Scenario` holds everything a run needs and everything it is judged
against: the sensors (their noise, detection probability and clutter rate),
the readings they reported (time, sensor, x, y; targets and false alarms
mixed, in no telling order) and the ground truth (each target's position at
each step of its lifetime). It round-trips through JSON (:meth:`Scenario.to_json`,
:meth:`Scenario.from_json`, :meth:`Scenario.save`, :func:`read_scenario`), and
anything malformed is refused with a :class:`ScenarioError` naming the field.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from blackboard import BlackboardError

FORMAT = "blackboard-tracking-scenario"
_FIELDS = frozenset({"format", "name", "seed", "steps", "area", "sensors", "truth", "readings"})
_SENSOR_FIELDS = frozenset({"sigma", "p_detect", "clutter"})


class TrackingError(BlackboardError, ValueError):
    """A tracking problem cannot be used; ``problem`` says why."""

    prefix = "tracking"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{self.prefix}: {problem}")

    def __str__(self) -> str:
        return f"{self.prefix}: {self.problem}"


class ScenarioError(TrackingError):
    """A scenario (its JSON, or a field of it) is malformed."""

    prefix = "invalid tracking scenario"


class ScenarioFileError(TrackingError, FileNotFoundError):
    """A scenario file (or a directory of them) does not exist or cannot be read."""

    prefix = "cannot read tracking scenario"


class Sensor(NamedTuple):
    """One sensor: position noise (standard deviation per axis), the
    probability of detecting a target at a step, and the mean number of
    false alarms (clutter) it reports per step, uniform over the area."""

    sigma: float
    p_detect: float
    clutter: float


class Reading(NamedTuple):
    """What a sensor reported: a position at a time (a target or clutter)."""

    t: int
    sensor: int
    x: float
    y: float


@dataclass(frozen=True)
class Scenario:
    """Targets, sensors, the readings they produced and the ground truth.

    ``truth[i]`` is target i's track as ``(t, x, y)`` for each step of its
    lifetime; ``readings`` are ordered by time then sensor. ``area`` is the
    surveyed rectangle ``(width, height)`` from the origin.
    """

    name: str
    seed: int | None
    steps: int
    area: tuple[float, float]
    sensors: tuple[Sensor, ...]
    truth: tuple[tuple[tuple[int, float, float], ...], ...]
    readings: tuple[Reading, ...]

    @property
    def targets(self) -> int:
        return len(self.truth)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back unchanged."""
        return {
            "format": FORMAT,
            "name": self.name,
            "seed": self.seed,
            "steps": self.steps,
            "area": list(self.area),
            "sensors": [s._asdict() for s in self.sensors],
            "truth": [[list(p) for p in target] for target in self.truth],
            "readings": [list(r) for r in self.readings],
        }

    @classmethod
    def from_json(cls, data: Any) -> Scenario:
        """The scenario in ``data`` (a dict, or JSON text); :class:`ScenarioError` if malformed."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"not JSON: {exc}") from None
        return _parse(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the scenario as JSON to ``path``; returns the path."""
        target = Path(path)
        target.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")
        return target

    def __str__(self) -> str:
        return (f"scenario {self.name}: {self.targets} targets, {self.steps} steps, "
                f"{len(self.sensors)} sensors, {len(self.readings)} readings")


def read_scenario(path: str | os.PathLike[str]) -> Scenario:
    """The scenario saved in a JSON file; :class:`ScenarioFileError` when the
    file is missing or unreadable, :class:`ScenarioError` when malformed."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ScenarioFileError(f"no such file {os.fspath(path)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"cannot read {os.fspath(path)}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{os.fspath(path)} is not JSON: {exc}") from None
    scenario = _parse(data, where=f"{os.fspath(path)}: ")
    return scenario if scenario.name else replace(scenario, name=Path(path).stem)


# ------------------------------------------------------------- validation
def _number(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{where}{field} must be a finite number, not {value!r}")
    return float(value)


def _integer(value: Any, field: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where}{field} must be an integer, not {value!r}")
    return value


def _list(value: Any, field: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}{field} must be a list, not {type(value).__name__}")
    return value


def _parse(data: Any, where: str = "") -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}a scenario is a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ScenarioError(f"{where}unknown field(s) {unknown}; a scenario has {sorted(_FIELDS)}")
    missing = sorted({"steps", "sensors", "truth", "readings"} - set(data))
    if missing:
        raise ScenarioError(f"{where}missing field(s) {missing}")
    if data.get("format", FORMAT) != FORMAT:
        raise ScenarioError(f"{where}format is {data['format']!r}, not {FORMAT!r}")
    name = data.get("name") or ""
    if not isinstance(name, str):
        raise ScenarioError(f"{where}name must be a string, not {name!r}")
    seed = data.get("seed")
    if seed is not None:
        seed = _integer(seed, "seed", where)
    steps = _integer(data["steps"], "steps", where)
    if steps < 1:
        raise ScenarioError(f"{where}steps must be at least 1, not {steps}")
    area_raw = _list(data.get("area", [100.0, 100.0]), "area", where)
    if len(area_raw) != 2:
        raise ScenarioError(f"{where}area must be [width, height], not {area_raw!r}")
    area = (_number(area_raw[0], "area[0]", where), _number(area_raw[1], "area[1]", where))
    if min(area) <= 0:
        raise ScenarioError(f"{where}area must be positive, not {area_raw!r}")
    sensors = []
    for i, s in enumerate(_list(data["sensors"], "sensors", where)):
        field = f"sensors[{i}]"
        if not isinstance(s, Mapping) or set(s) != _SENSOR_FIELDS:
            raise ScenarioError(f"{where}{field} must be an object with exactly {sorted(_SENSOR_FIELDS)}, not {s!r}")
        sigma = _number(s["sigma"], f"{field}.sigma", where)
        p_detect = _number(s["p_detect"], f"{field}.p_detect", where)
        clutter = _number(s["clutter"], f"{field}.clutter", where)
        if sigma <= 0 or not 0 < p_detect <= 1 or clutter < 0:
            raise ScenarioError(f"{where}{field} needs sigma > 0, 0 < p_detect <= 1 and clutter >= 0, not {dict(s)!r}")
        sensors.append(Sensor(sigma, p_detect, clutter))
    if not sensors:
        raise ScenarioError(f"{where}sensors is empty: a scenario needs at least one sensor")
    truth = []
    for i, target in enumerate(_list(data["truth"], "truth", where)):
        points = []
        last = -1
        for j, p in enumerate(_list(target, f"truth[{i}]", where)):
            field = f"truth[{i}][{j}]"
            if not isinstance(p, list) or len(p) != 3:
                raise ScenarioError(f"{where}{field} must be [t, x, y], not {p!r}")
            t = _integer(p[0], f"{field} time", where)
            if not last < t < steps:
                raise ScenarioError(f"{where}{field}: time {t} is out of order or outside 0..{steps - 1}")
            last = t
            points.append((t, _number(p[1], f"{field} x", where), _number(p[2], f"{field} y", where)))
        truth.append(tuple(points))
    readings = []
    for i, r in enumerate(_list(data["readings"], "readings", where)):
        field = f"readings[{i}]"
        if not isinstance(r, list) or len(r) != 4:
            raise ScenarioError(f"{where}{field} must be [t, sensor, x, y], not {r!r}")
        t = _integer(r[0], f"{field} time", where)
        s = _integer(r[1], f"{field} sensor", where)
        if not 0 <= t < steps:
            raise ScenarioError(f"{where}{field}: time {t} is outside 0..{steps - 1}")
        if not 0 <= s < len(sensors):
            raise ScenarioError(f"{where}{field}: sensor {s} is not one of the {len(sensors)} sensors")
        readings.append(Reading(t, s, _number(r[2], f"{field} x", where), _number(r[3], f"{field} y", where)))
    readings.sort(key=lambda r: (r.t, r.sensor))
    return Scenario(name, seed, steps, area, tuple(sensors), tuple(truth), tuple(readings))


# -------------------------------------------------------------- simulator
def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(
    seed: int,
    *,
    targets: int = 4,
    steps: int = 30,
    sensors: int | Sequence[Sensor | Mapping[str, float]] = 3,
    area: tuple[float, float] = (100.0, 100.0),
    speed: tuple[float, float] = (1.0, 4.0),
    process_noise: float = 0.05,
    name: str | None = None,
) -> Scenario:
    """A seeded scenario: the same arguments always give the same scenario.

    ``targets`` move at constant velocity (``speed`` per step, any direction)
    plus a small random acceleration (``process_noise``, per axis per step),
    and stay inside ``area``. Most live the whole ``steps``; some appear late
    or vanish early (each lives at least a third of the steps). ``sensors``
    is a count (their characteristics are then drawn from the seed: noise
    0.8-2.0, detection probability 0.6-0.85, 2-5 false alarms a step) or
    the sensors themselves. Each step, each sensor detects each living
    target with its probability (position plus Gaussian noise) and adds a
    Poisson number of false alarms uniform over the area.
    """
    for label, value in (("targets", targets), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if label == "steps" else 0):
            kind = "positive" if label == "steps" else "non-negative"
            raise ScenarioError(f"{label} must be a {kind} integer, not {value!r}")
    rng = random.Random(seed)
    if isinstance(sensors, int) and not isinstance(sensors, bool):
        if sensors < 1:
            raise ScenarioError(f"sensors must be at least 1, not {sensors}")
        specs = tuple(
            Sensor(round(rng.uniform(0.8, 2.0), 3), round(rng.uniform(0.6, 0.85), 3), round(rng.uniform(2.0, 5.0), 3))
            for _ in range(sensors)
        )
    else:
        raw = [s._asdict() if isinstance(s, Sensor) else dict(s) for s in sensors]  # type: ignore[union-attr]
        specs = _parse({"steps": 1, "sensors": raw, "truth": [], "readings": []}).sensors
    width, height = area
    margin = 5.0
    truth = []
    for _ in range(targets):
        start = 0 if rng.random() < 0.6 else rng.randrange(0, max(1, steps // 3))
        end = steps - 1 if rng.random() < 0.6 else rng.randrange(min(steps - 1, start + steps // 3), steps)
        life = end - start
        v = rng.uniform(*speed)
        heading = rng.uniform(0, 2 * math.pi)
        vx, vy = v * math.cos(heading), v * math.sin(heading)
        # shrink the speed until the straight path fits in the area
        while life and (abs(vx) * life > width - 2 * margin or abs(vy) * life > height - 2 * margin):
            vx, vy = vx * 0.8, vy * 0.8
        x = rng.uniform(margin - min(0.0, vx * life), width - margin - max(0.0, vx * life))
        y = rng.uniform(margin - min(0.0, vy * life), height - margin - max(0.0, vy * life))
        points = []
        for t in range(start, end + 1):
            points.append((t, round(x, 3), round(y, 3)))
            vx += rng.gauss(0.0, process_noise)
            vy += rng.gauss(0.0, process_noise)
            x, y = x + vx, y + vy
        truth.append(tuple(points))
    readings = []
    for t in range(steps):
        alive = [(p[1], p[2]) for target in truth for p in target if p[0] == t]
        for s, sensor in enumerate(specs):
            seen = [
                (x + rng.gauss(0.0, sensor.sigma), y + rng.gauss(0.0, sensor.sigma))
                for x, y in alive if rng.random() < sensor.p_detect
            ]
            seen += [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(_poisson(rng, sensor.clutter))]
            rng.shuffle(seen)
            readings.extend(Reading(t, s, round(x, 3), round(y, 3)) for x, y in seen)
    label = name if name is not None else f"seed-{seed}"
    return Scenario(label, seed, steps, (float(width), float(height)), specs, tuple(truth), tuple(readings))


def generate_scenarios(directory: str | os.PathLike[str], count: int, seed: int = 0,
                       **simulate_options: Any) -> list[Path]:
    """Write ``count`` scenarios (seeds ``seed``, ``seed + 1``, ...) as JSON files
    ``scenario-<seed>.json`` into ``directory`` (created if need be); returns their paths."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ScenarioError(f"count must be a non-negative integer, not {count!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        s = seed + i
        scenario = simulate(s, name=f"scenario-{s:04d}", **simulate_options)
        paths.append(scenario.save(folder / f"{scenario.name}.json"))
    return paths
