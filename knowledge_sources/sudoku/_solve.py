"""Solving sudoku on a blackboard: the controller assembled for the domain,
:func:`solve`, :func:`resume` (idempotent: a finished run's result is read
back), the batch entry points and :class:`SudokuResult`.

This is the one sudoku module that imports the controller: the sources and
the grid know nothing of how they are scheduled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from blackboard import Blackboard, Entry, read_runs
from controller import Controller, RunResult

from ._grid import (
    SudokuError,
    _conflict,
    _describe_conflict,
    _read,
    _text,
    check,
    format_grid,
)
from ._sources import load, sources, spaces

_RUN_OPTIONS = ("max_cycles", "max_activations", "max_seconds")


# ------------------------------------------------------------------ solving
@dataclass(frozen=True)
class SudokuResult:
    """What :func:`solve` found.

    ``status``: ``solved`` (``solution`` is the checked 81-digit grid),
    ``no_solution`` (every world was refuted; ``contradictions`` says why),
    ``stuck`` (a budget ran out first) or ``invalid`` (the givens contradict
    each other; nothing was run). ``contexts`` counts the hypothetical worlds
    opened. ``seconds`` is the whole call, ``run_seconds`` the controller's run.
    """

    puzzle: str
    status: str
    solution: str | None
    seconds: float
    activations: int
    run_id: int | None
    path: str
    contradictions: tuple[str, ...] = ()
    run_seconds: float = 0.0
    contexts: int = 0

    @property
    def solved(self) -> bool:
        return self.status == "solved"

    def to_json(self) -> dict[str, Any]:
        """The one JSON object the command line prints for a puzzle."""
        return {
            "puzzle": self.puzzle, "status": self.status, "solution": self.solution,
            "seconds": round(self.seconds, 6), "activations": self.activations,
            "contexts": self.contexts, "run_id": self.run_id, "db": self.path,
        }

    def __str__(self) -> str:
        shown = self.solution or self.puzzle
        return (
            f"{self.status} in {self.seconds:.3f} s, {self.activations} activations, "
            f"{self.contexts} contexts (run {self.run_id} in {self.path})\n{format_grid(shown)}"
        )


def _goal(view: Any) -> list[Entry]:
    return view.find("solution", "solution") or [e for e in view.entries("solution")]


def _controller(bb: Blackboard, options: dict[str, Any]) -> Any:
    options.setdefault("concurrency", 1)
    options.setdefault("contexts", "fewest_alternatives")
    return Controller(bb, sources(), **options)


def solve(puzzle: str | Sequence[int], path: Any = None, *, on_close: Any = None,
          **controller_options: Any) -> SudokuResult:
    """Solve ``puzzle`` on a blackboard in memory or in ``path`` (a new run per call).

    ``controller_options`` go to :class:`~controller.Controller` (defaults
    here: ``concurrency=1``, ``contexts="fewest_alternatives"``), except
    ``max_cycles``, ``max_activations`` and ``max_seconds``, which go to its
    ``run``. A malformed puzzle raises :class:`SudokuError`; givens that
    contradict each other give the status ``invalid``. ``on_close(bb)`` is
    called before the blackboard closes (batch workers export the run there).
    """
    started = time.perf_counter()
    cells = _read(puzzle)
    text = _text(cells)
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    conflict = _conflict(cells)
    if conflict is not None:
        return SudokuResult(text, "invalid", None, time.perf_counter() - started, 0, None,
                            ":memory:" if path in (None, ":memory:") else str(path),
                            (_describe_conflict(cells, conflict),))
    bb = Blackboard(path, spaces=spaces(), problem={"domain": "sudoku", "puzzle": text})
    try:
        load(bb, cells)
        run = _controller(bb, controller_options).run(goal=_goal, **run_options)
        result = _outcome(bb, text, cells, run, started)
        if on_close is not None:
            on_close(bb)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def resume(path: Any, run: int | None = None, **controller_options: Any) -> SudokuResult:
    """Continue an interrupted :func:`solve` on a file from its last commit.

    ``run`` picks the run (default: the newest unfinished one, else the
    newest finished one). Nothing committed is lost and no activation whose
    contributions were committed runs again; the result is what :func:`solve`
    would have returned. A run that ran to its end (goal or quiescent) is not
    run again: its result is read back, so resuming twice is harmless.
    """
    started = time.perf_counter()
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, run=_run_to_resume(path, run))
    try:
        text = _problem_puzzle(bb)
        cells = _read(text)
        outcome = RunResult.recorded(bb)  # a run that ran to its end: read back, not run again
        if outcome is None:
            if not bb.find("grid", "grid", status=None):  # killed before the grid was first committed
                load(bb, cells)
            outcome = _controller(bb, controller_options).run(goal=_goal, **run_options)
        result = _outcome(bb, text, cells, outcome, started)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def batch_problems(path: Any) -> list[tuple[str, str]]:
    """The puzzles of a batch file: one a line (blank lines skipped), as (label, puzzle)."""
    from pathlib import Path

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SudokuError(f"cannot read the puzzle file {path}: {exc.strerror or exc}") from None
    return [(line.strip(), line.strip()) for line in text.splitlines() if line.strip()]


def batch_failure(label: str, status: str, error: str) -> dict[str, Any]:
    """The batch line of a puzzle that could not be solved (malformed, or a crash)."""
    return {"puzzle": label, "status": status, "solution": None, "seconds": 0.0,
            "activations": 0, "error": error}


def batch_status(result: SudokuResult) -> str:
    """A batch line's status: solved, no_solution, invalid, or failed (a budget ran out)."""
    return "failed" if result.status == "stuck" else result.status


def _run_to_resume(path: Any, run: int | None) -> int:
    """``run``, or the newest unfinished sudoku run of ``path``, or its newest finished one."""
    if run is not None:
        return run
    runs = [r for r in read_runs(path) if isinstance(r["problem"], dict) and r["problem"].get("domain") == "sudoku"]
    if not runs:
        raise SudokuError(f"{path} holds no sudoku run to resume")
    unfinished = [r for r in runs if r["state"] != "finished"]
    return int((unfinished or runs)[-1]["id"])


def _problem_puzzle(bb: Blackboard) -> str:
    problem = bb.problem
    if not isinstance(problem, dict) or problem.get("domain") != "sudoku":
        raise SudokuError(f"run {bb.run_id} of {bb.path} is not a sudoku run (problem: {problem!r})")
    return str(problem["puzzle"])


def _outcome(bb: Blackboard, text: str, cells: list[int], run: Any, started: float) -> SudokuResult:
    """Read the answer off the blackboard after a run."""
    found = [e for e in bb.entries("solution") if check(cells, e.value["grid"])]
    contradictions = tuple(e.value["reason"] for e in bb.entries("contradiction"))
    if found:
        status, solution = "solved", found[0].value["grid"]
    elif contradictions or bb.exhausted():
        status, solution = "no_solution", None
        if not contradictions:
            contradictions = ("every alternative led to a contradiction",)
    else:
        status, solution = "stuck", None
    if not bb.events("sudoku_result"):  # once: a finished run resumed again reads it back
        bb.log("sudoku_result", source="sudoku", details={
            "status": status, "solution": solution, "contradictions": list(contradictions),
        })
    return SudokuResult(
        text, status, solution, time.perf_counter() - started, bb.activations, bb.run_id,
        bb.path, contradictions, run.seconds, len(bb.contexts()) - 1,
    )


