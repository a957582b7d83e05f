"""Sudoku by constraint propagation: independent knowledge sources on a blackboard.

The grid lives on the blackboard, one entry per cell and space::

    cell            key "r1c1": {"row", "col", "box", "digits", "count"}, the
                    candidates still possible; every elimination is a revision
                    (a new version of the entry, the old one superseded)
    digit           key "r1c1": {"row", "col", "box", "digit"}, posted when the
                    cell is decided
    contradiction   key like "empty:r1c1": {"kind", "unit", "digit", "cells",
                    "reason"}; the grid, as far as the blackboard knows it,
                    has no solution

The sources each make a few point reads (``view.find(space, key)``) and a
few contributions per activation; none loops over the grid or solves on its
own::

    candidate_elimination   on a decided digit: remove it from the candidates
                            of its 20 peers, restrict its own cell to it
    naked_single            a cell with ``count == 1``: decide it
    hidden_single           on a revised cell: in each of its three units, a
                            digit with one place left is decided there (a
                            digit with no place left is a contradiction)
    empty_cell              a cell with ``count == 0``: a contradiction
    duplicate_digit         a decided digit equal to a decided peer's, or two
                            digits decided for one cell (also when conflict
                            resolution superseded one of them): a contradiction

Only propagation, no search: a puzzle that singles cannot finish ends
``stuck``. Every source reads in the context of its trigger and writes there
(posts default to the trigger's context, revisions keep it), so hypothetical
contexts for guessing can be added without changing the sources.

The checks are state-based (``hidden_single`` recounts the three units of
the revised cell rather than following the digit just removed): an
activation whose trigger is revised again before it runs is obviated, and
the newest version's activation then still sees every earlier removal.

Concurrency: two eliminations computed in the same cycle may revise the
same cell; the controller applies the first and runs the second again on
the new version (it is *requeued*), so no elimination is lost. A solution
is checked before it is reported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from blackboard import Blackboard, BlackboardError, Entry, Space

from ._contributions import Contribution, post, revise
from ._source import KnowledgeSource, knowledge_source
from ._view import ReadView

__all__ = [
    "SudokuError",
    "SudokuResult",
    "check",
    "format_grid",
    "load",
    "parse",
    "resume",
    "solve",
    "sources",
    "spaces",
]

STATUSES = ("solved", "no_solution", "stuck", "invalid")
_RUN_OPTIONS = ("max_cycles", "max_activations", "max_seconds")


class SudokuError(BlackboardError, ValueError):
    """A puzzle (or a grid) is malformed, or its givens contradict each other.

    ``problem`` says what is wrong; ``position`` is the 0-based offset of the
    offending character in the text given (None when no single one is).
    """

    def __init__(self, problem: str, position: int | None = None) -> None:
        self.problem = problem
        self.position = position
        super().__init__(f"invalid sudoku: {problem}")


# ---------------------------------------------------------------- geometry
def _box(row: int, col: int) -> int:
    return (row - 1) // 3 * 3 + (col - 1) // 3 + 1


KEYS: tuple[str, ...] = tuple(f"r{r}c{c}" for r in range(1, 10) for c in range(1, 10))
_INDEX = {key: i for i, key in enumerate(KEYS)}
_POS = {f"r{r}c{c}": (r, c, _box(r, c)) for r in range(1, 10) for c in range(1, 10)}

# The 27 units as (name, keys), rows, then columns, then boxes.
_ALL_UNITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    tuple((f"row {r}", tuple(f"r{r}c{c}" for c in range(1, 10))) for r in range(1, 10))
    + tuple((f"column {c}", tuple(f"r{r}c{c}" for r in range(1, 10))) for c in range(1, 10))
    + tuple(
        (f"box {b}", tuple(k for k in KEYS if _POS[k][2] == b)) for b in range(1, 10)
    )
)
# key -> its three units; key -> its 20 peers (other cells sharing a unit,
# each once, with the first unit they share); key -> itself and its peers.
_UNITS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    key: tuple(u for u in _ALL_UNITS if key in u[1]) for key in KEYS
}
_PEERS: dict[str, tuple[tuple[str, str], ...]] = {}
for _key in KEYS:
    _seen: dict[str, str] = {}
    for _name, _keys in _UNITS[_key]:
        for _k in _keys:
            if _k != _key and _k not in _seen:
                _seen[_k] = _name
    _PEERS[_key] = tuple(sorted(_seen.items(), key=lambda item: _INDEX[item[0]]))
_AREA: dict[str, tuple[str, ...]] = {
    key: (key, *(k for k, _ in _PEERS[key])) for key in KEYS
}
del _key, _seen, _name, _keys, _k


def _cell_value(key: str, digits: list[int]) -> dict[str, Any]:
    row, col, box = _POS[key]
    return {"row": row, "col": col, "box": box, "digits": digits, "count": len(digits)}


def _digit_value(key: str, digit: int) -> dict[str, Any]:
    row, col, box = _POS[key]
    return {"row": row, "col": col, "box": box, "digit": digit}


def _contradiction(key: str, kind: str, unit: str, digit: int | None,
                   cells: Sequence[str], reason: str) -> Contribution:
    return post(
        "contradiction",
        {"kind": kind, "unit": unit, "digit": digit, "cells": list(cells), "reason": reason},
        key=key,
    )


# ----------------------------------------------------------------- spaces
def spaces() -> list[Space]:
    """The three spaces of a sudoku blackboard, with their fields declared."""
    return [
        Space(
            "cell",
            {"row": int, "col": int, "box": int, "digits": list, "count": int},
            "the candidate digits still possible in one cell (key r1c1..r9c9)",
        ),
        Space(
            "digit",
            {"row": int, "col": int, "box": int, "digit": int},
            "the digit decided for one cell (key r1c1..r9c9)",
        ),
        Space(
            "contradiction",
            {"kind": str, "unit": str, "digit": int, "cells": list, "reason": str},
            "evidence that the grid has no solution",
        ),
    ]


# ---------------------------------------------------------------- sources
def candidate_elimination(entry: Entry, view: ReadView) -> list[Contribution]:
    """Remove a decided digit from its peers' candidates and restrict its cell to it."""
    digit = entry.value["digit"]
    key = entry.key
    context = entry.context
    find = view.find
    out: list[Contribution] = []
    for peer, _ in _PEERS[key]:
        for cell in find("cell", peer, context=context):
            digits = cell.value["digits"]
            if digit in digits:
                out.append(revise(cell, value=_cell_value(peer, [d for d in digits if d != digit])))
    for cell in find("cell", key, context=context):
        digits = cell.value["digits"]
        kept = [digit] if digit in digits else []
        if kept != digits:
            out.append(revise(cell, value=_cell_value(key, kept)))
    return out


