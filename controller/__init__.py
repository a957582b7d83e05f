"""The controller: matches new entries to knowledge sources, schedules and
runs their activations, resolves conflicts, enforces what sources may
write, and decides when a run is done.

Public surface::

    Controller          run(...) / await arun(...) -> RunResult
    RunResult, SourceStats
    Activation, Agenda  the agenda and its items
    Executor, ProcessExecutor, RayExecutor, ViewSnapshot
                        where actions run (``Controller(executor=...)``)
    HighestConfidence, NoisyOr, WeightedVote, UserRule, ConflictStrategy,
    Resolution          conflict resolution strategies
    Instrument, CycleReport, ProgressBar, OpenTelemetryInstrument
                        run observers: progress bars, tracing
    plot_timeline, plot_confidence, plot_provenance (and their *_data)
                        pictures of a run (matplotlib)
    errors              ControllerError, ConfigurationError, ContributionError,
                        ExecutorError
"""

from ._agenda import Activation as Activation
from ._agenda import Agenda as Agenda
from ._batch import BatchSummary as BatchSummary
from ._batch import run_batch as run_batch
from ._conflict import ConflictStrategy as ConflictStrategy
from ._conflict import HighestConfidence as HighestConfidence
from ._conflict import NoisyOr as NoisyOr
from ._conflict import Resolution as Resolution
from ._conflict import UserRule as UserRule
from ._conflict import WeightedVote as WeightedVote
from ._controller import DURABILITY_MODES as DURABILITY_MODES
from ._controller import Controller as Controller
from ._controller import run_sync as run_sync
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ContributionError as ContributionError
from ._errors import ControllerError as ControllerError
from ._errors import ExecutorError as ExecutorError
from ._escalation import Escalation as Escalation
from ._executor import Executor as Executor
from ._explain import Explanation as Explanation
from ._explain import explain as explain
from ._instruments import CycleReport as CycleReport
from ._instruments import Instrument as Instrument
from ._otel import OpenTelemetryInstrument as OpenTelemetryInstrument
from ._plots import confidence_data as confidence_data
from ._plots import plot_confidence as plot_confidence
from ._plots import plot_provenance as plot_provenance
from ._plots import plot_timeline as plot_timeline
from ._plots import provenance_data as provenance_data
from ._plots import timeline_data as timeline_data
from ._policy import Policy as Policy
from ._process import ProcessExecutor as ProcessExecutor
from ._progress import ProgressBar as ProgressBar
from ._ray import RayExecutor as RayExecutor
from ._result import RunResult as RunResult
from ._result import SourceStats as SourceStats
from ._resume import NothingToResumeError as NothingToResumeError
from ._resume import resume as resume
from ._snapshot import ViewSnapshot as ViewSnapshot

__all__ = [
    "DURABILITY_MODES",
    "CycleReport",
    "Escalation",
    "Instrument",
    "OpenTelemetryInstrument",
    "ProgressBar",
    "confidence_data",
    "plot_confidence",
    "plot_provenance",
    "plot_timeline",
    "provenance_data",
    "timeline_data",
    "Explanation",
    "Activation",
    "Agenda",
    "BatchSummary",
    "ConfigurationError",
    "ConflictStrategy",
    "ContributionError",
    "Controller",
    "ControllerError",
    "Executor",
    "ExecutorError",
    "HighestConfidence",
    "NothingToResumeError",
    "NoisyOr",
    "Policy",
    "ProcessExecutor",
    "RayExecutor",
    "Resolution",
    "RunResult",
    "SourceStats",
    "UserRule",
    "ViewSnapshot",
    "WeightedVote",
    "explain",
    "resume",
    "run_batch",
    "run_sync",
]
