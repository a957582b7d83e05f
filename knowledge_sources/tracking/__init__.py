"""Multi-sensor tracking: the classic blackboard application.

A seeded simulator (:func:`simulate`) moves targets at near-constant
velocity through an area watched by several noisy sensors, which miss
detections and report false alarms. Knowledge sources build hypotheses
level by level on the blackboard (readings -> tracklets -> links -> tracks
-> targets; see :mod:`._sources` for the spaces and sources), combine the
sensors' evidence with the controller's ``NoisyOr`` strategy, and let
competing hypotheses for the same tracklet (two tracks) or the same track
(two continuations) be decided by ``HighestConfidence`` conflict resolution.

Public surface::

    simulate(seed, targets=, steps=, sensors=) -> Scenario
    Scenario            .to_json() / .from_json() / .save(path); read_scenario(path)
    generate_scenarios(directory, count, seed)      scenario files for batch runs
    spaces(), sources(), load(bb, scenario), time_order, conflict_strategies()
    solve(scenario_or_path, path=None, **controller_options) -> TrackingResult
    resume(path, run=None)
    baseline(scenario) -> TrackEstimate             one sensor, nearest neighbour
    evaluate(scenario, tracks) -> Metrics           rmse, tracked_share, false_tracks
    plot_tracks(result_or_blackboard) -> Axes       truth, tracks and readings (matplotlib)
    TrackingError, ScenarioError, ScenarioFileError (all BlackboardError)
"""

from ._evaluate import GATE as GATE
from ._evaluate import EstimatedTrack as EstimatedTrack
from ._evaluate import Metrics as Metrics
from ._evaluate import TrackEstimate as TrackEstimate
from ._evaluate import baseline as baseline
from ._evaluate import best_sensor as best_sensor
from ._evaluate import evaluate as evaluate
from ._plot import plot_tracks as plot_tracks
from ._scenario import Reading as Reading
from ._scenario import Scenario as Scenario
from ._scenario import ScenarioError as ScenarioError
from ._scenario import ScenarioFileError as ScenarioFileError
from ._scenario import Sensor as Sensor
from ._scenario import TrackingError as TrackingError
from ._scenario import generate_scenarios as generate_scenarios
from ._scenario import read_scenario as read_scenario
from ._scenario import simulate as simulate
from ._solve import STATUSES as STATUSES
from ._solve import TrackingResult as TrackingResult
from ._solve import batch_failure as batch_failure
from ._solve import batch_problems as batch_problems
from ._solve import batch_status as batch_status
from ._solve import resume as resume
from ._solve import solve as solve
from ._solve import tracks_on as tracks_on
from ._sources import CONFIRM as CONFIRM
from ._sources import conflict_strategies as conflict_strategies
from ._sources import load as load
from ._sources import sources as sources
from ._sources import spaces as spaces
from ._sources import time_order as time_order

__all__ = [
    "CONFIRM", "GATE", "STATUSES", "EstimatedTrack", "Metrics", "Reading", "Scenario", "ScenarioError",
    "ScenarioFileError", "Sensor", "TrackEstimate", "TrackingError", "TrackingResult", "baseline",
    "batch_failure", "batch_problems", "batch_status", "best_sensor", "conflict_strategies", "evaluate",
    "generate_scenarios", "load", "plot_tracks", "read_scenario", "resume", "simulate", "solve", "sources",
    "spaces", "time_order", "tracks_on",
]