def naked_single(entry: Entry, view: ReadView) -> Contribution | None:
    """Decide a cell that has one candidate left."""
    key = entry.key
    digit = entry.value["digits"][0]
    decided = view.find("digit", key, context=entry.context)
    if not decided:
        return post("digit", _digit_value(key, digit), key=key)
    others = sorted({e.value["digit"] for e in decided} - {digit})
    if others:
        return _contradiction(
            f"clash:{key}", "clash", f"cell {key}", None, [key],
            f"{key} was decided as {others[0]} but its only candidate is {digit}",
        )
    return None


def hidden_single(entry: Entry, view: ReadView) -> list[Contribution] | None:
    """In each unit of a revised cell, decide a digit that has one place left."""
    key = entry.key
    context = entry.context
    find = view.find
    cells: dict[str, dict[str, Any]] = {}
    for k in _AREA[key]:
        found = find("cell", k, context=context)
        if not found:
            return None  # the grid is not (yet) all on the blackboard
        cells[k] = found[-1].value
    out: list[Contribution] = []
    chosen: dict[str, int] = {}
    for unit, keys in _UNITS[key]:
        places = [0] * 10
        where = [""] * 10
        for k in keys:
            for d in cells[k]["digits"]:
                places[d] += 1
                where[d] = k
        for d in range(1, 10):
            n = places[d]
            if n == 1:
                k = where[d]
                if cells[k]["count"] == 1:
                    continue  # a naked single: that source decides it
                if k in chosen:
                    if chosen[k] != d:
                        out.append(_contradiction(
                            f"clash:{k}", "clash", f"cell {k}", None, [k],
                            f"{k} is the only place left for both {chosen[k]} and {d}",
                        ))
                    continue
                if find("digit", k, context=context):
                    continue  # decided already, its elimination is pending
                chosen[k] = d
                out.append(post("digit", _digit_value(k, d), key=k))
            elif n == 0:
                name = unit.replace(" ", "")
                out.append(_contradiction(
                    f"noplace:{name}:{d}", "no_place", unit, d, list(keys),
                    f"{d} has no place left in {unit}",
                ))
    return out or None


def empty_cell(entry: Entry) -> Contribution:
    """A cell with no candidate left is a contradiction."""
    key = entry.key
    return _contradiction(
        f"empty:{key}", "empty_cell", f"cell {key}", None, [key], f"{key} has no candidate left",
    )


