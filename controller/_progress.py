"""A progress bar for runs: cycles, activations, agenda, best confidence.

Built on ``tqdm`` (the ``notebook`` extra): in Jupyter with ipywidgets it
is tqdm's widget, elsewhere its text bar. It is an :class:`Instrument`, so
it sees a run once per cycle; the bar redraws at most every
``min_interval`` seconds, which keeps its cost per cycle to a few attribute
reads (W2 with and without it: see README "Speed").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from blackboard import MissingExtraError

from ._errors import ConfigurationError
from ._instruments import Controller, CycleReport, Instrument

if TYPE_CHECKING:
    from ._result import RunResult


def _tqdm() -> Any:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        raise MissingExtraError("tqdm", "the progress bar", "notebook") from None
    try:
        import ipywidgets  # noqa: F401
    except ImportError:  # tqdm.auto would warn and fall back: take the text bar directly
        from tqdm.std import tqdm as bar
        return bar
    from tqdm.auto import tqdm as bar
    return bar


class ProgressBar(Instrument):
    """Shows a run's progress; ``space`` is where "best confidence" is read.

    By default it watches the last declared space (the highest level of
    abstraction, where solutions usually land). The bar's total is
    ``max_cycles`` when the run has one.
    """

    def __init__(self, space: str | None = None, *, min_interval: float = 0.2, leave: bool = True,
                 file: Any = None) -> None:
        if space is not None and not isinstance(space, str):
            raise ConfigurationError("space", f"must be a space name or None, not {space!r}")
        if (isinstance(min_interval, bool) or not isinstance(min_interval, (int, float))
                or not 0 <= min_interval < float("inf")):
            raise ConfigurationError("min_interval", f"must be a finite number of seconds >= 0, not {min_interval!r}")
        self.space = space
        self.min_interval = float(min_interval)
        self.leave = leave
        self.file = file
        self.bar: Any = None
        self.best: float | None = None
        self.activations = 0
        self._watched = ""
        self._next_draw = 0.0
        self._cycles = 0  # cycles not yet shown

    def run_started(self, controller: Controller, goal: Any, limits: dict[str, Any]) -> None:
        spaces = controller.blackboard.space_names()
        if self.space is not None and self.space not in spaces:
            raise ConfigurationError("space", f"{self.space!r} is not a declared space (declared: {', '.join(spaces)})")
        self._watched = self.space or (spaces[-1] if spaces else "")
        self.best, self.activations = None, 0
        tqdm = _tqdm()
        self.bar = tqdm(total=limits.get("max_cycles"), unit="cycle", desc=f"run {controller.blackboard.run_id}",
                        leave=self.leave, file=self.file, mininterval=self.min_interval, dynamic_ncols=True)
        self._next_draw = 0.0
        self._cycles = 0

    def cycle_finished(self, controller: Controller, report: CycleReport) -> None:
        entries = controller.blackboard._entries
        watched = self._watched
        best = self.best
        for activation in report.activations:
            self.activations += 1
            for eid in activation.produced:
                entry = entries.get(eid)
                if entry is not None and entry.space == watched and (best is None or entry.confidence > best):
                    best = entry.confidence
        self.best = best
        self._cycles += 1
        now = time.monotonic()
        if now >= self._next_draw:  # tqdm is told at most every min_interval: its update costs microseconds
            self._next_draw = now + self.min_interval
            self.bar.set_postfix(self._postfix(report.agenda), refresh=False)
            self.bar.update(self._cycles)
            self._cycles = 0

    def _postfix(self, agenda: int) -> dict[str, Any]:
        best = "—" if self.best is None else f"{self.best:.3g}"
        return {"activations": self.activations, "agenda": agenda, f"best {self._watched}": best}

    def run_abandoned(self, controller: Controller, error: BaseException) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def run_finished(self, controller: Controller, result: RunResult) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix(self._postfix(result.agenda_lengths[-1] if result.agenda_lengths else 0) | {
            "outcome": result.outcome}, refresh=False)
        self.bar.update(self._cycles)
        self._cycles = 0
        self.bar.close()
        self.bar = None
