"""Sudoku on the blackboard: propagation by independent sources, search by contexts.

Each world (context) holds one ``grid`` entry: the candidates of the 81
cells as bitmasks (bit d set: digit d still possible), the digits decided,
and the decided cells whose digit has not yet been removed from their peers.
Every deduction is a revision of the grid (a new version; the old one stays,
superseded), so the event log tells the whole story of a solve.

Sources, each a single pass over its trigger's grid, none looping to a
solution::

    contradiction        a cell with no candidate, a digit twice in a unit, or
                         a digit with no place left in a unit: in a hypothetical
                         context it fails the context (everything posted in it is
                         retracted, and a parent whose alternatives all failed
                         fails too); in the root it is posted: no solution
    candidate_elimination   remove the digits just decided from their peers
    naked_single         a cell with one candidate left: decide it
    hidden_single        a digit with one place left in a unit: decide it there
    solution             every cell decided, nothing contradicts: post the
                         solution and promote the context
    hypothesis           nothing else applies: open one child context per
                         candidate of the cell with the fewest candidates
                         ("suppose r1c1 = 4")

Search happens only through contexts on the blackboard: the hypothesis source
forks, the contradiction source fails worlds, and the controller works
depth first on the most promising world (``contexts="fewest_alternatives"``).
Opening a context copies nothing: a child sees its parent's entries until it
posts its own grid version.

Public: :func:`parse`, :func:`check`, :func:`format_grid`, :func:`spaces`,
:func:`sources`, :func:`load`, :func:`solve`, :func:`resume`, :func:`puzzles`,
:class:`SudokuResult`, :class:`SudokuError`; with matplotlib,
:func:`plot_board` and :func:`plot_search`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from blackboard import Blackboard, BlackboardError, Entry, Space

from ._contributions import (
    Contribution,
    alternative,
    fail_context,
    fork,
    post,
    promote_context,
    revise,
)
from ._source import KnowledgeSource, knowledge_source
from ._view import ReadView

__all__ = [
    "SudokuError",
    "SudokuResult",
    "check",
    "format_grid",
    "load",
    "parse",
    "plot_board",
    "plot_search",
    "puzzles",
    "resume",
    "solve",
    "sources",
    "spaces",
]

_RUN_OPTIONS = ("max_cycles", "max_activations", "max_seconds")
ALL = 0b1111111110  # bits 1..9


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



_UNIT_CELLS: tuple[tuple[int, ...], ...] = tuple(tuple(_INDEX[k] for k in keys) for _, keys in _ALL_UNITS)
_UNIT_NAMES: tuple[str, ...] = tuple(name for name, _ in _ALL_UNITS)
_PEER_CELLS: tuple[tuple[int, ...], ...] = tuple(tuple(_INDEX[k] for k, _ in _PEERS[key]) for key in KEYS)
_BIT = {d: 1 << d for d in range(1, 10)}
_DIGIT = {1 << d: d for d in range(1, 10)}
_COUNT = [bin(m).count("1") for m in range(1 << 10)]


def _digits_of(mask: int) -> list[int]:
    return [d for d in range(1, 10) if mask >> d & 1]


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


# -------------------------------------------------------------- the grid
PUZZLE_SETS = {
    # 95 hard puzzles, each with one solution: the public "top95" collection
    # popularised by Peter Norvig's essay "Solving Every Sudoku Puzzle"
    "top95": "top95.txt",
}
_DATA = Path(__file__).parent / "data"


def puzzles(name: str = "top95") -> list[str]:
    """The puzzles of a set shipped with the package, as 81-character strings.

    ``name`` is one of :data:`PUZZLE_SETS` (``"top95"``: 95 hard puzzles);
    an unknown name raises :class:`SudokuError` listing the known ones.
    """
    if name not in PUZZLE_SETS:
        raise SudokuError(f"no puzzle set named {name!r}: the package ships {', '.join(sorted(PUZZLE_SETS))}")
    text = (_DATA / PUZZLE_SETS[name]).read_text(encoding="ascii")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _grid(cand: list[int], digits: list[int], pending: list[int]) -> dict[str, Any]:
    """A grid value, with the summary fields the preconditions read."""
    undecided = [i for i in range(81) if not digits[i]]
    return {
        "cand": cand,
        "digits": digits,
        "pending": pending,
        "open": len(undecided),
        "singles": sum(1 for i in undecided if _COUNT[cand[i]] == 1),
        "empty": sum(1 for m in cand if not m),
        "queue": len(pending),
    }


def spaces() -> list[Space]:
    """The spaces of a sudoku run, with the fields their rules read."""
    grid_fields = {"cand": list, "digits": list, "pending": list, "open": int,
                   "singles": int, "empty": int, "queue": int}
    return [
        Space("grid", fields=grid_fields, description="candidates and decided digits of one world"),
        Space("contradiction", fields={"reason": str}, description="the root grid has no solution"),
        Space("solution", fields={"grid": str}, description="a full valid grid"),
    ]


def _contradiction(value: dict[str, Any]) -> str | None:
    """Why this grid cannot be completed, or None."""
    cand, digits = value["cand"], value["digits"]
    for i in range(81):
        if not cand[i]:
            return f"{KEYS[i]} has no candidate left"
    for u, cells in enumerate(_UNIT_CELLS):
        seen = 0
        union = 0
        for i in cells:
            d = digits[i]
            if d:
                if seen >> d & 1:
                    return f"{d} twice in {_UNIT_NAMES[u]}"
                seen |= 1 << d
            union |= cand[i]
        if union != ALL:
            missing = _digits_of(ALL & ~union)
            return f"{missing[0]} has no place left in {_UNIT_NAMES[u]}"
    return None


@knowledge_source(watches="grid", events=("posted", "revised"), writes=("grid", "contradiction"), priority=50)
def contradiction(entry: Entry) -> Contribution | None:
    """A contradiction fails the hypothetical world it is in (or, in the root, is posted)."""
    reason = _contradiction(entry.value)
    if reason is None:
        return None
    if entry.context:
        return fail_context(reason)
    return post("contradiction", {"reason": reason}, key="root")


@knowledge_source(watches="grid", events=("posted", "revised"), when="queue > 0 and empty == 0", priority=40)
def candidate_elimination(entry: Entry) -> Contribution | None:
    """Remove each newly decided digit from the candidates of its 20 peers."""
    value = entry.value
    cand = list(value["cand"])
    for i in value["pending"]:
        off = ~_BIT[value["digits"][i]]
        for j in _PEER_CELLS[i]:
            cand[j] &= off
    return revise(entry, value=_grid(cand, value["digits"], []))


@knowledge_source(watches="grid", events=("posted", "revised"), when="singles > 0 and queue == 0 and empty == 0", priority=30)
def naked_single(entry: Entry) -> Contribution | None:
    """Decide every cell with a single candidate left."""
    value = entry.value
    cand, digits = value["cand"], list(value["digits"])
    pending = []
    for i in range(81):
        if not digits[i] and _COUNT[cand[i]] == 1:
            digits[i] = _DIGIT[cand[i]]
            pending.append(i)
    return revise(entry, value=_grid(cand, digits, pending))


@knowledge_source(watches="grid", events=("posted", "revised"), when="open > 0 and singles == 0 and queue == 0 and empty == 0", priority=20)
def hidden_single(entry: Entry) -> Contribution | None:
    """Decide each digit that has a single place left in a unit."""
    value = entry.value
    cand, digits = list(value["cand"]), list(value["digits"])
    pending = []
    for cells in _UNIT_CELLS:
        once = twice = 0
        for i in cells:
            m = cand[i]
            twice |= once & m
            once |= m
        only = once & ~twice
        if not only:
            continue
        for i in cells:
            m = cand[i] & only
            if m and not digits[i] and _COUNT[m] == 1:
                digits[i] = _DIGIT[m]
                cand[i] = m
                pending.append(i)
    if not pending:
        return None
    return revise(entry, value=_grid(cand, digits, pending))


@knowledge_source(watches="grid", events=("posted", "revised"), writes=("grid", "solution"), when="open == 0 and queue == 0 and empty == 0", priority=45)
def solution(entry: Entry) -> list[Contribution] | None:
    """A full grid that contradicts nothing is a solution: post it and promote its world."""
    if _contradiction(entry.value) is not None:
        return None
    grid = "".join(map(str, entry.value["digits"]))
    out: list[Contribution] = [post("solution", {"grid": grid}, key="solution")]
    if entry.context:
        out.append(promote_context())
    return out


@knowledge_source(watches="grid", events=("posted", "revised"), when="open > 0 and singles == 0 and queue == 0 and empty == 0", priority=0)
def hypothesis(entry: Entry, view: ReadView) -> Contribution | None:
    """Nothing else applies: suppose each candidate of the cell with the fewest, one world each."""
    value = entry.value
    cand, digits = value["cand"], value["digits"]
    best, fewest = -1, 10
    for i in range(81):
        if not digits[i]:
            n = _COUNT[cand[i]]
            if n < fewest:
                best, fewest = i, n
    if best < 0 or fewest < 2:
        return None
    worlds = []
    for d in _digits_of(cand[best]):
        child_cand = list(cand)
        child_cand[best] = _BIT[d]
        child_digits = list(digits)
        child_digits[best] = d
        worlds.append(alternative(
            f"{KEYS[best]}={d}",
            post("grid", _grid(child_cand, child_digits, [best]), key="grid", confidence=1.0 / fewest),
            confidence=1.0 / fewest,
        ))
    return fork(*worlds)


def sources() -> list[KnowledgeSource]:
    """The sudoku knowledge sources (new objects at each call)."""
    return [
        knowledge_source(contradiction._function, name="contradiction", watches="grid",
                         events=("posted", "revised"), writes=("grid", "contradiction"), priority=50),
        knowledge_source(solution._function, name="solution", watches="grid", events=("posted", "revised"),
                         writes=("grid", "solution"), when=solution.when, priority=45),
        knowledge_source(candidate_elimination._function, name="candidate_elimination", watches="grid",
                         events=("posted", "revised"), when=candidate_elimination.when, priority=40),
        knowledge_source(naked_single._function, name="naked_single", watches="grid",
                         events=("posted", "revised"), when=naked_single.when, priority=30),
        knowledge_source(hidden_single._function, name="hidden_single", watches="grid",
                         events=("posted", "revised"), when=hidden_single.when, priority=20),
        knowledge_source(hypothesis._function, name="hypothesis", watches="grid",
                         events=("posted", "revised"), when=hypothesis.when, priority=0),
    ]


def load(bb: Blackboard, puzzle: str | Sequence[int]) -> Entry:
    """Post the puzzle's grid in the root context; returns the grid entry."""
    cells = parse(puzzle) if isinstance(puzzle, str) else _read(puzzle)
    if bb.find("grid", "grid", status=None):
        raise SudokuError(f"run {bb.run_id} already holds a grid")
    missing = [s for s in spaces() if s.name not in bb.spaces]
    if missing and bb.spaces:
        bb.declare(*missing)
    cand = [_BIT[d] if d else ALL for d in cells]
    pending = [i for i in range(81) if cells[i]]
    return bb.post("grid", _grid(cand, list(cells), pending), key="grid", source="puzzle")


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
    from controller import Controller  # here: controller imports this package

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
    would have returned. A run that already finished is not run again: its
    result is read back, so resuming twice is harmless.
    """
    from controller import RunResult  # here: controller imports this package

    started = time.perf_counter()
    run_options = {k: controller_options.pop(k) for k in _RUN_OPTIONS if k in controller_options}
    bb = Blackboard(path, run=_run_to_resume(path, run))
    try:
        text = _problem_puzzle(bb)
        cells = _read(text)
        outcome = RunResult.recorded(bb) if bb.run_state == "finished" else None
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
    from blackboard import read_runs

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


# ------------------------------------------------------------------ plots
GIVEN_COLOR = "black"
DERIVED_COLOR = "tab:blue"
GUESSED_COLOR = "tab:orange"
_GUESS_FILL = "#fde3c8"  # the cells a hypothesis supposed, behind their digit


@dataclass(frozen=True)
class _Board:
    """What a board plot shows: digits by kind (0: none), the guessed cells, a title."""

    givens: list[int]
    derived: list[int]
    guessed: list[int]
    guesses: frozenset[int]
    title: str


def _board(source: Any, context: int | None) -> _Board:
    """The digits of ``source`` (see :func:`plot_board`) split by where they come from."""
    none = [0] * 81
    if isinstance(source, Blackboard):
        return _board_of(source, context)
    if context is not None:
        raise SudokuError("context= needs a Blackboard to read the context from")
    if isinstance(source, SudokuResult):
        givens = _read(source.puzzle)
        derived = list(none)
        if source.solution:
            derived = [0 if g else d for g, d in zip(givens, _read(source.solution, "solution"))]
        return _Board(givens, derived, none, frozenset(), f"{source.status}: run {source.run_id}")
    return _Board(_read(source), none, list(none), frozenset(), "puzzle")


def _board_of(bb: Blackboard, context: int | None) -> _Board:
    versions = bb.find("grid", "grid", status=None)
    if not versions:
        raise SudokuError(f"run {bb.run_id} of {bb.path} holds no sudoku grid")
    givens = list(versions[0].value["digits"])
    active = bb.find("grid", "grid")
    root = (active or versions)[-1].value["digits"]
    if context is None:
        promoted = [c.id for c in bb.contexts("promoted")]
        context = promoted[-1] if promoted else 0
    ctx = bb.context(context)
    world = root
    if context:
        shown = bb.find("grid", "grid", context=context) or bb.find("grid", "grid", status=None, context=context)
        world = shown[-1].value["digits"]
    derived = [0 if g else d for g, d in zip(givens, root)]
    guessed = [0 if r else d for r, d in zip(root, world)]
    guesses = set()
    while ctx.id:
        key, _, digit = ctx.label.partition("=")
        if key in _INDEX and digit.isdigit():
            guesses.add(_INDEX[key])
        ctx = bb.context(ctx.parent)
    where = "root" if not context else f"context {context} ({bb.context(context).status})"
    return _Board(givens, derived, guessed, frozenset(guesses), f"run {bb.run_id}, {where}")


def plot_board(source: Any, *, ax: Any = None, context: int | None = None, title: str | None = None) -> Any:
    """Draw a 9x9 board with matplotlib; returns the Axes.

    Givens are bold black, digits the blackboard derived blue, digits of a
    hypothetical world (a context other than the root) orange, the cells a
    hypothesis supposed shaded orange; empty cells stay empty. Each of the
    81 cells is one text artist whose gid is its key (``"r1c1"``).

    ``source`` is one of:

    - a puzzle (81 characters, or 81 ints): its givens;
    - a :class:`SudokuResult`: the givens, and the solution's other digits
      as derived (a result does not say which were guessed: pass the
      blackboard for that, e.g. ``Blackboard(result.path, run=result.run_id)``);
    - a :class:`~blackboard.Blackboard` holding a sudoku run: the givens
      (its first grid), the root grid's digits as derived, and the digits of
      ``context`` beyond the root's as guessed. ``context`` defaults to the
      promoted context (the world the solution was found in), else the root.

    Needs matplotlib (``pip install 'duckdb-blackboard[notebook]'``).
    """
    from ._plotting import axes, pyplot

    board = _board(source, context)
    plt = pyplot("sudoku.plot_board")
    ax = axes(ax, "sudoku.plot_board", (5.0, 5.4))
    for i in board.guesses:
        ax.add_patch(plt.Rectangle((i % 9, i // 9), 1, 1, facecolor=_GUESS_FILL, edgecolor="none", zorder=0))
    for k in range(10):
        width = 2.0 if k % 3 == 0 else 0.5
        color = "black" if k % 3 == 0 else "0.6"
        ax.plot([k, k], [0, 9], color=color, linewidth=width, zorder=2, solid_capstyle="projecting")
        ax.plot([0, 9], [k, k], color=color, linewidth=width, zorder=2, solid_capstyle="projecting")
    for i, key in enumerate(KEYS):
        if board.givens[i]:
            digit, color, weight = board.givens[i], GIVEN_COLOR, "bold"
        elif board.derived[i]:
            digit, color, weight = board.derived[i], DERIVED_COLOR, "normal"
        elif board.guessed[i]:
            digit, color, weight = board.guessed[i], GUESSED_COLOR, "normal"
        else:
            digit, color, weight = 0, GIVEN_COLOR, "normal"
        ax.text(i % 9 + 0.5, i // 9 + 0.52, str(digit) if digit else "", ha="center", va="center",
                fontsize=15, color=color, fontweight=weight, gid=key, zorder=3)
    ax.set_xlim(-0.05, 9.05)
    ax.set_ylim(9.05, -0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    kinds = [("given", GIVEN_COLOR, True), ("derived", DERIVED_COLOR, any(board.derived)),
             ("guessed", GUESSED_COLOR, any(board.guessed))]
    handles = [plt.Line2D([], [], linestyle="", marker="s", markersize=8, color=color, label=label)
               for label, color, shown in kinds if shown]
    if len(handles) > 1:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
                  frameon=False, handletextpad=0.3)
    ax.set_title(board.title if title is None else title)
    return ax


def plot_search(bb: Blackboard, *, ax: Any = None, title: str | None = None) -> Any:
    """Draw the tree of hypothetical worlds (contexts) of a sudoku run; returns the Axes.

    A context's x is the order it was opened in, its y its depth (the root
    at the top); a line joins it to its parent. Failed worlds are red
    crosses, the promoted one (the solution's) a green star, open ones grey
    dots; the few first worlds are labelled with their hypothesis. Each
    marker collection has the status as gid (``"failed"``, ...).
    Needs matplotlib (``pip install 'duckdb-blackboard[notebook]'``).
    """
    from ._plotting import axes

    if not isinstance(bb, Blackboard):
        raise SudokuError(f"plot_search draws a Blackboard's contexts, not {type(bb).__name__}")
    contexts = bb.contexts()
    ax = axes(ax, "sudoku.plot_search", (8.0, 4.0))
    for c in contexts:
        if c.id:
            parent = bb.context(c.parent)
            ax.plot([parent.id, c.id], [parent.depth, c.depth], color="0.75", linewidth=0.8, zorder=1)
    styles = {"open": ("o", "0.45", 20), "failed": ("x", "tab:red", 30), "promoted": ("*", "tab:green", 160)}
    for status, (marker, color, size) in styles.items():
        chosen = [c for c in contexts if c.status == status]
        if chosen:
            ax.scatter([c.id for c in chosen], [c.depth for c in chosen], marker=marker, color=color, s=size,
                       zorder=3, label=f"{status} ({len(chosen)})", gid=status)
    if len(contexts) <= 30:
        for c in contexts:
            if c.id:
                ax.annotate(c.label, (c.id, c.depth), textcoords="offset points", xytext=(3, -9), fontsize=7)
    ax.set_xlabel("context, in the order opened")
    ax.set_ylabel("depth (hypotheses made)")
    ax.invert_yaxis()
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    ax.set_title(f"run {bb.run_id}: {len(contexts) - 1} hypothetical worlds" if title is None else title)
    return ax


# ------------------------------------------------------------ text and checks