def duplicate_digit(entry: Entry, view: ReadView) -> list[Contribution] | None:
    """A decided digit equal to a decided peer's (or a second digit in a cell) is a contradiction."""
    key = entry.key
    digit = entry.value["digit"]
    context = entry.context
    find = view.find
    out: list[Contribution] = []
    for other in find("digit", key, context=context):
        if other.value["digit"] != digit:
            a, b = sorted((digit, other.value["digit"]))
            out.append(_contradiction(
                f"clash:{key}", "clash", f"cell {key}", None, [key],
                f"{key} was decided as both {a} and {b}",
            ))
            break
    if not entry.active:
        # Superseded: it lost conflict resolution to another digit claimed for
        # the same cell in the same cycle. Both were sound deductions, so the
        # clash above is the contradiction; its peers no longer matter.
        return out or None
    for peer, unit in _PEERS[key]:
        for other in find("digit", peer, context=context):
            if other.value["digit"] == digit:
                a, b = sorted((key, peer), key=_INDEX.__getitem__)
                out.append(_contradiction(
                    f"duplicate:{unit.replace(' ', '')}:{digit}", "duplicate", unit, digit, [a, b],
                    f"{digit} is decided twice in {unit}, at {a} and {b}",
                ))
                break
    return out or None


# name -> (action, options). Contradictions first, so a run stops early;
# eliminations before decisions, so a cell revised several times in a row is
# checked once, on its newest version (the older activations are obviated).
_SOURCES: dict[str, tuple[Any, dict[str, Any]]] = {
    "empty_cell": (empty_cell, {
        "watches": "cell", "when": "count == 0", "writes": "contradiction",
        "events": ("posted", "revised", "reinstated"), "priority": 40.0,
    }),
    "duplicate_digit": (duplicate_digit, {
        "watches": "digit", "writes": "contradiction",
        "events": ("posted", "reinstated", "superseded"), "priority": 30.0,
    }),
    "candidate_elimination": (candidate_elimination, {
        "watches": "digit", "writes": "cell",
        "events": ("posted", "reinstated"), "priority": 20.0,
    }),
    "naked_single": (naked_single, {
        "watches": "cell", "when": "count == 1", "writes": ("digit", "contradiction"),
        "events": ("posted", "revised", "reinstated"), "priority": 10.0,
    }),
    "hidden_single": (hidden_single, {
        "watches": "cell", "when": "count >= 1", "writes": ("digit", "contradiction"),
        "events": ("revised", "reinstated"), "priority": 0.0,
    }),
}


def sources() -> list[KnowledgeSource]:
    """Fresh knowledge sources of the solver (a new object each call)."""
    return [knowledge_source(fn, name=name, **options) for name, (fn, options) in _SOURCES.items()]


# ------------------------------------------------------------------ grids
def _read(puzzle: Any, what: str = "puzzle") -> list[int]:
    """81 digits (0 for empty) from text or a sequence of ints; no conflict check."""
    if isinstance(puzzle, str):
        cells: list[int] = []
        for offset, ch in enumerate(puzzle):
            if ch.isspace():
                continue
            if ch in "123456789":
                cells.append(ord(ch) - 48)
            elif ch in ".0":
                cells.append(0)
            else:
                n = len(cells)
                where = f"row {n // 9 + 1}, column {n % 9 + 1}" if n < 81 else f"cell {n + 1}"
                raise SudokuError(
                    f"bad character {ch!r} at position {offset} ({where}); "
                    "use digits 1-9, and '.' or '0' for an empty cell",
                    offset,
                )
            if len(cells) > 81:
                raise SudokuError(
                    f"more than 81 cells: an 82nd starts at position {offset}", offset
                )
        if len(cells) != 81:
            raise SudokuError(
                f"{len(cells)} cells instead of 81: the {what} ends at position {len(puzzle)}",
                len(puzzle),
            )
        return cells
    if isinstance(puzzle, Sequence) and not isinstance(puzzle, (bytes, bytearray)):
        if len(puzzle) != 81:
            raise SudokuError(f"{len(puzzle)} cells instead of 81")
        out = []
        for i, d in enumerate(puzzle):
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 9:
                raise SudokuError(f"cell {i} (row {i // 9 + 1}, column {i % 9 + 1}) is {d!r}, not a digit 0-9", i)
            out.append(d)
        return out
    raise SudokuError(f"a {what} is a string of 81 cells, not {type(puzzle).__name__}")


def _offsets(puzzle: Any) -> list[int]:
    """The offset in the text of each cell (its index for a sequence)."""
    if not isinstance(puzzle, str):
        return list(range(81))
    return [i for i, ch in enumerate(puzzle) if not ch.isspace()]


