"""The sudoku knowledge sources and spaces: each a single pass over its
trigger's grid (see the package docstring), and :func:`load`, which posts a
puzzle's grid in the root context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blackboard import Blackboard, Entry, Space

from .._contributions import (
    Contribution,
    alternative,
    fail_context,
    fork,
    post,
    promote_context,
    revise,
)
from .._source import KnowledgeSource, knowledge_source
from .._view import ReadView
from ._grid import (
    _BIT,
    _COUNT,
    _DIGIT,
    _PEER_CELLS,
    _UNIT_CELLS,
    _UNIT_NAMES,
    ALL,
    KEYS,
    SudokuError,
    _digits_of,
    _grid,
    _read,
    parse,
)


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


