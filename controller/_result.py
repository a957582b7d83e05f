"""What a run returns: its outcome, its goal entries, and its figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blackboard import Entry


@dataclass
class SourceStats:
    """Per-source figures of one run."""

    activations: int = 0
    failed: int = 0
    obviated: int = 0
    retries: int = 0
    contributions: int = 0
    denied: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RunResult:
    """The result of :meth:`Controller.run`.

    ``outcome`` is ``"goal"`` (the goal holds), ``"quiescent"`` (nothing left
    to do), ``"budget"`` (a budget ran out; ``budget`` says which),
    or ``"cancelled"``. ``action_seconds`` is the time spent inside actions,
    ``controller_seconds`` the rest: the framework's own overhead.
    """

    outcome: str
    goal_entries: tuple[Entry, ...]
    run_id: int
    path: str
    cycles: int
    activations: int
    failed: int
    obviated: int
    contributions: int
    seconds: float
    action_seconds: float
    budget: str | None = None
    sources: Mapping[str, SourceStats] = field(default_factory=dict)

    @property
    def controller_seconds(self) -> float:
        return max(0.0, self.seconds - self.action_seconds)

    @property
    def solved(self) -> bool:
        return self.outcome == "goal"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what the command line prints with --json)."""
        return {
            "outcome": self.outcome,
            "budget": self.budget,
            "run_id": self.run_id,
            "path": self.path,
            "cycles": self.cycles,
            "activations": self.activations,
            "failed": self.failed,
            "obviated": self.obviated,
            "contributions": self.contributions,
            "seconds": round(self.seconds, 6),
            "action_seconds": round(self.action_seconds, 6),
            "controller_seconds": round(self.controller_seconds, 6),
            "goal_entries": [e._asdict() | {"status": str(e.status)} for e in self.goal_entries],
        }

    def __str__(self) -> str:
        budget = f" ({self.budget})" if self.budget else ""
        return (
            f"{self.outcome}{budget} after {self.cycles} cycles, {self.activations} activations "
            f"({self.failed} failed, {self.obviated} obviated) in {self.seconds:.3f} s; "
            f"{len(self.goal_entries)} goal entries; run {self.run_id} in {self.path}"
        )