def _conflict(cells: list[int]) -> tuple[str, int, int] | None:
    """The first two givens that share a unit and a digit: (unit, i, j)."""
    for unit, keys in _ALL_UNITS:
        first: dict[int, int] = {}
        for k in keys:
            i = _INDEX[k]
            d = cells[i]
            if d:
                if d in first:
                    return unit, first[d], i
                first[d] = i
    return None


def _describe_conflict(cells: list[int], conflict: tuple[str, int, int]) -> str:
    unit, i, j = conflict
    return f"the givens conflict: {cells[i]} at {KEYS[i]} and at {KEYS[j]}, both in {unit}"


def parse(puzzle: str) -> list[int]:
    """The 81 cells of a puzzle, row by row, 0 for empty.

    Digits 1-9 are givens, ``.`` or ``0`` an empty cell; whitespace is
    ignored. Raises :class:`SudokuError` naming the problem and its position
    for any other character, a count other than 81, or two equal givens in
    one row, column or box.
    """
    cells = _read(puzzle)
    conflict = _conflict(cells)
    if conflict is not None:
        raise SudokuError(_describe_conflict(cells, conflict), _offsets(puzzle)[conflict[2]])
    return cells


def _text(cells: Sequence[int]) -> str:
    return "".join(str(d) if d else "." for d in cells)


def format_grid(grid: str | Sequence[int]) -> str:
    """A 9x9 text grid, boxes ruled off, ``.`` for an empty cell."""
    cells = _read(grid, "grid")
    lines = []
    for r in range(9):
        if r and r % 3 == 0:
            lines.append("------+-------+------")
        row = [str(d) if d else "." for d in cells[r * 9:r * 9 + 9]]
        lines.append(" | ".join(" ".join(row[b:b + 3]) for b in (0, 3, 6)))
    return "\n".join(lines)


def check(puzzle: str | Sequence[int], solution: str | Sequence[int] | None) -> bool:
    """Whether ``solution`` is a full valid grid that keeps the puzzle's givens.

    A malformed solution is simply not one (False); a malformed puzzle raises
    :class:`SudokuError`.
    """
    givens = _read(puzzle)
    try:
        cells = _read(solution, "solution")
    except SudokuError:
        return False
    if any(g and g != s for g, s in zip(givens, cells)):
        return False
    full = set(range(1, 10))
    return all({cells[_INDEX[k]] for k in keys} == full for _, keys in _ALL_UNITS)


# -------------------------------------------------------------- the board
def load(bb: Blackboard, puzzle: str | Sequence[int]) -> list[Entry]:
    """Post the 81 cells of ``puzzle`` on ``bb`` (root context); returns them.

    A given is a cell with that one candidate (``naked_single`` decides it),
    an empty cell has all nine. The sudoku spaces are declared on ``bb`` if
    they are not yet. Raises :class:`SudokuError` for an invalid puzzle, or
    when ``bb`` already holds cells.
    """
    cells = parse(puzzle) if isinstance(puzzle, str) else _read(puzzle)
    if not isinstance(puzzle, str):
        conflict = _conflict(cells)
        if conflict is not None:
            raise SudokuError(_describe_conflict(cells, conflict), conflict[2])
    if bb.find("cell", KEYS[0]):
        raise SudokuError("this blackboard already holds a grid (cell r1c1 exists)")
    declared = bb.spaces
    missing = [s for s in spaces() if s.name not in declared]
    if missing:
        bb.declare(*missing)
    everything = list(range(1, 10))
    ops = [
        ("post", "cell", _cell_value(key, [d] if d else everything), key, 1.0, (), 0)
        for key, d in zip(KEYS, cells)
    ]
    return bb.transact(ops, source="puzzle")


def _any_contradiction(view: Any) -> list[Entry]:
    """The goal of a run: stop at the first contradiction (root context)."""
    return view.find("contradiction")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SudokuResult:
    """What :func:`solve` found.

    ``status``: ``solved`` (``solution`` is the checked 81-digit grid),
    ``no_solution`` (a contradiction was derived; ``contradictions`` says
    which), ``stuck`` (propagation alone could not finish, or a budget ran
    out) or ``invalid`` (the givens contradict each other; nothing was run).
    ``grid`` holds the digits decided, 0 where undecided. ``seconds`` is the
    whole call (opening the blackboard included), ``run_seconds`` the
    controller's run alone. ``run_id`` is None when nothing was run.
    """

    puzzle: str
    status: str
    solution: str | None
    grid: list[list[int]]
    seconds: float
    activations: int
    run_id: int | None
    path: str
    contradictions: tuple[str, ...] = ()
    run_seconds: float = 0.0

    @property
    def solved(self) -> bool:
        return self.status == "solved"

    def __str__(self) -> str:
        shown = self.solution or "".join(str(d) if d else "." for row in self.grid for d in row)
        return (
            f"{self.status} in {self.seconds:.3f} s, {self.activations} activations "
            f"(run {self.run_id} in {self.path})\n{format_grid(shown)}"
        )


