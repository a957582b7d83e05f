"""Instruments: observers a controller calls as a run goes.

An instrument is passed to the controller (``Controller(...,
instruments=[...])``) or to one run (``run(progress=True)`` adds a
:class:`~controller.ProgressBar`), never registered process-wide, so two
controllers in one notebook never see each other's runs. The hooks are
no-ops unless overridden and are called at run and cycle granularity only:
per-activation detail (start time, duration, state, what it produced) is on
the activations a :class:`CycleReport` carries, so a run without instruments
pays one truth test per cycle, and a run with them pays nothing per
activation that it would not pay anyway.

An instrument that raises is logged and switched off for the rest of the
run; the run itself goes on (an observer must never change the outcome).
The exception is a :class:`ConfigurationError` from ``run_started`` (a
missing package, a space that does not exist): the run does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from blackboard import MissingExtraError

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from blackboard import Blackboard
    from knowledge_sources import KnowledgeSource

    from ._agenda import Activation
    from ._result import RunResult

log = logging.getLogger("controller")


class Controller(Protocol):
    """What an instrument may read of the controller calling it: its blackboard
    and its sources. A protocol, so that instruments (which the controller
    imports) never import the controller back."""

    @property
    def blackboard(self) -> Blackboard: ...

    @property
    def sources(self) -> Mapping[str, KnowledgeSource]: ...


class CycleReport(NamedTuple):
    """One finished cycle, as instruments see it."""

    cycle: int
    started: float  # Unix time the cycle began
    seconds: float  # wall time of the whole cycle (select, run, apply, match)
    activations: tuple[Activation, ...]  # what ran, in agenda order, applied
    agenda: int  # activations still waiting after it


class Instrument:
    """Base class of run observers; override the hooks you need."""

    def run_started(self, controller: Controller, goal: Any, limits: dict[str, Any]) -> None:
        """A run begins (``limits``: max_cycles, max_activations, max_seconds)."""

    def cycle_finished(self, controller: Controller, report: CycleReport) -> None:
        """A cycle's contributions were applied and matched."""

    def run_finished(self, controller: Controller, result: RunResult) -> None:
        """The run ended (any outcome, cancelled included)."""

    def run_abandoned(self, controller: Controller, error: BaseException) -> None:
        """The run did not start after this instrument's run_started (another refused): tidy up."""


class Instruments:
    """Calls a list of instruments, switching off one that raises."""

    __slots__ = ("active",)

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self.active = list(instruments)

    def __bool__(self) -> bool:
        return bool(self.active)

    def call(self, hook: str, *args: Any) -> None:
        failed = None
        for done, instrument in enumerate(self.active):
            try:
                getattr(instrument, hook)(*args)
            except (ConfigurationError, MissingExtraError) as exc:  # set up wrongly: say so at once
                for started in self.active[:done]:  # those that started must not be left open
                    try:
                        started.run_abandoned(args[0], exc)
                    except Exception:
                        log.exception("instrument %r raised in run_abandoned", started)
                raise
            except Exception:
                log.exception("instrument %r raised in %s; it is switched off for this run", instrument, hook)
                failed = [*(failed or ()), instrument]
        if failed:
            self.active = [i for i in self.active if i not in failed]


def check_instruments(instruments: Any) -> list[Instrument]:
    if isinstance(instruments, Instrument):
        return [instruments]
    if isinstance(instruments, (str, bytes)):
        raise ConfigurationError("instruments", f"must be Instrument objects, not {instruments!r}")
    try:
        items = list(instruments)
    except TypeError:
        raise ConfigurationError("instruments", f"must be Instrument objects, not {instruments!r}") from None
    for item in items:
        if not isinstance(item, Instrument):
            raise ConfigurationError("instruments", f"{item!r} is not an Instrument (subclass controller.Instrument)")
    return items
