"""The sudoku grid: its geometry (cells, units, peers as bitmask tables), reading
and checking puzzles, and the puzzle sets shipped with the package.

Everything here is plain Python over 81-cell lists; the knowledge sources
(``_sources``) and the solver's driver (``_solve``) share these tables, so
each deduction is a few table look-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blackboard import BlackboardError

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
_DATA = Path(__file__).parent.parent / "data"  # knowledge_sources/data


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