def solve(puzzle: str | Sequence[int], path: Any = None, **controller_options: Any) -> SudokuResult:
    """Solve ``puzzle`` by propagation on a blackboard in memory or in ``path``.

    ``controller_options`` go to :class:`~controller.Controller`, except ``max_cycles``,
    ``max_activations`` and ``max_seconds``, which go to its ``run``. A file
    gets a new run per call. Raises :class:`SudokuError` for a malformed
    puzzle; givens that contradict each other give the status ``invalid``.
    """
    from controller import Controller  # here: controller imports this package

    started = time.perf_counter()
    cells = _read(puzzle)
    text = _text(cells)
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    conflict = _conflict(cells)
    if conflict is not None:
        return SudokuResult(
            text, "invalid", None, _rows(cells), time.perf_counter() - started, 0, None,
            ":memory:" if path in (None, ":memory:") else str(path),
            (_describe_conflict(cells, conflict),),
        )
    bb = Blackboard(path, spaces=spaces(), problem={"domain": "sudoku", "puzzle": text})
    try:
        load(bb, cells)
        controller = Controller(bb, sources(), **controller_options)
        run = controller.run(goal=_any_contradiction, **run_options)
        result = _outcome(bb, text, cells, run, started)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def resume(path: Any, run: int | None = None, **controller_options: Any) -> SudokuResult:
    """Continue an interrupted :func:`solve` on a file from its last commit.

    ``run`` picks the run (default: the newest sudoku run not finished).
    Nothing committed is lost and no activation whose contributions were
    committed runs again; the result is what :func:`solve` would return.
    """
    from controller import Controller

    started = time.perf_counter()
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, run=_unfinished_run(path, run))
    try:
        text = _problem_puzzle(bb)
        cells = _read(text)
        if not bb.find("cell", status=None):  # killed before the grid was first committed
            load(bb, cells)
        controller = Controller(bb, sources(), **controller_options)
        outcome = controller.run(goal=_any_contradiction, **run_options)
        result = _outcome(bb, text, cells, outcome, started)
    finally:
        bb.close()
    return replace(result, seconds=time.perf_counter() - started)


def _unfinished_run(path: Any, run: int | None) -> int:
    from blackboard import read_runs

    if run is not None:
        return run
    runs = [r for r in read_runs(path) if r["state"] != "finished"]
    if not runs:
        raise SudokuError(f"{path} holds no unfinished run to resume")
    return int(runs[-1]["id"])


def _problem_puzzle(bb: Blackboard) -> str:
    problem = bb.problem
    if not isinstance(problem, dict) or problem.get("domain") != "sudoku":
        raise SudokuError(f"run {bb.run_id} of {bb.path} is not a sudoku run (problem: {problem!r})")
    return str(problem["puzzle"])


def _outcome(bb: Blackboard, text: str, cells: list[int], run: Any, started: float) -> SudokuResult:
    """Read the answer off the blackboard after a run."""
    decided = [0] * 81
    clash = False
    for e in bb.find("digit"):
        i = _INDEX[e.key]
        if decided[i] and decided[i] != e.value["digit"]:
            clash = True
        decided[i] = e.value["digit"]
    contradictions = tuple(e.value["reason"] for e in bb.find("contradiction"))
    solution = None
    if contradictions or clash:
        status = "no_solution"
    elif 0 in decided:
        status = "stuck"
    elif check(cells, decided):
        status, solution = "solved", _text(decided)
    else:  # every deduction is sound, so a full wrong grid means none exists
        status = "no_solution"
        contradictions = ("the decided digits do not form a valid grid",)
    bb.log("sudoku_result", source="sudoku", details={
        "status": status, "solution": solution, "contradictions": list(contradictions),
    })
    return SudokuResult(
        text, status, solution, _rows(decided), time.perf_counter() - started,
        bb.activations, bb.run_id, bb.path, contradictions, run.seconds,
    )


def _rows(cells: Sequence[int]) -> list[list[int]]:
    return [list(cells[r * 9:r * 9 + 9]) for r in range(9)]

